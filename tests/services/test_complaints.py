"""The complaint and petition register (bot.services.complaints): the data file, working
days and deadlines, the transition table, the workflow with its history and outbox
rows, the user's own view (and nobody else's), duplicates, unfollow, the console list.

Runs on SQLite and on PostgreSQL (the `session_factory` fixture)."""

from __future__ import annotations

import datetime as dt
import threading
from types import SimpleNamespace

import pytest
import yaml
from sqlalchemy import event, func, select, text

from bot.db.models import CaseEvent, ComplaintCase, Outbox
from bot.db.session import session_scope
from bot.pii import CASE_PHONE, NotDecryptable
from bot.services import complaints as cs
from bot.services import erasure
from bot.services.complaints import CaseClosed, ComplaintDataError, ComplaintError, InvalidTransition
from bot.services.stations import SHANGHAI, load_stations
from bot.settings import PROJECT_ROOT
from tests.services.veterans import add_veteran
from tests.conftest import station_id as sid

PHONE = "13912345678"


def at(year, month, day, hour=10, minute=0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


NOW = at(2026, 11, 22)  # a Sunday


@pytest.fixture
def db(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, PROJECT_ROOT / "data" / "stations.yml")
    return session_factory


def file_case(factory, vault, openid="o-user", category="待遇发放", description="我的抚恤金三个月没发了",
              now=NOW, reply_channel="case_phone", case_phone=PHONE, veteran_id=None, urgent=False,
              station_id=None, place=None):
    with session_scope(factory) as session:
        return cs.register(session, vault, openid, veteran_id, category, description, place, station_id,
                           reply_channel, case_phone, urgent, now)


def staff(factory, operation, case_id, now=NOW, **kwargs):
    """Run one console operation in its own transaction."""
    with session_scope(factory) as session:
        function = getattr(cs, operation)
        if operation == "classify":
            kwargs = {"category": "待遇发放", "assigned_to": "优抚科", **kwargs}
            return function(session, case_id, "王科长", kwargs.pop("category"), kwargs.pop("assigned_to"),
                            now=now, **kwargs)
        if operation == "answer":
            return function(session, case_id, "李干事", kwargs.pop("answer_text", "已补发三个月抚恤金。"),
                            now=now, **kwargs)
        if operation == "reject":
            return function(session, case_id, "王科长", kwargs.pop("reason", "不属于本局职责范围"), now=now)
        return function(session, case_id, "李干事", now=now, **kwargs)


PATH = ["classify", "start_handling", "answer", "start_follow_up"]
PATH_TO = {"registered": [], "classified": PATH[:1], "in_progress": PATH[:2], "answered": PATH[:3],
           "follow_up": PATH[:4], "closed": PATH[:4] + ["close"]}


def case_in(factory, vault, state, openid="o-user"):
    view = file_case(factory, vault, openid=openid)
    for operation in PATH_TO[state]:
        view = staff(factory, operation, view.id)
    assert view.state == state
    return view


def events(factory, case_id):
    with session_scope(factory) as session:
        return session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                               .order_by(CaseEvent.id)).scalars().all()


def outbox(factory):
    with session_scope(factory) as session:
        return session.execute(select(Outbox).order_by(Outbox.id)).scalars().all()


# --- the data file -------------------------------------------------------------------------


def test_the_real_file_loads_with_the_regulation_defaults():
    rules = cs.load_rules()
    assert rules.deadlines["registered"] == cs.Deadline(15, False)
    assert rules.deadlines["in_progress"] == cs.Deadline(60, False, "accepted")
    assert rules.deadlines["classified"].working_days is True
    assert rules.category_names == ("待遇发放", "安置就业", "优待落实", "服务态度", "权益侵害", "其他")
    assert {"轻生", "不想活了", "自杀", "跳楼", "集体上访", "堵路", "一起去闹"} <= set(rules.urgent_keywords)
    source = cs.RULES_FILE.read_text(encoding="utf-8")
    assert "第二十二条" in source and "第二十三条" in source and "第三十四条" in source


def test_a_wrong_file_names_every_mistake():
    data = yaml.safe_load(cs.RULES_FILE.read_text(encoding="utf-8"))
    data["deadlines"]["registered"]["days"] = 0
    data["deadlines"]["answered"]["working_days"] = "yes"
    del data["deadlines"]["follow_up"]
    data["categories"][0]["name"] = "乱写"
    data["urgent_keywords"] = []
    data["extra"] = 1
    with pytest.raises(ComplaintDataError) as error:
        cs.parse_rules(data)
    problems = "\n".join(error.value.problems)
    for expected in ("registered: days", "answered: working_days", "follow_up: missing", "乱写",
                     "missing 待遇发放", "urgent_keywords", "extra: unknown section"):
        assert expected in problems


