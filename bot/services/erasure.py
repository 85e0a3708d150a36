"""取消关注: when a user unfollows, WeChat requires deleting what we hold under their OpenID.

Every service that stores data under an OpenID has an eraser ``(session, openid, now)``;
``PERSONAL_DATA_ERASERS`` lists them all, here and only here, so a reader sees what an
unfollow deletes in one place. A new table with an OpenID column needs its eraser added
below: tests/services/test_erasure.py walks the tables and fails otherwise.
Only this module imports the services' erasers; none of them imports this module.
(The conversation in Rasa is queued for deletion by the gateway, in the same transaction:
bot.gateway.wechat.forget_user.)
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Tuple

from sqlalchemy.orm import Session

from bot.db.session import as_utc
from bot.pii import PiiVault
from bot.services import appointments, complaints, contacts, handoff, identity, wechat_failures, wechat_window

PersonalDataEraser = Callable[[Session, str, dt.datetime], None]

PERSONAL_DATA_ERASERS: Tuple[PersonalDataEraser, ...] = (
    identity.erase_identity_data,  # the binding, its links and failure counter
    appointments.erase_appointment_data,  # upcoming bookings cancelled, the rest kept without OpenID; outbox
    complaints.erase_complaint_data,  # cases kept (信访档案) without OpenID and reply phone; their outbox
    contacts.erase_contact_drafts,
    handoff.erase_handoffs,  # and their internal notes
    wechat_failures.erase_failure_data,
    wechat_window.erase_window,
)


def forget_openid(session: Session, vault: PiiVault, openid: str, now: dt.datetime) -> None:
    """On unsubscribe: every eraser runs, then the audit notes it (by hash)."""
    now = as_utc(now)
    for eraser in PERSONAL_DATA_ERASERS:
        eraser(session, openid, now)
    session.expire_all()  # bulk deletes bypass the identity map
    identity.record_unfollow(session, vault, openid, now)
