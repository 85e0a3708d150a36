"""Signatures and AES against published vectors (sources in fixtures/README.md)."""

from __future__ import annotations

import pytest
import wechatpy.crypto

from bot.wechat.protocol import (
    BadSignature,
    MemoryNonceStore,
    WechatConfig,
    Webhook,
    WrongAccount,
    sign,
    signature_matches,
)
from tests.wechat.conftest import crypto_vectors

VECTORS = crypto_vectors()


def webhook(vector: dict, appid_key: str = "appid") -> Webhook:
    config = WechatConfig(vector["token"], vector[appid_key], vector["encoding_aes_key"])
    return Webhook(config, MemoryNonceStore(), clock=lambda: int(vector["timestamp"]))


def test_plaintext_signature_from_wechat_documentation():
    vector = VECTORS["official_plaintext_signature"]
    expected = sign(vector["token"], vector["timestamp"], vector["nonce"])
    assert expected == vector["signature"]
    assert signature_matches(expected, vector["signature"])
    assert not signature_matches(expected, vector["signature"][:-1] + "0")


async def test_wechat_sample_decrypts_to_its_published_plaintext():
    vector = VECTORS["official_sample_compatible"]
    query = {"timestamp": vector["timestamp"], "nonce": vector["nonce"],
             "msg_signature": vector["msg_signature"], "encrypt_type": "aes"}
    inbound = await webhook(vector).receive(query, vector["body"].encode("utf-8"))
    plain = vector["plaintext"]
    assert inbound.encrypted  # the Encrypt element was decrypted, not the plaintext copy read
    assert (inbound.kind, inbound.text, inbound.openid, inbound.to_user) == (
        "text", plain["Content"], plain["FromUserName"], plain["ToUserName"])
    assert (inbound.create_time, inbound.msg_id) == (plain["CreateTime"], plain["MsgId"])


async def test_wechat_sample_with_a_changed_ciphertext_is_refused():
    vector = VECTORS["official_sample_compatible"]
    body = vector["body"].replace("hyzAe4", "hyzAe5")
    query = {"timestamp": vector["timestamp"], "nonce": vector["nonce"], "msg_signature": vector["msg_signature"]}
    with pytest.raises(BadSignature) as refused:
        await webhook(vector).receive(query, body.encode("utf-8"))
    assert refused.value.status == 403


async def test_wechat_sample_for_another_appid_is_refused():
    vector = dict(VECTORS["official_sample_compatible"], appid="wx0000000000000000")
    query = {"timestamp": vector["timestamp"], "nonce": vector["nonce"], "msg_signature": vector["msg_signature"]}
    with pytest.raises(WrongAccount):
        await webhook(vector).receive(query, vector["body"].encode("utf-8"))


async def test_wechatpy_vector_decrypts_to_its_published_plaintext():
    vector = VECTORS["wechatpy_decrypt"]
    query = {"timestamp": vector["timestamp"], "nonce": vector["nonce"], "msg_signature": vector["msg_signature"]}
    inbound = await webhook(vector, "receive_id").receive(query, vector["body"].encode("utf-8"))
    assert inbound.text == vector["plaintext"]["Content"]
    assert inbound.openid == vector["plaintext"]["FromUserName"]


def test_wechatpy_encrypted_echostr_is_verified_and_decrypted():
    vector = VECTORS["wechatpy_echostr"]
    hook = webhook(vector, "receive_id")
    query = {"msg_signature": vector["msg_signature"], "timestamp": vector["timestamp"],
             "nonce": vector["nonce"], "echostr": vector["echostr"]}
    echo = hook.verify_url(query)
    # The published test only checks that verification passes; the plaintext must be what
    # wechatpy's own (unpatched) decryption yields, and must not be the ciphertext.
    config = hook.config
    assert echo == wechatpy.crypto.PrpCrypto(config.key).decrypt(vector["echostr"], config.appid)
    assert echo and echo != vector["echostr"]
    with pytest.raises(BadSignature):
        hook.verify_url(dict(query, nonce=vector["wrong_nonce"]))


def test_wechatpy_encrypt_vector(monkeypatch):
    vector = VECTORS["wechatpy_encrypt"]
    # The published ciphertext was made with these 16 "random" bytes, as in wechatpy's test.
    monkeypatch.setattr(wechatpy.crypto.PrpCrypto, "get_random_string", lambda self: vector["random_prefix"])
    hook = webhook(vector, "receive_id")
    assert hook.encrypt(vector["reply"], vector["nonce"], vector["timestamp"]) == vector["expected"]


def test_our_encrypted_reply_decrypts_with_wechatpy():
    vector = VECTORS["wechatpy_encrypt"]
    hook = webhook(vector, "receive_id")
    envelope = hook.encrypt(vector["reply"], "12345", vector["timestamp"])
    decrypted = wechatpy.crypto.WeChatCrypto(vector["token"], vector["encoding_aes_key"],
                                             vector["receive_id"]).decrypt_message(
        envelope, _field(envelope, "MsgSignature"), vector["timestamp"], "12345")
    assert decrypted == vector["reply"]


def _field(xml: str, name: str) -> str:
    start = xml.index(f"<{name}><![CDATA[") + len(f"<{name}><![CDATA[")
    return xml[start:xml.index("]]>", start)]