# --- working days and deadlines ------------------------------------------------------------


@pytest.mark.parametrize("day, n, expected", [
    (dt.date(2026, 9, 30), 0, dt.date(2026, 9, 30)),
    (dt.date(2026, 9, 30), 1, dt.date(2026, 10, 8)),   # 国庆 10月1日—7日 skipped
    (dt.date(2026, 10, 1), 1, dt.date(2026, 10, 8)),   # counting from inside the holiday
    (dt.date(2026, 10, 9), 1, dt.date(2026, 10, 10)),  # 调休: Saturday 10月10日 is a working day
    (dt.date(2026, 10, 10), 1, dt.date(2026, 10, 12)),  # Sunday 10月11日 is not
    (dt.date(2026, 9, 30), 5, dt.date(2026, 10, 13)),  # 8, 9, 10 (Sat), 12, 13
    (dt.date(2026, 11, 20), 5, dt.date(2026, 11, 27)),  # an ordinary week: Fri + 5 = next Fri
])
def test_add_working_days(day, n, expected):
    assert cs.add_working_days(day, n) == expected


def test_calendar_periods_ending_on_a_rest_day_end_on_the_next_working_day():
    assert cs.period_end(dt.date(2026, 9, 20), 15, False) == dt.date(2026, 10, 8)  # 10月5日 is 国庆
    assert cs.period_end(dt.date(2026, 11, 22), 15, False) == dt.date(2026, 12, 7)  # a Monday: as is
    assert cs.period_end(dt.date(2026, 11, 21), 15, False) == dt.date(2026, 12, 7)  # Sun 12月6日 → Mon
    assert cs.period_end(dt.date(2026, 9, 30), 5, True) == dt.date(2026, 10, 13)


def test_deadlines_of_each_state_across_national_day(db, vault):
    view = file_case(db, vault, now=at(2026, 9, 20))
    assert view.due_on == dt.date(2026, 10, 8) and view.reply_by == dt.date(2026, 10, 8)
    view = staff(db, "classify", view.id, now=at(2026, 9, 30))
    assert view.due_on == dt.date(2026, 10, 13)  # 5 working days, the 调休 Saturday counted
    assert view.reply_by == dt.date(2026, 11, 30)  # 60日 from acceptance on 9月30日 (a Sunday → Monday)
    view = staff(db, "start_handling", view.id, now=at(2026, 10, 12))
    assert view.due_on == dt.date(2026, 11, 30)  # counted from acceptance, not from 承办
    view = staff(db, "answer", view.id, now=at(2026, 11, 2))
    assert view.due_on == dt.date(2026, 11, 9)
    view = staff(db, "start_follow_up", view.id, now=at(2026, 11, 3))
    assert view.due_on == dt.date(2026, 12, 3)
    view = staff(db, "close", view.id, now=at(2026, 11, 4))
    assert view.due_at is None and not view.is_overdue


def test_overdue_cases_and_the_flag(db, vault):
    late = file_case(db, vault, openid="o-a", now=at(2026, 11, 2))  # due 11月17日
    fresh = file_case(db, vault, openid="o-b", now=at(2026, 11, 20))
    handled = staff(db, "classify", file_case(db, vault, openid="o-c", now=at(2026, 11, 2)).id, now=at(2026, 11, 3))
    closed = file_case(db, vault, openid="o-d", now=at(2026, 11, 1))
    staff(db, "reject", closed.id, now=at(2026, 11, 2))
    now = at(2026, 11, 20)
    with session_scope(db) as session:
        found = cs.overdue(session, now)
        assert [v.id for v in found] == [handled.id, late.id]  # due 11月10日, then 11月17日
        assert all(v.is_overdue for v in found)
        assert cs.find_for_user(session, fresh.case_number, "o-b", now=now).is_overdue is False
        assert {v.id for v in cs.list_cases(session, overdue=True, now=now)} == {late.id, handled.id}
        assert {v.id for v in cs.list_cases(session, overdue=False, now=now)} == {fresh.id, closed.id}
        view = cs.find_for_user(session, late.case_number, "o-a", now=now)
    assert "已超过预计日期" in cs.status_text(view, now)


