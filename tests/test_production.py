"""VETBOT_ENV=production refuses demo settings (bot/production.py): every process that
`vetbot serve` starts, and serve itself, exits non-zero with one line per problem."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bot.production import is_production, problems
from bot.settings import PROJECT_ROOT

PRODUCTION = {
    "VETBOT_ENV": "production",
    "VETBOT_SECRET_KEY": "k" * 48,
    "WECHAT_TOKEN": "a-token-only-the-bureau-knows",
    "WECHAT_APPID": "wx1234567890abcdef",
    "WECHAT_AES_KEY": "a" * 43,
    "WECHAT_API_BASE": "https://api.weixin.qq.com",
    "WECHAT_SECRET": "s" * 32,
    "VETBOT_SMS_SENDER": "bureau_sms.gateway:Sender",
    "VETBOT_RASA_TOKEN": "r" * 40,
    "VETBOT_ACTION_TOKEN": "t" * 40,
    "VETBOT_PUBLIC_URL": "https://vetbot.example.gov.cn",
    "VETBOT_DATABASE_URL": "postgresql+psycopg2://vetbot@db/vetbot",
    "VETBOT_DEMO_VETERANS": "0",
}


def test_a_complete_production_configuration_has_no_problems():
    assert is_production(PRODUCTION) and problems(PRODUCTION) == []
    assert not is_production({}) and not is_production({"VETBOT_ENV": "demo"})


@pytest.mark.parametrize("name, value, says", [
    ("VETBOT_SECRET_KEY", None, "VETBOT_SECRET_KEY is not set"),
    ("WECHAT_TOKEN", "vetbot-demo-token", "WECHAT_TOKEN is the public demo value"),
    ("WECHAT_TOKEN", None, "WECHAT_TOKEN is the public demo value"),
    ("WECHAT_APPID", "wxdemo0000000000", "WECHAT_APPID is the demo value"),
    ("WECHAT_AES_KEY", None, "plaintext mode"),
    ("WECHAT_API_BASE", None, "the local mock WeChat API is in use"),
    ("WECHAT_SECRET", "vetbot-demo-secret", "WECHAT_SECRET"),
    ("VETBOT_SMS_SENDER", "log", "the demo log sender"),
    ("VETBOT_SMS_SENDER", None, "the demo log sender"),
    ("VETBOT_RASA_TOKEN", None, "VETBOT_RASA_TOKEN is not set"),
    ("VETBOT_ACTION_TOKEN", "short", "VETBOT_ACTION_TOKEN is not set"),
    ("VETBOT_PUBLIC_URL", "http://127.0.0.1:8080", "not an https address"),
    ("VETBOT_DATABASE_URL", None, "the demo database is in use"),
    ("VETBOT_DEMO_VETERANS", "200", "the demo database is in use"),
])
def test_each_demo_setting_is_one_problem(name, value, says):
    env = {**PRODUCTION}
    if value is None:
        env.pop(name)
    else:
        env[name] = value
    [problem] = problems(env)
    assert says in problem and " / " in problem  # Chinese, then English
    assert problem.split(" / ")[0].strip() and any("\u4e00" <= c <= "\u9fff" for c in problem.split(" / ")[0])


def _demo_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VETBOT_", "WECHAT_", "SANIC_"))}
    return {**env, "VETBOT_ENV": "production", "PYTHONPATH": str(PROJECT_ROOT)}


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "bot.cli", "serve"],
    [sys.executable, "-m", "bot.gateway"],
    [sys.executable, "-m", "bot.rasa_server", "run", "--port", "1"],
    [sys.executable, "-m", "rasa", "run", "actions", "--actions", "actions", "--port", "1"],
], ids=["serve", "gateway", "rasa", "action-server"])
def test_every_process_refuses_to_start_on_demo_settings(command, tmp_path):
    env = {**_demo_environment(), "VETBOT_VAR_DIR": str(tmp_path)}
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert len(lines) == len(problems(env)) >= 10
    assert "refusing to start in production mode" in done.stderr
    assert not (tmp_path / "vetbot.db").exists()  # nothing was started or written
