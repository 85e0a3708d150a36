"""What the code that reaches the veteran database from a server process shares:
settings, the PII vault and a session factory, made on first use (never at import
time). The actions use them in the action server, the chat channel in Rasa's process.

Each action call opens its own session (``with open_session() as session``)
and closes it before returning; nothing holds a session across calls.
Tests point the actions at their own database with ``use(...)``.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator, Optional

from sqlalchemy.orm import Session, sessionmaker

from bot.db.session import make_engine, make_session_factory, session_scope
from bot.pii import PiiVault
from bot.settings import Settings

_lock = threading.Lock()
_settings: Optional[Settings] = None
_factory: Optional[sessionmaker] = None
_vault: Optional[PiiVault] = None


def settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            _settings = Settings.from_env()
        return _settings


def session_factory() -> sessionmaker:
    global _factory
    current = settings()
    with _lock:
        if _factory is None:
            _factory = make_session_factory(make_engine(current.database_url))
        return _factory


def vault() -> PiiVault:
    global _vault
    current = settings()
    with _lock:
        if _vault is None:
            _vault = PiiVault.from_settings(current)
        return _vault


@contextmanager
def open_session() -> Iterator[Session]:
    with session_scope(session_factory()) as session:
        yield session


def use(settings_: Optional[Settings] = None, factory: Optional[sessionmaker] = None,
        vault_: Optional[PiiVault] = None) -> None:
    """Replace the shared resources (tests; a hot reload of settings)."""
    global _settings, _factory, _vault
    with _lock:
        _settings, _factory, _vault = settings_, factory, vault_
