"""The client's real address behind a reverse proxy, for sign-in throttling.

``X-Forwarded-For`` is anyone's to write, so it is believed only as far as trusted
hands wrote it: when the peer (the TCP connection's address) is a trusted proxy
(VETBOT_TRUSTED_PROXIES, addresses or CIDR blocks), the header is walked from the
right (each proxy appends the address it saw) past further trusted proxies, and the
first address not trusted is the client. Otherwise (no trusted proxies configured,
or the peer is not one) the header is ignored and the peer is the client.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Sequence, Tuple, Union

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]


def parse_trusted_proxies(text: str) -> Tuple[IPNetwork, ...]:
    """``10.0.0.5, 172.16.0.0/12, ::1`` → networks; a wrong entry raises ValueError
    naming it (the processes refuse to start rather than trust the wrong hosts)."""
    networks = []
    for entry in (part.strip() for part in (text or "").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"VETBOT_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR block") from None
    return tuple(networks)


def _address(text: str) -> Optional[IPAddress]:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # 192.0.2.1:443
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:192.0.2.1 on a dual-stack socket
    return address


def _trusted(address: IPAddress, trusted: Sequence[IPNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in trusted)


def client_address(peer: Optional[str], forwarded_for: Iterable[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer, or what trusted proxies say they saw (see above).
    ``forwarded_for`` is every X-Forwarded-For header of the request, in order."""
    peer_address = _address(peer or "")
    if peer_address is None:
        return peer or "unknown"
    if not trusted or not _trusted(peer_address, trusted):
        return str(peer_address)
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    client = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # Not an address: a trusted proxy would not write that, so stop at the last
            # hop known good (everyone behind it shares its throttling).
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)
