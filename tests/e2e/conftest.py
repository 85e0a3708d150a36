"""The assistant for the end-to-end tests: `python -m bot.cli serve` on free ports,
its own var/ (veteran database, tracker store, logs), started once per run
(bot.testing.assistant).

Needs a trained model (`make test` trains one first). Runs on its own ports and
its own databases, so a `make run` on the same machine is not disturbed.
"""

from __future__ import annotations

import pytest

from bot import rasa_auth
from bot.chat import send
from bot.render import render_messages
from bot.testing.assistant import (TEST_WECHAT_AES_KEY, TEST_WECHAT_APPID, TEST_WECHAT_TOKEN, AssistantDidNotStart,
                                  running_assistant)
from bot.training import latest_model
from bot.wechat.simulator import WechatUser
from tests.e2e.replies import leaks


@pytest.fixture(scope="session")
def assistant(tmp_path_factory):
    if latest_model() is None:
        pytest.fail("no trained model: run `make train` first")
    var_dir = tmp_path_factory.mktemp("var")
    # Debug logs print every message Rasa receives: the privacy tests read them.
    try:
        with running_assistant(var_dir, {"VETBOT_SECRET_KEY": "e2e-secret-key", "LOG_LEVEL": "DEBUG"}) as running:
            yield {"url": running.url, "proc": running.proc, "var_dir": var_dir,
                   "action_port": running.action_port, "gateway": running.gateway,
                   "mock_wechat": running.mock_wechat, "env": running.env,
                   "rasa_token": running.rasa_token}
    except AssistantDidNotStart as error:
        pytest.fail(str(error))


def _checked(texts, where: str, said: str = ""):
    """Every reply of every e2e conversation: nothing a user must never read
    (tests/e2e/replies.py), except what the user typed themselves and the reply quotes
    (a typed "/send_attachment{…}" in a complaint). Returns ``texts`` unchanged."""
    for text in texts:
        found = [word for word in leaks(text)
                 if not (_components_down and word == "系统繁忙") and word not in said]
        assert not found, f"{where}: a reply contains {found}:\n{text}"
    return texts


_components_down = False


@pytest.fixture(autouse=True)
def every_reply_is_checked(request, monkeypatch):
    """WechatUser.say / later_texts and ``say`` check each reply they return. A test that
    stops a component on purpose (``@pytest.mark.components_down``) may read 系统繁忙."""
    global _components_down
    _components_down = request.node.get_closest_marker("components_down") is not None
    say_through_wechat, later = WechatUser.say, WechatUser.later_texts

    async def checked_say(self, line):
        answer = await say_through_wechat(self, line)
        _checked(answer.texts, f"reply to {line!r}", said=line if isinstance(line, str) else "")
        return answer

    async def checked_later(self, *args, **kwargs):
        return _checked(await later(self, *args, **kwargs), "a later reply")

    monkeypatch.setattr(WechatUser, "say", checked_say)
    monkeypatch.setattr(WechatUser, "later_texts", checked_later)
    yield
    _components_down = False


def say(assistant, sender: str, text: str) -> str:
    """The assistant's answer to ``text`` through the REST chat channel, as the user reads
    it (checked like every reply)."""
    answer = "\n".join(render_messages(send(assistant["url"], sender, text, timeout=60,
                                             token=assistant["rasa_token"])))
    return _checked([answer], f"reply to {text!r}", said=text)[0]


def wechat_user(assistant, gateway=None) -> WechatUser:
    """A new simulated WeChat user (its own OpenID) posting to the assistant's /wechat
    (or another gateway's) in safe mode, reading later replies from the mock WeChat API."""
    return WechatUser(f"{gateway or assistant['gateway']}/wechat", TEST_WECHAT_TOKEN, TEST_WECHAT_APPID,
                      TEST_WECHAT_AES_KEY, api_base=assistant["mock_wechat"])


def rasa_headers(assistant) -> dict:
    """What Rasa's HTTP API requires of every call (bot/rasa_auth.py)."""
    return rasa_auth.headers(assistant["rasa_token"])
