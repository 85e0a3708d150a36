"""Finding a veteran: by the WeChat user bound to them, by ID number, by phone.

Lookups go through the keyed hashes (bot.pii), so the numbers themselves are
never compared, stored or logged in clear.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import Veteran, WechatBinding
from bot.pii import PiiVault


def by_openid(session: Session, openid: str) -> Optional[Veteran]:
    """The veteran a WeChat user has proven to be, or None when not bound."""
    return session.execute(
        select(Veteran).join(WechatBinding, WechatBinding.veteran_id == Veteran.id)
        .where(WechatBinding.openid == openid)
    ).scalars().first()


def id_by_openid(session: Session, openid: str) -> Optional[int]:
    """The id of the veteran bound to this WeChat user, without loading the row."""
    return session.execute(
        select(WechatBinding.veteran_id).where(WechatBinding.openid == openid)
    ).scalar_one_or_none()


def by_id_number(session: Session, vault: PiiVault, id_number: str) -> Optional[Veteran]:
    return session.execute(
        select(Veteran).where(Veteran.id_hash == vault.id_lookup(id_number))
    ).scalars().first()


def by_phone(session: Session, vault: PiiVault, phone: str) -> list:
    return list(session.execute(
        select(Veteran).where(Veteran.phone_hash == vault.phone_lookup(phone))
    ).scalars())


def masked_name(name: str) -> str:
    """张*明 / 李*: enough for the user to recognise, not enough to identify."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]
