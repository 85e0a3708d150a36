"""投诉登记簿 in the console (bot.console.complaints): the register's filters, paging and
data scope, one case's page with its audit trail, and the whole workflow through the
pages' own forms, through the real aiohttp application, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import logging
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from bot.console import complaints as pages
from bot.db.models import AuditEntry, CaseEvent, ComplaintCase, Outbox, StaffAccount, Veteran
from bot.db.session import session_scope
from bot.services import complaints as cs
from tests.console.helpers import audit_actions, form_csrf, session_token, sign_in
from tests.services.veterans import add_veteran
from tests.conftest import station_id as sid

PHONE = "13912345678"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def file_case(factory, vault, description="我的抚恤金三个月没发了", category="待遇发放", station=None,
              urgent=False, at=None, openid="o-user", reply_channel="case_phone", phone=PHONE, veteran_id=None):
    """Register a case as the chat does (``station``: a station code)."""
    station_id = sid(factory, station) if station else None
    with session_scope(factory) as session:
        return cs.register(session, vault, openid, veteran_id, category, description, None, station_id,
                           reply_channel, phone if reply_channel == "case_phone" else None, urgent, at or now())


def classify(factory, case_id, station=None, assigned_to=None):
    with session_scope(factory) as session:
        return cs.classify(session, case_id, "赵主任", "待遇发放", assigned_to,
                           sid(factory, station) if station else None, now=now())


def case_row(factory, case_id) -> ComplaintCase:
    with session_scope(factory) as session:
        row = session.get(ComplaintCase, case_id)
        session.expunge(row)
        return row


def events(factory, case_id):
    with session_scope(factory) as session:
        return session.execute(select(CaseEvent.kind, CaseEvent.action, CaseEvent.actor, CaseEvent.note)
                               .where(CaseEvent.case_id == case_id).order_by(CaseEvent.id)).all()


def audit_rows(factory, action):
    with session_scope(factory) as session:
        return session.execute(select(AuditEntry.staff_id, AuditEntry.object_type, AuditEntry.object_id,
                                      AuditEntry.detail)
                               .where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


async def signed_in(client, username):
    response = await sign_in(client, username)
    assert response.status == 303, f"{username} could not sign in"


def numbers(html: str):
    """The case numbers listed in the register, in order."""
    return re.findall(r'<td><a href="/console/complaints/\d+">(TS\d{8}-\d{4})</a></td>', html)


async def register_page(client, query=""):
    response = await client.get("/console/complaints" + query)
    assert response.status == 200
    return await response.text()


async def case_page(client, case_id):
    response = await client.get(f"/console/complaints/{case_id}")
    assert response.status == 200
    return await response.text()


async def step(client, case_id, action, **form):
    """Submit one of the case page's forms, with the token the page gave it."""
    path = f"/console/complaints/{case_id}/{action}"
    form["csrf"] = form_csrf(await case_page(client, case_id), path)
    return await client.post(path, data=form, allow_redirects=False)


# --- the register ---------------------------------------------------------------------------


async def test_the_register_lists_newest_first_with_every_column(console_client, accounts, vault):
    old = file_case(accounts, vault, "安置工作一直没有落实" * 10, category="安置就业", station="JD-AT",
                    at=now() - dt.timedelta(days=40))
    urgent = file_case(accounts, vault, "服务站工作人员态度很差，不想活了", category="服务态度", station="JD-ML",
                       urgent=True)
    routed = file_case(accounts, vault, "优待证乘车不让用", category="优待落实")
    classify(accounts, routed.id, station="JD-AT")
    await signed_in(console_client, "admin1")
    html = await register_page(console_client)
    assert numbers(html) == [routed.case_number, urgent.case_number, old.case_number]
    assert "符合条件的共3件" in html
    row = re.search(rf"{old.case_number}.*?</tr>", html, re.S).group(0)
    assert old.created_at.strftime("%Y-%m-%d %H:%M") in row and "安置就业" in row and "已登记" in row
    assert old.due_at.strftime("%Y-%m-%d") in row and "超期" in row and "安亭镇退役军人服务站" in row
    assert ("安置工作一直没有落实" * 4)[:40] + "…" in row and "紧急" not in row  # the summary is cut short
    row = re.search(rf"{urgent.case_number}.*?</tr>", html, re.S).group(0)
    assert "紧急" in row and "马陆镇退役军人服务站" in row and "超期" not in row
    row = re.search(rf"{routed.case_number}.*?</tr>", html, re.S).group(0)
    assert "已受理转办" in row and "承办：安亭镇退役军人服务站" in row
    assert "<script" not in html


