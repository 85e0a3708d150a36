"""The internal services are closed by default (security review: forged calls).

The action server of the running assistant (started by `vetbot serve` exactly as in
production) listens on loopback only and answers 401 to any call without the token
Rasa sends; the conversations of the other e2e tests prove that Rasa's own calls
carry it. A forged ``POST /webhook`` naming ``action_query_my_benefits`` used to be
answered 200 with the records of any ``sender_id``."""

from __future__ import annotations

import aiohttp
import pytest

from bot.settings import Settings

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
