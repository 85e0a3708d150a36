"""The whole assistant (`python -m bot.cli serve`) on free ports with its own var/,
for the end-to-end tests and the chat benchmarks: its own veteran database,
tracker store and logs, so a `make run` on the same machine is not disturbed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

from bot.chat import wait_until_ready
from bot.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Test values only (no real official account has them).
TEST_WECHAT_TOKEN = "vetbot-e2e-token"
TEST_WECHAT_APPID = "wxe2e0000000000001"
TEST_WECHAT_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat's


@dataclass
class RunningAssistant:
    url: str  # Rasa (the REST chat channel)
    gateway: str
    mock_wechat: str
    action_port: int
    var_dir: Path
    proc: subprocess.Popen
    env: Dict[str, str]  # the environment serve runs with (to start more processes like it)
    rasa_token: str = ""  # what Rasa's HTTP API and the REST channel require (bot/rasa_auth.py)


class AssistantDidNotStart(RuntimeError):
    pass


def wait_for_http(url: str, timeout: float, any_status: bool = False) -> bool:
    """True once ``url`` answers 200 (with ``any_status``, answers at all) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError:
            if any_status:
                return True
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.5)
    return False


@contextmanager
def running_assistant(var_dir: Path, extra_env: Optional[Dict[str, str]] = None,
                      timeout: float = 240) -> Iterator[RunningAssistant]:
    """Start serve with a trained model; stop it (Ctrl-C, then kill) on leaving."""
    rasa_port, action_port, gateway_port, mock_port = free_port(), free_port(), free_port(), free_port()
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
        "VETBOT_SECRET_KEY": "test-secret-key",
        # WeChat in safe (AES) mode, against the mock WeChat API that serve starts.
        "VETBOT_MOCK_WECHAT_PORT": str(mock_port),
        "WECHAT_TOKEN": TEST_WECHAT_TOKEN,
        "WECHAT_APPID": TEST_WECHAT_APPID,
        "WECHAT_AES_KEY": TEST_WECHAT_AES_KEY,
        "VETBOT_OUTBOX_INTERVAL": "1",
    }
    for name in ("VETBOT_DATABASE_URL", "VETBOT_PII_KEY", "VETBOT_SMS_SENDER", "WECHAT_API_BASE",
                 "WECHAT_SECRET", "WECHAT_ACCOUNT_ID", "VETBOT_REDIS_URL", "VETBOT_TRACKER_URL",
                 "VETBOT_ACTION_TOKEN", "VETBOT_RASA_TOKEN", "VETBOT_ACTION_HOST", "SANIC_HOST"):
        env.pop(name, None)
    env.update(extra_env or {})
    log = (var_dir / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=PROJECT_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rasa_port}"
    rasa_token = Settings.from_env(env).rasa_token  # as serve derives it
    try:
        if not wait_until_ready(url, timeout=timeout, token=rasa_token):
            raise AssistantDidNotStart("Rasa did not come up:\n" + (var_dir / "serve.log").read_text()[-3000:])
        gateway = f"http://127.0.0.1:{gateway_port}"
        if not wait_for_http(f"{gateway}/healthz", timeout=60):
            raise AssistantDidNotStart("the gateway is not healthy:\n" + (var_dir / "serve.log").read_text()[-3000:])
        yield RunningAssistant(url, gateway, f"http://127.0.0.1:{mock_port}", action_port, var_dir, proc, env,
                               rasa_token)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
