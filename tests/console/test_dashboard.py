"""数据看板 through the real app (create_app + setup_console), on SQLite and PostgreSQL:
each role opens it, the charts carry the figures, trainers see no case figures, a
station sees its own area's, and an unknown period falls back to 7 days. The
dashboard's clock is fixed (bot.console.dashboard.now_utc), so "today" does not
depend on when the tests run."""

from __future__ import annotations

import datetime as dt
import re
from typing import List, Optional

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

import bot.console.dashboard as pages
from bot.console.charts import bar_chart, hbar_chart, nice_ceiling
from bot.console.dashboard import duration
from bot.db.session import session_scope
from bot.gateway.app import PathOnlyAccessLogger
from bot.services import complaints as cs
from bot.services import handoff
from bot.services.stations import SHANGHAI
from tests.console.helpers import build_console_app, make_settings, sign_in
from tests.conftest import station_id as station

NOW = dt.datetime(2026, 12, 8, 15, 0, tzinfo=SHANGHAI).astimezone(dt.timezone.utc)  # a Tuesday afternoon
MINUTE = dt.timedelta(minutes=1)
DAY = dt.timedelta(days=1)


def user(text: str, intent: str, at: dt.datetime, confidence: float = 0.95) -> UserUttered:
    parse = {"text": text, "intent": {"name": intent, "confidence": confidence}, "entities": []}
    return UserUttered(text, intent=parse["intent"], parse_data=parse, timestamp=at.timestamp())


def answer(name: str, at: dt.datetime) -> List[Event]:
    return [ActionExecuted(name, timestamp=at.timestamp() + 1), BotUttered("好的", timestamp=at.timestamp() + 1.1),
            ActionExecuted("action_listen", timestamp=at.timestamp() + 2)]


# Three messages today (one not understood) from two users, one three days ago.
TODAY_1, TODAY_2, TODAY_3, EARLIER = NOW - 30 * MINUTE, NOW - 20 * MINUTE, NOW - 10 * MINUTE, NOW - 3 * DAY
CONVERSATIONS = {
    "u1": [user("你好", "greet", TODAY_1), *answer("utter_greet", TODAY_1),
           user("嗯那个", "nlu_fallback", TODAY_2, 0.2), *answer("action_two_stage_fallback", TODAY_2)],
    "u2": [user("你好", "greet", EARLIER), *answer("utter_greet", EARLIER),
           user("找服务站", "find_station", TODAY_3), *answer("action_find_station", TODAY_3)],
}


async def write_tracker_store(path) -> None:
    """The conversations, saved by Rasa's own SQL tracker store."""
    store = SQLTrackerStore(dialect="sqlite", db=str(path))
    for sender, events in CONVERSATIONS.items():
        tracker = DialogueStateTracker(sender, slots=[])
        for event in events:
            tracker.update(event)
        await store.save(tracker)
    store.engine.dispose()


@pytest.fixture
def case_data(accounts, vault):
    """Handoffs and complaints in 安亭 (JD-AT) and 马陆 (JD-ML)."""
    at, ml = station(accounts, "JD-AT"), station(accounts, "JD-ML")
    with session_scope(accounts) as session:
        for i, (wait, where) in enumerate(((120, at), (240, at), (360, ml))):
            view = handoff.open_handoff(session, f"h{i}", "request_human", NOW - 2 * DAY, station_id=where)
            handoff.claim(session, view.id, "李干事", NOW - 2 * DAY + dt.timedelta(seconds=wait))
        handoff.open_handoff(session, "h-wait", "request_human", NOW - 5 * MINUTE, station_id=ml)
        # Overdue (registered 20 days ago, 15 allowed): one in each area; one in time in 安亭.
        cs.register(session, vault, "c1", None, "待遇发放", "抚恤金没发", None, at, "wechat", None, False, NOW - 20 * DAY)
        cs.register(session, vault, "c2", None, "待遇发放", "抚恤金没发", None, ml, "wechat", None, False, NOW - 20 * DAY)
        cs.register(session, vault, "c3", None, "服务态度", "窗口没人", None, at, "wechat", None, False, NOW - DAY)
    return accounts


