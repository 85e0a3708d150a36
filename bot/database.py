"""Getting the veteran database ready: migrate, bind the ciphertexts of before
migration 0011 to their rows, load the service network and the bookable services,
and on a demo machine with an empty roster, demo veterans. `vetbot serve` calls this."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Optional

from sqlalchemy import func, select

from bot.clock import SHANGHAI
from bot.db.migrate import upgrade
from bot.db.models import Veteran
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.pii import PiiVault
from bot.services.rewrap import rewrap_all
from bot.settings import Settings

log = logging.getLogger(__name__)


def prepare(settings: Settings, demo_veterans: Optional[int] = None) -> None:
    """Migrate to the latest schema, seal "v1:" ciphertexts again bound to their rows
    (bot.services.rewrap; a no-op once done) and load the data files (stations, services,
    closures); check the holidays file (read by every process as it changes, so it is
    not loaded into the database) and warn when the holiday data ends soon; seed demo
    veterans when asked and the roster is empty."""
    from bot.services.appointments import load_services
    from bot.services.stations import calendar_coverage, load_holidays, load_stations

    calendar = load_holidays(settings.holidays_file)  # HolidayDataError lists every problem
    coverage = calendar_coverage(dt.datetime.now(SHANGHAI).date(), calendar)
    if not coverage.ok:
        log.warning(coverage.warning_en)
        print(coverage.warning_zh, file=sys.stderr, flush=True)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        vault = PiiVault.from_settings(settings)
        rewrap_all(factory, vault)  # unreadable ciphertexts are logged, not fatal: the rest still works
        with session_scope(factory) as session:
            stations = load_stations(session, settings.stations_file)
            load_services(session, settings.services_file, settings.closures_file)
            veterans = session.execute(select(func.count()).select_from(Veteran)).scalar()
        log.info("database ready: %d stations, %d veterans", stations, veterans)
        if demo_veterans and veterans == 0:
            from bot.seed import seed

            print(f"演示数据库为空，正在生成 {demo_veterans} 名演示退役军人…", flush=True)
            seed(factory, vault, demo_veterans, today=dt.date.today())
    finally:
        engine.dispose()
