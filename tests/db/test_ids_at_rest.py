"""IDs at rest (issue 16 item 1): what a full dump of the veteran database gives away.

The birth date is stored in clear (greetings, age checks), so the mask must not
show what would, with the birth date, the gender, the district and the check digit
(GB 11643), single out the number. ``test_a_full_dump_does_not_rebuild_any_id``
dumps every column of every table and tries the rebuild an attacker would, row by
row. Measured with 300 seeded veterans and the demo veteran (301 rows), on SQLite
and on PostgreSQL alike:

- told each veteran's true 6-digit area code (stronger than any dump allows):
  500 candidates for every veteran (min = median = 500);
- knowing only the area codes the data uses (bot.seed.AREA_CODES) and the mask's
  first four digits: min 500, median 1,000 candidates;
- rows rebuilt (one candidate left): 0 of 301. The same attack on the old mask
  (``310114********3710``) leaves exactly one candidate in every row: 301 of 301.

Checking a candidate needs the HMAC key (``id_hash``) or the AES key (``id_cipher``).
Runs on SQLite and on a real PostgreSQL server (fixture database_url)."""

from __future__ import annotations

import datetime as dt
import re
import statistics
from typing import Dict, Iterable, List

import pytest
from sqlalchemy import MetaData, select, text

from bot import idcard
from bot.db.migrate import downgrade, upgrade
from bot.db.session import make_engine, session_scope
from bot.pii import VETERAN_ID, mask_id
from bot.seed import AREA_CODES, seed
from bot.services.stations import load_stations
from bot.settings import PROJECT_ROOT

TODAY = dt.date(2026, 11, 22)
VETERANS = 300
MIN_CANDIDATES = 100
NON_BIRTH = tuple(range(0, 6)) + tuple(range(14, 18))  # area code; sequence and check digit
AREAS_IN_USE = tuple(code for code, _ in AREA_CODES)


# --- the attacker's side: only what the dump holds --------------------------------------

def dump(engine) -> Dict[str, List[dict]]:
    """Every column of every row of every table, as a database dump would have them."""
    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.connect() as connection:
        return {name: [dict(row) for row in connection.execute(select(table)).mappings()]
                for name, table in metadata.tables.items()}


def candidates(mask: str, birth: dt.date, gender: str, area_codes: Iterable[str]) -> List[str]:
    """Every valid ID number consistent with the row: each character the mask shows,
    the birth date, the gender (parity of the 17th digit), an area code from
    ``area_codes``, and the check digit computed from the first 17."""
    shown = [(position, char) for position, char in enumerate(mask) if char != "*"]
    found = []
    for area in area_codes:
        for sequence in range(1 if gender == "男" else 0, 1000, 2):
            number = idcard.make(area, birth, sequence)
            if all(number[position] == char for position, char in shown):
                found.append(number)
    return found


def _as_date(value) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _old_mask(number: str) -> str:
    return number[:6] + "*" * 8 + number[-4:]


# --- the data ----------------------------------------------------------------------------

