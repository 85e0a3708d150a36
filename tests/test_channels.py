"""The chat channel's part in keeping personal numbers out of Rasa (bot.channels);
the whole path, with Rasa and the action server, is in tests/e2e.

The channel holds no state of its own: the numbers taken out of a message travel with
that request (a context variable), and whether the bot is waiting for a phone number
is read from the conversation in Rasa's tracker store. Two channels on one tracker
store here stand for two Rasa processes behind a load balancer."""

import asyncio
import contextvars
import time
from types import SimpleNamespace

import pytest
from rasa.core.agent import Agent
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.lock_store import InMemoryLockStore
from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, ActiveLoop, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig
from sqlalchemy import select

from bot import channels, resources
from bot.channels import RedactingRestInput
from bot.db.models import ContactDraft
from bot.db.session import make_engine, make_session_factory, session_scope
from bot.pii import PiiVault
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import TEST_SECRET


def _request(sender, message):
    return SimpleNamespace(json={"sender": sender, "message": message})


def _extract(channel, sender, message):
    """One request: the text Rasa gets and the phones taken out, in the request's own context."""
    def run():
        text = channel._extract_message(_request(sender, message))
        return text, channels._TAKEN.get()

    return contextvars.copy_context().run(run)


def test_numbers_are_taken_out_and_the_phones_stay_with_the_request():
    channel = RedactingRestInput()
    text, phones = _extract(channel, "u1", "电话 138 1234 5678 座机021-69590001 身份证110105194912310021")
    assert text == "电话 [手机号已隐去] 座机[电话号码已隐去] 身份证[身份证号已隐去]"
    assert phones == ("13812345678", "02169590001")
    assert _extract(channel, "u2", "没有号码") == ("没有号码", ())
    assert channels._TAKEN.get() == ()  # nothing outlives the request
    assert not [v for v in vars(channel).values() if isinstance(v, dict)]  # no table by sender


@pytest.fixture
def two_processes(tmp_path):
    """Two channels, each with its own Rasa agent, on one SQLite tracker store; the
    veteran database for the contact drafts."""
    url = f"sqlite:///{tmp_path / 'vetbot.db'}"
    from bot.db.migrate import upgrade

    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    resources.use(Settings.from_env({"VETBOT_DATABASE_URL": url, "VETBOT_VAR_DIR": str(tmp_path),
                                     "VETBOT_SECRET_KEY": TEST_SECRET}), factory, PiiVault(TEST_SECRET))
    domain = Domain.load(str(PROJECT_ROOT / "domain"))  # the bot's own: complaint_form, requested_slot
    store = EndpointConfig(type="SQL", dialect="sqlite", db=str(tmp_path / "tracker.db"))
    pair = []
    for _ in range(2):
        channel = RedactingRestInput()
        agent = Agent(domain=domain, tracker_store=TrackerStore.create(store, domain), lock_store=InMemoryLockStore())
        channel._app = SimpleNamespace(ctx=SimpleNamespace(agent=agent))
        pair.append(channel)
    yield SimpleNamespace(channels=pair, factory=factory)
    resources.use()
    engine.dispose()


async def _bot_asks_for_phone(channel, sender, at=None):
    agent = channel._app.ctx.agent
    tracker = DialogueStateTracker(sender, slots=agent.domain.slots)
    tracker.update(UserUttered("我要投诉", {"name": "file_complaint", "confidence": 1.0}))
    tracker.update(ActiveLoop("complaint_form"))
    tracker.update(SlotSet("requested_slot", "complaint_phone"))
    tracker.update(BotUttered("请留一个方便联系您的电话。", timestamp=at))
    tracker.update(ActionExecuted("action_listen", timestamp=at))
    await agent.tracker_store.save(tracker)


async def _receive(channel, sender, text):
    """What the channel hands Rasa for ``text``, and whether it kept a phone."""
    def run():
        cleaned = channel._extract_message(_request(sender, text))
        message = UserMessage(cleaned, CollectingOutputChannel(), sender,
                              metadata=channel.get_metadata(_request(sender, text)))
        return message

    context = contextvars.copy_context()
    message = context.run(run)
    kept = await context.run(asyncio.ensure_future, channel._take_phones(message))  # a task in that context
    return message, kept


def _drafts(factory, sender):
    with session_scope(factory) as session:
        return session.execute(select(ContactDraft.phone_masked).where(ContactDraft.openid == sender)).scalars().all()


async def test_a_bare_number_is_taken_on_any_process_while_a_phone_is_awaited(two_processes):
    first, second = two_processes.channels
    # Nothing asked: a bare number may be anything, and stays.
    message, kept = await _receive(second, "o-1", "69590001")
    assert message.text == "69590001" and not kept
    await _bot_asks_for_phone(first, "o-1")  # the question was asked on the first process …
    message, kept = await _receive(second, "o-1", "69590001")  # … the answer reaches the second
    assert message.text == "[电话号码已隐去]" and message.metadata == {"redacted": ["phone"]}
    assert not kept  # without its area code it cannot be dialled: the bot asks again
    message, kept = await _receive(second, "o-1", "021 6959 0001")
    assert message.text == "[电话号码已隐去]" and kept
    assert _drafts(two_processes.factory, "o-1") == ["021****0001"]
    # Another user, and case numbers, are not affected.
    assert (await _receive(second, "o-2", "69590001"))[0].text == "69590001"
    assert (await _receive(second, "o-1", "TS20261122-0007"))[0].text == "TS20261122-0007"


async def test_a_question_asked_long_ago_no_longer_takes_bare_numbers(two_processes):
    first, second = two_processes.channels
    await _bot_asks_for_phone(first, "o-1", at=time.time() - channels.AWAIT_SECONDS - 60)
    assert (await _receive(second, "o-1", "69590001"))[0].text == "69590001"
    # A mobile is always taken out, and is not kept for a question this old.
    message, kept = await _receive(second, "o-1", "13812345678")
    assert message.text == "[手机号已隐去]" and not kept and _drafts(two_processes.factory, "o-1") == []


def test_the_bare_number_pattern():
    taken = channels.take_bare_numbers("座机 6959 0001，或者 69-590-002")
    assert taken.text == "座机 [电话号码已隐去]，或者 [电话号码已隐去]" and taken.phones == ("69590001", "69590002")
    assert channels.take_bare_numbers("12345").phones == ()  # too short for a phone
