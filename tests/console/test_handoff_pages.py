"""人工接待 pages through the real app: the queue (scope, order, last message), a transcript
read from a tracker store written by Rasa's own SQLTrackerStore (intent and confidence,
staff lines, pauses), claim, notes, the live updates, taking over, refusals; on SQLite
and PostgreSQL. Replying and handing back through real Rasa and the mock WeChat API are
in tests/e2e (test_console_browser.py, test_gateway_wechat.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActionExecuted, BotUttered, ConversationPaused, UserUttered
from sqlalchemy import func, select

from bot.db.models import AuditEntry, HandoffNote, WechatBinding
from bot.db.session import session_scope
from bot.gateway.app import PathOnlyAccessLogger
from bot.services import handoff
from tests.console.helpers import build_console_app, form_csrf, make_settings, session_token, sign_in
from tests.services.veterans import add_veteran
from tests.conftest import station_id

T0 = 1_795_000_000.0  # 2026-11-18 in epoch seconds: the tracker events' clock


def bind(factory, vault, openid, station_code, name):
    entry = add_veteran(factory, vault, name=name, sequence=100 + len(openid) + sum(map(ord, openid)) % 800)
    with session_scope(factory) as session:
        from bot.db.models import Veteran

        session.get(Veteran, entry.veteran_id).station_id = station_id(factory, station_code)
        session.add(WechatBinding(openid=openid, veteran_id=entry.veteran_id))
    return entry


async def talk(store: SQLTrackerStore, sender: str, *events) -> None:
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    for event in events:
        tracker.update(event)
    await store.save(tracker)


def said(text, intent, confidence, at, topic=None):
    parse = {"intent": {"name": intent, "confidence": confidence}, "entities": [], "text": text}
    if topic:  # a policy question: the response selector's topic, as Rasa records it
        parse["response_selector"] = {"faq": {"response": {"intent_response_key": topic, "confidence": 0.9}}}
    return UserUttered(text, intent={"name": intent, "confidence": confidence}, parse_data=parse, timestamp=T0 + at)


@pytest.fixture
def store(tmp_path):
    return SQLTrackerStore(dialect="sqlite", db=str(tmp_path / "tracker.db"))


@pytest.fixture
def world(accounts, vault, store):
    """Three users in the queue: 安亭 (bound), 马陆 (bound, urgent), and one not bound."""
    now = dt.datetime.now(dt.timezone.utc)
    bind(accounts, vault, "o-anting", "JD-AT", "孙建国")
    bind(accounts, vault, "o-malu", "JD-ML", "钱卫东")
    with session_scope(accounts) as session:
        ids = {
            "anting": handoff.open_handoff(session, "o-anting", "request_human", now - dt.timedelta(minutes=12),
                                           station_id=station_id(accounts, "JD-AT")).id,
            "malu": handoff.open_handoff(session, "o-malu", "urgent", now - dt.timedelta(minutes=3), urgent=True,
                                         case_number="TS20261123-0001", station_id=station_id(accounts, "JD-ML")).id,
            "nobody": handoff.open_handoff(session, "o-nobody", "request_human", now - dt.timedelta(minutes=30)).id,
        }
    return ids


@pytest.fixture
async def client(aiohttp_server, aiohttp_client, database_url, tmp_path, accounts, vault, store):
    settings = make_settings(database_url, tmp_path, VETBOT_TRACKER_DB=str(tmp_path / "tracker.db"),
                             RASA_URL="http://127.0.0.1:9")  # nothing listens there
    server = await aiohttp_server(build_console_app(settings, accounts, vault), access_log_class=PathOnlyAccessLogger)
    return await aiohttp_client(server)


async def test_queue_in_scope_urgent_first_with_the_last_message(client, world, store):
    await talk(store, "o-anting", said("我想问下优待证", "faq", 0.91, 0), BotUttered("优待证……", timestamp=T0 + 1),
               said("转人工", "request_human", 0.99, 2), ConversationPaused(timestamp=T0 + 3),
               said("我的证三个月还没下来", "nlu_fallback", 0.31, 60))
    await talk(store, "o-malu", said("我不想活了", "file_complaint", 0.88, 5))

    await sign_in(client, "district1")
    html = await (await client.get("/console/handoffs")).text()
    rows = re.findall(r'data-handoff="(\d+)"', html)
    assert rows == [str(world["malu"]), str(world["nobody"]), str(world["anting"])]  # urgent, then the oldest
    assert "紧急" in html and "TS20261123-0001" in html and "我的证三个月还没下来" in html
    assert "已等候12分钟" in html and "区中心（未分配站点）" in html

    client.session.cookie_jar.clear()
    await sign_in(client, "wangkz")
    html = await (await client.get("/console/handoffs")).text()
    assert re.findall(r'data-handoff="(\d+)"', html) == [str(world["anting"])]
    assert "我不想活了" not in html

    client.session.cookie_jar.clear()
    await sign_in(client, "trainer1")
    assert (await client.get("/console/handoffs")).status == 403


async def test_transcript_shows_intents_staff_and_pauses_and_is_audited(client, world, store, accounts):
    await talk(store, "o-anting", said("我想问下优待证", "faq", 0.91, 0, topic="faq/preferential_card"),
               BotUttered("优待证由户籍地退役军人服务站受理。", {"buttons": [{"title": "办理材料", "payload": "/x"}]},
                          timestamp=T0 + 1),
               said("转人工", "request_human", 0.99, 2), ConversationPaused(timestamp=T0 + 3),
               ActionExecuted("action_listen", timestamp=T0 + 3),
               said("在吗", "greet", 0.42, 30),
               BotUttered("您好，我是安亭镇服务站的王科长。", metadata={"staff": "王科长"}, timestamp=T0 + 40))
    await sign_in(client, "wangkz")
    response = await client.get(f"/console/handoffs/{world['anting']}")
    html = await response.text()
    assert response.status == 200
    # Beside each user message: what the NLU read, in Chinese and by name, and how sure it was.
    assert "退役军人优待证政策 faq/preferential_card · 0.91" in html and "转人工服务 request_human · 0.99" in html
    assert '<span class="nlu low"' in html and "greet · 0.42" in html  # low confidence marked
    assert "工作人员 王科长" in html and "您好，我是安亭镇服务站的王科长。" in html
    assert "会话已暂停" in html and "选项：办理材料" in html
    assert "孙建国（已绑定身份）" in html and "安亭镇退役军人服务站" in html
    assert html.index("我想问下优待证") < html.index("在吗") < html.index("我是安亭镇")  # in order
    await client.get(f"/console/handoffs/{world['anting']}")
    with session_scope(accounts) as session:
        views = session.execute(select(func.count()).select_from(AuditEntry)
                                .where(AuditEntry.action == "handoff.view")).scalar_one()
    assert views == 2  # every opening


async def test_another_areas_handoff_is_not_found(client, world, accounts):
    await sign_in(client, "wangkz")
    missing = await client.get("/console/handoffs/999999")
    assert missing.status == 404
    body = await missing.text()
    for other in (world["malu"], world["nobody"]):
        for path in ("", "/live"):
            response = await client.get(f"/console/handoffs/{other}{path}")
            assert response.status == 404 and await response.text() == body
    # Not by a form either, even with the right token for the path.
    for action in ("claim", "note", "reply", "close"):
        path = f"/console/handoffs/{world['malu']}/{action}"
        response = await client.post(path, data={"csrf": session_token(accounts, "wangkz", path), "text": "x"})
        assert response.status == 404 and await response.text() == body
    for openid in ("o-malu", "o-nobody"):
        path = "/console/conversations/take-over"
        response = await client.post(path, data={"csrf": session_token(accounts, "wangkz", path), "openid": openid})
        assert response.status == 404 and await response.text() == body


async def test_claim_then_a_colleague_cannot(client, world, accounts):
    await sign_in(client, "wangkz")
    page = await (await client.get(f"/console/handoffs/{world['anting']}")).text()
    path = f"/console/handoffs/{world['anting']}/claim"
    response = await client.post(path, data={"csrf": form_csrf(page, path)}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"].endswith("?done=claimed")
    html = await (await client.get(response.headers["Location"])).text()
    assert "已接待" in html and 'id="reply-form"' in html and "结束人工服务，交还机器人" in html
    with session_scope(accounts) as session:
        assert handoff.get(session, world["anting"]).claimed_by == "wangkz"

    client.session.cookie_jar.clear()
    await sign_in(client, "district1")
    page = await (await client.get(f"/console/handoffs/{world['anting']}")).text()
    assert "王科长接待中" in page and 'id="reply-form"' not in page  # only the one who holds it answers
    with session_scope(accounts) as session:  # claimed meanwhile, by someone else, while the page was open
        handoff.claim(session, world["nobody"], "admin1", dt.datetime.now(dt.timezone.utc))
    page = await (await client.get(f"/console/handoffs/{world['nobody']}")).text()
    assert "接待此会话" not in page


async def test_reply_without_a_gateway_keeps_the_draft(client, world, accounts):
    await sign_in(client, "wangkz")
    with session_scope(accounts) as session:
        handoff.claim(session, world["anting"], "wangkz", dt.datetime.now(dt.timezone.utc))
    page = await (await client.get(f"/console/handoffs/{world['anting']}")).text()
    path = f"/console/handoffs/{world['anting']}/reply"
    response = await client.post(path, data={"csrf": form_csrf(page, path), "text": "您的优待证已在制作中"})
    html = await response.text()
    assert response.status == 409 and "微信网关未启动" in html and "您的优待证已在制作中</textarea>" in html
    response = await client.post(path, data={"csrf": form_csrf(page, path), "text": "  "})
    assert response.status == 400 and "回复内容不能为空" in await response.text()


async def test_notes_and_a_post_without_csrf(client, world, accounts):
    await sign_in(client, "wangkz")
    page = await (await client.get(f"/console/handoffs/{world['anting']}")).text()
    path = f"/console/handoffs/{world['anting']}/note"
    assert (await client.post(path, data={"text": "没有令牌"})).status == 403
    response = await client.post(path, data={"csrf": form_csrf(page, path), "text": "   "})
    assert response.status == 400 and "备注内容不能为空" in await response.text()
    response = await client.post(path, data={"csrf": form_csrf(page, path), "text": "已电话联系，明天回访"},
                                 allow_redirects=False)
    assert response.status == 303
    html = await (await client.get(response.headers["Location"])).text()
    assert "王科长：</span>已电话联系，明天回访" in html and "备注已保存" in html
    with session_scope(accounts) as session:
        assert session.execute(select(func.count()).select_from(HandoffNote)).scalar_one() == 1
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
    assert "handoff.note" in actions


async def test_the_transcript_and_the_queue_update_live(client, world, store, accounts):
    await talk(store, "o-anting", said("转人工", "request_human", 0.99, 0))
    await sign_in(client, "wangkz")
    page = await (await client.get(f"/console/handoffs/{world['anting']}")).text()
    after = re.search(r'data-after="(\d+)"', page).group(1)
    sig = re.search(r'data-sig="([^"]+)"', page).group(1)

    async def later():
        await asyncio.sleep(0.3)
        await talk(store, "o-anting", said("我的电话是[手机号已隐去]", "inform", 0.77, 90))

    writer = asyncio.ensure_future(later())
    response = await client.get(f"/console/handoffs/{world['anting']}/live",
                                params={"after": after, "sig": sig, "notes": "0"})
    await writer
    data = await response.json()
    assert "我的电话是[手机号已隐去]" in data["html"] and "inform · 0.77" in data["html"]
    assert int(data["after"]) > int(after) and data["stale"] is False and data["notes_html"] is None

    queue = await (await client.get("/console/handoffs")).text()
    queue_sig = re.search(r'id="queue-rows"[^>]*data-sig="([^"]+)"', queue).group(1)

    async def arrives():
        await asyncio.sleep(0.3)
        with session_scope(accounts) as session:
            handoff.open_handoff(session, "o-new", "fallback", dt.datetime.now(dt.timezone.utc),
                                 station_id=station_id(accounts, "JD-AT"))

    writer = asyncio.ensure_future(arrives())
    response = await client.get("/console/handoffs/live", params={"sig": queue_sig})
    await writer
    data = await response.json()
    assert data["sig"] != queue_sig and data["count"] == 2 and "机器人两次未能理解" in data["html"]


async def test_recent_conversations_in_scope_and_taking_over_refused_outside(client, world, store, vault, accounts):
    bind(accounts, vault, "o-anting-2", "JD-AT", "李志刚")
    await talk(store, "o-anting", said("优待证", "faq", 0.9, 0))
    await talk(store, "o-anting-2", said("帮扶申请怎么办", "faq", 0.9, 1))
    await talk(store, "o-malu", said("马陆的问题", "faq", 0.9, 1))
    await talk(store, "o-other", said("随便问问", "faq", 0.9, 2))
    await sign_in(client, "wangkz")
    html = await (await client.get("/console/conversations")).text()
    assert "孙建国" in html and "李志刚" in html and "马陆的问题" not in html and "随便问问" not in html
    assert f'href="/console/handoffs/{world["anting"]}">人工接待中' in html  # already with staff: opened, not taken
    assert html.count('name="openid"') == 1 and 'value="o-anting-2"' in html
    token = form_csrf(html, "/console/conversations/take-over")
    for openid in ("o-malu", "o-other", "o-missing"):
        response = await client.post("/console/conversations/take-over", data={"csrf": token, "openid": openid})
        assert response.status == 404
    with session_scope(accounts) as session:
        assert handoff.current(session, "o-malu").claimed_by is None
    # Inside the area, but this app has no WeChat gateway to pause and tell the user: said so, nothing half done.
    response = await client.post("/console/conversations/take-over", data={"csrf": token, "openid": "o-anting-2"})
    assert response.status == 409 and "微信网关未启动" in await response.text()
    with session_scope(accounts) as session:
        assert handoff.current(session, "o-anting-2") is None

    client.session.cookie_jar.clear()
    await sign_in(client, "district1")
    html = await (await client.get("/console/conversations")).text()
    assert "随便问问" in html and "马陆的问题" in html


async def test_taking_over_from_a_complaint_in_the_area_only(client, world, accounts, vault):
    from bot.services import complaints

    now = dt.datetime.now(dt.timezone.utc)
    with session_scope(accounts) as session:
        ours = complaints.register(session, vault, "o-anting-3", None, None, "安亭镇的补贴没有发放", "安亭镇",
                                   station_id(accounts, "JD-AT"), "wechat", None, False, now).id
        theirs = complaints.register(session, vault, "o-malu-2", None, None, "马陆镇的补贴没有发放", "马陆镇",
                                     station_id(accounts, "JD-ML"), "wechat", None, False, now).id
        with_staff = complaints.register(session, vault, "o-anting", None, None, "优待证三个月没下来", "安亭镇",
                                         station_id(accounts, "JD-AT"), "wechat", None, False, now).id
    await sign_in(client, "wangkz")
    html = await (await client.get(f"/console/complaints/{with_staff}")).text()
    assert f'href="/console/handoffs/{world["anting"]}">打开对话' in html  # already with staff
    html = await (await client.get(f"/console/complaints/{ours}")).text()
    path = f"/console/complaints/{ours}/take-over"
    token = form_csrf(html, path)
    response = await client.post(path, data={"csrf": token})
    assert response.status == 409 and "微信网关未启动" in await response.text()  # this app has no gateway
    path = f"/console/complaints/{theirs}/take-over"
    response = await client.post(path, data={"csrf": session_token(accounts, "wangkz", path)})
    assert response.status == 404  # with the right token too
    with session_scope(accounts) as session:
        assert handoff.current(session, "o-anting-3") is None and handoff.current(session, "o-malu-2") is None


async def test_a_handoff_the_user_withdrew_says_so_and_the_next_one_counts_it(client, world, accounts):
    """The user left the queue before anyone took it ("不用人工了", bot.gateway.handoff): the
    page says the user withdrew, not that staff handed back; a later handoff's page counts it."""
    now = dt.datetime.now(dt.timezone.utc)
    with session_scope(accounts) as session:
        handoff.withdraw(session, world["anting"], now)
        again = handoff.open_handoff(session, "o-anting", "request_human", now,
                                     station_id=station_id(accounts, "JD-AT")).id
        handoff.claim(session, again, "wangkz", now)
        handoff.flag_stop_request(session, again, "算了", now)
    await sign_in(client, "wangkz")
    html = await (await client.get(f"/console/handoffs/{world['anting']}")).text()
    assert "用户已撤回" in html and "撤回人工服务请求（无人接待前取消）" in html and "交还机器人。" not in html
    html = await (await client.get(f"/console/handoffs/{again}")).text()
    assert "此前转人工1次（其中用户撤回1次）" in html
    # Held by staff, the user asked to stop: a note in the side panel says so.
    assert f"{handoff.SYSTEM_AUTHOR}：</span>用户表示不再需要人工服务（“算了”）" in html
    with session_scope(accounts) as session:
        handoff.close(session, again, "wangkz", now)
    html = await (await client.get(f"/console/handoffs/{again}")).text()
    assert "由王科长交还机器人" in html and "用户已撤回" not in html
