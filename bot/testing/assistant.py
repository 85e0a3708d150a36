"""The whole assistant (`python -m bot.cli serve`) on free ports with its own var/,
for the end-to-end tests and the chat benchmarks: its own veteran database,
tracker store and logs, so a `make run` on the same machine is not disturbed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

from bot.chat import wait_until_ready
from bot.settings import PROJECT_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningAssistant:
    url: str  # Rasa (the REST chat channel)
    gateway: str
    action_port: int
    var_dir: Path
    proc: subprocess.Popen


class AssistantDidNotStart(RuntimeError):
    pass


@contextmanager
def running_assistant(var_dir: Path, extra_env: Optional[Dict[str, str]] = None,
                      timeout: float = 240) -> Iterator[RunningAssistant]:
    """Start serve with a trained model; stop it (Ctrl-C, then kill) on leaving."""
    rasa_port, action_port, gateway_port = free_port(), free_port(), free_port()
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
    }
    for name in ("VETBOT_DATABASE_URL", "VETBOT_PII_KEY", "VETBOT_SMS_SENDER"):
        env.pop(name, None)
    env.update(extra_env or {})
    log = (var_dir / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=PROJECT_ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rasa_port}"
    try:
        if not wait_until_ready(url, timeout=timeout):
            raise AssistantDidNotStart("Rasa did not come up:\n" + (var_dir / "serve.log").read_text()[-3000:])
        yield RunningAssistant(url, f"http://127.0.0.1:{gateway_port}", action_port, var_dir, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