async def test_the_register_filters_and_keeps_them_in_the_url(console_client, accounts, vault):
    at_case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    ml_case = file_case(accounts, vault, "态度差", category="服务态度", station="JD-ML", urgent=True)
    late = file_case(accounts, vault, "找工作没人管", category="安置就业", at=now() - dt.timedelta(days=40))
    routed = file_case(accounts, vault, "优待证不认", category="优待落实")
    classify(accounts, routed.id, station="JD-AT")
    loose = file_case(accounts, vault, "其他的事", category="其他")
    at, ml = sid(accounts, "JD-AT"), sid(accounts, "JD-ML")
    await signed_in(console_client, "district1")

    assert numbers(await register_page(console_client, "?state=classified")) == [routed.case_number]
    assert numbers(await register_page(console_client, "?category=服务态度")) == [ml_case.case_number]
    # A station's cases: those about it and those it handles.
    html = await register_page(console_client, f"?station={at}")
    assert numbers(html) == [routed.case_number, at_case.case_number]
    assert f'<option value="{at}" selected>安亭镇退役军人服务站</option>' in html
    assert numbers(await register_page(console_client, f"?station={ml}")) == [ml_case.case_number]
    assert numbers(await register_page(console_client, "?station=none")) == [loose.case_number, late.case_number]
    html = await register_page(console_client, "?overdue=1")
    assert numbers(html) == [late.case_number] and 'name="overdue" value="1" checked' in html
    assert numbers(await register_page(console_client, "?urgent=1")) == [ml_case.case_number]
    assert numbers(await register_page(console_client, f"?urgent=1&station={at}")) == []
    html = await register_page(console_client, "?category=安置就业&overdue=1")
    assert numbers(html) == [late.case_number] and "符合条件的共1件" in html

    # Values the page does not offer are ignored, politely: never an error page.
    html = await register_page(console_client, "?state=lost&category=<b>&station=abc&overdue=yes&urgent=2"
                                               "&before=x")
    assert len(numbers(html)) == 5 and "部分筛选条件无法识别，已忽略。" in html and "<b>" not in html
    html = await register_page(console_client, "?station=999999&state=registered")
    assert "已忽略" in html and routed.case_number not in numbers(html) and len(numbers(html)) == 4


async def test_the_register_pages_by_id(console_client, accounts, vault, monkeypatch):
    monkeypatch.setattr(pages, "PAGE", 3)
    monkeypatch.setattr(pages, "COUNT_CAP", 5)
    cases = [file_case(accounts, vault, f"第{n}件事", category="其他") for n in range(8)]
    newest = [c.case_number for c in reversed(cases)]
    await signed_in(console_client, "admin1")
    html = await register_page(console_client)
    assert numbers(html) == newest[:3] and "共5件以上" in html
    assert "上一页" not in html and "最新一页" not in html
    older = re.search(r'href="(/console/complaints\?before=\d+)">下一页', html).group(1)
    html = await register_page(console_client, older[len("/console/complaints"):])
    assert numbers(html) == newest[3:6]
    older = re.search(r'href="(/console/complaints\?before=\d+)">下一页', html).group(1)
    html = await register_page(console_client, older[len("/console/complaints"):])
    assert numbers(html) == newest[6:] and "下一页" not in html
    newer = re.search(r'href="(/console/complaints\?after=\d+)">上一页', html).group(1)
    html = await register_page(console_client, newer[len("/console/complaints"):])
    assert numbers(html) == newest[3:6] and "下一页" in html
    newer = re.search(r'href="(/console/complaints\?after=\d+)">上一页', html).group(1)
    html = await register_page(console_client, newer[len("/console/complaints"):])
    assert numbers(html) == newest[:3] and "上一页" not in html
    # The filters go along with the paging links.
    html = await register_page(console_client, "?category=其他&state=registered")
    assert re.search(r'href="/console/complaints\?state=registered&amp;category=%E5%85%B6%E4%BB%96&amp;before=\d+"',
                     html)
    html = await register_page(console_client, "?category=待遇发放")
    assert numbers(html) == [] and "没有符合条件的投诉" in html and "符合条件的共0件" in html


