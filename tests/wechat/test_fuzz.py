"""Hostile input never raises anything but a ProtocolError (hypothesis is not installed: a seeded generator).

Each body is signed properly (and, where it carries ``<Encrypt>``, with a valid
``msg_signature`` over it), so the generator reaches the XML parser and the
decryption instead of stopping at the signature. The catch-all that turns a
stray exception into a 400 must never be what answered: every refusal has to
come from an explicit check.
"""

from __future__ import annotations

import base64
import random
import time
from collections import Counter

import pytest

from bot.wechat import simulator as sim
from bot.wechat.protocol import (
    ProtocolError,
    Webhook,
    parse_inbound,
    sign,
)
from tests.wechat.conftest import TEST_TOKEN, user_for, webhook_for

SEED = 20240801
ROUNDS = 400  # per generator and mode; about 5,000 bodies in all
JUNK = "<>&;]]>[!?/=\"' \n\x00\x1f\x7f\ud7ff\ue000\ufffd\U0001f600中文￥CDATA[xml"
STATUSES = {400, 403, 413, 503}


def valid_xml(rng: random.Random) -> str:
    user = user_for("plaintext")
    message = rng.choice([sim.text("你好，我想预约"), sim.voice("查询待遇"), sim.location(31.2, 121.4, "地点"),
                          sim.click("MENU"), sim.view("https://example.gov.cn/"), sim.subscribe("7"),
                          sim.location_event(30.0, 120.0), sim.image(), sim.link("https://a.cn/")])
    return user.message_xml(message)


def random_bytes(rng):
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))


def truncated(rng):
    xml = valid_xml(rng).encode("utf-8")
    return xml[:rng.randrange(len(xml))]


def mutated(rng):
    chars = list(valid_xml(rng))
    for _ in range(rng.randrange(1, 8)):
        position = rng.randrange(len(chars))
        action = rng.randrange(3)
        if action == 0:
            chars[position] = rng.choice(JUNK)
        elif action == 1:
            chars.insert(position, rng.choice(JUNK))
        else:
            del chars[position]
    return "".join(chars).encode("utf-8", errors="surrogatepass")


def deep_nesting(rng):
    depth = rng.choice([3, 9, 100, 5000])
    name = rng.choice(["a", "xml", "Content"])
    return ("<xml>" + f"<{name}>" * depth + "x" + f"</{name}>" * depth + "</xml>").encode()


def unicode_junk(rng):
    text = "".join(rng.choice(JUNK) for _ in range(rng.randrange(1, 200)))
    where = rng.randrange(3)
    if where == 0:
        return text.encode("utf-8", errors="surrogatepass")
    if where == 1:
        return f"<xml><Content><![CDATA[{text}]]></Content></xml>".encode("utf-8", errors="surrogatepass")
    return valid_xml(rng).replace("你好，我想预约", text).encode("utf-8", errors="surrogatepass")


def entity_tricks(rng):
    head = rng.choice(['<!DOCTYPE xml [<!ENTITY a "b">]>', "<!DOCTYPE xml SYSTEM 'http://127.0.0.1:9/x'>",
                       "<?xml-stylesheet href='x'?>", "<!--x-->", '<?xml version="1.0" encoding="UTF-7"?>',
                       "<!ELEMENT xml ANY>", "&#0;", "&unknown;", "<![CDATA[", "<!DoCtYpE"])
    xml = valid_xml(rng)
    position = rng.randrange(len(xml) + 1)
    return (xml[:position] + head + xml[position:]).encode("utf-8")


def numbers_out_of_range(rng):
    value = rng.choice(["nan", "inf", "-inf", "1e400", "-91", "181", "0x10", "", " ", "1_0", "٣"])
    xml = user_for("plaintext").message_xml(sim.location_event(30.0, 120.0))
    field = rng.choice(["Latitude", "Longitude", "Precision"])
    start = xml.index(f"<{field}>") + len(field) + 2
    end = xml.index(f"</{field}>")
    return (xml[:start] + value + xml[end:]).encode("utf-8")


