"""Ciphertexts bound to their row (issue 16 item 9, the ciphertext half).

A ciphertext copied into another row or column no longer decrypts, and the code that
reads it copes (identity binding sends the code where the keyed hash says, the
console says the number cannot be read). Ciphertexts written before the binding
("v1:") are sealed again by bot.services.rewrap: they still decrypt, a second run
changes nothing. Runs on SQLite and on a real PostgreSQL server (fixture database_url)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import select, text, update

from bot.cli import main
from bot.db.models import ComplaintCase, ContactDraft, Veteran, WechatToken
from bot.db.session import session_scope
from bot.pii import (ACCESS_TOKEN, CASE_PHONE, CIPHER_COLUMNS, DRAFT_PHONE, VETERAN_ID, VETERAN_PHONE,
                     NotDecryptable, PiiVault)
from bot.services import complaints, contacts, identity
from bot.services.rewrap import rewrap_all, summary_zh
from bot.services.sms import LogCodeSender
from tests.conftest import TEST_SECRET
from tests.services.veterans import add_veteran
from tests.test_idcard_and_pii import v1_cipher

NOW = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.timezone.utc)
APPID = "wx0000000000000001"
OPENID = "oUser-0001-aaaaaaaaaaaaaaaaaaa"


def ciphertexts(factory) -> dict:
    """Every ciphertext column's values, by (table, column, row key)."""
    found = {}
    with session_scope(factory) as session:
        for where in CIPHER_COLUMNS:
            rows = session.execute(text(f"SELECT {where.key_column}, {where.column} FROM {where.table}"))
            for key, value in rows:
                if value is not None:
                    found[(where.table, where.column, key)] = value
    return found


def make_old_rows(factory, vault) -> dict:
    """One row in each table with ciphertexts, as the code before the binding wrote them;
    and a veteran whose phone was sealed with another key. Returns the values in clear."""
    zhang = add_veteran(factory, vault, name="张三明", phone="13812345678", sequence=123)
    li = add_veteran(factory, vault, name="李四海", phone="13900000000", sequence=125)
    stranger = add_veteran(factory, vault, name="王五", phone="13700000000", sequence=127)
    with session_scope(factory) as session:
        case = complaints.register(session, vault, OPENID, None, "其他", "窗口没人", None, None, "case_phone",
                                   "021-69590001", False, NOW)
        contacts.save(session, vault, OPENID, "complaint_phone", "13612345678", NOW)
    with session_scope(factory) as session:
        for entry, phone in ((zhang, "13812345678"), (li, "13900000000")):
            session.execute(update(Veteran).where(Veteran.id == entry.veteran_id).values(
                id_cipher=v1_cipher(vault, entry.id_number), phone_cipher=v1_cipher(vault, phone)))
        session.execute(update(Veteran).where(Veteran.id == stranger.veteran_id).values(
            phone_cipher=v1_cipher(PiiVault("another-bureaus-key"), "13700000000")))
        session.execute(update(ComplaintCase).where(ComplaintCase.id == case.id).values(
            phone_cipher=v1_cipher(vault, "02169590001")))
        session.execute(update(ContactDraft).values(phone_cipher=v1_cipher(vault, "13612345678")))
        session.add(WechatToken(appid=APPID, token_cipher=v1_cipher(vault, "ACCESS_TOKEN_1"), updated_at=NOW))
    return {"zhang": zhang, "li": li, "case_number": case.case_number}


def test_rewrap_binds_old_ciphertexts_and_a_second_run_changes_nothing(session_factory, vault):
    old = make_old_rows(session_factory, vault)
    zhang, li = old["zhang"], old["li"]
    before = ciphertexts(session_factory)
    assert sum(value.startswith("v1:") for value in before.values()) == 8  # 3 veterans' phones, 2 IDs, …

    counts = rewrap_all(session_factory, vault)
    by_name = {count.name: count for count in counts}
    assert {name: (c.rewrapped, c.bound, c.unreadable) for name, c in by_name.items()} == {
        "veterans.id_cipher": (2, 1, 0),  # the stranger's ID was written bound already
        "veterans.phone_cipher": (2, 0, 1),  # the other key's phone is left as it is
        "complaint_cases.phone_cipher": (1, 0, 0),
        "contact_drafts.phone_cipher": (1, 0, 0),
        "wechat_tokens.token_cipher": (1, 0, 0),
    }
    after = ciphertexts(session_factory)
    unreadable = [key for key, value in after.items() if value.startswith("v1:")]
    assert len(unreadable) == 1 and after[unreadable[0]] == before[unreadable[0]]

    with session_scope(session_factory) as session:
        for entry, phone in ((zhang, "13812345678"), (li, "13900000000")):
            row = session.get(Veteran, entry.veteran_id)
            assert row.id_cipher.startswith("v2:") and row.phone_cipher.startswith("v2:")
            assert vault.decrypt(row.id_cipher, VETERAN_ID, row.id_hash) == entry.id_number
            assert vault.decrypt(row.phone_cipher, VETERAN_PHONE, row.id_hash) == phone
        case = session.execute(select(ComplaintCase)).scalar_one()
        assert vault.decrypt(case.phone_cipher, CASE_PHONE, case.case_number) == "02169590001"
        assert complaints.reply_phone(session, vault, case.id) == "02169590001"
        draft = contacts.peek(session, OPENID, "complaint_phone", NOW)
        assert draft.cipher.startswith("v2:") and draft.number(vault) == "13612345678"
        token = session.get(WechatToken, APPID)
        assert vault.decrypt(token.token_cipher, ACCESS_TOKEN, APPID) == "ACCESS_TOKEN_1"

    again = rewrap_all(session_factory, vault)
    assert [c.rewrapped for c in again] == [0] * len(CIPHER_COLUMNS)
    assert ciphertexts(session_factory) == after
    assert "没有需要重新加密的密文" in summary_zh(again) and "无法解密 1 条" in summary_zh(again)


