"""Ciphertexts sealed again, bound to their row (`vetbot pii rewrap`; `vetbot serve` at start).

Before the binding (bot.pii), a ciphertext was AES-GCM without associated data
("v1:") and could be copied into another row or column and still decrypt. This
opens every "v1:" ciphertext of the columns in bot.pii.CIPHER_COLUMNS and seals
it again as "v2:", bound to its table, column and row key. One transaction per
table; each row is updated only if its ciphertext is still the one read (a
process writing meanwhile keeps what it wrote). Running it again changes nothing.
A ciphertext that does not open with this key is left as it is and counted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, List

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.orm import sessionmaker

from bot.db.models import Base
from bot.db.session import execute_write, session_scope
from bot.pii import CIPHER_COLUMNS, CipherColumn, NotDecryptable, PiiVault

log = logging.getLogger(__name__)

UNBOUND_PATTERN = "v1:%"


@dataclass(frozen=True)
class RewrapCount:
    """One ciphertext column after a run."""

    where: CipherColumn
    rewrapped: int  # "v1:" sealed again as "v2:" by this run
    bound: int  # "v2:" already before this run
    unreadable: int  # "v1:" that does not open with this key: left as it is

    @property
    def name(self) -> str:
        return f"{self.where.table}.{self.where.column}"


def _rewrap_table(factory: sessionmaker, vault: PiiVault, table_name: str,
                  columns: List[CipherColumn]) -> List[RewrapCount]:
    table = Base.metadata.tables[table_name]
    (primary,) = table.primary_key.columns
    key_columns = {where.key_column for where in columns}
    (key_name,) = key_columns  # one row key per table: the rows are read once
    counts = []
    with session_scope(factory) as session:
        rows = session.execute(
            select(primary, table.c[key_name], *(table.c[where.column] for where in columns))
            .where(or_(*(table.c[where.column].like(UNBOUND_PATTERN) for where in columns)))
        ).all()
        for index, where in enumerate(columns):
            column = table.c[where.column]
            bound = session.execute(select(func.count()).select_from(table)
                                    .where(column.like("v2:%"))).scalar_one()
            changes, unreadable = [], 0
            for row in rows:
                token = row[2 + index]
                if token is None or vault.is_bound(token):
                    continue
                try:
                    changes.append({"row_id": row[0], "old": token,
                                    "new": vault.rewrap(token, where, row[1])})
                except NotDecryptable:
                    unreadable += 1
            if changes:
                # The first write waits for SQLite's write lock; the others then run as one batch.
                first, rest = changes[0], changes[1:]
                execute_write(session, update(table).where(primary == first["row_id"], column == first["old"])
                              .values({where.column: first["new"]}))
                if rest:
                    session.execute(update(table)
                                    .where(and_(primary == bindparam("row_id"), column == bindparam("old")))
                                    .values({where.column: bindparam("new")}), rest)
            counts.append(RewrapCount(where, len(changes), bound, unreadable))
    return counts


def rewrap_all(factory: sessionmaker, vault: PiiVault) -> List[RewrapCount]:
    """Every "v1:" ciphertext of the database sealed again as "v2:"; the counts, column by column."""
    by_table: Dict[str, List[CipherColumn]] = {}
    for where in CIPHER_COLUMNS:
        by_table.setdefault(where.table, []).append(where)
    counts: List[RewrapCount] = []
    for table_name, columns in by_table.items():
        counts.extend(_rewrap_table(factory, vault, table_name, columns))
    for count in counts:
        if count.unreadable:
            log.error("%s: %d ciphertexts do not open with this key; left as they are",
                      count.name, count.unreadable)
    rewrapped = sum(count.rewrapped for count in counts)
    if rewrapped:
        log.info("ciphertexts bound to their rows: %d", rewrapped)
    return counts


def summary_zh(counts: List[RewrapCount]) -> str:
    lines = [f"{c.name}：本次重新加密 {c.rewrapped} 条，此前已绑定 {c.bound} 条"
             + (f"，无法解密 {c.unreadable} 条（未改动）" if c.unreadable else "") for c in counts]
    total = sum(c.rewrapped for c in counts)
    unreadable = sum(c.unreadable for c in counts)
    lines.append(f"共重新加密 {total} 条密文，均已与所在记录绑定。" if total else "没有需要重新加密的密文。")
    if unreadable:
        lines.append(f"另有 {unreadable} 条密文无法用当前密钥解密，未作改动；"
                     "请核对 VETBOT_PII_KEY（或 VETBOT_SECRET_KEY）是否与加密时一致。")
    return "\n".join(lines)
