"""Unfollow on SQLite and PostgreSQL: after ``forget_openid`` no table holds the OpenID.

The tables are found from the metadata, not listed by hand, so a new table with an
``openid`` column that no eraser in bot.services.erasure clears makes this test fail.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from bot.db.models import Base, BindingLock, ComplaintCase, Station, WechatBinding
from bot.db.session import session_scope
from bot.services import appointments as ap
from bot.services import complaints, contacts, conversations, erasure, handoff, identity, wechat_failures, wechat_window
from bot.services.stations import SHANGHAI, load_stations
from bot.settings import PROJECT_ROOT
from tests.services.veterans import add_veteran

OPENID = "o-leaving"
NOW = dt.datetime(2026, 11, 30, 8, tzinfo=SHANGHAI)  # a Monday morning
VISIT = dt.datetime(2026, 12, 3, 9, tzinfo=SHANGHAI)  # a Thursday, the district centre open

# Tables that keep their rows on unfollow, with the OpenID blanked (NULL), and why.
KEPT_WITHOUT_OPENID = {
    "appointments": "the booking stays for the statistics, without OpenID and veteran "
                    "(upcoming ones are cancelled, so their seats free up)",
    "complaint_cases": "the petition register must be kept (信访档案); only the OpenID and "
                       "the reply phone go",
}
# Tables that still hold the OpenID after forget_openid, and why.
KEPT_WITH_OPENID = {
    "conversation_erasures": "the gateway writes it right after forget_openid (bot.gateway.wechat."
                             "forget_user) and it must name the OpenID until Rasa confirms the "
                             "conversation is deleted; then the row goes",
}
# Columns whose name says OpenID but which hold something else.
NOT_AN_OPENID = {
    ("binding_audit", "openid_hash"): "a keyed hash (bot.pii), so the audit trail survives unfollow",
}


def openid_tables():
    """Every table of the schema with a column that holds an OpenID."""
    tables = {}
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if "openid" in column.name.lower() and (table.name, column.name) not in NOT_AN_OPENID:
                assert column.name == "openid", (
                    f"{table.name}.{column.name}: name it openid, or list it in NOT_AN_OPENID with the reason")
                tables[table.name] = table
    return tables


def put_one_of_everything(factory, vault) -> None:
    """A row under OPENID in every table that can hold one, the way the services write them."""
    veteran = add_veteran(factory, vault)
    with session_scope(factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
        ap.load_services(session, PROJECT_ROOT / "data" / "services.yml",
                         PROJECT_ROOT / "data" / "closures.yml", now=NOW)
    with session_scope(factory) as session:
        session.add(WechatBinding(openid=OPENID, veteran_id=veteran.veteran_id, bound_at=NOW))
        assert identity.issue_link(session, vault, OPENID, "https://example.org", NOW).url
        session.add(BindingLock(openid=OPENID, failures=1))
        district = session.execute(select(Station.id).where(Station.code == "JD")).scalar_one()
        assert ap.book(session, OPENID, district, "report_in", VISIT, NOW, veteran_id=veteran.veteran_id).ok
        complaints.register(session, vault, OPENID, veteran.veteran_id, "待遇发放", "我的抚恤金三个月没发了",
                            None, None, "case_phone", "13812345678", False, NOW)
        contacts.save(session, vault, OPENID, "complaint_phone", "13812345678", NOW)
        handoff.open_handoff(session, OPENID, "request_human", NOW)
        wechat_failures.record_failure(session, OPENID, "in", "rasa_down", "你好", "ConnectionError", NOW)
        wechat_window.opened(session, OPENID, NOW)
        conversations.request_erasure(session, OPENID, NOW)


def holding(session, table) -> int:
    return session.execute(select(func.count()).select_from(table).where(table.c.openid == OPENID)).scalar_one()


def test_the_exceptions_name_real_tables():
    tables = openid_tables()
    assert set(KEPT_WITHOUT_OPENID) | set(KEPT_WITH_OPENID) <= set(tables)
    assert ComplaintCase.__tablename__ in KEPT_WITHOUT_OPENID


def test_forget_openid_leaves_the_openid_in_no_table(session_factory, vault):
    tables = openid_tables()
    put_one_of_everything(session_factory, vault)
    with session_scope(session_factory) as session:
        missing = sorted(name for name, table in tables.items() if holding(session, table) == 0)
    assert missing == [], f"give put_one_of_everything a row for {missing}"

    with session_scope(session_factory) as session:
        erasure.forget_openid(session, vault, OPENID, NOW + dt.timedelta(hours=1))

    with session_scope(session_factory) as session:
        left = sorted(name for name, table in tables.items()
                      if name not in KEPT_WITH_OPENID and holding(session, table) > 0)
        assert left == [], f"forget_openid leaves the OpenID in {left}: add an eraser to bot.services.erasure"
        for name in KEPT_WITH_OPENID:
            assert holding(session, tables[name]) == 1, name
        for name in KEPT_WITHOUT_OPENID:
            table = tables[name]
            assert session.execute(select(func.count()).select_from(table)
                                   .where(table.c.openid.is_(None))).scalar_one() == 1, name