@pytest.fixture
async def dashboard_client(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault, monkeypatch):
    monkeypatch.setattr(pages, "now_utc", lambda: NOW)
    tracker = tmp_path / "tracker.db"
    settings = make_settings(database_url, tmp_path, VETBOT_TRACKER_DB=str(tracker))
    server = await aiohttp_server(build_console_app(settings, accounts, vault), access_log_class=PathOnlyAccessLogger)
    client = await aiohttp_client(server)
    client.tracker_path = tracker
    return client


async def open_dashboard(client, username: str, query: str = "") -> str:
    assert (await sign_in(client, username)).status == 303
    response = await client.get("/console/dashboard" + query)
    assert response.status == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = await response.text()
    assert "<script" not in html
    return html


def figure(html: str, name: str) -> Optional[str]:
    match = re.search(rf'<div class="name">{re.escape(name)}</div><div class="value">([^<]*)</div>', html)
    return match.group(1) if match else None


def beijing_day(moment: dt.datetime) -> str:
    return moment.astimezone(SHANGHAI).date().isoformat()


async def test_admin_sees_the_charts_with_the_figures(dashboard_client, case_data):
    await write_tracker_store(dashboard_client.tracker_path)
    html = await open_dashboard(dashboard_client, "admin1")
    assert "<strong>近7天</strong>" in html and "全区" in html
    assert html.count("<svg") == 3  # messages per day, top intents, complaints by state
    # Messages per day: the figures in the bars' titles and in the table.
    today = beijing_day(NOW)
    assert (figure(html, "用户消息"), figure(html, "会话")) == ("4", "3")  # today: u1 and u2; earlier: u2
    assert beijing_day(TODAY_1) == today
    assert re.search(rf"<title>{today}（周二）：用户消息3条，会话2个</title>", html)
    assert re.search(rf"<title>{beijing_day(EARLIER)}（周.）：用户消息1条，会话1个</title>", html)
    # Top intents with their Chinese names, counts and shares.
    assert "<title>打招呼：2条（50.0%）</title>" in html
    assert "<title>未识别（低置信度）：1条（25.0%）</title>" in html
    assert "<title>查找服务站：1条（25.0%）</title>" in html
    # Fallback rate and its counts.
    assert figure(html, "兜底率（未能理解）") == "25.0%" and "未理解 1 条 / 用户消息 4 条" in html
    # Handoffs: the 4 opened in the period (the test has more handoffs than conversations).
    assert figure(html, "转人工率") == "133.3%" and "转人工 4 次 / 全区会话 3 个" in html
    assert figure(html, "等待时间（中位数）") == "4分0秒" and figure(html, "正在等待") == "1"
    assert figure(html, "等待时间（90%在此之内）") == "5分36秒"  # 240 + 0.8 × 120 s
    # Complaints by state, the overdue count highlighted.
    assert "<title>已登记：3件</title>" in html and "在办投诉案件" in html
    assert re.search(r'<div class="figure alert"><div class="name">超期未办</div><div class="value">2</div>', html)
    assert "兜底率 = 未理解的消息数 ÷ 用户消息数" in html  # the definitions are on the page


async def test_a_station_sees_its_own_area_only(dashboard_client, case_data):
    await write_tracker_store(dashboard_client.tracker_path)
    html = await open_dashboard(dashboard_client, "wangkz")
    assert figure(html, "用户消息") == "4"  # the conversation figures are bot-wide
    assert "安亭镇退役军人服务站及下属" in html
    assert figure(html, "超期未办") == "1" and figure(html, "在办案件") == "2"
    assert "<title>已登记：2件</title>" in html
    assert figure(html, "正在等待") == "0" and "转人工 2 次" in html
    assert figure(html, "等待时间（中位数）") == "3分0秒"

    dashboard_client.session.cookie_jar.clear()  # another browser
    html = await open_dashboard(dashboard_client, "zhoumq")
    assert figure(html, "超期未办") == "1" and figure(html, "在办案件") == "1"
    assert figure(html, "正在等待") == "1" and "转人工 2 次" in html


