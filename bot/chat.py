"""`vetbot chat`: talk to the running assistant from the terminal.

Sends each line to Rasa's REST channel as one user and prints the replies,
with buttons shown as numbered choices, as a WeChat user would see them.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any, Dict, List, Optional

from bot import rasa_auth
from bot.render import render_messages
from bot.settings import Settings

READY_TIMEOUT_SECONDS = 180


def _token(token: Optional[str]) -> str:
    """The Rasa token (bot/rasa_auth.py): given, else this installation's."""
    return token or Settings.from_env().rasa_token


def send(rasa_url: str, sender: str, text: str, timeout: float = 30.0,
         token: Optional[str] = None) -> List[Dict[str, Any]]:
    body = json.dumps({"sender": sender, "message": text}).encode("utf-8")
    request = urllib.request.Request(
        f"{rasa_url}/webhooks/rest/webhook",
        data=body,
        headers={"Content-Type": "application/json", **rasa_auth.headers(_token(token))},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_until_ready(rasa_url: str, timeout: float = READY_TIMEOUT_SECONDS, token: Optional[str] = None) -> bool:
    deadline = time.monotonic() + timeout
    status_request = urllib.request.Request(f"{rasa_url}/status", headers=rasa_auth.headers(_token(token)))
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(status_request, timeout=5) as response:
                status = json.loads(response.read().decode("utf-8"))
                if status.get("model_file"):
                    return True
        except (urllib.error.URLError, ConnectionError, ValueError):
            pass
        time.sleep(1)
    return False


def read_line() -> Optional[str]:
    """The user's next non-empty line; None when they quit (/quit, /exit, Ctrl-D, Ctrl-C)."""
    while True:
        try:
            line = input("我：").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return None
        if line in {"/quit", "/exit"}:
            return None
        if line:
            return line


def chat_wechat(openid: Optional[str] = None) -> int:
    """A WeChat user in the terminal: messages go signed (and encrypted in safe mode) to the
    gateway's /wechat exactly as WeChat sends them; answers sent later through the
    customer-service API are read back from the mock WeChat API."""
    import asyncio

    from bot.wechat.simulator import CommandError, SimulatorError, WechatUser

    settings = Settings.from_env()
    webhook = f"http://127.0.0.1:{settings.gateway_port}/wechat"
    print(f"正在连接荣军助手（{webhook}）…", flush=True)
    if not wait_until_ready(settings.rasa_url, token=settings.rasa_token):
        print("助手没有启动：请先在另一个终端运行 `make run`。", file=sys.stderr)
        return 1
    print("已连接（模拟微信用户）。请输入您的问题，回复数字选择菜单项。\n"
          "其他消息：/location 31.37 121.25  /voice 文字  /image  /click MENU_POLICY  /subscribe  "
          "/unsubscribe；输入 /quit 退出。\n", flush=True)

    async def talk() -> int:
        kwargs = {"openid": openid} if openid else {}
        async with WechatUser(webhook, settings.wechat_token, settings.wechat_appid, settings.wechat_aes_key,
                              api_base=settings.wechat_api_base if settings.mock_wechat else None,
                              **kwargs) as user:
            while True:
                line = await asyncio.to_thread(read_line)
                if line is None:
                    return 0
                try:
                    answer = await user.say(line)
                except CommandError as error:
                    print(f"（{error}）", flush=True)
                    continue
                except (SimulatorError, OSError) as error:
                    print(f"（系统繁忙，请稍后再试：{error}）", file=sys.stderr)
                    continue
                if answer.status != 200:
                    print(f"（网关拒绝了这条消息：HTTP {answer.status}）", file=sys.stderr)
                texts = list(answer.texts)
                if settings.mock_wechat:  # the rest of a long answer, or a slow one
                    texts += await user.later_texts(timeout=8 if not texts else 2, quiet=0.8)
                for text in texts:
                    print(f"荣军助手：{text}\n", flush=True)

    return asyncio.run(talk())


def chat(sender: Optional[str] = None) -> int:
    settings = Settings.from_env()
    sender = sender or f"terminal-{uuid.uuid4().hex[:8]}"
    print(f"正在连接荣军助手（{settings.rasa_url}）…", flush=True)
    if not wait_until_ready(settings.rasa_url, token=settings.rasa_token):
        print("助手没有启动：请先在另一个终端运行 `make run`。", file=sys.stderr)
        return 1
    print("已连接。请输入您的问题，回复数字选择菜单项；输入 /quit 退出。\n", flush=True)
    while True:
        line = read_line()
        if line is None:
            return 0
        try:
            replies = send(settings.rasa_url, sender, line, token=settings.rasa_token)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            print(f"（系统繁忙，请稍后再试：{error}）", file=sys.stderr)
            continue
        for text in render_messages(replies):
            print(f"荣军助手：{text}\n", flush=True)
