"""The client's real address behind a reverse proxy (bot/client_address.py): the
X-Forwarded-For header is believed only as far as trusted proxies wrote it."""

import pytest

from bot.client_address import client_address, parse_trusted_proxies

PROXIES = parse_trusted_proxies("10.0.0.5, 172.16.0.0/12, 2001:db8:ff::/48")


@pytest.mark.parametrize("peer, headers, expected", [
    # No trusted peer: the header is anyone's to write, so it is ignored.
    ("198.51.100.9", ["203.0.113.7"], "198.51.100.9"),
    ("198.51.100.9", [], "198.51.100.9"),
    # Through the trusted proxy: the address it saw (the rightmost entry).
    ("10.0.0.5", ["203.0.113.7"], "203.0.113.7"),
    # What the client wrote itself stays to the left and is not believed.
    ("10.0.0.5", ["1.2.3.4, 203.0.113.7"], "203.0.113.7"),
    ("10.0.0.5", ["1.2.3.4", "203.0.113.7"], "203.0.113.7"),  # the same, as two headers
    # Two trusted hops (a load balancer in front of nginx): walked past both.
    ("10.0.0.5", ["1.2.3.4, 203.0.113.7, 172.20.1.1"], "203.0.113.7"),
    # A trusted proxy that sent no header: the proxy is all we know.
    ("10.0.0.5", [], "10.0.0.5"),
    # Every hop trusted: the furthest one.
    ("10.0.0.5", ["172.20.1.1"], "172.20.1.1"),
    # Garbage where an address should be: stop at the last hop known good.
    ("10.0.0.5", ["not-an-address"], "10.0.0.5"),
    ("10.0.0.5", ["203.0.113.7, junk, 172.20.1.1"], "172.20.1.1"),
    # Ports, IPv6 and IPv4 mapped into IPv6 (a dual-stack socket).
    ("10.0.0.5", ["203.0.113.7:51234"], "203.0.113.7"),
    ("::ffff:10.0.0.5", ["[2001:db8::7]:443"], "2001:db8::7"),
    ("2001:db8:ff::1", ["2001:db8::7"], "2001:db8::7"),
    ("::ffff:198.51.100.9", ["203.0.113.7"], "198.51.100.9"),
])
def test_client_address(peer, headers, expected):
    assert client_address(peer, headers, PROXIES) == expected


def test_without_trusted_proxies_the_header_is_always_ignored():
    assert client_address("127.0.0.1", ["203.0.113.7"], ()) == "127.0.0.1"
    assert client_address(None, ["203.0.113.7"], ()) == "unknown"


def test_a_wrong_entry_in_the_setting_is_refused():
    assert parse_trusted_proxies("") == ()
    assert parse_trusted_proxies(" 127.0.0.1 ,, ") == parse_trusted_proxies("127.0.0.1/32")
    with pytest.raises(ValueError, match="'proxy.example.com' is not an IP address"):
        parse_trusted_proxies("10.0.0.5, proxy.example.com")