# --- recognising category and urgency --------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("我的抚恤金三个月没发了", "待遇发放"),
    ("退役金少发了两个月", "待遇发放"),
    ("定期生活补助一直拖欠", "待遇发放"),
    ("我的撫卹金沒發", "待遇发放"),  # traditional characters
    ("退伍三年了还没有安排工作", "安置就业"),
    ("想参加创业培训但报不上名", "安置就业"),
    ("安置的岗位和政策不符", "安置就业"),
    ("公交车司机不认优待证", "优待落实"),
    ("景区不让用优待证买门票", "优待落实"),
    ("医院就医没有优先挂号", "优待落实"),
    ("服务站工作人员态度很差", "服务态度"),
    ("去办事他们互相推诿踢皮球", "服务态度"),
    ("老板拖欠工资三个月不给", "权益侵害"),
    ("村里有人欺负我家，还打人", "权益侵害"),
    ("有人冒充军人诈骗我", "权益侵害"),
    ("ＡＢＣ　服务站　態度差", "服务态度"),  # full-width and traditional
    ("今天天气不错", None),
    ("", None),
])
def test_recognise_category(text, expected):
    assert cs.recognise_category(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("我真的不想活了", True),
    ("我 不想 活了", True),  # spaces inside
    ("逼得我想轻生", True),
    ("再不解决我就跳楼", True),
    ("实在活不下去了", True),
    ("我们准备集体上访", True),
    ("明天大家一起去闹", True),
    ("我们要去堵路", True),
    ("我想自殺", True),  # traditional
    ("抚恤金没发", False),
    ("服务态度不好", False),
    ("想咨询一下优待证怎么办", False),
    ("活动什么时候开始", False),
])
def test_is_urgent(text, expected):
    assert cs.is_urgent(text) is expected


# --- the transition table --------------------------------------------------------------------


@pytest.mark.parametrize("source", cs.COMPLAINT_STATES)
def test_every_pair_of_states_is_allowed_only_by_the_table(source):
    for target in cs.COMPLAINT_STATES:
        allowed = cs.TRANSITIONS[source].get(target)
        for action in {cs.CLASSIFY, cs.HANDLE, cs.ANSWER, cs.FOLLOW_UP, cs.CLOSE, cs.REJECT, cs.REOPEN}:
            row = SimpleNamespace(state=source, case_number="TS20261122-0001")
            if action == allowed:
                cs._check(row, target, action)
                continue
            with pytest.raises(InvalidTransition) as error:
                cs._check(row, target, action)
            assert f"当前状态“{cs.STATE_NAMES[source]}”" in str(error.value)
    assert "当前状态“已答复”不能直接转为“承办中”" in _message("answered", "in_progress", cs.HANDLE)


def _message(source, target, action):
    with pytest.raises(InvalidTransition) as error:
        cs._check(SimpleNamespace(state=source, case_number="TS20261122-0001"), target, action)
    return str(error.value)


OPERATIONS = {  # the console's functions: the state each leads to, by which action
    "classify": ("classified", cs.CLASSIFY), "start_handling": ("in_progress", cs.HANDLE),
    "answer": ("answered", cs.ANSWER), "start_follow_up": ("follow_up", cs.FOLLOW_UP),
    "close": ("closed", cs.CLOSE), "reject": ("closed", cs.REJECT),
}


def test_every_operation_in_every_state(db, vault):
    """Each console operation from each state: it works exactly where TRANSITIONS allows it,
    and a refused one changes nothing and writes no history."""
    tried = set()
    for source in cs.COMPLAINT_STATES:
        for operation, (target, action) in OPERATIONS.items():
            view = case_in(db, vault, source, openid=f"o-{source}-{operation}")
            before = len(events(db, view.id))
            tried.add((source, target))
            if cs.TRANSITIONS[source].get(target) == action:
                assert staff(db, operation, view.id).state == target
                assert len(events(db, view.id)) == before + 1
            else:
                with pytest.raises(InvalidTransition):
                    staff(db, operation, view.id)
                with session_scope(db) as session:
                    assert cs.get_case(session, view.id, now=NOW).state == source
                assert len(events(db, view.id)) == before
    # Every pair of states was tried (none can go back to registered: no operation exists).
    assert tried == {(s, t) for s in cs.COMPLAINT_STATES for t in cs.COMPLAINT_STATES if t != "registered"}


