"""query_my_benefits from real records (fixed clock), and the once-per-conversation privacy notice."""

import datetime as dt

import pytest
from sqlalchemy import insert

from actions import benefits as benefit_actions
from actions import resources
from actions.benefits import ActionQueryMyBenefits
from actions.privacy import ActionPrivacyNotice
from bot.db.models import WechatBinding, utcnow
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.pii import PiiVault
from bot.seed import ensure_demo_veteran
from bot.services.stations import SHANGHAI, load_stations
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import TEST_SECRET, make_tracker, user_event

TUESDAY_10AM = dt.datetime(2026, 12, 8, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def records(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.setattr(benefit_actions, "now", lambda: TUESDAY_10AM)
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    vault = PiiVault(TEST_SECRET)
    with session_scope(factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    demo_id = ensure_demo_veteran(factory, vault, TUESDAY_10AM.date())
    resources.use(Settings.from_env({"VETBOT_DATABASE_URL": sqlite_url, "VETBOT_VAR_DIR": str(tmp_path),
                                     "VETBOT_SECRET_KEY": TEST_SECRET}), factory, vault)
    yield {"factory": factory, "demo_id": demo_id}
    resources.use()
    engine.dispose()


def _bind(factory, openid, veteran_id):
    with session_scope(factory) as session:
        session.execute(insert(WechatBinding.__table__), [{"openid": openid, "veteran_id": veteran_id,
                                                           "bound_at": utcnow()}])


async def test_bound_user_gets_their_own_records(records, dispatcher):
    _bind(records["factory"], "test-user", records["demo_id"])
    tracker = make_tracker([user_event("我的优待证办好了没", "query_my_benefits")],
                           slots={"service_phone": "021-12345678"})
    events = await ActionQueryMyBenefits().run(dispatcher, tracker, {})
    assert events == []
    [message] = dispatcher.messages
    text = message["text"]
    assert text.startswith("张*军您好")
    assert "优待证：制卡中（12月2日）" in text and "帮扶援助申请（BFDEMO0000001）：审核中（11月30日）" in text
    assert "残疾军人（十级）" in text
    assert text.endswith("咨询电话：021-12345678")
    assert "张建军" not in text  # the full name is not repeated back into chat


async def test_unbound_user_is_offered_binding(records, dispatcher):
    _bind(records["factory"], "someone-else", records["demo_id"])
    tracker = make_tracker([user_event("我能享受哪些待遇", "query_my_benefits")])
    await ActionQueryMyBenefits().run(dispatcher, tracker, {})
    assert [m["response"] for m in dispatcher.messages] == ["utter_benefits_need_binding"]


async def test_privacy_notice_and_back_to_listening(dispatcher):
    tracker = make_tracker([user_event("你好", "greet")])
    events = await ActionPrivacyNotice().run(dispatcher, tracker, {})
    assert [(e["event"], e.get("name")) for e in events] == [("slot", "privacy_notice_given"),
                                                             ("action", "action_listen")]
    assert events[0]["value"] is True
    assert [m["response"] for m in dispatcher.messages] == ["utter_privacy_notice"]


async def test_privacy_notice_not_repeated(dispatcher):
    tracker = make_tracker([user_event("你好", "greet")], slots={"privacy_notice_given": True})
    events = await ActionPrivacyNotice().run(dispatcher, tracker, {})
    assert [(e["event"], e.get("name")) for e in events] == [("action", "action_listen")]
    assert dispatcher.messages == []