# --- data scope ----------------------------------------------------------------------------


@pytest.fixture
def spread(accounts, vault):
    """One case per corner of the map: 安亭 (the town and one of its communities), 马陆,
    no station at all, and one about no station routed to 安亭."""
    cases = SimpleNamespace(
        at=file_case(accounts, vault, "安亭的事", station="JD-AT"),
        at_community=file_case(accounts, vault, "黄渡社区的事", station="JD-AT-HD"),
        ml=file_case(accounts, vault, "马陆的事", station="JD-ML"),
        nowhere=file_case(accounts, vault, "没说哪里的事"),
        routed=file_case(accounts, vault, "转给安亭的事"),
    )
    classify(accounts, cases.routed.id, station="JD-AT")
    return cases


@pytest.mark.parametrize("username, sees", [
    ("wangkz", {"at", "at_community", "routed"}),
    ("zhoumq", {"ml"}),
    ("district1", {"at", "at_community", "ml", "nowhere", "routed"}),
    ("admin1", {"at", "at_community", "ml", "nowhere", "routed"}),
])
async def test_each_sees_the_cases_of_their_area(console_client, spread, username, sees):
    await signed_in(console_client, username)
    html = await register_page(console_client)
    expected = [getattr(spread, name).case_number for name in ("routed", "nowhere", "ml", "at_community", "at")
                if name in sees]
    assert numbers(html) == expected and f"符合条件的共{len(sees)}件" in html
    for name in ("at", "at_community", "ml", "nowhere", "routed"):
        case = getattr(spread, name)
        response = await console_client.get(f"/console/complaints/{case.id}")
        assert response.status == (200 if name in sees else 404), name
        if name in sees:
            assert case.case_number in await response.text()


async def test_station_select_offers_only_the_own_area(console_client, accounts, spread):
    await signed_in(console_client, "wangkz")
    html = await register_page(console_client)
    assert "安亭镇黄渡社区退役军人服务站" in html and "马陆镇退役军人服务站" not in html
    assert "未分配站点</option>" not in html
    # 马陆 typed into the URL is not one of wangkz's stations: ignored, not shown.
    html = await register_page(console_client, f"?station={sid(accounts, 'JD-ML')}")
    assert "已忽略" in html and spread.ml.case_number not in html and len(numbers(html)) == 3


async def test_another_areas_case_answers_like_a_missing_one(console_client, accounts, spread):
    await signed_in(console_client, "wangkz")
    outside = await console_client.get(f"/console/complaints/{spread.ml.id}")
    missing = await console_client.get("/console/complaints/999999")
    huge = await console_client.get("/console/complaints/99999999999999999999")
    assert outside.status == missing.status == huge.status == 404
    body = await outside.text()
    assert body == await missing.text() == await huge.text()
    assert spread.ml.case_number not in body and "马陆的事" not in body

    # Not by a form either, even with a valid token for the path.
    for action, form in (("note", {"note": "看看"}), ("classify", {"category": "其他", "assigned_to": "优抚科",
                                                                   "priority": "3"}),
                         ("phone", {})):
        path = f"/console/complaints/{spread.ml.id}/{action}"
        form["csrf"] = session_token(accounts, "wangkz", path)
        response = await console_client.post(path, data=form, allow_redirects=False)
        assert response.status == 404 and await response.text() == body
    assert [e.kind for e in events(accounts, spread.ml.id)] == ["transition"]
    assert case_row(accounts, spread.ml.id).state == "registered"
    assert not audit_rows(accounts, "complaint.view") and not audit_rows(accounts, "complaint.phone")


