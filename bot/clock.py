"""北京时间: the clock users and staff read, defined here once for the whole project.

China has one time zone, UTC+8, without daylight saving since 1991. ``SHANGHAI`` is
that zone (IANA Asia/Shanghai); timestamps are stored in UTC and shown in it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")

# The same +8 h as a number, for SQL arithmetic that cannot call a time zone
# (bot.services.metrics' days); tests/test_clock.py checks it against the zone.
SHANGHAI_OFFSET_SECONDS = 8 * 3600


def local_time(now: dt.datetime) -> dt.datetime:
    """Beijing time; a naive datetime is taken to be Beijing time already."""
    if now.tzinfo is None:
        return now.replace(tzinfo=SHANGHAI)
    return now.astimezone(SHANGHAI)
