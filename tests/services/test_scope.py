"""The one access rule (bot.services.scope.Scope), role by role, on a small tree of
stations: two district centres, one with two streets and a community under a street.

For every role the table says which stations' records the scope holds and whether it
holds records with no station; every method is checked against it, and every WHERE
clause is checked against the one-record check on every record (stations, handoffs,
complaint cases with every pair of "about" and "handling" stations), so a list and a
record's page can never disagree. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.db.models import ComplaintCase, Handoff, Station
from bot.db.session import session_scope
from bot.services import complaints as cs
from bot.services import handoff
from bot.services.scope import Scope

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.timezone.utc)
TREE = (  # code, tier, parent
    ("D1", "district", None),
    ("S1", "street", "D1"),
    ("S2", "street", "D1"),
    ("C1", "community", "S1"),
    ("D2", "district", None),
    ("S3", "street", "D2"),
)
ALL = frozenset(code for code, _, _ in TREE)

# role, the station the account belongs to, the stations it sees, records with no
# station, case data at all, acts on what a colleague holds.
ROLES = (
    ("admin", None, ALL, True, True, True),
    ("district", "D1", {"D1", "S1", "S2", "C1"}, True, True, True),
    ("station", "S1", {"S1", "C1"}, False, True, False),
    ("station", "C1", {"C1"}, False, True, False),
    ("station", "S3", {"S3"}, False, True, False),
    ("trainer", None, set(), False, False, False),
)


@pytest.fixture
def tree(session_factory):
    """The stations, a handoff at each and one with none, and a complaint case for every
    pair of (about, handling) stations, None included. Returns the ids by code."""
    ids = {}
    with session_scope(session_factory) as session:
        for code, tier, parent in TREE:
            row = Station(code=code, name=f"{code}服务站", tier=tier, parent_id=ids.get(parent), district="测试区",
                          address="测试路1号", phone="021-00000000", aliases=[])
            session.add(row)
            session.flush()
            ids[code] = row.id
        for code in (None, *ids):
            handoff.open_handoff(session, f"o-{code}", "request_human", NOW, station_id=ids.get(code))
        for n, (about, handling) in enumerate(itertools.product((None, *ids), repeat=2)):
            session.add(ComplaintCase(
                case_number=f"TS20261123-{n:04d}", category="其他", description=f"关于{about}，由{handling}承办",
                station_id=ids.get(about), assigned_station_id=ids.get(handling), reply_channel="anonymous",
                state="registered", state_changed_at=NOW, created_at=NOW, updated_at=NOW))
    return session_factory, ids


@pytest.mark.parametrize("role, anchor, sees, unassigned, case_data, supervises", ROLES,
                         ids=[f"{r[0]}-{r[1]}" for r in ROLES])
def test_each_role_sees_its_area_and_every_clause_agrees_with_its_check(
        tree, role, anchor, sees, unassigned, case_data, supervises):
    factory, ids = tree
    code_of = {station_id: code for code, station_id in ids.items()}
    with session_scope(factory) as session:
        scope = Scope.of(session, SimpleNamespace(id=1, role=role, station_id=ids.get(anchor)))

        # What the table says, field by field and through the one-record checks.
        assert {code_of[i] for i in scope.station_ids} == sees
        assert (scope.unassigned, scope.case_data, scope.supervises) == (unassigned, case_data, supervises)
        assert scope.everything == (role == "admin")
        assert {code for code in ids if scope.station(ids[code])} == sees
        assert scope.station(None) == unassigned

        # where_station, on the stations themselves (the appointments' station list) ...
        listed = set(session.execute(select(Station.code).where(scope.where_station(Station.id))).scalars())
        assert listed == sees
        # ... and on records with a station column that may be empty (handoffs).
        handoffs = session.execute(select(Handoff.id, Handoff.station_id)).all()
        assert len(handoffs) == len(ids) + 1
        listed = set(session.execute(select(Handoff.id).where(scope.where_station(Handoff.station_id))).scalars())
        assert listed == {h.id for h in handoffs if scope.station(h.station_id)}
        assert {code_of.get(h.station_id) for h in handoffs if h.id in listed} == \
            sees | ({None} if unassigned else set())
        assert {v.id for v in handoff.queue(session, scope)} == listed

        # where_case and case, on every pair of stations a case may have.
        cases = cs.list_cases(session, now=NOW, limit=1000)
        assert len(cases) == (len(ids) + 1) ** 2
        listed = set(session.execute(select(ComplaintCase.id).where(scope.where_case())).scalars())
        assert listed == {c.id for c in cases if scope.case(c)}
        assert {c.id for c in cs.list_cases(session, now=NOW, limit=1000, scope=scope)} == listed
        assert cs.count_cases(session, now=NOW, scope=scope) == len(listed)
        for case in cases:
            about, handling = code_of.get(case.station_id), code_of.get(case.assigned_station_id)
            expected = about in sees or handling in sees or (about is None and handling is None and unassigned)
            assert scope.case(case) == expected, (about, handling)
        unrouted = {c.id for c in cs.list_cases(session, now=NOW, limit=1000, scope=scope, unrouted=True)}
        assert unrouted == {c.id for c in cases if c.id in listed and c.station_id is None
                            and c.assigned_station_id is None}


def test_a_scope_is_immutable_and_read_once(tree):
    factory, ids = tree
    with session_scope(factory) as session:
        scope = Scope.of(session, SimpleNamespace(id=1, role="station", station_id=ids["S1"]))
    with pytest.raises(AttributeError):
        scope.role = "admin"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        scope.station_ids.add(ids["S2"])  # type: ignore[attr-defined]
    # A district or station account without a station (never made so, but): no stations.
    with session_scope(factory) as session:
        lost = Scope.of(session, SimpleNamespace(id=2, role="station", station_id=None))
        assert lost.station_ids == frozenset() and not lost.station(None)
        assert session.execute(select(Station.id).where(lost.where_station(Station.id))).first() is None
