"""The shared access_token in the veteran database, for gateways without Redis.

``DatabaseTokenBackend`` keeps one row per AppID in ``wechat_tokens``; every
gateway on the same database then uses one token, and renewals are single-flight
across processes: the renewing process claims ``refreshing_until`` with one
guarded UPDATE (``WHERE refreshing_until IS NULL OR refreshing_until < now``),
which the database applies to one claimant only; the others poll until the
claim is released (and then find the fresh token) or ``lock_wait`` runs out. A
claim that is never released (a process killed mid-fetch) lapses after
``lock_timeout`` seconds.

The token is a credential. Given a vault (``bot.pii.PiiVault``) it is stored
AES-GCM encrypted, so a database dump does not hand out API access; without
one it is stored as it is (``token_plain``). A token this process cannot
decrypt (no vault, or another key) counts as absent: a new one is fetched and
stored in its place. The token never goes into a log line.

The SQL is synchronous (SQLAlchemy sessions); each call runs in a worker thread
(``asyncio.to_thread``) so the event loop keeps serving. Database trouble
becomes a ``TokenError`` without errcode, which the client treats as
"WeChat not reached, try later".
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
import time
from typing import AsyncIterator, Callable, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import WechatToken
from bot.db.session import as_utc, dialect_insert, execute_write, session_scope
from bot.pii import ACCESS_TOKEN, PiiVault
from bot.wechat.token import AccessToken, TokenBackend, TokenError

log = logging.getLogger(__name__)

_NO_SYNC = {"synchronize_session": False}


def _at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


class DatabaseTokenBackend(TokenBackend):
    """The token of ``appid`` in ``wechat_tokens``, encrypted with ``vault`` when one is given."""

    def __init__(self, session_factory: sessionmaker, appid: str, vault: Optional[PiiVault] = None,
                 lock_timeout: float = 30.0, lock_wait: float = 20.0, poll_interval: float = 0.1,
                 clock: Callable[[], float] = time.time) -> None:
        self._factory = session_factory
        self._appid = appid
        self._vault = vault
        self._lock_timeout = lock_timeout
        self._lock_wait = lock_wait
        self._poll = poll_interval
        self._clock = clock

    # --- TokenBackend ----------------------------------------------------------------------

    async def load(self) -> Optional[AccessToken]:
        row = await self._run(self._read)
        if row is None:
            return None
        cipher, plain, expires_at = row
        if plain is not None:
            value = plain
        elif cipher is not None:
            value = self._decrypt(cipher)
            if value is None:
                return None
        else:
            return None
        if expires_at is None:
            return None
        return AccessToken(value=value, expires_at=as_utc(expires_at).timestamp())

    async def save(self, token: AccessToken) -> None:
        await self._run(self._write, token)

    async def discard(self, value: str) -> None:
        # A failed discard costs one more refused call later, not the message: keep going.
        try:
            await self._run(self._drop, value)
        except TokenError:
            log.warning("stored access_token not discarded: token database unavailable")

    @contextlib.asynccontextmanager
    async def refresh_lock(self) -> AsyncIterator[None]:
        holder = secrets.token_hex(16)
        deadline = time.monotonic() + self._lock_wait
        while not await self._run(self._claim, holder):
            if time.monotonic() >= deadline:
                raise TokenError(None, "another process holds the token refresh lock")
            await asyncio.sleep(self._poll)
        try:
            yield
        finally:
            try:
                await self._run(self._release, holder)
            except TokenError:  # the claim lapses by itself after lock_timeout
                log.warning("token refresh lock not released: token database unavailable")

    # --- the SQL, run in a worker thread ---------------------------------------------------

    async def _run(self, work: Callable[..., object], *args: object):
        def unit():
            with session_scope(self._factory) as session:
                return work(session, *args)

        try:
            return await asyncio.to_thread(unit)
        except SQLAlchemyError as error:
            raise TokenError(None, f"token database unavailable ({type(error).__name__})") from None

    def _read(self, session: Session):
        return session.execute(
            select(WechatToken.token_cipher, WechatToken.token_plain, WechatToken.expires_at)
            .where(WechatToken.appid == self._appid)
        ).first()

    def _ensure_row(self, session: Session, now: dt.datetime) -> None:
        statement = dialect_insert(session, WechatToken).values(appid=self._appid, updated_at=now)
        execute_write(session, statement.on_conflict_do_nothing(index_elements=["appid"]))

    def _write(self, session: Session, token: AccessToken) -> None:
        now = _at(self._clock())
        if self._vault is not None:
            stored = {"token_cipher": self._vault.encrypt(token.value, ACCESS_TOKEN, self._appid),
                      "token_plain": None}
        else:
            stored = {"token_cipher": None, "token_plain": token.value}
        values = dict(stored, expires_at=_at(token.expires_at), updated_at=now)
        statement = dialect_insert(session, WechatToken).values(appid=self._appid, **values)
        # The refresh lock columns are left as they are: the holder releases its own claim.
        execute_write(session, statement.on_conflict_do_update(index_elements=["appid"], set_=values))

    def _drop(self, session: Session, value: str) -> None:
        row = self._read(session)
        if row is None:
            return
        cipher, plain, _expires_at = row
        if plain is not None:
            matches, condition = plain == value, WechatToken.token_plain == plain
        elif cipher is not None:
            matches, condition = self._decrypt(cipher) == value, WechatToken.token_cipher == cipher
        else:
            return
        if not matches:  # a newer token is stored: keep it
            return
        # Guarded by the very token read above, so that a token saved meanwhile survives.
        execute_write(session, update(WechatToken).where(WechatToken.appid == self._appid, condition)
                      .values(token_cipher=None, token_plain=None, expires_at=None,
                              updated_at=_at(self._clock())), **_NO_SYNC)

    def _claim(self, session: Session, holder: str) -> bool:
        now = _at(self._clock())
        self._ensure_row(session, now)
        result = execute_write(
            session,
            update(WechatToken)
            .where(WechatToken.appid == self._appid,
                   or_(WechatToken.refreshing_until.is_(None), WechatToken.refreshing_until < now))
            .values(refreshing_until=now + dt.timedelta(seconds=self._lock_timeout), refresh_holder=holder),
            **_NO_SYNC,
        )
        return result.rowcount == 1

    def _release(self, session: Session, holder: str) -> None:
        execute_write(session, update(WechatToken)
                      .where(WechatToken.appid == self._appid, WechatToken.refresh_holder == holder)
                      .values(refreshing_until=None, refresh_holder=None), **_NO_SYNC)

    def _decrypt(self, cipher: str) -> Optional[str]:
        if self._vault is None:
            log.warning("the stored access_token is encrypted and this process has no key; fetching a new one")
            return None
        try:
            return self._vault.decrypt(cipher, ACCESS_TOKEN, self._appid)
        except Exception:  # another key, another row's token or a damaged value: as if absent
            log.warning("the stored access_token cannot be decrypted with this key; fetching a new one")
            return None
