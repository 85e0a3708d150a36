"""Run the assistant's processes in the foreground; Ctrl-C stops them all.

Before they start, the veteran database is migrated and the service network
loaded from data/stations.yml; an empty embedded demo database gets demo veterans.

Each process runs in its own process group so that a signal reaches its
children too; when one process dies the others are stopped as well, so a
half-running assistant never lingers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Dict, List

from bot.database import prepare as prepare_database
from bot.production import refuse_demo_settings
from bot.settings import PROJECT_ROOT, Settings
from bot.training import latest_model

STOP_GRACE_SECONDS = 10


def process_commands(settings: Settings) -> Dict[str, List[str]]:
    rasa = [sys.executable, "-m", "rasa"]
    commands: Dict[str, List[str]] = {}
    if settings.mock_wechat:  # the local stand-in for api.weixin.qq.com (WECHAT_API_BASE unset)
        commands["mock-wechat"] = [sys.executable, "-m", "bot.wechat.mockapi",
                                   "--port", str(settings.mock_wechat_port), "--appid", settings.wechat_appid]
    return {
        **commands,
        "gateway": [sys.executable, "-m", "bot.gateway"],
        "action-server": [
            *rasa, "run", "actions",
            "--actions", "actions",
            "--port", str(settings.action_port),
        ],
        "rasa": [  # Rasa's command line, with its HTTP API locked by a JWT secret (bot/rasa_server.py)
            sys.executable, "-m", "bot.rasa_server", "run",
            "--model", "models",
            "--endpoints", "endpoints.yml",
            "--credentials", "credentials.yml",
            "--enable-api",
            "--interface", "127.0.0.1",
            "--port", str(settings.rasa_port),
        ],
    }


def _stop(processes: Dict[str, subprocess.Popen]) -> None:
    for proc in processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for proc in processes.values():
        remaining = max(0.0, deadline - time.monotonic())
        try:
            proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def serve() -> int:
    refuse_demo_settings("vetbot serve")  # VETBOT_ENV=production: no demo settings
    settings = Settings.from_env()
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    if latest_model() is None:
        print("没有找到训练好的模型：请先运行 `make train`（`make run` 会自动训练）。", file=sys.stderr)
        return 1
    try:
        prepare_database(settings, demo_veterans=settings.demo_veterans)
    except Exception as error:  # a clear message instead of a traceback at start-up
        print(f"数据库准备失败：{error}", file=sys.stderr)
        return 1
    processes: Dict[str, subprocess.Popen] = {}
    stopping = False

    def request_stop(signum, frame):  # noqa: ARG001 - signal handler signature
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    env = {**os.environ, **settings.process_environment()}
    try:
        for name, cmd in process_commands(settings).items():
            processes[name] = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, start_new_session=True)
            print(f"[vetbot] started {name} (pid {processes[name].pid})", flush=True)
        print(
            f"[vetbot] Rasa on http://127.0.0.1:{settings.rasa_port}, actions on "
            f"{settings.action_server_url}, gateway (WeChat webhook /wechat, binding page) on "
            f"{settings.public_base_url}"
            + (f", mock WeChat API on {settings.wechat_api_base}" if settings.mock_wechat else "")
            + ". In another terminal: .venv/bin/vetbot chat (a simulated WeChat user). "
            "Ctrl-C stops everything.",
            flush=True,
        )
        while not stopping:
            for name, proc in processes.items():
                if proc.poll() is not None:
                    print(f"[vetbot] {name} exited with {proc.returncode}; stopping the rest", file=sys.stderr)
                    return proc.returncode or 1
            time.sleep(0.5)
        return 0
    finally:
        print("[vetbot] stopping …", flush=True)
        _stop(processes)
        print("[vetbot] stopped", flush=True)
