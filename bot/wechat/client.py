"""Messages the account sends on its own: customer-service (客服消息) and template (模板消息).

Every call returns a ``SendResult``; WeChat's refusals are results, not
exceptions, because the caller must act on them: 45015 means the user's
48-hour window is closed (a template message or the next conversation has to
carry it), 45047 that the account may send this user no more customer-service
messages until the user writes again. A refused token (40001, 40014, 42001)
is dropped and the call is made once more with a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

import aiohttp

from bot.wechat.token import INVALID_TOKEN_ERRCODES, AccessTokenStore, TokenError

log = logging.getLogger(__name__)

OUTSIDE_WINDOW = 45015  # 回复时间超过限制: the user has not written in the last 48 hours
OVER_SEND_LIMIT = 45047  # 客服接口下行条数超过上限
SYSTEM_BUSY = -1  # WeChat's own "系统繁忙，请稍候再试"


@dataclass(frozen=True)
class SendResult:
    """``ok``, or WeChat's ``errcode``/``errmsg``; ``errcode`` None means WeChat was not reached."""

    ok: bool
    errcode: Optional[int]
    errmsg: str
    msgid: Optional[int] = None

    @property
    def window_closed(self) -> bool:
        return self.errcode == OUTSIDE_WINDOW

    @property
    def retryable(self) -> bool:
        """Worth trying again later, as it is (network trouble or WeChat busy)."""
        return not self.ok and self.errcode in (None, SYSTEM_BUSY)


TemplateData = Mapping[str, Union[str, Mapping[str, str]]]


class WechatClient:
    """Sends messages through ``{api_base}/cgi-bin/message/...`` with tokens from ``tokens``."""

    def __init__(self, session: aiohttp.ClientSession, api_base: str, tokens: AccessTokenStore,
                 timeout: float = 10.0) -> None:
        self._session = session
        self._base = api_base.rstrip("/")
        self._tokens = tokens
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def send_text(self, openid: str, text: str) -> SendResult:
        """A customer-service text message (at most 2048 bytes; see bot.wechat.render)."""
        return await self._post("/cgi-bin/message/custom/send",
                                {"touser": openid, "msgtype": "text", "text": {"content": text}})

    async def send_template(self, openid: str, template_id: str, data: TemplateData,
                            url: Optional[str] = None) -> SendResult:
        """A template message; ``data`` maps each template key to its value (or to {"value", "color"})."""
        payload: Dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: (dict(value) if isinstance(value, Mapping) else {"value": value})
                     for key, value in data.items()},
        }
        if url:
            payload["url"] = url
        return await self._post("/cgi-bin/message/template/send", payload)

    async def _post(self, path: str, payload: Mapping[str, Any]) -> SendResult:
        # Raw UTF-8, not \u escapes: WeChat shows escaped Chinese literally.
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        result = SendResult(False, None, "not sent")
        for _attempt in range(2):
            try:
                token = await self._tokens.get()
            except TokenError as error:
                return SendResult(False, error.errcode, error.errmsg)
            result = await self._call(path, token, body)
            if result.errcode not in INVALID_TOKEN_ERRCODES:
                break
            log.info("access_token refused (%d); fetching a new one", result.errcode)
            await self._tokens.invalidate(token)
        if not result.ok:
            log.warning("WeChat %s refused: %s", path, result.errcode)
        return result

    async def _call(self, path: str, token: str, body: bytes) -> SendResult:
        try:
            async with self._session.post(f"{self._base}{path}", params={"access_token": token}, data=body,
                                          headers={"Content-Type": "application/json; charset=utf-8"},
                                          timeout=self._timeout) as response:
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            return SendResult(False, None, f"request failed ({type(error).__name__})")
        if not isinstance(data, dict):
            return SendResult(False, None, "response is not a JSON object")
        errcode = data.get("errcode", 0)
        if not isinstance(errcode, int):
            return SendResult(False, None, "response without a numeric errcode")
        msgid = data.get("msgid")
        return SendResult(ok=errcode == 0, errcode=errcode, errmsg=str(data.get("errmsg", "")),
                          msgid=msgid if isinstance(msgid, int) else None)
