"""Roster rows for the identity tests, built the way the importer stores them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Optional

from bot import idcard
from bot.db.models import Veteran
from bot.db.session import session_scope
from bot.pii import VETERAN_PHONE, PiiVault


@dataclass(frozen=True)
class RosterEntry:
    veteran_id: int
    name: str
    id_number: str
    phone: Optional[str]


def add_veteran(factory, vault: PiiVault, name: str = "张三明", phone: Optional[str] = "13812345678",
                birth: dt.date = dt.date(1975, 6, 1), sequence: int = 123,
                status: str = "在世") -> RosterEntry:
    number = idcard.make("110105", birth, sequence)
    protected_id = vault.protect_id(number)
    protected_phone = vault.protect_phone(phone, VETERAN_PHONE, protected_id.lookup) if phone else None
    with session_scope(factory) as session:
        veteran = Veteran(
            name=name,
            id_hash=protected_id.lookup,
            id_cipher=protected_id.cipher,
            id_masked=protected_id.masked,
            phone_hash=protected_phone.lookup if protected_phone else None,
            phone_cipher=protected_phone.cipher if protected_phone else None,
            phone_masked=protected_phone.masked if protected_phone else None,
            birth_date=birth,
            gender="男" if sequence % 2 else "女",
            status=status,
            deceased_on=dt.date(2020, 1, 1) if status == "已故" else None,
        )
        session.add(veteran)
        session.flush()
        return RosterEntry(veteran.id, name, number, phone)