async def test_trainers_see_no_complaints(console_client, accounts, spread):
    await signed_in(console_client, "trainer1")
    for path in ("/console/complaints", f"/console/complaints/{spread.at.id}"):
        response = await console_client.get(path)
        html = await response.text()
        assert response.status == 403 and "无权访问" in html and "安亭的事" not in html
    html = await (await console_client.get("/console")).text()
    assert "投诉登记簿" not in html


# --- one case ----------------------------------------------------------------------------------


async def test_every_view_of_a_case_is_audited(console_client, accounts, vault):
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    await signed_in(console_client, "wangkz")
    await register_page(console_client)
    assert "complaint.view" not in audit_actions(accounts)  # the list is not a view of a case
    html = await case_page(console_client, case.id)
    for text in (case.case_number, "抚恤金没发", "待遇发放", "已登记", "安亭镇退役军人服务站", "另留电话",
                 "139****5678", "尚未评价", "尚未转办", "办理记录", "登记", "反映人"):
        assert text in html, text
    await case_page(console_client, case.id)
    with session_scope(accounts) as session:
        wangkz = session.execute(select(StaffAccount.id).where(StaffAccount.username == "wangkz")).scalar_one()
    assert audit_rows(accounts, "complaint.view") == [(wangkz, "complaint_case", str(case.id), case.case_number)] * 2

    await console_client.post("/console/logout", data={"csrf": form_csrf(html, "/console/logout")})
    await signed_in(console_client, "admin1")
    html = await (await console_client.get("/console/audit")).text()
    assert html.count("查看投诉") == 2 and f"complaint_case #{case.id}" in html


async def test_the_full_number_only_on_request_and_audited(console_client, accounts, vault):
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    await signed_in(console_client, "wangkz")
    html = await case_page(console_client, case.id)
    assert "139****5678" in html and PHONE not in html and "查看完整号码" in html
    assert not audit_rows(accounts, "complaint.phone")

    response = await console_client.post(f"/console/complaints/{case.id}/phone")  # no token
    assert response.status == 403 and PHONE not in await response.text()
    assert not audit_rows(accounts, "complaint.phone")

    response = await step(console_client, case.id, "phone")
    html = await response.text()
    assert response.status == 200 and PHONE in html and "已记入审计日志" in html
    assert [(r.object_id, r.detail) for r in audit_rows(accounts, "complaint.phone")] == [
        (str(case.id), f"{case.case_number} 查看完整号码")]
    assert PHONE not in str(audit_rows(accounts, "complaint.phone"))
    assert PHONE not in await case_page(console_client, case.id)  # shown once, not from now on


async def test_the_bound_veterans_phone_is_the_reply_phone(console_client, accounts, vault):
    veteran = add_veteran(accounts, vault, name="张三明", phone="13812345678")
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT", reply_channel="bound_phone",
                     veteran_id=veteran.veteran_id)
    await signed_in(console_client, "wangkz")
    html = await case_page(console_client, case.id)
    assert "张三明" in html and "138****5678" in html and "13812345678" not in html
    assert "13812345678" in await (await step(console_client, case.id, "phone")).text()