# --- the workflow ----------------------------------------------------------------------------


def test_register_to_closed_with_history_and_messages(db, vault):
    station = sid(db, "JD-AT")
    view = file_case(db, vault, station_id=station, place="安亭镇")
    assert view.state == "registered" and view.priority == 3 and not view.urgent
    assert view.phone_masked == "139****5678" and view.place == "安亭镇" and view.station_id == station
    assert cs.status_text(view, NOW) == (f"您反映的问题（{view.case_number}）已于11月22日登记，正在审核分类，"
                                         f"预计12月7日前告知是否受理。")

    view = staff(db, "classify", view.id, now=at(2026, 11, 23), category="待遇发放", assigned_to=None,
                 station_id=station)
    assert (view.assigned_to, view.assigned_station_id) == ("安亭镇退役军人服务站", station)
    assert "已于11月23日受理" in cs.status_text(view, at(2026, 11, 23))
    view = staff(db, "start_handling", view.id, now=at(2026, 11, 24))
    assert "11月24日" in cs.status_text(view, at(2026, 11, 24)) and "承办" in cs.status_text(view, at(2026, 11, 24))
    view = staff(db, "answer", view.id, now=at(2026, 12, 1), answer_text="经核查，已于12月1日补发。")
    assert "经核查，已于12月1日补发。" in cs.status_text(view, at(2026, 12, 1))
    view = staff(db, "start_follow_up", view.id, now=at(2026, 12, 3))
    with session_scope(db) as session:
        view = cs.rate(session, view.case_number, "o-user", "满意", at(2026, 12, 4))
    assert view.state == "closed" and view.rating == "满意" and view.closed_at.date() == dt.date(2026, 12, 4)
    assert cs.status_text(view, at(2026, 12, 4)).endswith("已于12月4日办结（您的评价：满意）。感谢您的监督和支持。")

    rows = events(db, view.id)
    assert [(e.from_state, e.to_state, e.action, e.actor) for e in rows] == [
        (None, "registered", "登记", "user"),
        ("registered", "classified", "分类指导", "王科长"),
        ("classified", "in_progress", "承办", "李干事"),
        ("in_progress", "answered", "答复", "李干事"),
        ("answered", "follow_up", "回访", "李干事"),
        ("follow_up", "closed", "办结", "user"),
    ]
    assert rows[-1].note == "用户评价：满意"
    messages = outbox(db)
    assert [m.kind for m in messages] == ["complaint_accepted", "complaint_answer", "complaint_follow_up"]
    assert all(m.openid == "o-user" and m.ref == f"complaint:{view.case_number}" for m in messages)
    accepted = cs.notification_text(messages[0].kind, messages[0].payload)
    assert view.case_number in accepted and "12月7日前" in accepted
    assert "经核查" in cs.notification_text(messages[1].kind, messages[1].payload)
    assert "满意" in cs.notification_text(messages[2].kind, messages[2].payload)


def test_not_satisfied_reopens_and_counts(db, vault):
    view = case_in(db, vault, "follow_up")
    with session_scope(db) as session:
        view = cs.rate(session, view.case_number, "o-user", "不满意", at(2026, 12, 1), comment="钱还是没到账")
    assert view.state == "in_progress" and view.reopened == 1 and view.rating == "不满意"
    assert view.due_on == dt.date(2027, 2, 1)  # 60日 from the reopening: Saturday 1月30日 → Monday
    assert "重新办理" in cs.status_text(view, at(2026, 12, 1))
    assert events(db, view.id)[-1].note == "用户评价：不满意。意见：钱还是没到账"
    view = staff(db, "answer", view.id, now=at(2026, 12, 10), answer_text="已再次核实并补发。")
    # Rating straight after the answer: 回访 and 办结 both recorded.
    with session_scope(db) as session:
        view = cs.rate(session, view.case_number, "o-user", "基本满意", at(2026, 12, 11))
    assert view.state == "closed" and view.reopened == 1 and view.answer_text == "已再次核实并补发。"
    assert [e.action for e in events(db, view.id)][-3:] == ["答复", "回访", "办结"]


