"""Beijing time, defined once (bot.clock)."""

from __future__ import annotations

import datetime as dt

from bot.clock import SHANGHAI, SHANGHAI_OFFSET_SECONDS, local_time


def test_the_fixed_offset_is_the_zone_s_since_1991():
    for day in (dt.datetime(1992, 7, 1), dt.datetime(2026, 1, 1), dt.datetime(2026, 7, 1)):
        assert day.replace(tzinfo=SHANGHAI).utcoffset() == dt.timedelta(seconds=SHANGHAI_OFFSET_SECONDS)


def test_local_time():
    utc = dt.datetime(2026, 12, 8, 2, 0, tzinfo=dt.timezone.utc)
    assert local_time(utc) == utc and local_time(utc).tzinfo is SHANGHAI and local_time(utc).hour == 10
    assert local_time(dt.datetime(2026, 12, 8, 10, 0)) == utc