async def test_a_phone_copied_from_another_row_is_not_shown(console_client, accounts, vault, caplog):
    """A ciphertext copied into the veteran's row from another one (bot.pii binds each to
    its row): the reveal says the number cannot be read, the log says why, nothing breaks."""
    veteran = add_veteran(accounts, vault, name="张三明", phone="13812345678")
    other = add_veteran(accounts, vault, name="李四海", phone="13900000000", sequence=125)
    with session_scope(accounts) as session:
        copied = session.get(Veteran, other.veteran_id).phone_cipher
        session.get(Veteran, veteran.veteran_id).phone_cipher = copied
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT", reply_channel="bound_phone",
                     veteran_id=veteran.veteran_id)
    await signed_in(console_client, "wangkz")
    with caplog.at_level(logging.ERROR, logger="bot.console.complaints"):
        response = await step(console_client, case.id, "phone")
    html = await response.text()
    assert response.status == 200 and "完整号码无法读取" in html
    assert "13900000000" not in html and "13812345678" not in html
    assert "does not decrypt in its row" in caplog.text
    assert len(audit_rows(accounts, "complaint.phone")) == 1  # the attempt is audited all the same


async def test_an_anonymous_case_has_no_number_to_show(console_client, accounts, vault):
    case = file_case(accounts, vault, "服务站不给办", category="服务态度", station="JD-AT",
                     reply_channel="anonymous")
    await signed_in(console_client, "wangkz")
    html = await case_page(console_client, case.id)
    assert "匿名" in html and "未留电话" in html and "查看完整号码" not in html


# --- the workflow through the forms ---------------------------------------------------------


async def test_the_whole_workflow_through_the_pages(console_client, accounts, vault):
    case = file_case(accounts, vault, "我的抚恤金三个月没发了", station="JD-AT")
    at = sid(accounts, "JD-AT")
    await signed_in(console_client, "wangkz")
    html = await case_page(console_client, case.id)
    # Only the steps the state allows: 分类指导 and 不予受理 from 已登记.
    for action in ("classify", "reject", "note"):
        assert f'action="/console/complaints/{case.id}/{action}"' in html
    for action in ("handle", "answer", "follow-up", "close"):
        assert f'action="/console/complaints/{case.id}/{action}"' not in html
    assert f'<option value="{sid(accounts, "JD-ML")}"' not in html  # not outside the own area

    steps = [
        ("classify", {"category": "待遇发放", "station": str(at), "assigned_to": "", "priority": "2",
                      "note": "请核实发放记录"}, "classified", "已受理并转办。"),
        ("handle", {"note": "已调取发放记录"}, "in_progress", "已转入承办。"),
        ("answer", {"answer_text": "经核实，已于本月补发三个月抚恤金。", "note": ""}, "answered",
         "已答复。答复已通过公众号发送给反映人。"),
        ("follow-up", {"note": ""}, "follow_up", "已开始回访。"),
        ("close", {"note": "反映人未在期限内评价"}, "closed", "已办结。"),
    ]
    for action, form, state, done in steps:
        response = await step(console_client, case.id, action, **form)
        assert response.status == 303, action
        assert response.headers["Location"] == f"/console/complaints/{case.id}?done={action}"
        html = await (await console_client.get(response.headers["Location"])).text()
        assert done in html and case_row(accounts, case.id).state == state
        assert 'action="/console/complaints/' + f'{case.id}/{action}"' not in html  # the step is gone

    row = case_row(accounts, case.id)
    assert row.assigned_station_id == at and row.assigned_to == "安亭镇退役军人服务站" and row.priority == 2
    assert row.answer_text == "经核实，已于本月补发三个月抚恤金。" and row.closed_at is not None
    assert [(e.action, e.actor) for e in events(accounts, case.id)] == [
        ("登记", "user"), ("分类指导", "王科长"), ("承办", "王科长"), ("答复", "王科长"), ("回访", "王科长"),
        ("办结", "王科长")]
    for text in ("分类指导", "已登记 → 已受理转办", "转安亭镇退役军人服务站办理。请核实发放记录", "已调取发放记录",
                 "承办中 → 已答复", "已答复 → 回访中", "回访中 → 已办结", "反映人未在期限内评价", "王科长",
                 "经核实，已于本月补发三个月抚恤金。"):
        assert text in html, text
    assert "<h2>办理</h2>" not in html  # closed: no step left, the note form stays
    assert f'action="/console/complaints/{case.id}/note"' in html

    with session_scope(accounts) as session:
        sent = session.execute(select(Outbox.kind, Outbox.openid, Outbox.payload).order_by(Outbox.id)).all()
    assert [kind for kind, _, _ in sent] == ["complaint_accepted", "complaint_answer", "complaint_follow_up"]
    assert sent[1].openid == "o-user" and sent[1].payload["answer"] == "经核实，已于本月补发三个月抚恤金。"
    assert [r.detail for r in audit_rows(accounts, "complaint.transition")] == [
        f"{case.case_number} 分类指导：转安亭镇退役军人服务站", f"{case.case_number} 承办",
        f"{case.case_number} 答复", f"{case.case_number} 回访", f"{case.case_number} 办结"]


