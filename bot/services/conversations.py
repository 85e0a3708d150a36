"""The Rasa conversation of a user, deleted when they unfollow the account.

Rasa 3.6 has no API to delete a conversation, so this removes its rows from the
tracker store's ``events`` table (the SQL tracker store of endpoints.yml; the
embedded default is SQLite at VETBOT_TRACKER_DB). A production tracker store on
PostgreSQL takes the same statement through ``VETBOT_TRACKER_URL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

from sqlalchemy import create_engine, inspect, text


def tracker_url(tracker_db: Union[str, Path], environ: Optional[dict] = None) -> str:
    env = os.environ if environ is None else environ
    return env.get("VETBOT_TRACKER_URL", "").strip() or f"sqlite:///{tracker_db}"


def delete_conversation(tracker_db: Union[str, Path], sender_id: str) -> int:
    """Delete every stored event of ``sender_id``; returns how many rows went."""
    engine = create_engine(tracker_url(tracker_db), future=True)
    try:
        if "events" not in inspect(engine).get_table_names():
            return 0  # nobody has talked yet
        with engine.begin() as connection:
            result = connection.execute(text("DELETE FROM events WHERE sender_id = :sender"), {"sender": sender_id})
            return result.rowcount or 0
    finally:
        engine.dispose()
