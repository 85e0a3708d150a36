"""Conversations as staff read them: straight from Rasa's SQL tracker store.

Rasa keeps every event of a conversation in the tracker store's ``events`` table
(endpoints.yml: SQLite at VETBOT_TRACKER_DB by default, or VETBOT_TRACKER_URL). The
console reads it here with plain SQL, read-only: a transcript (user messages with the
NLU's intent and confidence, bot messages, staff messages — bot events carrying
``metadata.staff`` — and the pause/resume/session events), the last user message of
each conversation in the queue, the most recent conversations, and the newest event
id (for the live transcript). Asking Rasa's HTTP API instead would make Rasa rebuild
the whole tracker for every look.

Everything in the store was redacted before Rasa saw it (bot.channels): no ID card or
phone number is in what this returns.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import bindparam, create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from bot.clock import SHANGHAI

SHOWN_TYPES = ("user", "bot", "pause", "resume", "session_started")
EVENT_LABELS = {
    "pause": "会话已暂停（人工接待中，机器人不再回复）",
    "resume": "会话已恢复（交还机器人）",
    "session_started": "新的会话开始",
}
TRANSCRIPT_LIMIT = 300  # the newest lines shown when a transcript opens


@dataclass(frozen=True)
class Line:
    """One line of a transcript."""

    id: int
    kind: str  # user | bot | staff | event
    text: str
    at: dt.datetime  # Beijing time
    intent: Optional[str] = None
    confidence: Optional[float] = None
    staff: Optional[str] = None
    buttons: Tuple[str, ...] = ()


@dataclass(frozen=True)
class Conversation:
    """A conversation in the list of recent ones."""

    sender_id: str
    last_at: dt.datetime  # Beijing time, the last user message
    last_text: str
    last_event_id: int


def tracker_engine(url: str) -> Engine:
    """An engine reading the tracker store at ``url``. SQLite is opened read-only, so the
    console never creates the file or writes to it (until Rasa has made the file, every
    query finds no data: ``missing_file``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).resolve()

        def connect() -> sqlite3.Connection:
            # Rasa writes from another process: wait for its lock rather than fail.
            return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10, check_same_thread=False)

        return create_engine("sqlite://", creator=connect, future=True)
    return create_engine(url, future=True, pool_pre_ping=True)


def missing_file(error: OperationalError) -> bool:
    """Whether ``error`` says the SQLite tracker store's file does not exist yet."""
    return isinstance(getattr(error, "orig", None), sqlite3.OperationalError) and \
        "unable to open database file" in str(error.orig)


def _moment(timestamp: Optional[float]) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp or 0.0, tz=dt.timezone.utc).astimezone(SHANGHAI)


def _data(raw: Optional[str]) -> Dict[str, Any]:
    try:
        data = json.loads(raw or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _line(row) -> Line:
    event_id, type_name, timestamp, intent_name, raw = row
    data = _data(raw)
    at = _moment(timestamp)
    if type_name == "user":
        parse = data.get("parse_data") or {}
        intent = (parse.get("intent") or {})
        confidence = intent.get("confidence")
        name = intent.get("name") or intent_name
        # A policy question: the topic the response selector chose (faq/report_in …).
        selected = ((parse.get("response_selector") or {}).get(name or "") or {}).get("response") or {}
        if selected.get("intent_response_key"):
            name = selected["intent_response_key"]
        return Line(event_id, "user", str(data.get("text") or ""), at, intent=name,
                    confidence=float(confidence) if isinstance(confidence, (int, float)) else None)
    if type_name == "bot":
        metadata = data.get("metadata") or {}
        buttons = tuple(str(b.get("title", "")) for b in ((data.get("data") or {}).get("buttons") or [])
                        if isinstance(b, dict))
        staff = metadata.get("staff") if isinstance(metadata, dict) else None
        return Line(event_id, "staff" if staff else "bot", str(data.get("text") or ""), at,
                    staff=str(staff) if staff else None, buttons=buttons)
    return Line(event_id, "event", EVENT_LABELS.get(type_name, type_name), at)


class TrackerReader:
    """Read-only SQL access to Rasa's tracker store (one engine, shared by the console)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = tracker_engine(url)


    def close(self) -> None:
        self.engine.dispose()

    def _ready(self) -> bool:
        # Nobody has talked yet: Rasa creates the file and the table with the first conversation.
        try:
            return "events" in inspect(self.engine).get_table_names()
        except OperationalError as error:
            if missing_file(error):
                return False
            raise

    def transcript(self, sender_id: str, after_id: int = 0, limit: int = TRANSCRIPT_LIMIT) -> List[Line]:
        """The conversation's lines after event ``after_id``, oldest first (at most the
        newest ``limit`` of them)."""
        if not self._ready():
            return []
        query = text(
            "SELECT id, type_name, timestamp, intent_name, data FROM events "
            "WHERE sender_id = :sender AND id > :after AND type_name IN :types "
            "ORDER BY id DESC LIMIT :limit"
        ).bindparams(bindparam("types", expanding=True))
        with self.engine.connect() as connection:
            rows = connection.execute(query, {"sender": sender_id, "after": after_id, "types": list(SHOWN_TYPES),
                                              "limit": limit}).all()
        return [_line(row) for row in reversed(rows)]

    def latest_event_id(self, sender_id: str) -> int:
        if not self._ready():
            return 0
        with self.engine.connect() as connection:
            value = connection.execute(text("SELECT MAX(id) FROM events WHERE sender_id = :sender"),
                                       {"sender": sender_id}).scalar()
        return int(value or 0)

    def last_user_messages(self, sender_ids: Iterable[str]) -> Dict[str, Line]:
        """The last user message of each conversation (for the queue)."""
        senders = sorted(set(sender_ids))
        if not senders or not self._ready():
            return {}
        query = text(
            "SELECT id, type_name, timestamp, intent_name, data FROM events WHERE id IN ("
            " SELECT MAX(id) FROM events WHERE type_name = 'user' AND sender_id IN :senders GROUP BY sender_id)"
        ).bindparams(bindparam("senders", expanding=True))
        sender_of = text("SELECT id, sender_id FROM events WHERE id IN :ids").bindparams(
            bindparam("ids", expanding=True))
        with self.engine.connect() as connection:
            rows = connection.execute(query, {"senders": senders}).all()
            if not rows:
                return {}
            owners = dict(connection.execute(sender_of, {"ids": [row[0] for row in rows]}).all())
        return {owners[row[0]]: _line(row) for row in rows}

    def recent_conversations(self, limit: int = 50, exclude: Sequence[str] = ()) -> List[Conversation]:
        """The conversations with the most recent user messages, newest first."""
        if not self._ready():
            return []
        query = text(
            "SELECT e.id, e.sender_id, e.timestamp, e.data FROM events e JOIN ("
            " SELECT MAX(id) AS last_id FROM events WHERE type_name = 'user' GROUP BY sender_id"
            " ORDER BY last_id DESC LIMIT :limit) recent ON e.id = recent.last_id ORDER BY e.id DESC"
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query, {"limit": limit + len(exclude)}).all()
        skip = set(exclude)
        found = [Conversation(sender, _moment(timestamp), str(_data(raw).get("text") or ""), event_id)
                 for event_id, sender, timestamp, raw in rows if sender not in skip]
        return found[:limit]