async def test_a_department_and_a_new_category(console_client, accounts, vault):
    case = file_case(accounts, vault, "没说哪里的事", category="其他")
    await signed_in(console_client, "district1")
    response = await step(console_client, case.id, "classify", category="优待落实", station="",
                          assigned_to="优抚科", priority="3", note="")
    assert response.status == 303
    row = case_row(accounts, case.id)
    assert (row.category, row.assigned_to, row.assigned_station_id) == ("优待落实", "优抚科", None)
    assert "类别由“其他”改为“优待落实”；转优抚科办理" in await case_page(console_client, case.id)


async def test_reject_with_a_reason(console_client, accounts, vault):
    case = file_case(accounts, vault, "邻居家狗太吵", category="其他", station="JD-AT")
    await signed_in(console_client, "wangkz")
    response = await step(console_client, case.id, "reject", reason="   ")
    html = await response.text()
    assert response.status == 400 and "请填写不予受理的理由。" in html
    assert case_row(accounts, case.id).state == "registered"

    response = await step(console_client, case.id, "reject", reason="不属于退役军人事务部门职责范围，建议向居委会反映。")
    assert response.status == 303
    html = await (await console_client.get(response.headers["Location"])).text()
    assert "已作不予受理处理。" in html and "已办结（不予受理）" in html and "不予受理理由" in html
    row = case_row(accounts, case.id)
    assert row.state == "closed" and row.accepted_at is None
    with session_scope(accounts) as session:
        rejected = session.execute(select(Outbox.payload).where(Outbox.kind == "complaint_rejected")).scalar_one()
    assert rejected["reason"] == "不属于退役军人事务部门职责范围，建议向居委会反映。"
    assert [e.action for e in events(accounts, case.id)] == ["登记", "不予受理"]


async def test_a_refused_step_keeps_what_was_typed(console_client, accounts, vault):
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    classify(accounts, case.id, station="JD-AT")
    with session_scope(accounts) as session:
        cs.start_handling(session, case.id, "周干事", now=now())
    await signed_in(console_client, "wangkz")
    html = await case_page(console_client, case.id)
    path = f"/console/complaints/{case.id}/answer"
    token = form_csrf(html, path)
    # Meanwhile a colleague answers it.
    with session_scope(accounts) as session:
        cs.answer(session, case.id, "周干事", "已补发。", now=now())
    typed = "经核实，已补发三个月抚恤金，共计<4500>元。"
    response = await console_client.post(path, data={"csrf": token, "answer_text": typed, "note": "电话已联系"})
    html = await response.text()
    assert response.status == 409
    assert "当前状态“已答复”不能直接转为“已答复”" in html
    # The answer form is gone with the state: what was typed is shown to copy, not lost.
    assert "未提交成功的内容" in html and f'action="{path}"' not in html
    assert "经核实，已补发三个月抚恤金，共计&lt;4500&gt;元。" in html and "电话已联系" in html
    assert "已补发。" in html  # the page shows the case as it is now
    assert case_row(accounts, case.id).answer_text == "已补发。"
    assert not audit_rows(accounts, "complaint.transition")

    # Too long: refused with the reason, the text still there.
    long_note = "备" * 1001
    response = await step(console_client, case.id, "note", note=long_note)
    html = await response.text()
    assert response.status == 400 and "备注内容不能超过1000字（现为1001字）" in html and long_note in html
    response = await step(console_client, case.id, "note", note="  ")
    assert response.status == 400 and "请填写备注内容。" in await response.text()
    assert [e.kind for e in events(accounts, case.id)].count("note") == 0


