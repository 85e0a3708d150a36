"""The internal services are closed by default (security review: forged calls).

Rasa's HTTP API (trackers, events, the model, status) and the REST channel that
carries users' messages answer 401 without a token signed with the installation's
Rasa secret (bot/rasa_auth.py): `GET /conversations/{openid}/tracker` used to hand
anyone on the machine a user's whole conversation, and `PUT /model` was open.

The action server of the running assistant (started by `vetbot serve` exactly as in
production) listens on loopback only and answers 401 to any call without the token
Rasa sends; the conversations of the other e2e tests prove that Rasa's own calls
carry it. A forged ``POST /webhook`` naming ``action_query_my_benefits`` used to be
answered 200 with the records of any ``sender_id``."""

from __future__ import annotations

import aiohttp
import pytest

from bot import rasa_auth
from bot.settings import Settings
from tests.e2e.conftest import rasa_headers

pytestmark = pytest.mark.e2e

FORGED_CALL = {
    "next_action": "action_query_my_benefits",
    "sender_id": "o-somebody-else",
    "tracker": {"sender_id": "o-somebody-else", "slots": {}, "latest_message": {}, "events": [],
                "paused": False, "followup_action": None, "active_loop": {}, "latest_action_name": None},
    "domain": {},
    "version": "3.6.2",
}


def _listening_addresses(port: int) -> set:
    """The local addresses with a TCP socket listening on ``port`` (from /proc/net/tcp*)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table, encoding="ascii").read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(address)
    return found


def test_the_action_server_listens_on_loopback_only(assistant):
    addresses = _listening_addresses(assistant["action_port"])
    assert addresses == {"0100007F"}  # 127.0.0.1, not 0.0.0.0 (00000000) nor any other


@pytest.mark.parametrize("query", ["", "?token=", "?token=guessed-token"])
async def test_a_forged_action_call_is_refused(assistant, query):
    base = f"http://127.0.0.1:{assistant['action_port']}"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/webhook{query}", json=FORGED_CALL) as response:
            assert response.status == 401
            assert "records" not in await response.text()
        async with http.get(f"{base}/actions{query}") as response:
            assert response.status == 401


async def test_the_health_check_stays_open_and_the_right_token_is_let_in(assistant):
    base = f"http://127.0.0.1:{assistant['action_port']}"
    token = Settings.from_env(assistant["env"]).action_token  # what `vetbot serve` passed on
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/health") as response:
            assert response.status == 200
        async with http.get(f"{base}/actions", params={"token": token}) as response:
            assert response.status == 200
            assert {"name": "action_query_my_benefits"} in await response.json()


FORGED_RASA_CALLS = [
    ("GET", "/conversations/o-somebody-else/tracker", None),
    ("POST", "/conversations/o-somebody-else/tracker/events", [{"event": "pause"}]),
    ("PUT", "/model", {"model_file": "/tmp/other.tar.gz"}),
    ("GET", "/status", None),
    ("POST", "/webhooks/rest/webhook", {"sender": "o-somebody-else", "message": "我的待遇"}),
    ("POST", "/webhooks/rest/forget", {"sender": "o-somebody-else"}),  # erase someone's conversation
]


@pytest.mark.parametrize("method, path, body", FORGED_RASA_CALLS)
@pytest.mark.parametrize("authorisation", [None, "Bearer not-a-token", "Bearer " + rasa_auth.bearer("a-guessed-secret-of-forty-characters-xx")])
async def test_a_forged_call_to_rasa_is_refused(assistant, method, path, body, authorisation):
    headers = {"Authorization": authorisation} if authorisation else {}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.request(method, f"{assistant['url']}{path}", json=body) as response:
            assert response.status == 401
            assert "o-somebody-else" not in await response.text()


async def test_rasa_answers_its_own_installation(assistant):
    async with aiohttp.ClientSession(headers=rasa_headers(assistant)) as http:
        async with http.get(f"{assistant['url']}/status") as response:
            assert response.status == 200 and (await response.json())["model_file"]
        async with http.post(f"{assistant['url']}/webhooks/rest/webhook",
                             json={"sender": "o-internal-check", "message": "你好"}) as response:
            assert response.status == 200 and "您好" in (await response.json())[0]["text"]
        async with http.get(f"{assistant['url']}/conversations/o-internal-check/tracker") as response:
            assert response.status == 200
            assert [e["text"] for e in (await response.json())["events"] if e["event"] == "user"] == ["你好"]
        async with http.post(f"{assistant['url']}/webhooks/rest/forget", json={"sender": "o-internal-check"}) as response:
            assert response.status == 200 and (await response.json())["deleted"] > 0
        async with http.get(f"{assistant['url']}/conversations/o-internal-check/tracker") as response:
            assert [e for e in (await response.json())["events"] if e["event"] == "user"] == []
