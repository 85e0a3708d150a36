"""A local WeChat user: posts what WeChat would post and reads what comes back.

``WechatUser`` builds the XML of a text, voice (with Recognition), image,
location, link or video message, or of a subscribe, unsubscribe, CLICK, VIEW
or LOCATION event; signs it (``signature``, and ``msg_signature`` over the
ciphertext) and encrypts it in compatible or safe mode exactly as WeChat
does; posts it to the webhook; and decrypts and reads the passive reply.
Replies sent later through the customer-service API are read back from the
mock WeChat API (``/mock/messages``).

``parse_command`` turns a chat line into a message: ``/location 31.37 121.25``,
``/voice 文本``, ``/click MENU_KEY``, ``/view URL``, ``/image``, ``/subscribe``,
``/unsubscribe`` (and ``/link URL``, ``/video``, ``/report-location LAT LON``);
anything else is a text message.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import aiohttp
from wechatpy.crypto import PrpCrypto

from bot.wechat.protocol import (
    SUCCESS,
    WINDOW_EVENTS,
    ProtocolError,
    WechatConfig,
    cdata_safe,
    new_nonce,
    sign,
    signature_matches,
    xml_fields,
    xml_text,
)

MODES = ("plaintext", "compatible", "safe")
DEFAULT_ACCOUNT_ID = "gh_vetbot000000"  # the demo account's 原始ID (ToUserName)


class SimulatorError(Exception):
    """The reply is not what WeChat would accept (bad signature, wrong addressee, not XML)."""


class CommandError(ValueError):
    """A chat command with missing or malformed arguments; the message says how to use it."""


# --- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """A message or event as WeChat would post it: its MsgType and its own fields, in order.

    Numbers are written without CDATA, as WeChat does. Messages carry a MsgId,
    events do not.
    """

    msg_type: str
    fields: Tuple[Tuple[str, str], ...] = ()
    numbers: Tuple[str, ...] = ()

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"


def text(content: str) -> Outgoing:
    return Outgoing("text", (("Content", content),))


def voice(recognition: Optional[str], media_id: Optional[str] = None) -> Outgoing:
    fields: Tuple[Tuple[str, str], ...] = (("MediaId", media_id or _media_id()), ("Format", "amr"))
    if recognition is not None:
        fields += (("Recognition", recognition),)
    return Outgoing("voice", fields)


def image(media_id: Optional[str] = None) -> Outgoing:
    media_id = media_id or _media_id()
    return Outgoing("image", (("PicUrl", f"http://mmbiz.qpic.cn/sim/{media_id}/0"), ("MediaId", media_id)))


def location(latitude: float, longitude: float, label: str = "", scale: int = 15) -> Outgoing:
    return Outgoing("location", (("Location_X", _coordinate(latitude)), ("Location_Y", _coordinate(longitude)),
                                 ("Scale", str(scale)), ("Label", label)),
                    numbers=("Location_X", "Location_Y", "Scale"))


def link(url: str, title: str = "", description: str = "") -> Outgoing:
    return Outgoing("link", (("Title", title), ("Description", description), ("Url", url)))


def video(short: bool = False) -> Outgoing:
    return Outgoing("shortvideo" if short else "video", (("MediaId", _media_id()), ("ThumbMediaId", _media_id())))


def subscribe(scene: Optional[str] = None) -> Outgoing:
    fields: Tuple[Tuple[str, str], ...] = (("Event", "subscribe"),)
    if scene:
        fields += (("EventKey", f"qrscene_{scene}"), ("Ticket", _media_id()))
    return Outgoing("event", fields)


def unsubscribe() -> Outgoing:
    return Outgoing("event", (("Event", "unsubscribe"),))


def click(key: str) -> Outgoing:
    return Outgoing("event", (("Event", "CLICK"), ("EventKey", key)))


def view(url: str) -> Outgoing:
    return Outgoing("event", (("Event", "VIEW"), ("EventKey", url)))


def location_event(latitude: float, longitude: float, precision: float = 65.0) -> Outgoing:
    return Outgoing("event", (("Event", "LOCATION"), ("Latitude", _coordinate(latitude)),
                              ("Longitude", _coordinate(longitude)), ("Precision", f"{precision:.6f}")),
                    numbers=("Latitude", "Longitude", "Precision"))


def _media_id() -> str:
    return secrets.token_urlsafe(48)


def _coordinate(value: float) -> str:
    return f"{value:.6f}"


# --- chat commands ------------------------------------------------------------------------------

USAGE = {
    "/location": "用法：/location 纬度 经度 [地点名称]，例如 /location 31.37 121.25 区退役军人服务中心",
    "/report-location": "用法：/report-location 纬度 经度，例如 /report-location 31.37 121.25",
    "/voice": "用法：/voice 语音识别出的文字，例如 /voice 我想预约退役报到",
    "/click": "用法：/click 菜单KEY，例如 /click MENU_POLICY",
    "/view": "用法：/view 网址，例如 /view https://example.gov.cn/",
    "/link": "用法：/link 网址 [标题]",
}


def _coordinates(command: str, rest: str) -> Tuple[float, float, str]:
    args = rest.split()
    try:
        latitude, longitude = float(args[0]), float(args[1])
    except (IndexError, ValueError):
        raise CommandError(USAGE[command]) from None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise CommandError(f"纬度应在 -90 到 90 之间，经度应在 -180 到 180 之间。{USAGE[command]}")
    return latitude, longitude, " ".join(args[2:])


def _argument(command: str, rest: str) -> str:
    if not rest.strip():
        raise CommandError(USAGE[command])
    return rest.strip()


def _location_command(rest: str) -> Outgoing:
    latitude, longitude, label = _coordinates("/location", rest)
    return location(latitude, longitude, label)


def _report_location_command(rest: str) -> Outgoing:
    latitude, longitude, _ = _coordinates("/report-location", rest)
    return location_event(latitude, longitude)


def _link_command(rest: str) -> Outgoing:
    url, _, title = _argument("/link", rest).partition(" ")
    return link(url, title.strip())


# Command → builder from the rest of the line.
COMMANDS: Dict[str, Callable[[str], Outgoing]] = {
    "/location": _location_command,
    "/report-location": _report_location_command,
    "/voice": lambda rest: voice(_argument("/voice", rest)),
    "/click": lambda rest: click(_argument("/click", rest)),
    "/view": lambda rest: view(_argument("/view", rest)),
    "/link": _link_command,
    "/image": lambda rest: image(),
    "/video": lambda rest: video(),
    "/subscribe": lambda rest: subscribe(rest.strip() or None),
    "/unsubscribe": lambda rest: unsubscribe(),
}


def parse_command(line: str) -> Outgoing:
    """The message a chat line stands for; raises ``CommandError`` (in Chinese) for a malformed command."""
    command, _, rest = line.strip().partition(" ")
    build = COMMANDS.get(command)
    return build(rest) if build is not None else text(line)


# --- the user ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """One POST as WeChat would make it; ``xml`` is the message before encryption."""

    query: Dict[str, str]
    body: bytes
    xml: str


@dataclass(frozen=True)
class Answer:
    """The webhook's answer: HTTP status, the passive reply's texts (none for ``success``) and the raw body."""

    status: int
    texts: List[str]
    body: str


def _element(name: str, value: str, number: bool = False) -> str:
    if number:
        return f"<{name}>{value}</{name}>"
    return f"<{name}><![CDATA[{cdata_safe(xml_text(value))}]]></{name}>"


@dataclass
class WechatUser:
    """One WeChat user talking to the account behind ``webhook_url``.

    ``mode`` defaults to safe when ``aes_key`` is set, else plaintext. Use as
    ``async with WechatUser(...) as user:`` unless an aiohttp ``session`` is given.
    """

    webhook_url: str
    token: str
    appid: str
    aes_key: Optional[str] = None
    openid: str = field(default_factory=lambda: "o" + secrets.token_urlsafe(21)[:27])
    account_id: str = DEFAULT_ACCOUNT_ID
    mode: Optional[str] = None
    api_base: Optional[str] = None  # the mock WeChat API, for replies sent later
    session: Optional[aiohttp.ClientSession] = None
    clock: Callable[[], float] = time.time
    last_seen: int = 0  # the mock's sequence number of the last later message read

    def __post_init__(self) -> None:
        if self.mode is None:
            self.mode = "safe" if self.aes_key else "plaintext"
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if self.mode != "plaintext" and not self.aes_key:
            raise ValueError(f"{self.mode} mode needs an aes_key")
        self._key = WechatConfig(self.token, self.appid, self.aes_key).key if self.aes_key else b""
        self._own_session = False

    async def __aenter__(self) -> "WechatUser":
        if self.session is None:
            self.session = aiohttp.ClientSession()
            self._own_session = True
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self.session is not None:
            await self.session.close()
            self.session = None
            self._own_session = False

    # building ---------------------------------------------------------------------------------

    def message_xml(self, message: Outgoing, msg_id: Optional[str] = None,
                    create_time: Optional[int] = None) -> str:
        """The plaintext XML WeChat would send for ``message`` from this user."""
        parts = [_element("ToUserName", self.account_id), _element("FromUserName", self.openid),
                 _element("CreateTime", str(create_time or int(self.clock())), number=True),
                 _element("MsgType", message.msg_type)]
        parts += [_element(name, value, number=name in message.numbers) for name, value in message.fields]
        if not message.is_event:
            parts.append(_element("MsgId", msg_id or str(secrets.randbits(63)), number=True))
        return "<xml>" + "".join(parts) + "</xml>"

    def sign_xml(self, xml: str, timestamp: Optional[str] = None, nonce: Optional[str] = None) -> SignedRequest:
        """``xml`` as WeChat posts it in this user's mode: query string and body."""
        timestamp = timestamp or str(int(self.clock()))
        nonce = nonce or new_nonce()
        query = {"signature": sign(self.token, timestamp, nonce), "timestamp": timestamp, "nonce": nonce,
                 "openid": self.openid}
        if self.mode == "plaintext":
            return SignedRequest(query, xml.encode("utf-8"), xml)
        encrypt = PrpCrypto(self._key).encrypt(xml, self.appid)
        encrypt = encrypt.decode("ascii")
        query.update(encrypt_type="aes", msg_signature=sign(self.token, timestamp, nonce, encrypt))
        if self.mode == "safe":
            body = "<xml>" + _element("ToUserName", self.account_id) + _element("Encrypt", encrypt) + "</xml>"
        else:  # compatible: the plaintext fields and the ciphertext together
            body = xml[:-len("</xml>")] + _element("Encrypt", encrypt) + "</xml>"
        return SignedRequest(query, body.encode("utf-8"), xml)

    def build(self, message: Outgoing) -> SignedRequest:
        return self.sign_xml(self.message_xml(message))

    def retry_of(self, request: SignedRequest) -> SignedRequest:
        """WeChat's retry of ``request``: the same message, signed again with a new nonce."""
        return self.sign_xml(request.xml)

    # talking -------------------------------------------------------------------------------------

    async def post(self, request: SignedRequest) -> Answer:
        assert self.session is not None, "use `async with WechatUser(...)` or pass a session"
        async with self.session.post(self.webhook_url, params=request.query, data=request.body,
                                     headers={"Content-Type": "text/xml; charset=utf-8"}) as response:
            body = await response.text()
            status = response.status
        return Answer(status, self.read_reply(body) if status == 200 else [], body)

    async def send(self, message: Outgoing) -> Answer:
        await self._report_to_mock(message)
        return await self.post(self.build(message))

    async def _report_to_mock(self, message: Outgoing) -> None:
        """The user's message passes through WeChat's servers, which thereby open the
        48-hour window for customer-service messages: the mock WeChat API, when there
        is one, is told (bot.wechat.mockapi ``/mock/inbound``)."""
        if not self.api_base or self.session is None:
            return
        event = dict(message.fields).get("Event", "") if message.is_event else ""
        if message.is_event and event.lower() not in WINDOW_EVENTS:
            return
        try:
            async with self.session.post(f"{self.api_base.rstrip('/')}/mock/inbound",
                                         json={"openid": self.openid}) as response:
                await response.read()
        except aiohttp.ClientError:
            pass  # no mock listening: nothing to tell

    async def say(self, line: str) -> Answer:
        """Send a chat line (a command or text); see ``parse_command``."""
        return await self.send(parse_command(line))

    def read_reply(self, body: str) -> List[str]:
        """The text of a passive reply, decrypted and checked as WeChat would; [] for ``success``."""
        if body.strip() in ("", SUCCESS):
            return []
        try:
            fields = xml_fields(body)
            if fields.get("Encrypt"):
                fields = xml_fields(self._decrypt_reply(fields))
        except ProtocolError as error:
            raise SimulatorError(f"unreadable reply: {error.reason}") from None
        if fields.get("ToUserName") != self.openid or fields.get("FromUserName") != self.account_id:
            raise SimulatorError("reply addressed to someone else")
        if fields.get("MsgType") != "text":
            raise SimulatorError(f"reply of type {fields.get('MsgType')!r}, expected text")
        return [fields.get("Content") or ""]

    def _decrypt_reply(self, envelope: Dict[str, Optional[str]]) -> str:
        if not self.aes_key:
            raise SimulatorError("encrypted reply in plaintext mode")
        encrypt = envelope.get("Encrypt") or ""
        expected = sign(self.token, envelope.get("TimeStamp") or "", envelope.get("Nonce") or "", encrypt)
        if not signature_matches(expected, envelope.get("MsgSignature") or ""):
            raise SimulatorError("reply MsgSignature mismatch")
        try:
            return PrpCrypto(self._key).decrypt(encrypt, self.appid)
        except Exception as error:
            raise SimulatorError(f"undecryptable reply ({type(error).__name__})") from None

    # replies sent later (customer-service API, through the mock) ----------------------------------

    async def later_messages(self) -> List[Dict[str, Any]]:
        """Messages the mock WeChat API recorded for this user since the last call."""
        assert self.session is not None and self.api_base, "needs a session and the mock API's api_base"
        url = f"{self.api_base.rstrip('/')}/mock/messages"
        async with self.session.get(url, params={"touser": self.openid, "after": str(self.last_seen)}) as response:
            response.raise_for_status()
            found = (await response.json())["messages"]
        if found:
            self.last_seen = max(message["seq"] for message in found)
        return found

    async def later_texts(self, timeout: float = 10.0, quiet: float = 1.0, poll: float = 0.2) -> List[str]:
        """Texts that arrive later, waiting until ``quiet`` seconds pass without one (at most ``timeout``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        texts: List[str] = []
        last_arrival: Optional[float] = None
        while loop.time() < deadline:
            for message in await self.later_messages():
                texts.append(describe(message))
                last_arrival = loop.time()
            if last_arrival is not None and loop.time() - last_arrival >= quiet:
                break
            await asyncio.sleep(poll)
        return texts


def describe(message: Dict[str, Any]) -> str:
    """A message recorded by the mock API as the user would read it."""
    if message.get("kind") == "template":
        lines = ["【模板消息】"]
        for key, value in (message.get("data") or {}).items():
            lines.append(f"{key}：{value.get('value', '') if isinstance(value, dict) else value}")
        if message.get("url"):
            lines.append(f"详情：{message['url']}")
        return "\n".join(lines)
    return str(message.get("text", ""))