def test_reject_tells_the_user_why(db, vault):
    view = file_case(db, vault)
    view = staff(db, "reject", view.id, now=at(2026, 11, 23), reason="该事项已由法院受理，请通过司法途径解决")
    assert view.state == "closed" and view.rejected
    assert cs.status_text(view, at(2026, 11, 23)) == (
        f"您反映的问题（{view.case_number}）已于11月23日办结：经审核不予受理，原因：该事项已由法院受理，请通过司法途径解决")
    message = outbox(db)[-1]
    assert message.kind == "complaint_rejected" and "司法途径" in cs.notification_text(message.kind, message.payload)
    with pytest.raises(ComplaintError):
        staff(db, "reject", file_case(db, vault).id, reason="  ")
    with pytest.raises(InvalidTransition):
        staff(db, "classify", view.id)


def test_only_the_owner_rates_and_only_once_answered(db, vault):
    entry = add_veteran(db, vault)
    view = file_case(db, vault, veteran_id=entry.veteran_id, reply_channel="bound_phone", case_phone=None)
    with session_scope(db) as session:
        with pytest.raises(InvalidTransition, match="还在办理中"):
            cs.rate(session, view.case_number, "o-user", "满意", NOW)
    for operation in PATH:
        staff(db, operation, view.id)
    with session_scope(db) as session:
        assert cs.rate(session, view.case_number, "o-stranger", "满意", NOW) is None
        assert cs.rate(session, "TS20991231-0001", "o-user", "满意", NOW) is None
        with pytest.raises(ComplaintError, match="满意"):
            cs.rate(session, view.case_number, "o-user", "还行吧", NOW)
    with session_scope(db) as session:
        assert cs.get_case(session, view.id, now=NOW).state == "follow_up"
        # The same veteran from another WeChat account (a family member's phone) is the owner too.
        assert cs.rate(session, view.case_number, "o-other-phone", "满意", NOW,
                       veteran_id=entry.veteran_id).state == "closed"
    with session_scope(db) as session:
        with pytest.raises(InvalidTransition, match="已办结"):
            cs.rate(session, view.case_number, "o-user", "不满意", NOW)


def test_add_information_and_attachments_to_an_own_open_case(db, vault):
    view = file_case(db, vault)
    with session_scope(db) as session:
        added = cs.add_information(session, view.case_number.lower(), "o-user", "补充：联系电话 13800138000，上月也没发",
                                   at(2026, 11, 23))
        assert added.case_number == view.case_number
        assert cs.add_attachment(session, view.case_number, "o-user", "MEDIA_id-123", "image", at(2026, 11, 23))
        assert cs.add_information(session, view.case_number, "o-stranger", "冒充补充", NOW) is None
        cs.add_note(session, view.id, "王科长", "已电话联系反映人", now=at(2026, 11, 23))
    rows = events(db, view.id)
    assert [e.kind for e in rows] == ["transition", "user_added_information", "attachment", "note"]
    assert "13800138000" not in rows[1].note and "[手机号已隐去]" in rows[1].note
    assert rows[2].note == "image:MEDIA_id-123" and rows[3].actor == "王科长"
    with session_scope(db) as session:
        with pytest.raises(ComplaintError):
            cs.add_attachment(session, view.case_number, "o-user", "../../etc", "image", NOW)
    staff(db, "reject", view.id)
    with session_scope(db) as session:
        with pytest.raises(CaseClosed, match="已办结"):
            cs.add_information(session, view.case_number, "o-user", "再补充", NOW)


def test_anonymous_and_urgent_cases(db, vault):
    entry = add_veteran(db, vault)
    view = file_case(db, vault, reply_channel="anonymous", case_phone=None, veteran_id=entry.veteran_id,
                     description="再不解决我就不想活了", category=None)
    assert view.veteran_id is None and view.phone_masked is None
    assert view.urgent and view.priority == 1 and view.category == "其他"
    assert file_case(db, vault, urgent=True, openid="o-2").priority == 1
    assert file_case(db, vault, description="退役金少发了", category=None, openid="o-3").category == "待遇发放"
    for operation in PATH[:3]:
        staff(db, operation, view.id)
    assert [m.kind for m in outbox(db)] == ["complaint_accepted", "complaint_accepted"]  # the other two only


@pytest.mark.parametrize("changes, message", [
    ({"reply_channel": "bound_phone", "case_phone": None}, "绑定"),
    ({"case_phone": "123"}, "电话"),
    ({"case_phone": None}, "电话"),
    ({"reply_channel": "anonymous"}, "另留电话"),
    ({"reply_channel": "post"}, "答复方式"),
    ({"category": "乱写"}, "类别"),
    ({"description": "   "}, "问题"),
])
def test_register_refuses_what_it_cannot_keep(db, vault, changes, message):
    with pytest.raises(ComplaintError, match=message):
        file_case(db, vault, **changes)
    with session_scope(db) as session:
        assert session.execute(select(func.count()).select_from(ComplaintCase)).scalar_one() == 0