GENERATORS = [random_bytes, truncated, mutated, deep_nesting, unicode_junk, entity_tricks, numbers_out_of_range]


def garbage_envelope(rng) -> str:
    """A safe-mode envelope whose Encrypt is anything but a proper ciphertext."""
    choice = rng.randrange(4)
    if choice == 0:
        encrypt = base64.b64encode(bytes(rng.randrange(256) for _ in range(rng.choice([0, 15, 16, 32, 48]))))
        encrypt = encrypt.decode()
    elif choice == 1:
        encrypt = "".join(rng.choice("ABCxyz+/=0!") for _ in range(rng.randrange(1, 90)))
    elif choice == 2:  # correct key, but the plaintext inside is junk or hostile XML
        user = user_for("safe")
        inner = rng.choice([random_bytes, truncated, mutated, entity_tricks])(rng)
        request = user.sign_xml(inner.decode("utf-8", errors="replace"))
        return request.body.decode("utf-8")
    else:
        encrypt = "\u4e2d" * rng.randrange(1, 10)
    return f"<xml><ToUserName><![CDATA[gh_vetbot000000]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"


def signed_query(body: bytes, rng: random.Random) -> dict:
    timestamp, nonce = str(int(time.time())), str(rng.randrange(10**9, 10**10))
    query = {"signature": sign(TEST_TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    text = body.decode("utf-8", errors="replace")
    if "<Encrypt><![CDATA[" in text:
        encrypt = text.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
        query["msg_signature"] = sign(TEST_TOKEN, timestamp, nonce, encrypt)
    return query


async def outcome(hook: Webhook, query, body: bytes, reasons: Counter) -> None:
    try:
        await hook.receive(query, body)
        reasons["accepted"] += 1
    except ProtocolError as error:
        assert error.status in STATUSES
        assert not error.reason.startswith("unreadable"), f"only the catch-all caught {error.reason} for {body!r}"
        reasons[type(error).__name__] += 1


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_hostile_bodies_only_ever_raise_protocol_errors(mode):
    rng = random.Random(f"{SEED}-{mode}")
    hook = webhook_for(mode)
    reasons: Counter = Counter()
    for generator in GENERATORS:
        for _ in range(ROUNDS):
            body = generator(rng)
            if mode == "safe" and rng.random() < 0.7:
                body = user_for("safe").sign_xml(body.decode("utf-8", errors="replace")).body
            await outcome(hook, signed_query(body, rng), body, reasons)
    if mode == "safe":
        for _ in range(ROUNDS):
            body = garbage_envelope(rng).encode("utf-8")
            await outcome(hook, signed_query(body, rng), body, reasons)
    # The generator got past the signature to every layer behind it.
    assert reasons["XmlRefused"] > 50 and reasons["MalformedMessage"] > 500, reasons
    assert reasons["MissingField"] > 0, reasons
    assert reasons["BadSignature"] == 0, reasons  # every body was signed correctly


async def test_hostile_query_strings_only_ever_raise_protocol_errors():
    rng = random.Random(SEED)
    hook = webhook_for("safe")
    body = user_for("safe").build(sim.text("你好")).body
    values = ["", "0", "-1", "9" * 40, "１２３", "\x00", "a b", "中文", "%00", "1e9", " " * 3, "x" * 5000]
    reasons: Counter = Counter()
    for _ in range(ROUNDS):
        query = {name: rng.choice(values) for name in ("signature", "timestamp", "nonce", "msg_signature", "echostr")
                 if rng.random() < 0.8}
        await outcome(hook, query, body, reasons)
        try:
            hook.verify_url(query)
        except ProtocolError as error:
            assert error.status in STATUSES and not error.reason.startswith("unreadable")
    assert "accepted" not in reasons


def test_parse_inbound_on_hostile_xml_only_raises_protocol_errors():
    rng = random.Random(SEED + 1)
    for generator in GENERATORS:
        for _ in range(ROUNDS):
            text = generator(rng).decode("utf-8", errors="replace")
            try:
                parse_inbound(text)
            except ProtocolError as error:
                assert not error.reason.startswith("unreadable"), error.reason
