"""投诉/信访 in chat: the intake form, following a case, adding to it, rating the answer.

Thin translation between the tracker and bot.services.complaints, where the register
and its workflow live (the console calls the same functions). The form asks only
what it does not know: what happened (over as many messages as the user needs,
ended by "说完了"), the category (recognised from what was said, then confirmed),
where, and how the user wants the answer; then a summary to confirm and a case
number. Urgent words end the form at once: the case is registered with the highest
priority and the user gets the emergency numbers. A second case of the same
category within 24 hours is offered as an addition to the first.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import resources
from actions.appointments import _in_session, _intent, _station_id, _text, chosen_button, chosen_entities, yes_or_no
from actions.handoff import hand_over, paused
from bot.clock import SHANGHAI
from bot.pii import NotDecryptable
from bot.services import complaints as register
from bot.services import contacts, handoff
from bot.services import stations as network
from bot.services import veterans

FORM_SLOTS = ("complaint_description", "complaint_details", "complaint_category", "complaint_category_guess",
              "complaint_duplicate", "complaint_merge", "complaint_place", "complaint_station", "complaint_reply",
              "complaint_phone", "complaint_confirmed", "complaint_fix", "complaint_urgent",
              "complaint_attachments", "complaint_target", "complaint_addition")
PHONE_PURPOSE = "complaint_phone"
log = logging.getLogger(__name__)
PHONE_MARKERS = ("[手机号已隐去]", "[电话号码已隐去]")
# "I have said everything": the end of the description.
DONE_WORDS = ("说完了", "说完", "讲完了", "写完了", "完了", "没有了", "没了", "就这些", "就这些了", "就这样",
              "就这么多", "没有", "无", "没有补充", "没有要补充的", "没什么了", "没别的了", "结束", "好了", "可以了",
              "提交", "提交吧", "没有其他的了")
NO_PLACE_WORDS = ("无", "没有", "不涉及", "不清楚", "不知道", "没有具体地点", "跳过", "不用", "略")
REPLY_NAMES = {
    "bound_phone": "打电话或发短信到您绑定的手机",
    "case_phone": "另留一个电话",
    "wechat": "在微信里答复我（不留电话）",
    "anonymous": "匿名反映，不需要答复",
}
FIX_FIELDS = (("category", "问题类别"), ("details", "具体情况"), ("place", "地点"), ("reply", "答复方式"))
MAX_QUOTE = 80
MAX_ATTACHMENTS = 9
ATTACHMENT_WORDS = {"image": "图片", "voice": "语音", "video": "视频", "file": "文件"}


def now() -> dt.datetime:
    """Beijing time now (a function, so that tests can fix the clock)."""
    return dt.datetime.now(SHANGHAI)


def _bare(text: str) -> str:
    return re.sub(r"[\s。！!，,.、~～…]+", "", text or "")


def said_done(tracker: Tracker) -> bool:
    """Whether the user's message ends the description ("说完了", "没有了" …)."""
    text = _bare(_text(tracker))
    if text in DONE_WORDS:
        return True
    if len(text) <= 8 and any(text.startswith(w) for w in ("说完", "讲完", "写完", "没有了", "没了", "就这些")):
        return True
    return _intent(tracker) == "deny" and len(text) <= 4


def said(tracker: Tracker) -> str:
    """What the user typed in their latest message, as typed (redaction markers and
    traditional characters included). ``latest_message["text"]`` is the NLU's copy,
    normalised to simplified characters with the markers blanked."""
    for event in reversed(tracker.events or []):
        if event.get("event") == "user":
            return event.get("text") or ""
    return _text(tracker)


def _quote(text: str) -> str:
    """The user's words as the bot repeats them: one line, shortened, insults left out."""
    text = (text or "").replace("\n", " ")
    for word in _rules().abusive_words:
        text = re.sub(re.escape(word), "×" * len(word), text, flags=re.IGNORECASE)
    return text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + "……"


def _rules():
    return register.default_rules()


def _trigger_description(tracker: Tracker) -> Optional[str]:
    """What happened, when the message that opened the form already says it
    ("我的优待金三个月没发了"), not just "我要投诉"."""
    text = said(tracker).strip()
    if _intent(tracker) != "file_complaint" or text.startswith("/"):
        return None
    rest = re.sub(r"(我|俺|咱)?(想|要|想要)?(投诉|举报|上访|信访|申诉|反映(一下|个|一个)?(问题|情况)?|告状|写信访材料)",
                  "", _bare(text))
    rest = re.sub(r"(请问|你好|您好|领导|同志|一下|你们|管不管|找谁|跟|向|和|给)", "", rest)
    # "我有个事想反映一下", "有件事我得反映反映": an opener, nothing said yet.
    rest = re.sub(r"(我|俺|这)?(这|这儿|这里)?(有|有个|有件|有点)(个|件|点)?(事情|事儿|事|情况|问题)"
                  r"|(想|要|得)?(反映|说说|讲讲|说一说)+", "", rest)
    return text if len(rest) >= 4 else None