# --- case numbers ----------------------------------------------------------------------------


def test_case_numbers_are_the_beijing_day_and_its_sequence(db, vault):
    first = file_case(db, vault, now=at(2026, 11, 22, 0, 5)).case_number
    second = file_case(db, vault, now=at(2026, 11, 22, 23, 59)).case_number  # 15:59 UTC
    next_day = file_case(db, vault, now=at(2026, 11, 23, 0, 1)).case_number  # still 11月22日 in UTC
    assert (first, second, next_day) == ("TS20261122-0001", "TS20261122-0002", "TS20261123-0001")
    with session_scope(db) as session:
        for typed in ("ts20261122-2", "TS 20261122 0002", "ＴＳ２０２６１１２２－０００２", "TS202611220002"):
            assert cs.find_for_user(session, typed, "o-user").case_number == "TS20261122-0002"
        assert cs.find_for_user(session, "预约码YY123", "o-user") is None


def test_twenty_registrations_at_once_get_twenty_numbers(db, vault):
    barrier = threading.Barrier(20)
    numbers, errors = [], []

    def worker(n: int) -> None:
        try:
            barrier.wait()
            numbers.append(file_case(db, vault, openid=f"o-{n}").case_number)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(numbers) == [f"TS20261122-{n:04d}" for n in range(1, 21)]


# --- privacy ---------------------------------------------------------------------------------


def test_somebody_elses_number_reveals_nothing(db, vault):
    view = file_case(db, vault)
    with session_scope(db) as session:
        assert cs.find_for_user(session, view.case_number, "o-user").id == view.id
        assert cs.find_for_user(session, view.case_number, "o-stranger") is None
        assert cs.find_for_user(session, "TS20261122-0099", "o-stranger") is None
        assert cs.find_for_user(session, view.case_number, "") is None
        assert cs.cases_for_user(session, "o-stranger") == []
        assert [v.id for v in cs.cases_for_user(session, "o-user")] == [view.id]


def test_no_clear_phone_number_anywhere(db, vault):
    view = file_case(db, vault, description=f"抚恤金没发，我的手机 {PHONE}，请回电", place="安亭镇 139 1234 5678")
    with session_scope(db) as session:
        row = session.execute(text("SELECT * FROM complaint_cases")).mappings().one()
        history_rows = session.execute(text("SELECT * FROM complaint_events")).mappings().all()
        messages = session.execute(text("SELECT * FROM outbox")).mappings().all()
    dump = " ".join(str(v) for r in [row, *history_rows, *messages] for v in r.values())
    assert PHONE not in dump and "139 1234 5678" not in dump
    assert row["phone_hash"] == vault.phone_lookup(PHONE)
    assert vault.decrypt(row["phone_cipher"], CASE_PHONE, row["case_number"]) == PHONE
    assert row["phone_masked"] == view.phone_masked == "139****5678"
    assert "[手机号已隐去]" in view.description


# --- duplicates ------------------------------------------------------------------------------


def test_the_same_category_within_24_hours_is_offered_as_a_duplicate(db, vault):
    view = file_case(db, vault, now=at(2026, 11, 22, 9))
    with session_scope(db) as session:
        assert cs.open_duplicate(session, "o-user", "待遇发放", at(2026, 11, 23, 8, 59)).id == view.id
        assert cs.open_duplicate(session, "o-user", "待遇发放", at(2026, 11, 23, 9, 1)) is None
        assert cs.open_duplicate(session, "o-user", "服务态度", at(2026, 11, 22, 10)) is None
        assert cs.open_duplicate(session, "o-stranger", "待遇发放", at(2026, 11, 22, 10)) is None
    staff(db, "reject", view.id, now=at(2026, 11, 22, 10))
    with session_scope(db) as session:
        assert cs.open_duplicate(session, "o-user", "待遇发放", at(2026, 11, 22, 11)) is None


# --- unfollow --------------------------------------------------------------------------------


