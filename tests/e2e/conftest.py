"""The assistant for the end-to-end tests: `python -m bot.cli serve` on free ports,
its own var/ (veteran database, tracker store, logs), started once per run.

Needs a trained model (`make test` trains one first). Runs on its own ports and
its own databases, so a `make run` on the same machine is not disturbed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from bot.chat import wait_until_ready
from bot.settings import PROJECT_ROOT
from bot.training import latest_model


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def assistant(tmp_path_factory):
    if latest_model() is None:
        pytest.fail("no trained model: run `make train` first")
    var_dir = tmp_path_factory.mktemp("var")
    rasa_port, action_port, gateway_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "VETBOT_VAR_DIR": str(var_dir),
        "VETBOT_RASA_PORT": str(rasa_port),
        "VETBOT_ACTION_PORT": str(action_port),
        "VETBOT_ACTION_SERVER_URL": f"http://127.0.0.1:{action_port}/webhook",
        "VETBOT_TRACKER_DB": str(var_dir / "tracker.db"),
        "VETBOT_SERVICE_PHONE": "021-5999-0000",
        "VETBOT_BUREAU_NAME": "测试区退役军人事务局",
        "VETBOT_GATEWAY_PORT": str(gateway_port),
        "VETBOT_PUBLIC_URL": f"http://127.0.0.1:{gateway_port}",
        "VETBOT_DEMO_VETERANS": "200",
        "VETBOT_SECRET_KEY": "e2e-secret-key",
        # Debug logs print every message Rasa receives: the privacy test reads them.
        "LOG_LEVEL": "DEBUG",
    }
    for name in ("VETBOT_DATABASE_URL", "VETBOT_PII_KEY", "VETBOT_SMS_SENDER"):
        env.pop(name, None)
    log = (var_dir / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve"], cwd=PROJECT_ROOT, env=env,
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{rasa_port}"
    try:
        if not wait_until_ready(url, timeout=240):
            pytest.fail("Rasa did not come up:\n" + (var_dir / "serve.log").read_text()[-3000:])
        yield {"url": url, "proc": proc, "var_dir": var_dir, "action_port": action_port,
               "gateway": f"http://127.0.0.1:{gateway_port}"}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


