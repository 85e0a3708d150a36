"""What WeChat posts to ``/wechat``: checked, decrypted and parsed once, here.

``Webhook.verify_url`` answers the GET that WeChat sends when the server URL is
configured; ``Webhook.receive`` turns a POST into an ``Inbound`` or refuses it
with a ``ProtocolError`` that carries the HTTP status and a short reason for
the log line (never the message text). ``Webhook.passive_reply`` builds the
XML answer, encrypted when the message came encrypted.

Modes follow the account's 消息加解密方式: 明文模式 (no ``aes_key``), 安全模式
(body carries only ``<Encrypt>``) and 兼容模式 (plaintext fields and
``<Encrypt>``). With an ``aes_key`` every body must carry ``<Encrypt>``, which
is checked against ``msg_signature`` and decrypted; without one the plaintext
fields are used and any ``<Encrypt>`` is ignored.

Signatures and the AES framing are wechatpy's (``WeChatSigner``,
``PrpCrypto``, ``WeChatCrypto``); signatures are compared here with
``hmac.compare_digest`` because wechatpy compares them with ``!=``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import secrets
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple
from xml.parsers import expat

import wechatpy
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

MAX_BODY_BYTES = 64 * 1024
TIMESTAMP_WINDOW_SECONDS = 300
# Long enough that a nonce cannot come back while its timestamp is still accepted.
NONCE_TTL_SECONDS = 2 * TIMESTAMP_WINDOW_SECONDS + 60
# WeChat's text messages (passive reply and customer-service) hold at most 2048 bytes.
MAX_TEXT_BYTES = 2048
# The deepest element WeChat sends is xml/SendPicsInfo/PicList/item/PicMd5Sum.
MAX_XML_DEPTH = 8
# Events that open the user's 48-hour window for customer-service messages, as any
# message does (WeChat's 客服消息 rules): following, a menu click that sends an event,
# a scan, a location report. Not VIEW (a link opened) and not unsubscribe.
WINDOW_EVENTS = frozenset({"subscribe", "click", "scan", "scancode_push", "scancode_waitmsg", "location"})
SUCCESS = "success"  # the answer that tells WeChat "received, nothing to show, do not retry"

_QUERY_VALUE = re.compile(r"[\x21-\x7e]{1,128}")
_TIMESTAMP = re.compile(r"\d{1,12}")
_ACCOUNT = re.compile(r"[A-Za-z0-9_\-@.]{1,128}")  # OpenIDs, gh_ original IDs, AppIDs
_DIGITS = re.compile(r"\d{1,20}")
_CDATA_SECTION = re.compile(r"<!\[CDATA\[.*?\]\]>", re.S)
_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.I)
_XML_DECLARATION = re.compile(r"<\?xml\s[^<>?]*\?>")
# Characters XML 1.0 cannot carry at all; a reply containing one is unreadable to WeChat.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --- refusals -------------------------------------------------------------------------


class ProtocolError(Exception):
    """A refused request: ``status`` for the HTTP answer, ``reason`` for the log line."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(ProtocolError):
    status = 400


class MissingField(BadRequest):
    """A query parameter or XML element that WeChat always sends is absent."""


class MalformedMessage(BadRequest):
    """Not XML, not UTF-8, or a field that is not what WeChat sends."""


class XmlRefused(BadRequest):
    """DOCTYPE, ENTITY or other markup declarations: refused before any parser sees them."""


class Forbidden(ProtocolError):
    status = 403


class BadSignature(Forbidden):
    pass


class StaleTimestamp(Forbidden):
    pass


class ReplayedNonce(Forbidden):
    pass


class WrongAccount(Forbidden):
    """Meant for another official account (AppID or ToUserName differ)."""


class BodyTooLarge(ProtocolError):
    status = 413


class BackendUnavailable(ProtocolError):
    """The nonce store could not be asked; WeChat will retry."""

    status = 503


# --- configuration ----------------------------------------------------------------------