def test_unfollow_blanks_the_user_but_keeps_the_register(db, vault):
    entry = add_veteran(db, vault)
    view = file_case(db, vault, veteran_id=entry.veteran_id)
    kept = file_case(db, vault, openid="o-other")
    before = len(events(db, view.id))
    writes = []

    def record(_conn, _cursor, statement, *_args):
        if "complaint_events" in statement and statement.lstrip().split(None, 1)[0].upper() in ("UPDATE", "DELETE"):
            writes.append(statement)

    engine = db.kw["bind"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(db) as session:
            erasure.forget_openid(session, vault, "o-user", at(2026, 11, 23))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == []  # the history is only ever appended to
    with session_scope(db) as session:
        row = session.get(ComplaintCase, view.id)
        assert (row.openid, row.phone_hash, row.phone_cipher, row.phone_masked) == (None, None, None, None)
        assert row.description == view.description and row.veteran_id == entry.veteran_id
        assert cs.find_for_user(session, view.case_number, "o-user") is None
        assert session.get(ComplaintCase, kept.id).openid == "o-other"
        assert [m.openid for m in session.execute(select(Outbox)).scalars()] == ["o-other"]
    rows = events(db, view.id)
    assert len(rows) == before + 1 and rows[-1].actor == "system" and "取消关注" in rows[-1].note
    # Staff can still finish the case; nothing is sent to nobody.
    for operation in PATH:
        staff(db, operation, view.id)
    assert [m.openid for m in outbox(db)] == ["o-other"]


# --- the console list ------------------------------------------------------------------------


def test_list_cases_filters_and_pages(db, vault):
    station = sid(db, "JD-AT")
    other = sid(db, "JD-ZX")
    a = file_case(db, vault, openid="o-a", category="待遇发放", station_id=station)
    b = file_case(db, vault, openid="o-b", category="服务态度")
    c = file_case(db, vault, openid="o-c", category="服务态度", urgent=True)
    staff(db, "classify", b.id, category="服务态度", assigned_to=None, station_id=station)
    staff(db, "classify", c.id, category="服务态度", assigned_to=None, station_id=other)
    with session_scope(db) as session:
        def ids(**filters):
            return [v.id for v in cs.list_cases(session, now=NOW, **filters)]

        assert ids() == [c.id, b.id, a.id]  # newest first
        assert ids(state="classified") == [c.id, b.id]
        assert ids(category="待遇发放") == [a.id]
        assert ids(station_id=station) == [b.id, a.id]  # about it, or assigned to it
        assert ids(urgent=True) == [c.id]
        assert ids(limit=2) == [c.id, b.id] and ids(limit=2, offset=2) == [a.id]
        assert cs.count_cases(session, category="服务态度", now=NOW) == 2
        assert [e.action for e in cs.history(session, b.id)] == ["登记", "分类指导"]


def test_reply_in_wechat_and_a_case_phone_bound_to_its_case(db, vault):
    """The chat's two ways: replies in WeChat only (no phone; messages still go out),
    and a case phone, sealed bound to the case number: copied into another case it
    does not decrypt, and the console's reveal says so (NotDecryptable)."""
    in_wechat = file_case(db, vault, reply_channel="wechat", case_phone=None)
    assert in_wechat.reply_channel == "wechat" and in_wechat.phone_masked is None
    assert [m.kind for m in outbox(db)] == ["complaint_accepted"]
    with session_scope(db) as session:
        view = cs.register(session, vault, "o-phone", None, "其他", "窗口没人", None, None, "case_phone",
                           "021-69590001", False, NOW)
        row = session.get(ComplaintCase, view.id)
        assert row.phone_hash == vault.phone_lookup("02169590001")
        assert vault.decrypt(row.phone_cipher, CASE_PHONE, row.case_number) == "02169590001"
        assert cs.reply_phone(session, vault, view.id) == "02169590001"
        cipher = row.phone_cipher
    assert view.phone_masked == "021****0001"
    with session_scope(db) as session:  # what a hand on the database would do
        other = session.get(ComplaintCase, in_wechat.id)
        other.reply_channel, other.phone_hash, other.phone_cipher = "case_phone", "x" * 64, cipher
    with pytest.raises(NotDecryptable), session_scope(db) as session:
        cs.reply_phone(session, vault, in_wechat.id)
    with pytest.raises(ComplaintError, match="另留电话"), session_scope(db) as session:
        cs.register(session, vault, "o-x", None, "其他", "窗口没人", None, None, "wechat", "02169590001", False, NOW)
