"""The complaint intake form, following a case, adding to it and rating the answer,
through the real validators and questions against a migrated SQLite database.

``Chat`` plays the part of Rasa around the actions: it fills the requested slot from
the user's text as the domain's from_text mappings do, runs the form's validation
action, asks the next question (or submits when the form is done) and remembers
the buttons, so a whole conversation runs as it would in Rasa, minus the NLU.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

import pytest
from rasa.shared.core.domain import Domain
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions import complaints as complaint_actions
from actions.complaints import (
    ActionGiveFeedback,
    ActionQueryComplaint,
    ActionRateComplaint,
    ActionReceiveAttachment,
    ActionResetComplaint,
    ActionSubmitComplaint,
    ActionSubmitComplaintAddition,
    ValidateComplaintAdditionForm,
    ValidateComplaintForm,
)
from bot.db.models import CaseEvent, ComplaintCase, ContactDraft, Outbox, WechatBinding
from bot.db.session import session_scope
from bot.pii import CASE_PHONE
from bot.services import complaints as register
from bot.services import contacts, handoff
from bot.services.stations import SHANGHAI
from bot.settings import PROJECT_ROOT
from bot.text import normalize
from tests.actions.test_stations import bind_veteran
from tests.conftest import bot_event, user_event

MONDAY_9AM = dt.datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
DOMAIN = Domain.load(str(PROJECT_ROOT / "domain")).as_dict()
SUBMIT = {"complaint_form": ActionSubmitComplaint, "complaint_addition_form": ActionSubmitComplaintAddition}
VALIDATE = {"complaint_form": ValidateComplaintForm, "complaint_addition_form": ValidateComplaintAdditionForm}


@pytest.fixture
def factory(stations_db, monkeypatch):
    monkeypatch.setattr(complaint_actions, "now", lambda: MONDAY_9AM)
    return stations_db


def _from_text_applies(slot: str, intent: str, form: str) -> bool:
    for mapping in DOMAIN["slots"][slot]["mappings"]:
        if mapping["type"] != "from_text" or intent in mapping.get("not_intent", []):
            continue
        if any(c.get("active_loop") == form and c.get("requested_slot") == slot for c in mapping.get("conditions", [])):
            return True
    return False


class Chat:
    """One user's conversation with a form, Rasa's part played by this class."""

    def __init__(self, sender: str = "test-user"):
        self.sender = sender
        self.slots: Dict[str, Any] = {}
        self.events: List[Dict[str, Any]] = []
        self.form: Optional[str] = None
        self.finished = False

    def _tracker(self, latest: Dict[str, Any]) -> Tracker:
        return Tracker(self.sender, dict(self.slots), latest, list(self.events), False, None,
                       {"name": self.form} if self.form else {}, None)

    async def say(self, text: str, intent: str = "inform", entities=(), start: Optional[str] = None) -> List[str]:
        """The user's message; returns the bot's texts (buttons as numbered lines)."""
        user = user_event(text, intent, entities=[dict(e) for e in entities])
        # As in Rasa: the event keeps the text as typed, the parse data has the NLU's
        # copy (simplified characters, redaction markers blanked).
        user["parse_data"]["text"] = normalize(text)
        self.events.append(user)
        if start:
            self.form, self.finished = start, False
            self.slots["requested_slot"] = None
            for e in entities:  # from_entity mappings at activation
                if e["entity"] == "station" and intent == "file_complaint":
                    self._set("complaint_place", e["value"])
        else:
            requested = self.slots.get("requested_slot")
            if requested and _from_text_applies(requested, intent, self.form):
                self._set(requested, text)
        dispatcher = CollectingDispatcher()
        result = await VALIDATE[self.form]().run(dispatcher, self._tracker(user["parse_data"]), DOMAIN)
        requested, decided = None, False
        for event in result:
            if event["event"] == "slot":
                self._set(event["name"], event["value"])
                if event["name"] == "requested_slot":
                    requested, decided = event["value"], True
        if not decided:  # the validator left it to Rasa: the domain's list, in order
            requested = next((slot for slot in DOMAIN["forms"][self.form]["required_slots"]
                              if self.slots.get(slot) is None), None)
            self._set("requested_slot", requested)
        if requested is None:
            self.finished = True
            self.submit_events = await SUBMIT[self.form]().run(dispatcher, self._tracker(user["parse_data"]), DOMAIN)
            for event in self.submit_events:
                if event["event"] == "slot":
                    self._set(event["name"], event["value"])
            self.form = None
        else:
            ask = getattr(complaint_actions, "ActionAsk" + "".join(p.title() for p in requested.split("_")), None)
            if ask is None:  # a response in the domain
                dispatcher.utter_message(text=DOMAIN["responses"][f"utter_ask_{requested}"][0]["text"])
            else:
                for event in await ask().run(dispatcher, self._tracker(user["parse_data"]), DOMAIN):
                    self._set(event["name"], event["value"])
        return self._render(dispatcher.messages)

    def _set(self, name: str, value: Any) -> None:
        self.slots[name] = value
        self.events.append({"event": "slot", "name": name, "value": value})

    def _render(self, messages) -> List[str]:
        texts = []
        for message in messages:
            text = message.get("text") or message.get("response") or ""
            buttons = message.get("buttons") or []
            if buttons:
                text += "\n" + "\n".join(f"{i}. {b['title']}" for i, b in enumerate(buttons, 1))
            self.events.append(bot_event(text, buttons or None))
            texts.append(text)
        return texts


def _cases(factory) -> List[ComplaintCase]:
    with session_scope(factory) as session:
        rows = session.execute(select(ComplaintCase).order_by(ComplaintCase.id)).scalars().all()
        session.expunge_all()
        return rows


def _events(factory, case_id: int) -> List[CaseEvent]:
    with session_scope(factory) as session:
        rows = session.execute(select(CaseEvent).where(CaseEvent.case_id == case_id)
                               .order_by(CaseEvent.id)).scalars().all()
        session.expunge_all()
        return rows


@pytest.mark.parametrize("opener", ["我要投诉", "我有个事想反映一下", "有件事我得反映反映", "同志你好 我想反映个情况"])
async def test_an_opener_asks_what_happened_and_is_not_taken_as_the_story(factory, opener):
    asked = await Chat().say(opener, "file_complaint", start="complaint_form")
    assert "请您说一说具体情况" in asked[0] and "已记下" not in asked[0]


async def test_an_opener_that_already_tells_the_story_is_taken(factory):
    asked = await Chat().say("我有个事想反映一下 我的优待金三个月没发了", "file_complaint", start="complaint_form")
    assert "已记下" in asked[0] and "优待金三个月没发了" in asked[0]


async def test_happy_path_over_several_messages(factory):
    chat = Chat()
    asked = await chat.say("我要投诉", "file_complaint", start="complaint_form")
    assert "请您说一说具体情况" in asked[0] and "说完了" in asked[0]
    asked = await chat.say("我的生活补助从九月开始就停发了", "file_complaint")
    assert "已记下" in asked[0]
    asked = await chat.say("街道说要等通知，一直没有下文", "inform")
    assert "记下了" in asked[0] and "说完了" in asked[0]
    asked = await chat.say("说完了", "goodbye")
    assert "待遇发放" in asked[0] and "1. 是的" in asked[0]
    asked = await chat.say("1", "choose_option")
    assert "发生在哪里" in asked[0]
    asked = await chat.say("安亭镇", "inform")
    assert "怎样收到" in asked[0]
    assert "绑定的手机" not in asked[0]  # not bound: that option is not offered
    asked = await chat.say("在微信里答复", "inform")
    summary = asked[0]
    assert "类别：待遇发放" in summary and "生活补助从九月开始就停发了" in summary
    assert "地点：安亭镇退役军人服务站" in summary and "答复方式：在微信里答复" in summary
    done = await chat.say("确认", "affirm")
    assert chat.finished
    (case,) = _cases(factory)
    assert case.case_number in done[0] and "12月8日前" in done[0]  # 15 days after 23 November
    assert case.category == "待遇发放" and case.reply_channel == "wechat" and not case.urgent
    assert case.description == "我的生活补助从九月开始就停发了\n街道说要等通知，一直没有下文"
    assert case.place == "安亭镇退役军人服务站" and case.station_id is not None
    assert case.openid == "test-user"
    with session_scope(factory) as session:  # the 登记告知 waits in the outbox
        assert session.execute(select(Outbox.kind).where(Outbox.openid == "test-user")).scalars().all() \
            == ["complaint_accepted"]
    assert not any(chat.slots.get(slot) for slot in complaint_actions.FORM_SLOTS)


async def test_the_opening_message_counts_and_the_category_can_be_chosen(factory):
    chat = Chat()
    asked = await chat.say("我的优待金三个月没发了", "file_complaint",
                           entities=[{"entity": "complaint_category", "value": "待遇发放"}], start="complaint_form")
    assert "您说的情况已记下：“我的优待金三个月没发了”" in asked[0]
    await chat.say("没有了", "deny")
    asked = await chat.say("不是", "deny")  # not 待遇发放: the list
    assert "属于哪一类" in asked[0] and "6. 其他" in asked[0]
    asked = await chat.say("3", "choose_option")
    assert chat.slots["complaint_category"] == "优待落实" and "发生在哪里" in asked[0]


async def test_anonymous_path(factory):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    await chat.say("窗口工作人员态度很差，问两句就不耐烦", "inform")
    await chat.say("就这些", "nlu_fallback")
    await chat.say("是的", "affirm")
    await chat.say("无", "affirm")
    asked = await chat.say("匿名", "nlu_fallback")
    assert "地点：未说明" in asked[0] and "匿名，不答复" in asked[0]
    done = await chat.say("1", "choose_option")
    (case,) = _cases(factory)
    assert case.reply_channel == "anonymous" and case.category == "服务态度" and case.veteran_id is None
    assert "匿名反映" in done[0] and case.case_number in done[0]
    with session_scope(factory) as session:  # nobody is messaged about an anonymous case
        assert session.execute(select(func.count()).select_from(Outbox)).scalar_one() == 0


async def test_urgent_words_end_the_form_at_once(factory):
    chat = Chat()
    said = await chat.say("补助不给发 我不想活了", "file_complaint", start="complaint_form")
    assert chat.finished
    (case,) = _cases(factory)
    assert case.urgent and case.priority == register.URGENT_PRIORITY
    assert said == ["utter_complaint_urgent"]  # the domain response with 110/120 and the phone
    # Staff take the conversation over at once: paused, first in the queue.
    assert {"event": "pause", "timestamp": None} in chat.submit_events
    with session_scope(factory) as session:
        held = handoff.current(session, "test-user")
        assert held.reason == "urgent" and held.urgent and held.case_number == case.case_number


async def test_urgent_words_in_a_later_message(factory):
    chat = Chat()
    await chat.say("我要反映问题", "file_complaint", start="complaint_form")
    await chat.say("拖欠工资半年了", "inform")
    said = await chat.say("明天我们几十个人集体上访", "inform")
    assert chat.finished and said == ["utter_complaint_urgent"]
    (case,) = _cases(factory)
    assert case.urgent and "集体上访" in case.description and "拖欠工资" in case.description


async def test_same_category_within_a_day_is_offered_as_an_addition(factory):
    first = Chat()
    await first.say("我的抚恤金没到账", "file_complaint", start="complaint_form")
    for text, intent in (("说完了", "goodbye"), ("是的", "affirm"), ("无", "affirm"), ("微信", "inform"),
                         ("确认", "affirm")):
        await first.say(text, intent)
    (case,) = _cases(factory)

    second = Chat()
    await second.say("抚恤金还是没发", "file_complaint", start="complaint_form")
    await second.say("说完了", "goodbye")
    asked = await second.say("对", "affirm")
    assert "24小时内" in asked[0] and case.case_number in asked[0]
    done = await second.say("1", "choose_option")
    assert second.finished and f"补充到{case.case_number}" in done[0]
    assert len(_cases(factory)) == 1
    events = _events(factory, case.id)
    assert events[-1].kind == "user_added_information" and events[-1].note == "抚恤金还是没发"

    third = Chat()  # choosing a new case registers one
    await third.say("补助又少发了", "file_complaint", start="complaint_form")
    await third.say("说完了", "goodbye")
    await third.say("对", "affirm")
    asked = await third.say("2", "choose_option")
    assert "发生在哪里" in asked[0]
    for text, intent in (("无", "affirm"), ("微信", "inform"), ("确认", "affirm")):
        await third.say(text, intent)
    assert len(_cases(factory)) == 2


async def test_case_phone_given_in_chat_is_kept_only_protected(factory, vault):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    await chat.say("安置单位一直不让我上岗", "inform")
    await chat.say("说完了", "goodbye")
    await chat.say("是的", "affirm")
    await chat.say("无", "affirm")
    asked = await chat.say("1", "choose_option")  # not bound: 1 is 另留一个电话
    assert "联系电话" in asked[0]
    asked = await chat.say("好的", "affirm")  # no number in it
    assert "没有看到电话号码" in asked[0]
    # What the chat channel does with "13812345678": keeps it here, passes the marker on.
    with session_scope(factory) as session:
        contacts.save(session, vault, "test-user", "complaint_phone", "13812345678", MONDAY_9AM)
    asked = await chat.say("[手机号已隐去]", "inform")
    assert chat.slots["complaint_phone"] == "138****5678"
    assert "另留的电话（138****5678）" in asked[0]
    await chat.say("确认", "affirm")
    (case,) = _cases(factory)
    assert case.reply_channel == "case_phone" and case.phone_masked == "138****5678"
    assert vault.decrypt(case.phone_cipher, CASE_PHONE, case.case_number) == "13812345678"
    with session_scope(factory) as session:  # the draft is gone once used
        assert session.execute(select(func.count()).select_from(ContactDraft)).scalar_one() == 0


async def test_a_phone_marker_without_a_kept_number_is_refused(factory):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    for text, intent in (("补贴没发", "inform"), ("说完了", "goodbye"), ("是的", "affirm"), ("无", "affirm"),
                         ("另留电话", "inform")):
        await chat.say(text, intent)
    asked = await chat.say("[电话号码已隐去]", "inform")
    assert "这个号码无法使用" in asked[0] and chat.slots.get("complaint_phone") is None
    asked = await chat.say("不留了", "deny")
    assert "怎样收到" in asked[0]  # back to the choice of reply


async def test_bound_user_is_offered_the_bound_phone(factory, vault):
    bind_veteran(factory, vault, "test-user", "安亭镇", "黄渡社区")
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    for text, intent in (("优待证在景区不让用", "inform"), ("说完了", "goodbye"), ("是的", "affirm"),
                         ("无", "affirm")):
        asked = await chat.say(text, intent)
    assert "1. 打电话或发短信到您绑定的手机" in asked[0]
    await chat.say("1", "choose_option")
    await chat.say("确认", "affirm")
    (case,) = _cases(factory)
    assert case.reply_channel == "bound_phone" and case.veteran_id is not None and case.category == "优待落实"


async def test_the_summary_can_be_corrected(factory):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    for text, intent in (("补贴没发", "inform"), ("说完了", "goodbye"), ("是的", "affirm"), ("安亭镇", "inform"),
                         ("微信", "inform")):
        await chat.say(text, intent)
    asked = await chat.say("不对", "deny")
    assert "修改哪一项" in asked[0] and "3. 地点" in asked[0]
    asked = await chat.say("3", "choose_option")
    assert "发生在哪里" in asked[0] and chat.slots["complaint_place"] is None
    asked = await chat.say("马陆镇", "inform")
    assert "地点：马陆镇退役军人服务站" in asked[0]
    await chat.say("确认", "affirm")
    assert _cases(factory)[0].place == "马陆镇退役军人服务站"


async def test_not_submitting_from_the_correction_menu(factory):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    for text, intent in (("补贴没发", "inform"), ("说完了", "goodbye"), ("是的", "affirm"), ("无", "affirm"),
                         ("微信", "inform"), ("需要修改", "deny")):
        await chat.say(text, intent)
    said = await chat.say("5", "choose_option")
    assert chat.finished and said == ["utter_complaint_not_sent"] and _cases(factory) == []


async def test_attachments_during_the_form_go_with_the_case(factory):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    await chat.say("物业欺负军属", "inform")
    said = await chat.say('/send_attachment{"media_type": "image", "media_id": "MEDIA_1"}', "send_attachment",
                          entities=[{"entity": "media_type", "value": "image"},
                                    {"entity": "media_id", "value": "MEDIA_1"}])
    assert said[0] == "图片收到了，会和您反映的问题一起登记。" and "还有要补充的" in said[1]
    assert chat.slots["complaint_description"] == "物业欺负军属"  # the payload is not part of the story
    for text, intent in (("说完了", "goodbye"), ("是的", "affirm"), ("无", "affirm"), ("微信", "inform")):
        asked = await chat.say(text, intent)
    assert "附件：1个" in asked[0]
    await chat.say("确认", "affirm")
    (case,) = _cases(factory)
    assert [(e.kind, e.note) for e in _events(factory, case.id)][-1] == ("attachment", "image:MEDIA_1")


async def test_stop_keeps_nothing(factory, vault, dispatcher):
    with session_scope(factory) as session:
        contacts.save(session, vault, "test-user", "complaint_phone", "13812345678", MONDAY_9AM)
    tracker = Tracker("test-user", {"complaint_description": "x"}, {}, [], False, None, {}, None)
    events = await ActionResetComplaint().run(dispatcher, tracker, DOMAIN)
    assert {"event": "slot", "timestamp": None, "name": "complaint_description", "value": None} in events
    with session_scope(factory) as session:
        assert session.execute(select(func.count()).select_from(ContactDraft)).scalar_one() == 0


# --- following a case -------------------------------------------------------------------


def _file(factory, vault, openid="test-user", category="待遇发放", reply="wechat") -> register.CaseView:
    with session_scope(factory) as session:
        return register.register(session, vault, openid, None, category, "补助没发", None, None, reply, None,
                                 False, MONDAY_9AM)


async def _run(action, dispatcher, text, intent, slots=None, entities=(), events=()):
    user = user_event(text, intent, entities=list(entities))
    tracker = Tracker("test-user", slots or {}, user["parse_data"], [*events, user], False, None, {}, None)
    return await action.run(dispatcher, tracker, DOMAIN)


async def test_query_by_number_and_someone_elses_number(factory, vault, dispatcher):
    mine = _file(factory, vault)
    other = _file(factory, vault, openid="someone-else", category="服务态度")
    await _run(ActionQueryComplaint(), dispatcher, f"{mine.case_number.lower()}处理到哪了", "query_complaint")
    assert dispatcher.messages[-1]["text"].startswith(f"您反映的问题（{mine.case_number}）已于11月23日登记")
    await _run(ActionQueryComplaint(), dispatcher, f"查一下{other.case_number}", "query_complaint")
    reply = dispatcher.messages[-1]["text"]
    assert "没有查到" in reply and "服务态度" not in reply
    # An unknown number reads exactly like someone else's.
    unknown = register.format_case_number(dt.date(2026, 11, 23), 99)
    await _run(ActionQueryComplaint(), dispatcher, f"查一下{unknown}", "query_complaint")
    assert dispatcher.messages[-1]["text"] == reply.replace(other.case_number, unknown)


async def test_query_my_cases(factory, vault, dispatcher):
    await _run(ActionQueryComplaint(), dispatcher, "查投诉进度", "query_complaint")
    assert "没有查到您反映过的问题" in dispatcher.messages[-1]["text"]
    first = _file(factory, vault)
    await _run(ActionQueryComplaint(), dispatcher, "查投诉进度", "query_complaint")
    assert dispatcher.messages[-1]["text"].startswith(f"您反映的问题（{first.case_number}）")
    second = _file(factory, vault, category="服务态度")
    await _run(ActionQueryComplaint(), dispatcher, "我的投诉", "query_complaint")
    message = dispatcher.messages[-1]
    assert "2个问题" in message["text"]
    assert [b["title"] for b in message["buttons"]] == [f"{second.case_number} 服务态度（已登记）",
                                                        f"{first.case_number} 待遇发放（已登记）"]


async def test_adding_information_to_my_only_open_case(factory, vault):
    case = _file(factory, vault)
    chat = Chat()
    asked = await chat.say("我要补充材料", "add_complaint_information", start="complaint_addition_form")
    assert chat.slots["complaint_target"] == case.case_number and "要补充的情况" in asked[0]
    done = await chat.say("街道答应月底补发但是没有兑现", "inform")
    assert chat.finished and f"已补充到{case.case_number}" in done[0]
    assert _events(factory, case.id)[-1].note == "街道答应月底补发但是没有兑现"


async def test_adding_with_several_cases_asks_which(factory, vault):
    first = _file(factory, vault)
    _file(factory, vault, category="服务态度")
    chat = Chat()
    asked = await chat.say("补充情况", "add_complaint_information", start="complaint_addition_form")
    assert "补充到哪一件" in asked[0] and "2. " + first.case_number in asked[0]
    await chat.say("2", "choose_option", entities=[])
    assert chat.slots["complaint_target"] == first.case_number


async def test_adding_without_an_open_case(factory):
    chat = Chat()
    said = await chat.say("补充情况", "add_complaint_information", start="complaint_addition_form")
    assert chat.finished and "没有正在办理的问题" in said[0]


def _answer(factory, case):
    with session_scope(factory) as session:
        register.classify(session, case.id, "王科长", "待遇发放", "安亭镇退役军人服务站", now=MONDAY_9AM)
        register.start_handling(session, case.id, "王科长", now=MONDAY_9AM)
        register.answer(session, case.id, "王科长", "已核实，十二月补发。", now=MONDAY_9AM)


async def test_rating_the_answer(factory, vault, dispatcher):
    case = _file(factory, vault)
    await _run(ActionRateComplaint(), dispatcher, "不满意", "rate_complaint")
    assert "还在办理中" in dispatcher.messages[-1]["text"]
    _answer(factory, case)
    await _run(ActionRateComplaint(), dispatcher, "不满意 问题没解决", "rate_complaint")
    assert "已重新交办" in dispatcher.messages[-1]["text"]
    assert _cases(factory)[0].state == "in_progress" and _cases(factory)[0].reopened == 1
    with session_scope(factory) as session:
        register.answer(session, case.id, "王科长", "已补发到账。", now=MONDAY_9AM)
    await _run(ActionGiveFeedback(), dispatcher, "满意", "give_feedback")  # bare 满意 is praise to the NLU
    assert "已办结" in dispatcher.messages[-1]["text"]
    assert _cases(factory)[0].state == "closed" and _cases(factory)[0].rating == "满意"


async def test_praise_without_a_case_waiting_is_feedback(factory, dispatcher):
    await _run(ActionGiveFeedback(), dispatcher, "满意", "give_feedback")
    assert dispatcher.messages[-1]["response"] == "utter_give_feedback"
    await _run(ActionRateComplaint(), dispatcher, "不满意", "rate_complaint")
    assert "没有需要评价的答复" in dispatcher.messages[-1]["text"]


async def test_rating_asks_which_case_when_several_wait(factory, vault, dispatcher):
    first, second = _file(factory, vault), _file(factory, vault, category="服务态度")
    _answer(factory, first)
    _answer(factory, second)
    await _run(ActionRateComplaint(), dispatcher, "基本满意", "rate_complaint")
    buttons = dispatcher.messages[-1]["buttons"]
    assert len(buttons) == 2 and '"complaint_rating": "基本满意"' in buttons[0]["payload"]
    await _run(ActionRateComplaint(), dispatcher, "1", "choose_option", events=[bot_event("哪一件", buttons)])
    assert _cases(factory)[1].rating == "基本满意" and _cases(factory)[0].rating is None


async def test_attachment_outside_the_form(factory, vault, dispatcher):
    image = [{"entity": "media_type", "value": "image"}, {"entity": "media_id", "value": "M2"}]
    await _run(ActionReceiveAttachment(), dispatcher, "/send_attachment", "send_attachment", entities=image)
    assert "请先回复“投诉”" in dispatcher.messages[-1]["text"]
    case = _file(factory, vault)
    await _run(ActionReceiveAttachment(), dispatcher, "/send_attachment", "send_attachment", entities=image)
    assert case.case_number in dispatcher.messages[-1]["text"]
    assert _events(factory, case.id)[-1].note == "image:M2"


async def test_unbound_meanwhile_asks_how_to_answer_again(factory, vault):
    bind_veteran(factory, vault, "test-user", "安亭镇", "黄渡社区")
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    for text, intent in (("优待证在景区不让用", "inform"), ("说完了", "goodbye"), ("是的", "affirm"),
                         ("无", "affirm"), ("1", "choose_option")):
        await chat.say(text, intent)
    with session_scope(factory) as session:  # unbound in another window before confirming
        session.query(WechatBinding).delete()
    tracker = chat._tracker(user_event("确认", "affirm")["parse_data"])
    tracker.slots["complaint_confirmed"] = True
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, tracker, DOMAIN)
    assert "还没有绑定身份" in dispatcher.messages[0]["text"]
    assert {"event": "followup", "timestamp": None, "name": "complaint_form"} in events
    assert {"event": "slot", "timestamp": None, "name": "complaint_reply", "value": None} in events
    assert _cases(factory) == []


async def test_urgent_words_in_answer_to_any_question(factory):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    await chat.say("补助停发了", "inform")
    await chat.say("说完了", "goodbye")
    said = await chat.say("不是 我们已经约好明天去堵门了", "file_complaint")
    assert chat.finished and said == ["utter_complaint_urgent"]
    (case,) = _cases(factory)
    assert case.urgent and case.description == "补助停发了\n不是 我们已经约好明天去堵门了"


async def test_a_phone_kept_too_long_is_asked_again_and_nothing_else_is_lost(factory, vault, monkeypatch):
    chat = Chat()
    await chat.say("投诉", "file_complaint", start="complaint_form")
    for text, intent in (("安置单位不让我上岗", "inform"), ("说完了", "goodbye"), ("是的", "affirm"),
                         ("无", "affirm"), ("另留电话", "inform")):
        await chat.say(text, intent)
    with session_scope(factory) as session:
        contacts.save(session, vault, "test-user", "complaint_phone", "13812345678", MONDAY_9AM)
    await chat.say("[手机号已隐去]", "inform")
    monkeypatch.setattr(complaint_actions, "now", lambda: MONDAY_9AM + dt.timedelta(minutes=31))
    tracker = chat._tracker(user_event("确认", "affirm")["parse_data"])
    tracker.slots["complaint_confirmed"] = True
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, tracker, DOMAIN)
    assert "已经删除" in dispatcher.messages[0]["text"] and _cases(factory) == []
    assert {"event": "followup", "timestamp": None, "name": "complaint_form"} in events
    assert not any(e.get("name") == "complaint_description" for e in events)  # the story stays


async def test_adding_to_a_case_closed_meanwhile_files_a_new_one(factory, vault):
    case = _file(factory, vault)
    chat = Chat()
    await chat.say("补助还是没发", "file_complaint", start="complaint_form")
    await chat.say("说完了", "goodbye")
    await chat.say("是的", "affirm")
    with session_scope(factory) as session:
        register.reject(session, case.id, "王科长", "不属于本机关职责", now=MONDAY_9AM)
    tracker = chat._tracker(user_event("1", "choose_option")["parse_data"])
    tracker.slots.update(complaint_merge=True, requested_slot=None)
    dispatcher = CollectingDispatcher()
    events = await ActionSubmitComplaint().run(dispatcher, tracker, DOMAIN)
    assert "作为新问题登记" in dispatcher.messages[0]["text"]
    assert {"event": "followup", "timestamp": None, "name": "complaint_form"} in events