@dataclass(frozen=True)
class WechatConfig:
    """Token, AppID and EncodingAESKey as set in the 公众号 server configuration.

    ``aes_key`` unset means plaintext mode. ``account_id`` (the gh_ 原始ID), when
    set, must match every message's ToUserName.
    """

    token: str
    appid: str
    aes_key: Optional[str] = None
    account_id: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.token or not self.appid:
            raise ValueError("WeChat token and AppID are required")
        if self.aes_key is not None:
            decoded = b""
            if len(self.aes_key) == 43:
                try:
                    decoded = base64.b64decode(self.aes_key + "=", validate=True)
                except (binascii.Error, ValueError):
                    decoded = b""
            if len(decoded) != 32:
                raise ValueError("EncodingAESKey must be 43 base64 characters (32 bytes)")

    @property
    def encrypted(self) -> bool:
        return self.aes_key is not None

    @property
    def key(self) -> bytes:
        assert self.aes_key is not None
        return base64.b64decode(self.aes_key + "=")


def sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and concatenated (wechatpy's signer)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return signer.signature


def signature_matches(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


# --- nonce store ------------------------------------------------------------------------


class NonceStore(ABC):
    """Remembers the (timestamp, nonce) pairs already seen, so a captured request cannot be replayed."""

    @abstractmethod
    async def claim(self, key: str, ttl_seconds: int) -> bool:
        """True the first time ``key`` is seen within ``ttl_seconds``, False after."""


class MemoryNonceStore(NonceStore):
    """One process's nonces, forgotten after their TTL; at most ``max_entries`` kept."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._expiry: "OrderedDict[str, float]" = OrderedDict()

    async def claim(self, key: str, ttl_seconds: int) -> bool:
        now = self._clock()
        # Entries share one TTL, so insertion order is expiry order.
        while self._expiry and next(iter(self._expiry.values())) <= now:
            self._expiry.popitem(last=False)
        if key in self._expiry:
            return False
        if len(self._expiry) >= self._max_entries:
            self._expiry.popitem(last=False)
        self._expiry[key] = now + ttl_seconds
        return True


class RedisNonceStore(NonceStore):
    """Nonces shared by every gateway: ``SET key 1 NX EX ttl`` on a ``redis.asyncio`` client."""

    def __init__(self, redis: Any, prefix: str = "vetbot:wechat:nonce:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def claim(self, key: str, ttl_seconds: int) -> bool:
        return bool(await self._redis.set(self._prefix + key, "1", nx=True, ex=ttl_seconds))


# --- the parsed message -------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    """One message or event from a user, normalised.

    ``kind`` is text, voice, image, location, link, video, shortvideo, event or
    unsupported (a type this assistant does not handle; ``raw_type`` says which).
    ``event`` is lower case (subscribe, unsubscribe, click, view, location, …).
    ``encrypted``: it came encrypted, so the passive reply must be encrypted too.
    """

    kind: str
    openid: str
    to_user: str
    create_time: int
    raw_type: str
    msg_id: Optional[str] = None
    text: Optional[str] = None
    recognition: Optional[str] = None
    media_id: Optional[str] = None
    latitude: Optional[float] = None
    longitude: Optional[float] = None
    precision: Optional[float] = None
    label: Optional[str] = None
    event: Optional[str] = None
    event_key: Optional[str] = None
    url: Optional[str] = None
    title: Optional[str] = None
    encrypted: bool = False

    @property
    def is_event(self) -> bool:
        return self.kind == "event"


def dedup_key(inbound: Inbound) -> str:
    """The key WeChat's retries share: FromUserName + MsgId, or for events FromUserName + CreateTime + Event."""
    if inbound.msg_id and not inbound.is_event:
        return f"msg:{inbound.openid}:{inbound.msg_id}"
    return f"event:{inbound.openid}:{inbound.create_time}:{inbound.event or inbound.raw_type}"


# --- XML, refused before parsing when it is anything but plain elements ------------------


class _Refusal(Exception):
    """Raised inside expat callbacks; turned into a ProtocolError by the caller."""

    def __init__(self, error: ProtocolError) -> None:
        super().__init__(error.reason)
        self.error = error


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("body is not UTF-8") from None


def _guard(text: str) -> None:
    """Refuse DTDs, entity declarations, comments and processing instructions outright."""
    markup = _CDATA_SECTION.sub("", text)  # user text inside CDATA may say anything
    if _DTD.search(markup):
        raise XmlRefused("DOCTYPE or ENTITY declaration")
    if "<!" in markup:
        raise XmlRefused("markup declaration or comment")
    declaration = _XML_DECLARATION.match(markup)
    rest = markup[declaration.end():] if declaration else markup
    if "<?" in rest:
        raise XmlRefused("processing instruction")


def _top_level_fields(text: str) -> Dict[str, Optional[str]]:
    """The children of ``<xml>``: text for leaf elements, None for nested ones.

    Expat checks well-formedness; DTD callbacks refuse, depth is bounded, and a
    field that occurs twice is refused rather than silently picked.
    """
    fields: Dict[str, Optional[str]] = {}
    chunks: Dict[str, list] = {}
    stack: list = []

    def refuse(error: ProtocolError) -> None:
        raise _Refusal(error)

    def start(name: str, attributes: Any) -> None:
        stack.append(name)
        if len(stack) > MAX_XML_DEPTH:
            refuse(MalformedMessage("XML nested too deep"))
        if len(stack) == 1 and name != "xml":
            refuse(MalformedMessage("root element is not <xml>"))
        if len(stack) == 2:
            if name in fields:
                refuse(MalformedMessage("repeated XML element"))
            fields[name] = ""
            chunks[name] = []
        elif len(stack) == 3:
            fields[stack[1]] = None  # has children: not a plain value

    def end(name: str) -> None:
        if len(stack) == 2 and fields.get(name) is not None:
            fields[name] = "".join(chunks[name]).strip()
        stack.pop()

    def characters(data: str) -> None:
        if len(stack) == 2:
            chunks[stack[1]].append(data)

    parser = expat.ParserCreate("utf-8")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    parser.StartDoctypeDeclHandler = lambda *args: refuse(XmlRefused("DOCTYPE declaration"))
    parser.EntityDeclHandler = lambda *args: refuse(XmlRefused("ENTITY declaration"))
    parser.ExternalEntityRefHandler = lambda *args: refuse(XmlRefused("external entity"))
    parser.ProcessingInstructionHandler = lambda *args: refuse(XmlRefused("processing instruction"))
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(text.encode("utf-8"), True)
    except _Refusal as refusal:
        raise refusal.error from None
    except (expat.ExpatError, ValueError, RecursionError):
        raise MalformedMessage("malformed XML") from None
    return fields


def xml_fields(text: str) -> Dict[str, Optional[str]]:
    """The children of a WeChat XML document's ``<xml>`` root, after refusing anything but plain elements.

    Text for leaf elements, None for elements with children; raises ``XmlRefused``
    or ``MalformedMessage``.
    """
    _guard(text)
    return _top_level_fields(text)


# --- the message types: one reader per MsgType / Event ------------------------------------

Fields = Mapping[str, Optional[str]]
# A reader gets wechatpy's typed message and the raw top-level fields.
Reader = Callable[[Any, Fields], Dict[str, Any]]


def _string(value: Any, field: str, required: bool = True) -> Optional[str]:
    if value is None or value == "":
        if required:
            raise MissingField(f"{field} missing")
        return None
    if not isinstance(value, str):
        raise MalformedMessage(f"{field} is not a plain value")
    return value


def _number(value: Any, field: str, low: float, high: float, required: bool = True) -> Optional[float]:
    text = _string(value, field, required)
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        raise MalformedMessage(f"{field} is not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise MalformedMessage(f"{field} out of range")
    return number


def _read_text(message: Any, fields: Fields) -> Dict[str, Any]:
    # Spaces or line breaks only are still a message the user sent (and WeChat retries
    # a refused one, then shows the account as unavailable): its Content is present but
    # blank once trimmed. The gateway answers it; only a missing Content is refused.
    if fields.get("Content") == "":
        return {"text": ""}
    return {"text": _string(message.content, "Content")}


def _read_voice(message: Any, fields: Fields) -> Dict[str, Any]:
    # Recognition is present only when the account has speech recognition on.
    return {"media_id": _string(message.media_id, "MediaId"),
            "recognition": _string(message.recognition, "Recognition", required=False)}


def _read_image(message: Any, fields: Fields) -> Dict[str, Any]:
    return {"media_id": _string(message.media_id, "MediaId"),
            "url": _string(message.image, "PicUrl", required=False)}


def _read_location(message: Any, fields: Fields) -> Dict[str, Any]:
    return {"latitude": _number(message.location_x, "Location_X", -90, 90),
            "longitude": _number(message.location_y, "Location_Y", -180, 180),
            "label": _string(message.label, "Label", required=False)}


def _read_link(message: Any, fields: Fields) -> Dict[str, Any]:
    return {"url": _string(message.url, "Url"), "title": _string(message.title, "Title", required=False)}


def _read_video(message: Any, fields: Fields) -> Dict[str, Any]:
    return {"media_id": _string(message.media_id, "MediaId")}


def _read_subscribe(message: Any, fields: Fields) -> Dict[str, Any]:
    # wechatpy turns subscribe with EventKey qrscene_<id> into subscribe_scan (scene_id).
    key = getattr(message, "scene_id", None) if message.event == "subscribe_scan" else message.key
    return {"event": "subscribe", "event_key": _string(key, "EventKey", required=False)}


def _read_unsubscribe(message: Any, fields: Fields) -> Dict[str, Any]:
    return {}


def _read_click(message: Any, fields: Fields) -> Dict[str, Any]:
    return {"event_key": _string(message.key, "EventKey")}


def _read_view(message: Any, fields: Fields) -> Dict[str, Any]:
    url = _string(message.url, "EventKey")
    return {"event_key": url, "url": url}


def _read_location_event(message: Any, fields: Fields) -> Dict[str, Any]:
    # Raw fields: wechatpy's FloatField would turn a missing value into 0.0.
    return {"latitude": _number(fields.get("Latitude"), "Latitude", -90, 90),
            "longitude": _number(fields.get("Longitude"), "Longitude", -180, 180),
            "precision": _number(fields.get("Precision"), "Precision", 0, 1e7, required=False)}


_MESSAGE_READERS: Dict[str, Reader] = {
    "text": _read_text,
    "voice": _read_voice,
    "image": _read_image,
    "location": _read_location,
    "link": _read_link,
    "video": _read_video,
    "shortvideo": _read_video,
}
_EVENT_READERS: Dict[str, Reader] = {
    "subscribe": _read_subscribe,
    "subscribe_scan": _read_subscribe,
    "unsubscribe": _read_unsubscribe,
    "click": _read_click,
    "view": _read_view,
    "location": _read_location_event,
}


def parse_inbound(xml: str, encrypted: bool = False) -> Inbound:
    """A message's XML (already decrypted) as an ``Inbound``; only ``ProtocolError`` escapes."""
    try:
        return _parse_inbound(xml, encrypted)
    except ProtocolError:
        raise
    except Exception as error:  # wechatpy's field converters: anything odd is a bad message
        raise MalformedMessage(f"unreadable message ({type(error).__name__})") from None


def _parse_inbound(xml: str, encrypted: bool) -> Inbound:
    fields = xml_fields(xml)
    openid = _account_field(fields, "FromUserName")
    to_user = _account_field(fields, "ToUserName")
    create_time = _string(fields.get("CreateTime"), "CreateTime")
    if not _DIGITS.fullmatch(create_time):
        raise MalformedMessage("CreateTime is not a number")
    raw_type = _string(fields.get("MsgType"), "MsgType").lower()
    # wechatpy calls string methods on these two: they must be plain values before it reads them.
    event_name = _optional_plain(fields, "Event")
    _optional_plain(fields, "EventKey")
    message = wechatpy.parse_message(xml)
    common: Dict[str, Any] = {"openid": openid, "to_user": to_user, "create_time": int(create_time),
                              "raw_type": raw_type, "encrypted": encrypted}
    if raw_type == "event":
        if not event_name:
            raise MissingField("Event missing")
        event = event_name.lower()
        # wechatpy's name for it: subscribe_scan for a subscribe through a QR code with a scene.
        reader = _EVENT_READERS.get(getattr(message, "event", "") or event)
        values: Dict[str, Any] = {"event": event}
        if reader is not None:
            values.update(reader(message, fields))
        else:
            values["event_key"] = _optional_plain(fields, "EventKey")
        return Inbound(kind="event", **common, **values)
    reader = _MESSAGE_READERS.get(raw_type)
    if reader is None:
        return Inbound(kind="unsupported", msg_id=_optional_msg_id(fields), **common)
    msg_id = _string(fields.get("MsgId"), "MsgId")
    if not _DIGITS.fullmatch(msg_id):
        raise MalformedMessage("MsgId is not a number")
    return Inbound(kind=raw_type, msg_id=msg_id, **common, **reader(message, fields))


def _account_field(fields: Fields, name: str) -> str:
    value = _string(fields.get(name, ""), name)
    if not _ACCOUNT.fullmatch(value):
        raise MalformedMessage(f"{name} is not an account id")
    return value


def _optional_plain(fields: Fields, name: str) -> Optional[str]:
    if name in fields and fields[name] is None:
        raise MalformedMessage(f"{name} is not a plain value")
    return fields.get(name) or None


def _optional_msg_id(fields: Fields) -> Optional[str]:
    value = _optional_plain(fields, "MsgId")
    return value if value and _DIGITS.fullmatch(value) else None


# --- the webhook ---------------------------------------------------------------------------


def _query_value(query: Mapping[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise MissingField(f"query parameter {name} missing")
    if not isinstance(value, str) or not _QUERY_VALUE.fullmatch(value):
        raise MalformedMessage(f"query parameter {name} malformed")
    return value


def new_nonce() -> str:
    """A nonce in WeChat's style (decimal digits), from a secure source."""
    return str(secrets.randbelow(9 * 10**9) + 10**9)


class Webhook:
    """The checks and transformations for one official account's ``/wechat`` endpoint."""

    def __init__(self, config: WechatConfig, nonces: NonceStore,
                 clock: Callable[[], float] = time.time, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.config = config
        self._nonces = nonces
        self._clock = clock
        self._max_body = max_body_bytes

    # GET ------------------------------------------------------------------------------------

    def verify_url(self, query: Mapping[str, str]) -> str:
        """The text to answer WeChat's URL check with (its ``echostr``), or a ProtocolError.

        公众号 sends ``echostr`` in clear in every mode, signed by ``signature``.
        An encrypted ``echostr`` signed by ``msg_signature`` (企业微信's style) is
        decrypted too, so the same endpoint answers either.
        """
        try:
            return self._verify_url(query)
        except ProtocolError:
            raise
        except Exception as error:
            raise MalformedMessage(f"unreadable request ({type(error).__name__})") from None

    def _verify_url(self, query: Mapping[str, str]) -> str:
        timestamp, nonce = self._timestamp_and_nonce(query)
        echostr = query.get("echostr")
        if not echostr or not isinstance(echostr, str) or len(echostr) > 1024:
            raise MissingField("query parameter echostr missing")
        if query.get("signature") or not (query.get("msg_signature") and self.config.encrypted):
            expected = sign(self.config.token, timestamp, nonce)
            if not signature_matches(expected, _query_value(query, "signature")):
                raise BadSignature("signature mismatch")
            self._check_time(timestamp)
            return echostr
        expected = sign(self.config.token, timestamp, nonce, echostr)
        if not signature_matches(expected, _query_value(query, "msg_signature")):
            raise BadSignature("msg_signature mismatch")
        self._check_time(timestamp)
        return self._decrypt(echostr)

    # POST -----------------------------------------------------------------------------------

    async def receive(self, query: Mapping[str, str], body: bytes) -> Inbound:
        """The verified, decrypted and parsed message, or a ProtocolError (and nothing else)."""
        try:
            return await self._receive(query, body)
        except ProtocolError:
            raise
        except Exception as error:  # defence in depth: the fuzz tests hold this to zero
            raise MalformedMessage(f"unreadable request ({type(error).__name__})") from None

    async def _receive(self, query: Mapping[str, str], body: bytes) -> Inbound:
        if len(body) > self._max_body:
            raise BodyTooLarge("body too large")
        timestamp, nonce = self._timestamp_and_nonce(query)
        envelope_text = _decode(body)
        outer_to: Optional[str] = None
        if self.config.encrypted:
            inner, outer_to = self._verify_encrypted(query, timestamp, nonce, envelope_text)
        else:
            self._verify_plain(query, timestamp, nonce)
            inner = envelope_text
        self._check_time(timestamp)
        await self._claim_nonce(timestamp, nonce)
        inbound = parse_inbound(inner, encrypted=self.config.encrypted)
        if outer_to and inbound.to_user != outer_to:
            raise WrongAccount("ToUserName differs inside and outside the encryption")
        if self.config.account_id and inbound.to_user != self.config.account_id:
            raise WrongAccount("ToUserName is not this account")
        return inbound

    def _verify_plain(self, query: Mapping[str, str], timestamp: str, nonce: str) -> None:
        expected = sign(self.config.token, timestamp, nonce)
        if not signature_matches(expected, _query_value(query, "signature")):
            raise BadSignature("signature mismatch")

    def _verify_encrypted(self, query: Mapping[str, str], timestamp: str, nonce: str,
                          envelope_text: str) -> Tuple[str, Optional[str]]:
        """Check the envelope's ``msg_signature``; the decrypted message XML and the envelope's ToUserName."""
        if query.get("signature"):  # sent in safe mode too; when present it must match
            self._verify_plain(query, timestamp, nonce)
        msg_signature = _query_value(query, "msg_signature")
        envelope = xml_fields(envelope_text)
        encrypt = envelope.get("Encrypt")
        if not encrypt:
            raise MissingField("Encrypt missing (the account is in safe mode)")
        if not signature_matches(sign(self.config.token, timestamp, nonce, encrypt), msg_signature):
            raise BadSignature("msg_signature mismatch")
        return self._decrypt(encrypt), envelope.get("ToUserName")

    def _decrypt(self, encrypt: str) -> str:
        try:
            return PrpCrypto(self.config.key).decrypt(encrypt, self.config.appid)
        except InvalidAppIdException:
            raise WrongAccount("AppID in the encrypted message is not this account") from None
        except Exception:  # bad base64, length, padding or UTF-8: all one answer
            raise MalformedMessage("undecryptable Encrypt") from None

    def _timestamp_and_nonce(self, query: Mapping[str, str]) -> Tuple[str, str]:
        timestamp = _query_value(query, "timestamp")
        if not _TIMESTAMP.fullmatch(timestamp):
            raise MalformedMessage("timestamp is not a number")
        return timestamp, _query_value(query, "nonce")

    def _check_time(self, timestamp: str) -> None:
        if abs(self._clock() - int(timestamp)) > TIMESTAMP_WINDOW_SECONDS:
            raise StaleTimestamp("timestamp outside the accepted window")

    async def _claim_nonce(self, timestamp: str, nonce: str) -> None:
        try:
            fresh = await self._nonces.claim(f"{timestamp}:{nonce}", NONCE_TTL_SECONDS)
        except Exception as error:
            raise BackendUnavailable(f"nonce store unavailable ({type(error).__name__})") from None
        if not fresh:
            raise ReplayedNonce("nonce already used")

    # reply ----------------------------------------------------------------------------------

    def passive_reply(self, inbound: Inbound, texts: Sequence[str], nonce: Optional[str] = None) -> str:
        """The XML answer carrying ``texts`` as one text message, or ``success`` when there are none.

        WeChat shows one passive message per request; render.py packs the bot's
        messages into chunks that fit, and the caller sends the rest through
        the customer-service API. Encrypted when ``inbound`` came encrypted.
        """
        content = xml_text("\n\n".join(text for text in texts if text))
        if not content.strip():
            return SUCCESS
        if len(content.encode("utf-8")) > MAX_TEXT_BYTES:
            raise ValueError(f"reply text over {MAX_TEXT_BYTES} bytes: split it with bot.wechat.render")
        now = str(int(self._clock()))
        reply = TextReply(source=inbound.to_user, target=inbound.openid, time=int(now),
                          content=cdata_safe(content))
        xml = reply.render()
        if not inbound.encrypted:
            return xml
        return self.encrypt(xml, nonce or new_nonce(), now)

    def encrypt(self, xml: str, nonce: str, timestamp: str) -> str:
        """``xml`` in WeChat's encrypted reply envelope (Encrypt, MsgSignature, TimeStamp, Nonce)."""
        if not self.config.encrypted:
            raise ValueError("no EncodingAESKey configured")
        return WeChatCrypto(self.config.token, self.config.aes_key, self.config.appid).encrypt_message(
            xml, nonce, timestamp)


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (NUL, most C0 controls, surrogates)."""
    return _XML_INVALID.sub("", text)


def cdata_safe(text: str) -> str:
    """``text`` for a CDATA section: a ``]]>`` inside is split across two sections, losing nothing."""
    return text.replace("]]>", "]]]]><![CDATA[>")
