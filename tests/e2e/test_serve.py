"""End to end: `vetbot serve` runs the gateway, Rasa and the action server; a
conversation goes through them over HTTP; Ctrl-C stops every process.
The assistant fixture is in conftest.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from bot.chat import send
from bot.render import render_messages
from tests.e2e.conftest import _checked

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    result = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in result.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _say(assistant, sender, text):
    messages = send(assistant["url"], sender, text, timeout=60, token=assistant["rasa_token"])
    _checked(["\n".join(render_messages(messages))], f"reply to {text!r}")  # like every e2e reply
    return messages


def test_greeting_menu_and_numbers_through_both_servers(assistant):
    sender = f"e2e-{uuid.uuid4().hex[:6]}"
    greeting = _say(assistant, sender, "你好")
    assert "测试区退役军人事务局" in greeting[0]["text"]  # slot set by action_session_start
    menu = greeting[-1]
    assert [b["title"] for b in menu["buttons"]][:2] == ["政策咨询", "预约办事"]

    topics = _say(assistant, sender, "1")  # action_choose_option → policy_topics
    assert topics[-1]["buttons"][2]["payload"] == "/faq/report_in"

    answer = _say(assistant, sender, "第三个")  # → faq/report_in via the response selector data
    text = "\n".join(render_messages(answer))
    assert text.startswith("【退役报到】")
    assert text.rstrip().endswith("咨询电话：021-5999-0000")


def test_policy_question_in_traditional_characters(assistant):
    sender = f"e2e-{uuid.uuid4().hex[:6]}"
    answer = _say(assistant, sender, "請問退役軍人優待證在哪裡申請")
    assert answer[0]["text"].startswith("【退役军人优待证】")


def test_number_without_a_menu_is_answered_politely(assistant):
    sender = f"e2e-{uuid.uuid4().hex[:6]}"
    _say(assistant, sender, "优待证怎么申请")
    reply = _say(assistant, sender, "2")
    assert "菜单" in reply[0]["text"]


def test_low_confidence_asks_a_clarifying_question_then_hands_over_to_a_person(assistant):
    sender = f"e2e-{uuid.uuid4().hex[:6]}"
    # Letters no feature of the model knows (symbols only are no misunderstanding: bot/nlu/symbols.py).
    clarify = _say(assistant, sender, "asdfgh")
    assert "请回复数字" in clarify[0]["text"]
    titles = [b["title"] for b in clarify[0]["buttons"]]
    assert len(titles) == 3 and titles[-1] == "都不是"
    handoff = _say(assistant, sender, "qwerty")  # two fallbacks in a row
    assert handoff[0]["text"].startswith("抱歉，我还是没能理解您的意思，已为您转接人工服务。")


# Runs last (this file sorts after the other e2e files): it stops the shared assistant.
def test_ctrl_c_stops_every_process(assistant):
    proc = assistant["proc"]
    children = _children(proc.pid)
    assert len(children) == 4  # the mock WeChat API, the gateway, Rasa and the action server
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 0
    for pid in children:
        assert not _alive(pid), f"process {pid} survived Ctrl-C"