async def test_district_sees_everything_of_its_district(dashboard_client, case_data):
    html = await open_dashboard(dashboard_client, "district1")
    assert figure(html, "超期未办") == "2" and figure(html, "在办案件") == "3"
    assert figure(html, "转人工率") == "—"  # no conversations yet: no rate, not a division by zero


async def test_trainer_sees_conversation_figures_but_no_case_figures(dashboard_client, case_data):
    await write_tracker_store(dashboard_client.tracker_path)
    html = await open_dashboard(dashboard_client, "trainer1")
    assert figure(html, "用户消息") == "4" and figure(html, "兜底率（未能理解）") == "25.0%"
    assert "每日用户消息数" in html and "<title>打招呼：2条（50.0%）</title>" in html
    for hidden in ("超期未办", "转人工率", "正在等待", "在办投诉案件", "等待时间", "已登记"):
        assert hidden not in html
    assert "不查看个案数据" in html and html.count("<svg") == 2


async def test_empty_data_says_so_politely(dashboard_client, accounts):
    html = await open_dashboard(dashboard_client, "admin1")
    assert not dashboard_client.tracker_path.exists()  # the dashboard does not create the tracker store
    assert html.count("暂无数据") == 3 and "<svg" not in html
    assert figure(html, "用户消息") == "0" and figure(html, "兜底率（未能理解）") == "—"
    assert figure(html, "等待时间（中位数）") == "—" and figure(html, "超期未办") == "0"


async def test_period_is_7_or_30_days_and_anything_else_is_7(dashboard_client, accounts):
    await write_tracker_store(dashboard_client.tracker_path)
    html = await open_dashboard(dashboard_client, "admin1", "?days=30")
    assert "<strong>近30天</strong>" in html and 'href="/console/dashboard?days=7"' in html
    assert html.count('<td class="num">') == 30 * 2 + 3 * 2 + 5  # days, intents, states
    first = (NOW.astimezone(SHANGHAI).date() - dt.timedelta(days=29)).isoformat()
    assert f"{first} 至 " in html
    for query in ("?days=14", "?days=abc", "?days=-7", "?days=", ""):
        html = await dashboard_client.get("/console/dashboard" + query)
        text = await html.text()
        assert html.status == 200 and "<strong>近7天</strong>" in text
        assert text.count("（周") >= 7


async def test_signed_out_goes_to_sign_in(dashboard_client, accounts):
    response = await dashboard_client.get("/console/dashboard", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login?next=/console/dashboard"


# --- the chart helper -----------------------------------------------------------------------------


def test_charts_escape_labels_and_show_no_empty_frame():
    svg = bar_chart("标题<x>", [("a&b", 3), ("c", 0)], x_label="日期", y_label="条数", unit="条")
    assert "<title>a&amp;b：3条</title>" in svg and "标题&lt;x&gt;" in svg and "<x>" not in svg
    assert ">日期</text>" in svg and ">条数</text>" in svg
    assert bar_chart("t", [("a", 0)], x_label="x", y_label="y") == '<p class="empty">暂无数据</p>'
    assert hbar_chart("t", [], x_label="x", y_label="y") == '<p class="empty">暂无数据</p>'
    assert "<title>意图：5条</title>" in hbar_chart("t", [("意图", 5, "5条")], x_label="x", y_label="y")
    assert nice_ceiling(7) == (8, 2) and nice_ceiling(1) == (1, 1) and nice_ceiling(930) == (1000, 250)
    assert [duration(s) for s in (None, 0, 59.6, 200, 3900, 90000)] == ["—", "0秒", "1分0秒", "3分20秒",
                                                                        "1小时5分", "1天1小时"]
