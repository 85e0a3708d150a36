"""action_answer_policy: the policy answer, with short follow-ups kept on their topic.

Rasa's retrieval action (utter_faq) answers the topic the response selector chose
for the message alone. People ask on: "那需要带什么材料" after the 保险接续 answer
means 保险接续's materials, yet on its own it reads like any topic. This action
answers the same responses (``utter_faq/<topic>`` from domain/faq/), remembers the
topic in the slot ``last_policy_topic``, and answers a short follow-up that names no
policy subject of its own ("那…呢", "需要带什么", "在哪办", "多少钱") with the
topic before it.

A long message that asks about several topics (``policy_topics`` in the parse data,
bot/nlu/several.py) gets the first answered and the others offered by number.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.labels import intent_label
from bot.settings import PROJECT_ROOT
from bot.text import normalize

DICTIONARY_DIR = PROJECT_ROOT / "nlu_data" / "dictionary"
# Words of the domain dictionary that name no policy subject of their own.
GENERIC_WORDS = {"退役军人", "退伍军人", "退役士兵", "退伍兵", "老兵", "服务站", "服务中心", "退役军人服务站",
                 "退役军人服务中心", "退役军人事务局"}
FOLLOW_UP = re.compile(
    r"(带|准备|交|提供)(什么|啥|哪些)|什么材料|啥材料|哪些材料|(在|去|到)哪(儿|里)?(办|申请|领|交)"
    r"|多少钱|给多少|怎么(办|申请|办理|领)|什么时候(办|发|领|能)|(有|要)什么条件|谁(能|可以)(办|申请|领)"
    r"|需要多久|多长时间|呢$")
MAX_FOLLOW_UP_LENGTH = 16


@lru_cache(maxsize=1)
def subject_words() -> frozenset:
    """The domain dictionary's words that name a subject (优待证, 光荣牌, 保险接续 …)."""
    words = set()
    for path in sorted(Path(DICTIONARY_DIR).glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            word = line.split()[0] if line.strip() and not line.startswith("#") else ""
            if len(word) >= 2 and word not in GENERIC_WORDS:
                words.add(word)
    return frozenset(words)


def is_follow_up(text: str) -> bool:
    """A short question that asks on about something said before and names no subject."""
    cleaned = re.sub(r"[\s，。,.!！?？~～]+", "", normalize(text or ""))
    if not cleaned or len(cleaned) > MAX_FOLLOW_UP_LENGTH or not FOLLOW_UP.search(cleaned):
        return False
    return not any(word in cleaned for word in subject_words())


def selected_topic(parse_data: Dict[str, Any]) -> Optional[str]:
    selector = (parse_data.get("response_selector") or {}).get("faq") or {}
    return (selector.get("response") or {}).get("intent_response_key")


class ActionAnswerPolicy(Action):
    def name(self) -> Text:
        return "action_answer_policy"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[Text, Any]) -> List[EventType]:
        message = tracker.latest_message or {}
        topic = selected_topic(message)
        previous = tracker.get_slot("last_policy_topic")
        if previous and previous != topic and is_follow_up(message.get("text") or ""):
            topic = previous
        if not topic:
            dispatcher.utter_message(response="utter_ask_rephrase")
            return []
        dispatcher.utter_message(response=f"utter_{topic}")
        others = [t["intent_response_key"] for t in message.get("policy_topics") or []
                  if t.get("intent_response_key") and t["intent_response_key"] != topic]
        if others:
            # A long message that asked several things: the rest, to read by number,
            # and a person for whatever was not understood.
            dispatcher.utter_message(
                text="您的留言还问到了下面几件事，请回复数字查看；其他问题可回复“转人工”，由工作人员答复：",
                buttons=[{"title": intent_label(key), "payload": f"/{key}"} for key in others])  # faq/<topic>
        return [SlotSet("last_policy_topic", topic)]