def test_a_ciphertext_moved_to_another_row_or_column_does_not_decrypt(session_factory, vault, caplog):
    """An insider with write access to the database copies their own phone's ciphertext
    into another veteran's row, to receive that veteran's binding code: it does not
    decrypt there, the refusal is logged, and the code goes to the phone the roster's
    keyed hash names."""
    victim = add_veteran(session_factory, vault, name="张三明", phone="13812345678", sequence=123)
    insider = add_veteran(session_factory, vault, name="李四海", phone="13900000000", sequence=125)
    with session_scope(session_factory) as session:
        mine = session.get(Veteran, insider.veteran_id)
        theirs = session.get(Veteran, victim.veteran_id)
        moved = {"phone to another row": (mine.phone_cipher, VETERAN_PHONE, theirs.id_hash),
                 "ID into the phone column": (theirs.id_cipher, VETERAN_PHONE, theirs.id_hash),
                 "phone into a complaint case": (mine.phone_cipher, CASE_PHONE, "TS20261208-0001"),
                 "phone into a contact draft": (mine.phone_cipher, DRAFT_PHONE, OPENID)}
        theirs.phone_cipher = mine.phone_cipher
    for what, (cipher, where, row_key) in moved.items():
        with pytest.raises(NotDecryptable):
            vault.decrypt(cipher, where, row_key)
            pytest.fail(what)

    sender = LogCodeSender()
    with session_scope(session_factory) as session:
        issued = identity.issue_link(session, vault, OPENID, "https://vetbot.example.gov.cn", NOW)
    token = issued.url.split("?t=", 1)[1]
    with caplog.at_level(logging.ERROR, logger="bot.services.identity"), session_scope(session_factory) as session:
        sent = identity.start_verification(session, vault, token, victim.name, victim.id_number, victim.phone,
                                           sender, NOW)
    assert sent.ok and sent.masked_phone == "138****5678"
    assert sender.last_code("13812345678") is not None and sender.last_code("13900000000") is None
    assert "does not decrypt in its row" in caplog.text


def test_vetbot_pii_rewrap(database_url, session_factory, vault, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("VETBOT_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("VETBOT_SECRET_KEY", TEST_SECRET)
    monkeypatch.delenv("VETBOT_PII_KEY", raising=False)
    entry = add_veteran(session_factory, vault)
    with session_scope(session_factory) as session:
        session.execute(update(Veteran).values(id_cipher=v1_cipher(vault, entry.id_number)))
    assert main(["pii", "rewrap", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert "veterans.id_cipher：本次重新加密 1 条" in out and "共重新加密 1 条密文" in out
    assert main(["pii", "rewrap", "--database-url", database_url]) == 0
    assert "没有需要重新加密的密文" in capsys.readouterr().out
    with session_scope(session_factory) as session:
        row = session.get(Veteran, entry.veteran_id)
        assert vault.decrypt(row.id_cipher, VETERAN_ID, row.id_hash) == entry.id_number


def test_getting_the_database_ready_binds_old_ciphertexts(database_url, session_factory, vault, tmp_path):
    """What `vetbot serve` does before it starts the processes (bot.database.prepare)."""
    from bot.database import prepare
    from bot.settings import Settings

    entry = add_veteran(session_factory, vault)
    with session_scope(session_factory) as session:
        session.execute(update(Veteran).values(id_cipher=v1_cipher(vault, entry.id_number)))
    prepare(Settings.from_env({"VETBOT_DATABASE_URL": database_url, "VETBOT_VAR_DIR": str(tmp_path),
                               "VETBOT_SECRET_KEY": TEST_SECRET}))
    with session_scope(session_factory) as session:
        row = session.get(Veteran, entry.veteran_id, populate_existing=True)
        assert row.id_cipher.startswith("v2:")
        assert vault.decrypt(row.id_cipher, VETERAN_ID, row.id_hash) == entry.id_number
