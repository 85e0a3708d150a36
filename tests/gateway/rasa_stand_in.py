"""Rasa's HTTP API as the WeChat gateway uses it, for the gateway's tests without a
trained model: the REST channel's webhook, a conversation's tracker, and appending
events to it.

The conversations are Rasa's own ``DialogueStateTracker`` objects, changed by Rasa's
own events (``Event.from_parameters``, as Rasa's ``/tracker/events`` endpoint does), so
pausing and resuming behave as in Rasa: a message to a paused conversation is parsed
and recorded, and not answered (``MessageProcessor._should_handle_message``). The
tracker is served as Rasa serves it (``current_state``: ``paused``, ``latest_message``).

Only the NLU and the policies are played: a few keywords choose the intent, and the
answers are fixed, except 转人工, which runs the real ``action_request_human``
(actions/handoff.py: the handoff in the database, the pause).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from aiohttp import web
from rasa.shared.core.events import ActionExecuted, BotUttered, Event, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker, EventVerbosity
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot import rasa_auth

MENU = "请回复数字选择服务，也可以直接说出您的问题：\n1. 政策咨询\n2. 预约办事"
POLICY_TOPICS = "您想了解哪方面的政策？请回复数字，也可以直接输入问题：\n1. 退役军人优待证"
NOT_UNDERSTOOD = "抱歉，我没能理解您的问题。"
GREETING = "您好！我是荣军助手。"

# (a word in the message, the intent), the first that matches wins.
KEYWORDS = (("转人工", "request_human"), ("人工", "request_human"), ("政策", "policy_topics"),
            ("菜单", "help"), ("你好", "greet"))


def intent_of(text: str) -> str:
    if text.startswith("/"):
        return text[1:].split("{", 1)[0]
    return next((intent for word, intent in KEYWORDS if word in text), "nlu_fallback")


class RasaStandIn:
    def __init__(self) -> None:
        self.trackers: Dict[str, DialogueStateTracker] = {}
        self.received: List[str] = []  # every message, in order
        # When set, Rasa's endpoints answer 401 without a token signed with it, as the
        # real Rasa does (bot/rasa_auth.py): the gateway must send it on every call.
        self.secret: Optional[str] = None
        self.refused = 0
        # While set, deleting a conversation answers 503 (Rasa restarting).
        self.forget_down = False

    def tracker(self, sender: str) -> DialogueStateTracker:
        if sender not in self.trackers:
            self.trackers[sender] = DialogueStateTracker(sender, slots=[])
        return self.trackers[sender]

    def events(self, sender: str) -> List[Dict[str, Any]]:
        return [event.as_dict() for event in self.tracker(sender).events]

    async def _answer(self, tracker: DialogueStateTracker, intent: str) -> List[Dict[str, Any]]:
        if intent == "request_human":
            from actions.handoff import ActionRequestHuman

            dispatcher = CollectingDispatcher()
            state = tracker.current_state(EventVerbosity.ALL)
            done = await ActionRequestHuman().run(dispatcher, Tracker.from_dict(state), {})
            messages = [{"text": m["text"]} for m in dispatcher.messages]
            for message in messages:
                tracker.update(BotUttered(message["text"]))
            for event in done:
                tracker.update(Event.from_parameters(event))
            return messages
        text = {"help": MENU, "policy_topics": POLICY_TOPICS, "greet": GREETING}.get(intent, NOT_UNDERSTOOD)
        tracker.update(BotUttered(text))
        tracker.update(ActionExecuted("action_listen"))
        return [{"text": text}]

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        sender, text = body["sender"], body["message"]
        self.received.append(text)
        tracker = self.tracker(sender)
        intent = intent_of(text)
        parse = {"text": text, "intent": {"name": intent, "confidence": 0.99}, "entities": []}
        tracker.update(UserUttered(text, parse["intent"], [], parse))
        if tracker.is_paused():
            return web.json_response([])  # recorded for staff, not answered
        return web.json_response(await self._answer(tracker, intent))

    async def get_tracker(self, request: web.Request) -> web.Response:
        tracker = self.tracker(request.match_info["sender"])
        return web.json_response(tracker.current_state(EventVerbosity.NONE))

    async def append_events(self, request: web.Request) -> web.Response:
        tracker = self.tracker(request.match_info["sender"])
        for event in await request.json():
            tracker.update(Event.from_parameters(event))
        return web.json_response(tracker.current_state(EventVerbosity.NONE))

    async def forget(self, request: web.Request) -> web.Response:
        # bot.channels' /forget: the conversation goes (the real one: tests/test_tracker_erasure.py).
        if self.forget_down:
            return web.json_response({"error": "restarting"}, status=503)
        tracker = self.trackers.pop((await request.json())["sender"], None)
        return web.json_response({"deleted": len(tracker.events) if tracker else 0})

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})  # the action server's health check

    @web.middleware
    async def _auth(self, request: web.Request, handler):
        if self.secret is not None and request.path != "/health" and \
                not rasa_auth.authorised(request.headers.get("Authorization"), self.secret):
            self.refused += 1
            return web.json_response({"error": "unauthorised"}, status=401)
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/webhooks/rest/webhook", self.webhook)
        app.router.add_post("/webhooks/rest/forget", self.forget)
        app.router.add_get("/conversations/{sender}/tracker", self.get_tracker)
        app.router.add_post("/conversations/{sender}/tracker/events", self.append_events)
        app.router.add_get("/health", self.health)
        return app
