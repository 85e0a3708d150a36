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
from bot.testing.assistant import AssistantDidNotStart, running_assistant
from bot.training import latest_model


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


def say(assistant, sender: str, text: str) -> str:
    """The assistant's answer to ``text`` through the REST chat channel, as the user reads it."""
    return "\n".join(render_messages(send(assistant["url"], sender, text, timeout=60, token=assistant["rasa_token"])))


def rasa_headers(assistant) -> dict:
    """What Rasa's HTTP API requires of every call (bot/rasa_auth.py)."""
    return rasa_auth.headers(assistant["rasa_token"])
