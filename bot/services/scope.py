"""数据范围: which case data (handoffs and their conversations, complaints, appointments)
a staff member may see and act on, as one immutable object. The one access rule:

- station staff (station): their station and the stations under it;
- district staff (district): every station of their district centre's tree;
- admins (admin): everything;
- trainers (trainer), and any role not foreseen: no case data at all;
- records with no station (not yet routed) are the district centre's to handle:
  admins and district staff see them.

A complaint case has two stations, the one it is about (``station_id``) and the one
handling it (``assigned_station_id``): it is in a scope when either is, and, with
neither, when the scope sees records with no station.

``Scope.of`` reads a staff account's scope (the console: once per request); every
list (``where_station``, ``where_case``) and every check of one record (``station``,
``case``) reads the same three fields, so a list never shows what the record's page
refuses, nor the other way round (tests/services/test_scope.py checks both on every
record, on SQLite and PostgreSQL). Nothing here knows the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, FrozenSet, List, Optional, Protocol

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import Session

from bot.db.models import ComplaintCase, Station

if TYPE_CHECKING:
    from bot.services.staff import StaffLike

CASE_ROLES = ("admin", "district", "station")  # the roles that see case data at all
# Who may act on a record another staff member holds (hand a conversation back): the
# district centre's staff and admins.
SUPERVISOR_ROLES = ("admin", "district")


class StationsOfCase(Protocol):
    """What ``Scope.case`` needs of a complaint case (bot.services.complaints.CaseView)."""

    station_id: Optional[int]
    assigned_station_id: Optional[int]


def _station_tree(session: Session) -> Dict[Optional[int], List[int]]:
    children: Dict[Optional[int], List[int]] = {}
    for station_id, parent_id in session.execute(select(Station.id, Station.parent_id)):
        children.setdefault(parent_id, []).append(station_id)
    return children


def _subtree(children: Dict[Optional[int], List[int]], root: int) -> FrozenSet[int]:
    seen = {root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return frozenset(seen)


@dataclass(frozen=True)
class Scope:
    """A staff member's data scope: ``role``, the ``station_ids`` whose records they see
    (every station for an admin), and whether they see records with no station."""

    role: str
    station_ids: FrozenSet[int]
    unassigned: bool

    @classmethod
    def of(cls, session: Session, staff: "StaffLike") -> "Scope":
        """The scope of ``staff`` (an account row or anything with ``role`` and ``station_id``)."""
        if staff.role == "admin":
            ids = frozenset(session.execute(select(Station.id)).scalars())
        elif staff.role in ("district", "station") and staff.station_id is not None:
            ids = _subtree(_station_tree(session), staff.station_id)
        else:
            ids = frozenset()  # trainers, and anything unforeseen: nothing
        return cls(role=staff.role, station_ids=ids, unassigned=staff.role in SUPERVISOR_ROLES)

    @property
    def everything(self) -> bool:
        return self.role == "admin"

    @property
    def case_data(self) -> bool:
        """Whether the role sees case data at all (trainers do not)."""
        return self.role in CASE_ROLES

    @property
    def supervises(self) -> bool:
        """Whether they may act on what a colleague holds (hand back a conversation)."""
        return self.role in SUPERVISOR_ROLES

    # --- one record -----------------------------------------------------------------------

    def station(self, station_id: Optional[int]) -> bool:
        """A record of station ``station_id`` (None: a record with no station)."""
        if station_id is None:
            return self.unassigned
        return station_id in self.station_ids

    def case(self, case: StationsOfCase) -> bool:
        """A complaint case, by the station it is about and the one handling it."""
        if case.station_id is None and case.assigned_station_id is None:
            return self.unassigned
        return case.station_id in self.station_ids or case.assigned_station_id in self.station_ids

    # --- as WHERE clauses -----------------------------------------------------------------

    def where_station(self, column):
        """``station`` for a query: the rows whose station id ``column`` is in the scope."""
        if self.everything:
            return true()
        clauses = []
        if self.station_ids:
            clauses.append(column.in_(sorted(self.station_ids)))
        if self.unassigned:
            clauses.append(column.is_(None))
        return or_(*clauses) if clauses else false()

    def where_case(self):
        """``case`` for a query of complaint_cases."""
        if self.everything:
            return true()
        ids = sorted(self.station_ids)
        clauses = []
        if ids:
            clauses.append(ComplaintCase.station_id.in_(ids))
            clauses.append(ComplaintCase.assigned_station_id.in_(ids))
        if self.unassigned:
            clauses.append(and_(ComplaintCase.station_id.is_(None), ComplaintCase.assigned_station_id.is_(None)))
        return or_(*clauses) if clauses else false()
