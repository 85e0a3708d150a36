"""Production mode: `VETBOT_ENV=production` refuses to start on demo settings.

The demo defaults make `make run` work on a fresh machine; in production each of
them is a hole: the public demo WeChat token lets anyone forge messages (including
``unsubscribe``, which erases a user's data), plaintext mode sends messages
unencrypted, the log SMS sender shows codes on the page, the mock WeChat API
delivers nothing, a generated secret key lives in a file next to the database, and
the internal tokens would be derived from it. ``problems`` lists what is wrong, one
line each in Chinese and English; `vetbot serve`, the gateway, Rasa (bot/rasa_server.py)
and the action server (rasa_sdk_plugins) exit non-zero with those lines.
"""

from __future__ import annotations

import os
import sys
from typing import List, Mapping, Optional

from bot.settings import DEMO_WECHAT_APPID, DEMO_WECHAT_TOKEN, MOCK_WECHAT_SECRET

ENV_VARIABLE = "VETBOT_ENV"


def is_production(environ: Optional[Mapping[str, str]] = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(ENV_VARIABLE, "").strip().lower() == "production"


def problems(environ: Optional[Mapping[str, str]] = None) -> List[str]:
    """What keeps this configuration from production (empty when nothing does)."""
    env = os.environ if environ is None else environ

    def given(name: str) -> str:
        return env.get(name, "").strip()

    found: List[str] = []
    if not given("VETBOT_SECRET_KEY"):
        found.append("未设置 VETBOT_SECRET_KEY（演示时自动生成的密钥不能用于生产） / "
                     "VETBOT_SECRET_KEY is not set (the generated demo key is not for production)")
    if given("WECHAT_TOKEN") in ("", DEMO_WECHAT_TOKEN):
        found.append("WECHAT_TOKEN 是公开的演示值，任何人都能伪造微信消息 / "
                     "WECHAT_TOKEN is the public demo value: anyone could forge WeChat messages")
    if given("WECHAT_APPID") in ("", DEMO_WECHAT_APPID):
        found.append("WECHAT_APPID 是演示值 / WECHAT_APPID is the demo value")
    if not given("WECHAT_AES_KEY"):
        found.append("未设置 WECHAT_AES_KEY：明文模式，消息不加密 / "
                     "WECHAT_AES_KEY is not set: plaintext mode, messages are not encrypted")
    if not given("WECHAT_API_BASE"):
        found.append("未设置 WECHAT_API_BASE：正在使用本机模拟的微信接口 / "
                     "WECHAT_API_BASE is not set: the local mock WeChat API is in use")
    if given("WECHAT_SECRET") in ("", MOCK_WECHAT_SECRET):
        found.append("未设置 WECHAT_SECRET（公众号 AppSecret） / WECHAT_SECRET (the account's AppSecret) is not set")
    if given("VETBOT_SMS_SENDER") in ("", "log"):
        found.append("VETBOT_SMS_SENDER 是演示用的日志发送（验证码会显示在页面和日志里） / "
                     "VETBOT_SMS_SENDER is the demo log sender (codes are shown on the page and in the log)")
    for name, what in (("VETBOT_RASA_TOKEN", "Rasa 接口 / Rasa's HTTP API"),
                       ("VETBOT_ACTION_TOKEN", "动作服务器 / the action server")):
        if len(given(name)) < 32:
            found.append(f"未设置 {name}（{what.split(' / ')[0]}的令牌，至少32个字符） / "
                         f"{name} is not set (the token of {what.split(' / ')[1]}, at least 32 characters)")
    if not given("VETBOT_PUBLIC_URL").startswith("https://"):
        found.append("VETBOT_PUBLIC_URL 不是 https 地址 / VETBOT_PUBLIC_URL is not an https address")
    if int(given("VETBOT_DEMO_VETERANS") or "0") > 0 or not given("VETBOT_DATABASE_URL"):
        found.append("正在使用演示数据库（SQLite 或演示退役军人数据）：请设置 VETBOT_DATABASE_URL，"
                     "VETBOT_DEMO_VETERANS 为 0 / the demo database is in use (SQLite or demo veterans): "
                     "set VETBOT_DATABASE_URL and VETBOT_DEMO_VETERANS=0")
    return found


def refuse_demo_settings(who: str, environ: Optional[Mapping[str, str]] = None) -> None:
    """In production mode, exit with one line per problem when any demo setting is in force."""
    if not is_production(environ):
        return
    found = problems(environ)
    if not found:
        return
    print(f"[{who}] 生产模式（VETBOT_ENV=production）拒绝启动 / refusing to start in production mode:",
          file=sys.stderr)
    for line in found:
        print(f"  - {line}", file=sys.stderr)
    raise SystemExit(2)