async def test_classify_refusals(console_client, accounts, vault):
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    await signed_in(console_client, "wangkz")
    ml = sid(accounts, "JD-ML")
    for form, message in (
        ({"category": "待遇发放", "station": "", "assigned_to": " ", "priority": "3"}, "请选择承办服务站，或填写承办部门。"),
        ({"category": "乱写", "station": "", "assigned_to": "优抚科", "priority": "3"}, "请选择问题类别。"),
        ({"category": "待遇发放", "station": str(ml), "assigned_to": "", "priority": "3"}, "请从列表中选择承办服务站。"),
        ({"category": "待遇发放", "station": "", "assigned_to": "科" * 101, "priority": "3"},
         "承办部门名称不能超过100字"),
        ({"category": "待遇发放", "station": "", "assigned_to": "优抚科", "priority": "9"}, "请选择优先级。"),
    ):
        response = await step(console_client, case.id, "classify", note="先核实", **form)
        html = await response.text()
        assert response.status == 400 and message in html, message
        assert "先核实" in html
    assert case_row(accounts, case.id).state == "registered"
    assert len(events(accounts, case.id)) == 1


async def test_a_note_in_any_state(console_client, accounts, vault):
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    await signed_in(console_client, "wangkz")
    response = await step(console_client, case.id, "note", note="已电话联系反映人，约定下周上门。")
    assert response.status == 303
    html = await (await console_client.get(response.headers["Location"])).text()
    assert "备注已保存。" in html and "内部备注" in html and "已电话联系反映人，约定下周上门。" in html
    assert [(e.kind, e.actor) for e in events(accounts, case.id)][-1] == ("note", "王科长")
    assert case_row(accounts, case.id).state == "registered"
    assert [r.detail for r in audit_rows(accounts, "complaint.note")] == [case.case_number]
    with session_scope(accounts) as session:  # a note is never sent to the user
        assert session.execute(select(Outbox.kind)).scalars().all() == ["complaint_accepted"]


async def test_a_post_without_the_token_changes_nothing(console_client, accounts, vault):
    case = file_case(accounts, vault, "抚恤金没发", station="JD-AT")
    await signed_in(console_client, "wangkz")
    html = await case_page(console_client, case.id)
    wrong = form_csrf(html, f"/console/complaints/{case.id}/note")  # another form's token
    for form in ({"reason": "不受理"}, {"reason": "不受理", "csrf": wrong}, {"reason": "不受理", "csrf": "x" * 64}):
        response = await console_client.post(f"/console/complaints/{case.id}/reject", data=form,
                                             allow_redirects=False)
        assert response.status == 403 and "页面已失效" in await response.text()
    assert case_row(accounts, case.id).state == "registered"
    assert len(events(accounts, case.id)) == 1
    assert not audit_rows(accounts, "complaint.transition")
    with session_scope(accounts) as session:
        assert session.execute(select(Outbox.kind)).scalars().all() == ["complaint_accepted"]


def test_every_audited_action_has_a_label():
    with open(pages.__file__, encoding="utf-8") as file:
        source = file.read()
    audited = set(re.findall(r'"(complaint\.[a-z_]+)"', source))
    assert audited and audited <= set(pages.AUDIT_LABELS)
