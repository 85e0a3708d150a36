"""The access_token every WeChat API call needs: fetched once, shared, renewed early.

WeChat issues a token for 7200 seconds and a new fetch retires the previous
one (after a short grace), so all gateways must share one token instead of
each fetching their own. ``AccessTokenStore.get()`` returns the shared token,
fetching a new one ``refresh_margin`` seconds before expiry; one fetch runs at
a time (an in-process lock, plus the backend's lock across processes).
``invalidate(token)`` drops a token WeChat refused (40001, 40014, 42001).

Where the token lives is a ``TokenBackend``: in memory (one process) or in
Redis (every gateway); a database backend can implement the same four methods.
The token is a credential: it never goes into a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Optional

import aiohttp

log = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 300
# errcodes that mean "this access_token is no good": drop it and fetch another.
INVALID_TOKEN_ERRCODES = frozenset({40001, 40014, 42001})


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # seconds since the epoch

    def usable(self, now: float, margin: float = 0.0) -> bool:
        return now < self.expires_at - margin

    def __repr__(self) -> str:  # keep the credential out of reprs and tracebacks
        return f"AccessToken(expires_at={self.expires_at:.0f})"


class TokenError(Exception):
    """No token could be had: WeChat's errcode and errmsg, or errcode None when WeChat was not reached."""

    def __init__(self, errcode: Optional[int], errmsg: str) -> None:
        super().__init__(f"{errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class TokenBackend(ABC):
    """Where the current token is kept."""

    @abstractmethod
    async def load(self) -> Optional[AccessToken]:
        """The stored token, if any (expired or not)."""

    @abstractmethod
    async def save(self, token: AccessToken) -> None:
        """Store ``token`` as the current one."""

    @abstractmethod
    async def discard(self, value: str) -> None:
        """Forget the stored token if it is ``value`` (a newer one stays)."""

    @abstractmethod
    def refresh_lock(self) -> "contextlib.AbstractAsyncContextManager[None]":
        """Held while fetching, so that processes sharing this backend fetch one at a time."""


class MemoryTokenBackend(TokenBackend):
    """One process's token; ``AccessTokenStore``'s own lock is enough here."""

    def __init__(self) -> None:
        self._token: Optional[AccessToken] = None

    async def load(self) -> Optional[AccessToken]:
        return self._token

    async def save(self, token: AccessToken) -> None:
        self._token = token

    async def discard(self, value: str) -> None:
        if self._token is not None and self._token.value == value:
            self._token = None

    def refresh_lock(self) -> "contextlib.AbstractAsyncContextManager[None]":
        return contextlib.nullcontext()


class RedisTokenBackend(TokenBackend):
    """The token of one AppID in Redis (``redis.asyncio`` client), with a Redis lock for refreshes."""

    # Delete the key only if it still holds the token being discarded.
    _DISCARD = ("local v = redis.call('GET', KEYS[1]) "
                "if v and cjson.decode(v)['value'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
                "return 0")

    def __init__(self, redis: Any, appid: str, prefix: str = "vetbot:wechat:token:",
                 lock_timeout: float = 30.0, lock_wait: float = 20.0) -> None:
        self._redis = redis
        self._key = f"{prefix}{appid}"
        self._lock_key = f"{prefix}{appid}:refresh"
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait

    async def load(self) -> Optional[AccessToken]:
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        data = json.loads(raw)
        return AccessToken(value=str(data["value"]), expires_at=float(data["expires_at"]))

    async def save(self, token: AccessToken) -> None:
        ttl = int(token.expires_at - time.time())
        if not 0 < ttl <= 86400:  # a clock far from the wall clock (tests): keep it a day
            ttl = 86400
        await self._redis.set(self._key, json.dumps({"value": token.value, "expires_at": token.expires_at}),
                              ex=ttl)

    async def discard(self, value: str) -> None:
        await self._redis.eval(self._DISCARD, 1, self._key, value)

    @contextlib.asynccontextmanager
    async def refresh_lock(self) -> AsyncIterator[None]:
        from redis.exceptions import LockError

        lock = self._redis.lock(self._lock_key, timeout=self._lock_timeout, blocking_timeout=self._lock_wait)
        if not await lock.acquire():
            raise TokenError(None, "another process holds the token refresh lock")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # it may have expired during a slow fetch
                await lock.release()


class AccessTokenStore:
    """``await store.get()`` is a usable access_token; see the module docstring."""

    def __init__(self, session: aiohttp.ClientSession, api_base: str, appid: str, secret: str,
                 backend: Optional[TokenBackend] = None, clock: Callable[[], float] = time.time,
                 refresh_margin: float = REFRESH_MARGIN_SECONDS, timeout: float = 10.0) -> None:
        self._session = session
        self._url = f"{api_base.rstrip('/')}/cgi-bin/token"
        self._appid = appid
        self._secret = secret
        self._backend = backend if backend is not None else MemoryTokenBackend()
        self._clock = clock
        self._margin = refresh_margin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A token valid for at least ``refresh_margin`` more seconds, or a still-valid one if renewal failed."""
        token = await self._backend.load()
        if token is not None and token.usable(self._clock(), self._margin):
            return token.value
        async with self._lock:
            try:
                async with self._backend.refresh_lock():
                    # Whoever held the lock before may have fetched one already.
                    token = await self._backend.load()
                    if token is not None and token.usable(self._clock(), self._margin):
                        return token.value
                    fresh = await self._fetch()
                    await self._backend.save(fresh)
                    return fresh.value
            except TokenError as error:
                if token is not None and token.usable(self._clock()):
                    log.warning("access_token renewal failed (%s); using the current one", error.errcode)
                    return token.value
                raise

    async def invalidate(self, value: str) -> None:
        """Drop ``value`` (WeChat said it is invalid or expired); the next ``get`` fetches anew."""
        await self._backend.discard(value)

    async def _fetch(self) -> AccessToken:
        params = {"grant_type": "client_credential", "appid": self._appid, "secret": self._secret}
        started = self._clock()
        try:
            async with self._session.get(self._url, params=params, timeout=self._timeout) as response:
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise TokenError(None, f"token request failed ({type(error).__name__})") from None
        if not isinstance(data, dict):
            raise TokenError(None, "token response is not a JSON object")
        value, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(value, str) or not value or not isinstance(expires_in, int):
            errcode = data.get("errcode")
            raise TokenError(errcode if isinstance(errcode, int) else None, str(data.get("errmsg", "no token")))
        log.info("access_token fetched (expires in %ds)", expires_in)
        return AccessToken(value=value, expires_at=started + expires_in)
