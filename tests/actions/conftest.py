"""The database the actions use in these tests: a migrated SQLite file with the real
data/stations.yml loaded, handed to the actions through ``actions.resources``."""

from __future__ import annotations

import pytest

from actions import resources
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.services.stations import load_stations
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import TEST_SECRET


@pytest.fixture
def stations_db(sqlite_url, tmp_path, vault):
    """A session factory on that database; the actions' resources point at it meanwhile."""
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    resources.use(Settings.from_env({"VETBOT_DATABASE_URL": sqlite_url, "VETBOT_SECRET_KEY": TEST_SECRET,
                                     "VETBOT_VAR_DIR": str(tmp_path),
                                     # the station tests read this number back from the answers
                                     "VETBOT_SERVICE_PHONE": "021-69599999"}), factory, vault)
    yield factory
    resources.use()
    engine.dispose()