def _attachment(tracker: Tracker) -> Optional[Dict[str, str]]:
    """The picture, voice or video the channel passed on (intent send_attachment)."""
    if _intent(tracker) != "send_attachment":
        return None
    entities = {e.get("entity"): e.get("value") for e in (tracker.latest_message or {}).get("entities", [])}
    media_type, media_id = entities.get("media_type"), entities.get("media_id")
    if media_type in register.ATTACHMENT_TYPES and media_id and re.fullmatch(r"[A-Za-z0-9_\-]{1,128}", media_id):
        return {"type": media_type, "media_id": media_id}
    return None


def _veteran_id(session, openid: str) -> Optional[int]:
    return veterans.id_by_openid(session, openid)


def reset_events() -> List[EventType]:
    return [SlotSet(slot, None) for slot in FORM_SLOTS] + [SlotSet("requested_slot", None)]


# --- the intake form -----------------------------------------------------------------


class ValidateComplaintForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_complaint_form"

    async def required_slots(self, domain_slots: List[Text], dispatcher: CollectingDispatcher,
                             tracker: Tracker, domain: DomainDict) -> List[Text]:
        if tracker.get_slot("complaint_urgent"):
            return []
        slots = ["complaint_details", "complaint_category"]
        if tracker.get_slot("complaint_duplicate"):
            slots.append("complaint_merge")
            if tracker.get_slot("complaint_merge"):
                return slots
        slots += ["complaint_place", "complaint_reply"]
        if tracker.get_slot("complaint_reply") == "case_phone":
            slots.append("complaint_phone")
        slots.append("complaint_confirmed")
        return slots

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        # Slots outside the questions (the opening message's story, an attachment) are
        # set here: rasa_sdk passes on only the validated slots of required_slots.
        extra = self._opening(tracker) + self._urgent_now(tracker) + self._attachment(dispatcher, tracker)
        tracker.add_slots(extra)
        return extra + await super().run(dispatcher, tracker, domain)

    @staticmethod
    def _opening(tracker: Tracker) -> List[EventType]:
        """At activation: the opening message may already say what happened."""
        if tracker.get_slot("requested_slot") is not None or tracker.get_slot("complaint_description"):
            return []
        first = _trigger_description(tracker)
        if not first:
            return []
        events = [SlotSet("complaint_description", first)]
        entity = next((e.get("value") for e in (tracker.latest_message or {}).get("entities", [])
                       if e.get("entity") == "complaint_category"), None)
        if entity in _rules().category_names:
            events.append(SlotSet("complaint_category_guess", entity))
        if register.is_urgent(first):
            events.append(SlotSet("complaint_urgent", True))
        return events

    @staticmethod
    def _urgent_now(tracker: Tracker) -> List[EventType]:
        """Urgent words in an answer to any other question: registered at once, too
        (while the story is being told, validate_complaint_details sees to it)."""
        requested, text = tracker.get_slot("requested_slot"), said(tracker).strip()
        if requested in (None, "complaint_details") or tracker.get_slot("complaint_urgent") \
                or text.startswith("/") or not register.is_urgent(text):
            return []
        description = tracker.get_slot("complaint_description") or ""
        return [SlotSet("complaint_description", f"{description}\n{text}" if description else text),
                SlotSet("complaint_urgent", True)]

    @staticmethod
    def _attachment(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
        attachment = _attachment(tracker)
        if attachment is None:
            return []
        kept = list(tracker.get_slot("complaint_attachments") or [])
        if len(kept) >= MAX_ATTACHMENTS:
            dispatcher.utter_message(text=f"附件最多{MAX_ATTACHMENTS}个，这个没有收下。")
            return []
        kept.append(attachment)
        dispatcher.utter_message(text=f"{ATTACHMENT_WORDS[attachment['type']]}收到了，会和您反映的问题一起登记。")
        return [SlotSet("complaint_attachments", kept)]

    async def validate_complaint_details(self, value: Any, dispatcher: CollectingDispatcher,
                                         tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        description = tracker.get_slot("complaint_description") or ""
        if _attachment(tracker) is not None:
            return {"complaint_details": None}
        if said_done(tracker):
            if description:
                return {"complaint_details": "done"}
            dispatcher.utter_message(text="请先说说您要反映的具体情况。")
            return {"complaint_details": None}
        part = str(value or "").strip()
        if not part:
            return {"complaint_details": None}
        joined = f"{description}\n{part}" if description else part
        if len(joined) > register.MAX_TEXT:
            dispatcher.utter_message(text=f"内容已经很长了（超过{register.MAX_TEXT}字），这一条没有记下。"
                                          "请回复“说完了”，其余情况可以在登记后补充。")
            return {"complaint_details": None}
        if register.is_urgent(part):
            return {"complaint_description": joined, "complaint_details": "done", "complaint_urgent": True}
        return {"complaint_description": joined, "complaint_details": None}

    async def validate_complaint_category(self, value: Any, dispatcher: CollectingDispatcher,
                                          tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        names = _rules().category_names
        guess = tracker.get_slot("complaint_category_guess")
        text = _text(tracker)
        picked = chosen_entities(tracker).get("complaint_category")
        if picked not in names:
            picked = None
            if guess in names:
                answer = yes_or_no(tracker)
                if answer is True:
                    picked = guess
                elif answer is False:
                    return {"complaint_category": None, "complaint_category_guess": "-"}
            if picked is None:
                picked = next((name for name in names if name in text), None) or register.recognise_category(text)
        if picked is None:
            dispatcher.utter_message(text="没有听明白，请回复数字选择问题类别。")
            return {"complaint_category": None, "complaint_category_guess": "-"}
        openid = tracker.sender_id

        def work(session):
            case = register.open_duplicate(session, openid, picked, now(), _veteran_id(session, openid))
            return case.case_number if case else None

        return {"complaint_category": picked, "complaint_duplicate": await _in_session(work)}

    async def validate_complaint_merge(self, value: Any, dispatcher: CollectingDispatcher,
                                       tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        answer = yes_or_no(tracker)
        if answer is None:
            dispatcher.utter_message(text="请回复“1”补充到原来那件，或回复“2”另行登记。")
        return {"complaint_merge": answer}

    async def validate_complaint_place(self, value: Any, dispatcher: CollectingDispatcher,
                                       tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if _bare(text) in NO_PLACE_WORDS:
            return {"complaint_place": "无", "complaint_station": None}
        if len(text) > 200:
            dispatcher.utter_message(text="地点请简单说，例如“安亭镇服务站”或“某某公司”。")
            return {"complaint_place": None}

        def work(session):
            found = network.find_by_place(session, text) if len(_bare(text)) <= 20 else []
            return (found[0].name, found[0].code) if found else (None, None)

        name, code = await _in_session(work)
        if code is not None:
            return {"complaint_place": name, "complaint_station": code}
        return {"complaint_place": text, "complaint_station": None}

    async def validate_complaint_reply(self, value: Any, dispatcher: CollectingDispatcher,
                                       tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        text = said(tracker)
        channel = chosen_entities(tracker).get("reply_channel")
        if channel not in REPLY_NAMES:
            channel = None
            if any(marker in text for marker in PHONE_MARKERS) or any(w in text for w in ("另留", "留电话", "别的电话", "其他电话", "新号码")):
                channel = "case_phone"
            elif "匿名" in text or "不需要答复" in text or "不用答复" in text:
                channel = "anonymous"
            elif "微信" in text or "公众号" in text:
                channel = "wechat"
            elif "绑定" in text or "原来的手机" in text:
                channel = "bound_phone"
        if channel is None:
            dispatcher.utter_message(text="请回复数字选择答复方式。")
            return {"complaint_reply": None}
        if channel == "bound_phone":
            bound = await _in_session(lambda session: _veteran_id(session, tracker.sender_id))
            if bound is None:
                dispatcher.utter_message(text="您还没有绑定身份，不能用绑定的手机接收答复，请选择其他方式。")
                return {"complaint_reply": None}
        return {"complaint_reply": channel, "complaint_phone": None}

    async def validate_complaint_phone(self, value: Any, dispatcher: CollectingDispatcher,
                                       tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        text = said(tracker)
        if any(marker in text for marker in PHONE_MARKERS):
            draft = await _in_session(lambda session: contacts.peek(session, tracker.sender_id, PHONE_PURPOSE, now()))
            if draft is not None:
                return {"complaint_phone": draft.masked}
            dispatcher.utter_message(text="这个号码无法使用。请发送手机号，或带区号的座机号（例如“021-5999××××”）。")
            return {"complaint_phone": None}
        if yes_or_no(tracker) is False or "不留" in text:
            return {"complaint_phone": None, "complaint_reply": None}
        if re.search(r"\d{7,8}", text):
            dispatcher.utter_message(text="座机号请加上区号一起发送，例如“021-5999××××”。")
        else:
            dispatcher.utter_message(text="没有看到电话号码。请直接发送号码；不想留电话请回复“不留了”。")
        return {"complaint_phone": None}

    async def validate_complaint_confirmed(self, value: Any, dispatcher: CollectingDispatcher,
                                           tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("complaint_fix") == "ask":
            button = chosen_button(tracker)
            if (button.get("intent") or {}).get("name") == "stop":
                return {"complaint_confirmed": False, "complaint_fix": None}
            field = {e["entity"]: e["value"] for e in button.get("entities", [])}.get("complaint_field")
            text = _text(tracker)
            if field is None:
                words = {"category": ("类别", "分类"), "details": ("情况", "内容", "经过", "描述"),
                         "place": ("地点", "地方"), "reply": ("答复", "电话", "联系")}
                field = next((key for key, names in words.items() if any(n in text for n in names)), None)
            cleared = {
                "category": {"complaint_category": None, "complaint_category_guess": "-", "complaint_duplicate": None,
                             "complaint_merge": None},
                "details": {"complaint_description": None, "complaint_details": None},
                "place": {"complaint_place": None, "complaint_station": None},
                "reply": {"complaint_reply": None, "complaint_phone": None},
            }.get(field)
            if cleared is None:
                dispatcher.utter_message(text="请回复数字选择要修改的内容。")
                return {"complaint_confirmed": None}
            if field == "details":
                dispatcher.utter_message(text="好的，请重新说一下具体情况。")
            return {**cleared, "complaint_confirmed": None, "complaint_fix": None}
        answer = yes_or_no(tracker)
        if answer is False:
            return {"complaint_confirmed": None, "complaint_fix": "ask"}
        if answer is None:
            dispatcher.utter_message(text="请回复“1”确认提交，或回复“2”修改。")
        return {"complaint_confirmed": answer}


class ActionAskComplaintDetails(Action):
    def name(self) -> Text:
        return "action_ask_complaint_details"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        description = tracker.get_slot("complaint_description")
        if not description:
            dispatcher.utter_message(
                text="请您说一说具体情况：什么时间、什么事、涉及哪个单位或人员，以及您希望怎样解决。\n"
                     "可以分几条发送，说完后请回复“说完了”。有照片等材料也可以直接发送。\n"
                     "请不要发送身份证号、银行卡号。")
        elif description == said(tracker).strip() and register.is_abusive(description, _rules()):
            # Taken calmly, and never quoted back.
            dispatcher.utter_message(text="您反映的情况已记下，我们会认真对待。\n"
                                          "还有要补充的吗？请接着说；说完了请回复“说完了”。")
        elif description == said(tracker).strip():  # all of it came in this message
            dispatcher.utter_message(text=f"您说的情况已记下：“{_quote(description)}”\n"
                                          "还有要补充的吗？请接着说；说完了请回复“说完了”。")
        else:
            dispatcher.utter_message(text=f"记下了（共{len(description)}字）。还有要补充的请接着说；"
                                          "说完了请回复“说完了”。")
        return []


class ActionAskComplaintCategory(Action):
    def name(self) -> Text:
        return "action_ask_complaint_category"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        rules = _rules()
        guess = tracker.get_slot("complaint_category_guess")
        if guess is None:
            guess = register.recognise_category(tracker.get_slot("complaint_description") or "", rules)
        category = next((c for c in rules.categories if c.name == guess), None)
        if category is not None and category.name != "其他":
            dispatcher.utter_message(text=f"根据您说的情况，这个问题属于“{category.name}”（{category.description}），"
                                          "对吗？请回复数字：",
                                     buttons=[{"title": "是的", "payload": "/affirm"},
                                              {"title": "不是，我来选", "payload": "/deny"}])
            return [SlotSet("complaint_category_guess", category.name)]
        buttons = [{"title": f"{c.name}：{c.description}", "payload": f'/inform{{"complaint_category": "{c.name}"}}'}
                   for c in rules.categories]
        dispatcher.utter_message(text="请问您反映的问题属于哪一类？请回复数字：", buttons=buttons)
        return [SlotSet("complaint_category_guess", "-")]


class ActionAskComplaintMerge(Action):
    def name(self) -> Text:
        return "action_ask_complaint_merge"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid, number = tracker.sender_id, tracker.get_slot("complaint_duplicate")
        view = await _in_session(lambda session: register.find_for_user(
            session, number, openid, _veteran_id(session, openid), now=now()))
        line = register.short_description(view) if view else number
        dispatcher.utter_message(
            text=f"您在24小时内已经反映过同类问题：{line}。\n这次说的情况，是补充到那件里，还是作为新的问题另行登记？",
            buttons=[{"title": "补充到原来那件", "payload": "/affirm"},
                     {"title": "作为新问题另行登记", "payload": "/deny"}])
        return []


class ActionAskComplaintPlace(Action):
    def name(self) -> Text:
        return "action_ask_complaint_place"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(text="这件事发生在哪里？请告诉我服务站、单位或地点的名称；不涉及具体地点请回复“无”。")
        return []


class ActionAskComplaintReply(Action):
    def name(self) -> Text:
        return "action_ask_complaint_reply"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid = tracker.sender_id
        veteran = await _in_session(lambda session: _bound_phone(session, openid))
        buttons = []
        for channel, title in REPLY_NAMES.items():
            if channel == "bound_phone":
                if veteran is None:
                    continue
                title += f"（{veteran}）"
            buttons.append({"title": title, "payload": f'/inform{{"reply_channel": "{channel}"}}'})
        dispatcher.utter_message(text="办理结果您希望怎样收到？请回复数字：", buttons=buttons)
        return []


def _bound_phone(session, openid: str) -> Optional[str]:
    veteran = veterans.by_openid(session, openid)
    if veteran is None:
        return None
    return veteran.phone_masked or "已绑定的手机"


class ActionAskComplaintPhone(Action):
    def name(self) -> Text:
        return "action_ask_complaint_phone"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(text="请发送您的联系电话（手机号，或带区号的座机号）。号码只用于答复这件事，"
                                      "会加密保存，聊天记录里不会出现。")
        return []


def summary(tracker: Tracker, bound_phone: Optional[str]) -> str:
    reply = tracker.get_slot("complaint_reply")
    reply_text = {"bound_phone": f"联系绑定的手机（{bound_phone or ''}）",
                  "case_phone": f"联系您另留的电话（{tracker.get_slot('complaint_phone') or ''}）",
                  "wechat": "在微信里答复", "anonymous": "匿名，不答复"}.get(reply, "")
    place = tracker.get_slot("complaint_place")
    lines = [f"类别：{tracker.get_slot('complaint_category')}",
             f"情况：{_quote(tracker.get_slot('complaint_description') or '')}",
             f"地点：{'未说明' if place in (None, '无') else place}",
             f"答复方式：{reply_text}"]
    attachments = tracker.get_slot("complaint_attachments") or []
    if attachments:
        lines.append(f"附件：{len(attachments)}个")
    return "\n".join(lines)


class ActionAskComplaintConfirmed(Action):
    def name(self) -> Text:
        return "action_ask_complaint_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        if tracker.get_slot("complaint_fix") == "ask":
            buttons = [{"title": title, "payload": f'/inform{{"complaint_field": "{key}"}}'}
                       for key, title in FIX_FIELDS]
            buttons.append({"title": "不提交了", "payload": "/stop"})
            dispatcher.utter_message(text="请问要修改哪一项？请回复数字：", buttons=buttons)
            return []
        openid = tracker.sender_id
        bound = await _in_session(lambda session: _bound_phone(session, openid))
        dispatcher.utter_message(text=f"请核对您要反映的问题：\n{summary(tracker, bound)}\n确认提交吗？请回复数字：",
                                 buttons=[{"title": "确认提交", "payload": "/affirm"},
                                          {"title": "需要修改", "payload": "/deny"}])
        return []


def _add_attachments(session, number: str, openid: str, attachments, veteran_id, current) -> None:
    for item in attachments or []:
        register.add_attachment(session, number, openid, item["media_id"], item["type"], current, veteran_id)


class ActionSubmitComplaint(Action):
    """Registers the case (or adds to the open one), or says why nothing was sent."""

    def name(self) -> Text:
        return "action_submit_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid, current = tracker.sender_id, now()
        description = tracker.get_slot("complaint_description") or said(tracker)
        attachments = tracker.get_slot("complaint_attachments")
        urgent = bool(tracker.get_slot("complaint_urgent"))
        merge_into = tracker.get_slot("complaint_duplicate") if tracker.get_slot("complaint_merge") else None
        if not urgent and not merge_into and not tracker.get_slot("complaint_confirmed"):
            dispatcher.utter_message(response="utter_complaint_not_sent")
            return reset_events()
        told: Dict[str, str] = {}  # an urgent case: when a person will answer

        def work(session):
            veteran_id = _veteran_id(session, openid)
            if merge_into:
                try:
                    view = register.add_information(session, merge_into, openid, description, current, veteran_id)
                except register.CaseClosed:
                    view = None
                if view is None:  # closed meanwhile
                    return "merge_failed", None
                _add_attachments(session, view.case_number, openid, attachments, veteran_id, current)
                return "merged", view
            if urgent:
                channel, phone = ("bound_phone" if veteran_id else "wechat"), None
                category, place, station = None, None, None
            else:
                channel = tracker.get_slot("complaint_reply")
                phone = None
                if channel == "case_phone":
                    draft = contacts.take(session, openid, PHONE_PURPOSE, current)
                    if draft is None:
                        return "phone_expired", None
                    try:
                        phone = draft.number(resources.vault())  # sealed again, bound to the case
                    except NotDecryptable:
                        log.error("a contact draft does not decrypt in its row (altered, or another key)")
                        return "phone_unreadable", None
                category = tracker.get_slot("complaint_category")
                place = tracker.get_slot("complaint_place")
                place = None if place == "无" else place
                code = tracker.get_slot("complaint_station")
                station = _station_id(session, code) if code else None
            view = register.register(
                session, resources.vault(), openid, veteran_id, category, description, place,
                station, channel, phone, urgent, current)
            _add_attachments(session, view.case_number, openid, attachments, veteran_id, current)
            if view.urgent:  # staff take the conversation over at once, first in the queue
                told["when"] = hand_over(session, openid, "urgent", current, urgent=True,
                                         case_number=view.case_number)
            return "registered", view

        try:
            outcome, view = await _in_session(work)
        except register.ComplaintError as error:
            # e.g. the binding was removed meanwhile: ask how to answer again, keep the rest.
            dispatcher.utter_message(text=f"{error}")
            return [SlotSet("complaint_reply", None), SlotSet("complaint_phone", None),
                    SlotSet("complaint_confirmed", None), FollowupAction("complaint_form")]
        if outcome in ("phone_expired", "phone_unreadable"):  # the form asks for the number again
            dispatcher.utter_message(text="您留的电话已超过30分钟，为安全起见已经删除。" if outcome == "phone_expired"
                                     else "您留的电话未能读取，请重新发送一次号码。")
            return [SlotSet("complaint_phone", None), SlotSet("complaint_confirmed", None),
                    FollowupAction("complaint_form")]
        if outcome == "merge_failed":  # the form goes on as a new case
            dispatcher.utter_message(text="原来那件已经办结，不能再补充，这次的情况将作为新问题登记。")
            return [SlotSet("complaint_duplicate", None), SlotSet("complaint_merge", None),
                    FollowupAction("complaint_form")]
        if outcome == "merged":
            dispatcher.utter_message(text=f"已把您说的情况补充到{view.case_number}，承办人员会一并处理。"
                                          "回复“查询投诉”可以了解办理进度。")
            return reset_events()
        if view.urgent:
            # When a person will be there (at night: from the opening hours), and the 24-hour
            # lines (data/emergency.yml).
            dispatcher.utter_message(response="utter_complaint_urgent", case_number=view.case_number,
                                     expected_reply=told.get("when") or "", emergency_help=handoff.emergency_help())
            return reset_events() + paused()
        else:
            dispatcher.utter_message(text=registered_text(view))
        return reset_events()


def registered_text(view: register.CaseView) -> str:
    due = view.reply_by
    lines = [f"您反映的问题已登记，编号：{view.case_number}（请记下，查询进度时会用到）。"]
    if due is not None:
        lines.append(f"我们将在{due.month}月{due.day}日前告知您是否受理及办理方式。")
    lines.append({
        "anonymous": "您选择了匿名反映，我们不会主动联系您，请凭编号在这里查询进度。",
        "wechat": "办理进展会通过本公众号告诉您。",
    }.get(view.reply_channel, f"工作人员会通过您留的电话联系您，办理进展也会通过本公众号告诉您。"))
    lines.append("回复“查询投诉”可以随时了解办理进度。")
    return "\n".join(lines)


class ActionResetComplaint(Action):
    def name(self) -> Text:
        return "action_reset_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        await _in_session(lambda session: contacts.take(session, tracker.sender_id, PHONE_PURPOSE, now()))
        return reset_events()


# --- following a case ------------------------------------------------------------------


def case_number_in(tracker: Tracker) -> Optional[str]:
    """A case number the user typed or picked (entity case_number), normalised."""
    picked = chosen_entities(tracker).get("case_number")
    for entity in (tracker.latest_message or {}).get("entities", []):
        if entity.get("entity") == "case_number":
            picked = picked or entity.get("value")
    if picked:
        return register.normalize_case_number(str(picked))
    match = re.search(r"[Tt][Ss]\s*[0-9０-９]{8}\s*[-－—_]?\s*[0-9０-９]{1,6}", said(tracker))
    return register.normalize_case_number(match.group(0)) if match else None


def _case_buttons(views, intent: str) -> List[Dict[str, str]]:
    return [{"title": register.short_description(v), "payload": f'/{intent}{{"case_number": "{v.case_number}"}}'}
            for v in views]


class ActionQueryComplaint(Action):
    """查询进度: by number (only the user's own), or the list of the user's cases."""

    def name(self) -> Text:
        return "action_query_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid, current, number = tracker.sender_id, now(), case_number_in(tracker)

        def work(session):
            veteran_id = _veteran_id(session, openid)
            if number:
                return register.find_for_user(session, number, openid, veteran_id, now=current), None
            return None, register.cases_for_user(session, openid, veteran_id, now=current, limit=10)

        found, cases = await _in_session(work)
        if number:
            if found is None:
                dispatcher.utter_message(text=f"没有查到您反映的编号为{number}的问题。请核对编号；"
                                              "只能查询本人反映的问题。回复“查询投诉”可以列出您反映过的问题。")
            else:
                dispatcher.utter_message(text=register.status_text(found, current))
            return []
        if not cases:
            dispatcher.utter_message(text="没有查到您反映过的问题。如需反映问题，请回复“投诉”。")
        elif len(cases) == 1:
            dispatcher.utter_message(text=register.status_text(cases[0], current))
        else:
            dispatcher.utter_message(text=f"您反映过{len(cases)}个问题，请回复数字查看详情：",
                                     buttons=_case_buttons(cases, "query_complaint"))
        return []


def _open(views):
    return [v for v in views if v.state != "closed"]


class ValidateComplaintAdditionForm(FormValidationAction):
    """补充情况: which of the user's open cases, then the text."""

    def name(self) -> Text:
        return "validate_complaint_addition_form"

    async def extract_complaint_target(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                       domain: DomainDict) -> Dict[Text, Any]:
        if tracker.get_slot("complaint_target"):
            return {}
        number = case_number_in(tracker)
        if number is None and tracker.get_slot("requested_slot") is None:
            openid = tracker.sender_id
            cases = await _in_session(lambda session: _open(register.cases_for_user(
                session, openid, _veteran_id(session, openid), now=now())))
            if len(cases) == 1:
                number = cases[0].case_number
            elif not cases:
                number = "none"
        return {"complaint_target": number} if number else {}

    async def validate_complaint_target(self, value: Any, dispatcher: CollectingDispatcher,
                                        tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        if value == "none":
            dispatcher.utter_message(text="您目前没有正在办理的问题可以补充。如需反映新的问题，请回复“投诉”。")
            return {"complaint_target": None, "requested_slot": None}
        openid = tracker.sender_id
        view = await _in_session(lambda session: register.find_for_user(
            session, str(value), openid, _veteran_id(session, openid), now=now()))
        if view is None:
            dispatcher.utter_message(text="没有查到这个编号下您反映的问题，请核对编号。")
            return {"complaint_target": None}
        if view.state == "closed":
            dispatcher.utter_message(text=f"{view.case_number}已经办结，不能再补充。如有新的问题，请回复“投诉”。")
            return {"complaint_target": None, "requested_slot": None}
        return {"complaint_target": view.case_number}

    async def validate_complaint_addition(self, value: Any, dispatcher: CollectingDispatcher,
                                          tracker: Tracker, domain: DomainDict) -> Dict[Text, Any]:
        text = str(value or "").strip()
        if not text or len(text) > register.MAX_TEXT:
            dispatcher.utter_message(text=f"请用{register.MAX_TEXT}字以内说明要补充的情况。")
            return {"complaint_addition": None}
        return {"complaint_addition": text}


class ActionAskComplaintTarget(Action):
    def name(self) -> Text:
        return "action_ask_complaint_target"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid = tracker.sender_id
        cases = await _in_session(lambda session: _open(register.cases_for_user(
            session, openid, _veteran_id(session, openid), now=now())))
        dispatcher.utter_message(text="要补充到哪一件？请回复数字或编号：",
                                 buttons=_case_buttons(cases, "inform"))
        return []


class ActionSubmitComplaintAddition(Action):
    def name(self) -> Text:
        return "action_submit_complaint_addition"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        number, text, openid = tracker.get_slot("complaint_target"), tracker.get_slot("complaint_addition"), tracker.sender_id
        if number and text:
            def work(session):
                return register.add_information(session, number, openid, text, now(), _veteran_id(session, openid))

            try:
                view = await _in_session(work)
            except register.ComplaintError as error:
                view = None
                dispatcher.utter_message(text=str(error))
            else:
                if view is not None:
                    dispatcher.utter_message(text=f"已补充到{view.case_number}，承办人员会一并处理。")
        return reset_events()


# --- the rating after the answer -------------------------------------------------------


def rating_in(text: str) -> Optional[str]:
    bare = _bare(text)
    if re.search(r"不满意|不太满意|很不满|不认可|没解决", bare):
        return "不满意"
    if re.search(r"基本满意|还行|一般|凑合|还可以|比较满意", bare):
        return "基本满意"
    if re.search(r"满意|挺好|很好|解决了", bare):
        return "满意"
    return None


class ActionRateComplaint(Action):
    """回访: the user's 满意 / 基本满意 / 不满意 on their answered case."""

    def name(self) -> Text:
        return "action_rate_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        openid, current = tracker.sender_id, now()
        picked = chosen_entities(tracker)
        rating = picked.get("complaint_rating") or rating_in(_text(tracker))
        number = case_number_in(tracker)

        def work(session):
            veteran_id = _veteran_id(session, openid)
            mine = register.cases_for_user(session, openid, veteran_id, now=current)
            waiting = [v for v in mine if v.state in ("answered", "follow_up")]
            in_hand = [v for v in mine if v.state in ("registered", "classified", "in_progress")]
            target = number or (waiting[0].case_number if len(waiting) == 1 else None)
            if rating is None or target is None:
                return None, waiting, in_hand
            try:
                return register.rate(session, target, openid, rating, current, veteran_id), waiting, in_hand
            except register.ComplaintError as error:
                return str(error), waiting, in_hand

        result, waiting, in_hand = await _in_session(work)
        if isinstance(result, str):
            dispatcher.utter_message(text=result)
        elif result is not None:
            if result.state == "closed":
                dispatcher.utter_message(text=f"感谢您的评价！您反映的问题（{result.case_number}）已办结。"
                                              "如有新的问题，欢迎随时反映。")
            else:
                dispatcher.utter_message(text=f"很抱歉没能让您满意。您反映的问题（{result.case_number}）已重新交办，"
                                              "我们会再次认真办理并答复您。如需补充情况，请回复“补充情况”。")
        elif not waiting and in_hand:
            dispatcher.utter_message(text=f"您反映的问题（{in_hand[0].case_number}）还在办理中，答复后才能评价。"
                                          "回复“查询投诉”可以了解办理进度。")
        elif not waiting:
            dispatcher.utter_message(text="您目前没有需要评价的答复。如果对某件事不满意，可以回复“投诉”反映。")
        elif rating is None:
            dispatcher.utter_message(text="请对办理结果作出评价，回复数字：",
                                     buttons=[{"title": r, "payload": f'/rate_complaint{{"complaint_rating": "{r}"'
                                                                     + (f', "case_number": "{number}"' if number else "")
                                                                     + "}"}
                                              for r in ("满意", "基本满意", "不满意")])
        else:
            dispatcher.utter_message(text="您有几件问题在等待评价，请回复数字选择要评价的一件：",
                                     buttons=[{"title": register.short_description(v),
                                               "payload": f'/rate_complaint{{"complaint_rating": "{rating}", '
                                                          f'"case_number": "{v.case_number}"}}'}
                                              for v in waiting])
        return []


class ActionReceiveAttachment(Action):
    """A picture, voice or video outside the complaint form: added to the user's
    most recent open case, or explained."""

    def name(self) -> Text:
        return "action_receive_attachment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        attachment, openid, current = _attachment(tracker), tracker.sender_id, now()
        if attachment is None:
            dispatcher.utter_message(text="抱歉，这个文件无法识别。")
            return []

        def work(session):
            veteran_id = _veteran_id(session, openid)
            cases = _open(register.cases_for_user(session, openid, veteran_id, now=current, limit=5))
            if not cases:
                return None
            return register.add_attachment(session, cases[0].case_number, openid, attachment["media_id"],
                                           attachment["type"], current, veteran_id)

        view = await _in_session(work)
        word = ATTACHMENT_WORDS[attachment["type"]]
        if view is None:
            dispatcher.utter_message(text=f"收到您的{word}。如果这是要反映问题的材料，请先回复“投诉”说明情况，"
                                          "再发送材料。")
        else:
            dispatcher.utter_message(text=f"{word}已收到，补充到您反映的问题（{view.case_number}）中。")
        return []


class ActionGiveFeedback(ActionRateComplaint):
    """Praise or a suggestion; a bare 满意 while a case waits for its rating rates it."""

    def name(self) -> Text:
        return "action_give_feedback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: DomainDict) -> List[EventType]:
        if rating_in(_text(tracker)) is not None and len(_bare(_text(tracker))) <= 8:
            openid = tracker.sender_id

            def waiting(session):
                return any(v.state in ("answered", "follow_up") for v in register.cases_for_user(
                    session, openid, _veteran_id(session, openid), now=now()))

            if await _in_session(waiting):
                return await super().run(dispatcher, tracker, domain)
        dispatcher.utter_message(response="utter_give_feedback")
        return []
