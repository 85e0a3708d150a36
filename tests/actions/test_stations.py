"""action_find_station against a migrated SQLite database with data/stations.yml loaded."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from actions import stations as station_actions
from actions.stations import ActionFindStation
from bot import idcard
from bot.db.models import Station, Veteran, WechatBinding
from bot.db.session import session_scope
from bot.services.stations import SHANGHAI
from tests.conftest import bot_event, make_tracker, user_event

# A Thursday morning: every station is open.
THURSDAY_10AM = dt.datetime(2026, 10, 15, 10, 0, tzinfo=SHANGHAI)


@pytest.fixture
def factory(stations_db, monkeypatch):
    monkeypatch.setattr(station_actions, "now", lambda: THURSDAY_10AM)
    return stations_db


def bind_veteran(factory, vault, openid: str, street, community, station_code=None) -> None:
    """A veteran on the roster, bound to this WeChat user."""
    birth = dt.date(1970, 3, 8)
    protected = vault.protect_id(idcard.make("310114", birth, 31))
    with session_scope(factory) as session:
        station = None
        if station_code:
            station = session.execute(select(Station).where(Station.code == station_code)).scalar_one()
        veteran = Veteran(
            name="李建军", id_hash=protected.lookup, id_cipher=protected.cipher, id_masked=protected.masked,
            birth_date=birth, gender="男", district="嘉定区", street=street, community=community,
            station=station,
        )
        session.add(veteran)
        session.flush()
        session.add(WechatBinding(openid=openid, veteran_id=veteran.id))


async def reply(dispatcher, text, slots=None, **parse):
    tracker = make_tracker([user_event(text, "find_station", **parse)], slots=slots)
    events = await ActionFindStation().run(dispatcher, tracker, {})
    assert events == []
    assert len(dispatcher.messages) == 1
    return dispatcher.messages[0]["text"]


async def test_a_place_in_the_message(factory, dispatcher):
    text = await reply(dispatcher, "菊园新区附近的服务站在哪", slots={"service_phone": "021-69590000"})
    assert text.startswith("【菊园新区退役军人服务站】\n地址：")
    assert "今日办公时间：9:00—11:30，13:30—17:00" in text
    assert "现在正在办公" in text
    assert text.endswith("如需其他帮助，请拨打服务电话 021-69590000。")


async def test_the_station_entity_comes_first(factory, dispatcher):
    entities = [{"entity": "station", "value": "南翔", "start": 1, "end": 3}]
    text = await reply(dispatcher, "去南翔还是安亭好", entities=entities)
    assert "【南翔镇退役军人服务站】" in text
    assert "安亭" not in text


async def test_a_community_comes_with_its_town_station(factory, dispatcher):
    text = await reply(dispatcher, "我住在黄渡社区，去哪里办事")
    assert text.startswith("为您找到以下服务站：")
    assert text.index("【安亭镇黄渡社区退役军人服务站】") < text.index("【安亭镇退役军人服务站】")


async def test_at_most_two_stations(factory, dispatcher):
    text = await reply(dispatcher, "安亭、南翔、江桥哪个近")
    assert text.count("【") == 2


async def test_a_shared_location(factory, dispatcher):
    slots = {"latitude": 31.2530, "longitude": 121.3295}  # near 江桥镇's station
    text = await reply(dispatcher, "最近的服务站在哪", slots=slots)
    assert text.startswith("离您发送的位置最近的服务站：\n\n【江桥镇退役军人服务站】\n距离：约0.")
    assert text.count("【") == 2
    assert text.endswith("如需其他帮助，请拨打服务电话 021-69599999。")  # no slot: the configured phone


async def test_a_named_place_beats_the_shared_location(factory, dispatcher):
    text = await reply(dispatcher, "外冈的服务站", slots={"latitude": 31.2530, "longitude": 121.3295})
    assert text.startswith("【外冈镇退役军人服务站】")
    assert "距离" not in text


async def test_an_unusable_location_is_ignored(factory, dispatcher):
    text = await reply(dispatcher, "最近的服务站在哪", slots={"latitude": "不知道", "longitude": None})
    assert text.startswith("请告诉我您住在哪个街道（镇）或村（社区）")


async def test_the_bound_veterans_household(factory, dispatcher, vault):
    bind_veteran(factory, vault, "test-user", "马陆镇", "大裕村")
    text = await reply(dispatcher, "最近的服务站在哪")
    assert text.startswith("根据您登记的户籍所在地，您可以到以下服务站办理：")
    assert text.index("【马陆镇大裕村退役军人服务站】") < text.index("【马陆镇退役军人服务站】")
    assert "今日办公时间：8:30—11:00，13:00—16:00" in text  # a village's hours


async def test_the_veterans_assigned_station_wins_over_the_address(factory, dispatcher, vault):
    bind_veteran(factory, vault, "test-user", "马陆镇", "大裕村", station_code="JD-ML-BQ")
    text = await reply(dispatcher, "服务站在哪")
    assert "【马陆镇包桥村退役军人服务站】" in text
    assert "大裕村" not in text


async def test_another_users_binding_is_not_used(factory, dispatcher, vault):
    bind_veteran(factory, vault, "someone-else", "马陆镇", "大裕村")
    text = await reply(dispatcher, "服务站在哪")
    assert "马陆" not in text


async def test_no_evidence_asks_where_and_offers_the_centre(factory, dispatcher):
    text = await reply(dispatcher, "最近的服务站在哪", slots={"service_phone": "021-69590000"})
    assert text.startswith("请告诉我您住在哪个街道（镇）或村（社区）")
    assert "发送您的位置" in text
    assert "【嘉定区退役军人服务中心】\n地址：上海市嘉定区博乐路118号\n电话：021-69591000" in text
    assert text.endswith("如需其他帮助，请拨打服务电话 021-69590000。")


async def test_on_a_holiday_the_answer_says_when_to_come(factory, dispatcher, monkeypatch):
    monkeypatch.setattr(station_actions, "now", lambda: dt.datetime(2026, 10, 2, 10, 0, tzinfo=SHANGHAI))
    text = await reply(dispatcher, "安亭镇服务站今天开门吗")
    assert "今日（国庆节假期）不办公。" in text
    assert "下一个办公日：10月8日（周四）" in text


def test_the_action_is_named_for_the_domain():
    assert ActionFindStation().name() == "action_find_station"


# --- the answer to "请告诉我您住在哪个街道（镇）…" -------------------------------------------------


async def _asked_where(factory, dispatcher):
    """The conversation so far: the station finder, knowing nothing of the user, asked."""
    first = user_event("最近的服务站在哪", "find_station")
    await ActionFindStation().run(dispatcher, make_tracker([first]), {})
    (asked,) = dispatcher.messages
    assert asked["text"].startswith("请告诉我您住在哪个街道（镇）")
    dispatcher.messages.clear()
    return [first, {"event": "action", "name": "action_find_station"}, bot_event(asked["text"]),
            {"event": "action", "name": "action_listen"}]


@pytest.mark.parametrize("text,place,station", [
    ("安亭", "安亭", "【安亭镇退役军人服务站】"),
    ("马陆", "马陆", "【马陆镇退役军人服务站】"),
    ("我住外冈", "外冈", "【外冈镇退役军人服务站】"),
    ("江桥镇", "江桥镇", "【江桥镇退役军人服务站】"),
])
async def test_a_bare_place_answers_the_question_where(factory, dispatcher, text, place, station):
    # The NLU reads these as inform, with the station entity; a rule brings them here.
    before = await _asked_where(factory, dispatcher)
    start = text.index(place)
    entities = [{"entity": "station", "value": place, "start": start, "end": start + len(place)}]
    answer = user_event(text, "inform", entities=entities)
    events = await ActionFindStation().run(dispatcher, make_tracker(before + [answer]), {})
    assert events == [] and len(dispatcher.messages) == 1
    reply_text = dispatcher.messages[0]["text"]
    assert reply_text.startswith(station)
    assert "今日办公时间：" in reply_text and "现在正在办公" in reply_text  # the fixed Thursday morning
    assert reply_text.endswith("如需其他帮助，请拨打服务电话 021-69599999。")


async def test_an_answer_naming_no_place_is_asked_again(factory, dispatcher):
    before = await _asked_where(factory, dispatcher)
    await ActionFindStation().run(dispatcher, make_tracker(before + [user_event("就那边", "inform")]), {})
    assert dispatcher.messages[0]["text"].startswith("请告诉我您住在哪个街道（镇）")


async def test_an_inform_after_a_station_answer_is_not_taken_for_a_place(factory, dispatcher):
    # The rule brings every inform after the station finder here; "明天上午" names no place
    # and answers no question of ours: the usual answer to a bare inform, not the centre.
    first = user_event("安亭镇服务站在哪", "find_station")
    shown = bot_event("【安亭镇退役军人服务站】\n地址：…")
    later = user_event("明天上午", "inform")
    events = await ActionFindStation().run(dispatcher, make_tracker([first, shown, later]), {})
    assert events == []
    assert dispatcher.messages == [{**dispatcher.messages[0], "response": "utter_inform_without_context"}]
    assert not dispatcher.messages[0].get("text")


async def test_another_place_after_a_station_answer_is_found(factory, dispatcher):
    first = user_event("安亭镇服务站在哪", "find_station")
    shown = bot_event("【安亭镇退役军人服务站】\n地址：…")
    entities = [{"entity": "station", "value": "南翔", "start": 0, "end": 2}]
    other = user_event("南翔呢", "inform", entities=entities)
    await ActionFindStation().run(dispatcher, make_tracker([first, shown, other]), {})
    assert dispatcher.messages[0]["text"].startswith("【南翔镇退役军人服务站】")