@pytest.fixture
def seeded(session_factory, vault):
    with session_scope(session_factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    seed(session_factory, vault, VETERANS, today=TODAY, progress=False)
    return session_factory


def test_a_full_dump_does_not_rebuild_any_id(seeded, engine, vault):
    tables = dump(engine)
    rows = tables["veterans"]
    assert len(rows) == VETERANS + 1  # and the demo veteran
    # The true numbers, for checking the attack (the test holds the key; the attacker does not).
    truth = {row["id"]: vault.decrypt(row["id_cipher"], VETERAN_ID, row["id_hash"]) for row in rows}

    told_area, known_areas, old_mask = [], [], []
    for row in rows:
        number, birth = truth[row["id"]], _as_date(row["birth_date"])
        assert row["id_masked"] == number[:4] + "*" * 14
        # Strongest case: the attacker is told the area code (e.g. from the district).
        exact = candidates(row["id_masked"], birth, row["gender"], [number[:6]])
        # What the data allows: the area codes in use that fit the mask's first four digits.
        fitting = [code for code in AREAS_IN_USE if code.startswith(row["id_masked"][:4])]
        wider = candidates(row["id_masked"], birth, row["gender"], fitting)
        assert number in exact and number in wider, "the attack model must hold the true number"
        told_area.append(len(exact))
        known_areas.append(len(wider))
        old_mask.append(len(candidates(_old_mask(number), birth, row["gender"], [number[:6]])))

    figures = (f"{len(rows)} rows tried; told the area code: min {min(told_area)}, "
               f"median {statistics.median(told_area):g}; area codes in use: min {min(known_areas)}, "
               f"median {statistics.median(known_areas):g}; rebuilt (1 candidate): "
               f"{sum(1 for n in told_area if n == 1)}; with the old mask: "
               f"{sum(1 for n in old_mask if n == 1)} of {len(rows)} rebuilt")
    print(figures)
    assert min(told_area) >= MIN_CANDIDATES, figures
    assert sum(1 for n in told_area if n == 1) == 0, figures
    assert all(n == 1 for n in old_mask), "the attack is strong enough to rebuild the old masks: " + figures

    # (b) no text anywhere holds an ID in clear, nor more than 4 of its 10 non-birth digits.
    numbers = set(truth.values())
    texts_by_veteran: Dict[int, List[str]] = {vid: [] for vid in truth}
    for name, table_rows in tables.items():
        for row in table_rows:
            values = [str(value) for value in row.values() if value is not None]
            for value in values:
                for run in re.findall(r"(?=(\d{17}[\dXx]))", value):
                    assert run.upper() not in numbers, f"an ID number in clear in {name}"
                for shaped in re.findall(r"[\dXx*]{18}", value):
                    if "*" in shaped:
                        shown = sum(1 for position in NON_BIRTH if shaped[position] != "*")
                        assert shown <= 4, f"{name}: a mask shows {shown} of the 10 non-birth digits"
            owner = row["id"] if name == "veterans" else row.get("veteran_id")
            if owner in texts_by_veteran:
                texts_by_veteran[owner].extend(values)
    for vid, values in texts_by_veteran.items():
        number = truth[vid]
        runs = {number[start:start + 5] for start in (0, 1)}  # 5 digits in a row of the area code
        for value in values:
            for digits in re.findall(r"\d{5,}", value):
                assert not any(run in digits for run in runs), \
                    "five or more of a veteran's non-birth ID digits stored in sequence"


# --- migration 0011 ----------------------------------------------------------------------

INSERT = ("INSERT INTO veterans (name, id_hash, id_cipher, id_masked, birth_date, gender, status,"
          " created_at, updated_at) VALUES (:name, :hash, 'v1:x', :masked, :birth, :gender, '在世', :at, :at)")
OLD_ROWS = [  # (name, ID number)
    ("李卫国", "11010519491231002X"),
    ("王建军", idcard.make("310114", dt.date(1985, 6, 15), 371)),
    ("赵秀英", idcard.make("320581", dt.date(1962, 2, 28), 24)),
]


def _masks(engine) -> Dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT name, id_masked FROM veterans")).all())


def test_0011_masks_existing_rows_again_without_a_key(database_url):
    engine = make_engine(database_url)
    try:
        downgrade(database_url, "0010")
        with engine.begin() as connection:
            for index, (name, number) in enumerate(OLD_ROWS):
                card = idcard.parse(number)
                connection.execute(text(INSERT), {
                    "name": name, "hash": f"{index:064x}", "masked": _old_mask(number), "birth": card.birth_date,
                    "gender": card.gender, "at": dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)})
        assert _masks(engine)["李卫国"] == "110105********002X"
        upgrade(database_url)
        expected = {name: mask_id(number) for name, number in OLD_ROWS}
        assert _masks(engine) == expected == {
            "李卫国": "1101**************", "王建军": "3101**************", "赵秀英": "3205**************"}
        downgrade(database_url, "0010")  # the hidden digits cannot come back: the masks stay
        assert _masks(engine) == expected
        upgrade(database_url)  # and masking again changes nothing
        assert _masks(engine) == expected
    finally:
        engine.dispose()
