"""End to end through the gateway, Rasa and the action server: identity binding on
the H5 page, the veteran's own records, the service network, and personal numbers
that never reach the tracker store or the logs in clear.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
import urllib.parse
import urllib.request
import uuid

import pytest

from bot.seed import DEMO_VETERAN

from tests.e2e.conftest import say as _say

pytestmark = pytest.mark.e2e


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read().decode("utf-8")


def _post(url, fields):
    data = urllib.parse.urlencode(fields).encode("utf-8")
    with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=30) as response:
        return response.read().decode("utf-8")


def _hidden(page, name):
    return html.unescape(re.search(rf'name="{name}" value="([^"]*)"', page).group(1))


def test_bind_on_the_h5_page_then_query_own_records_then_unbind(assistant):
    sender = f"o-e2e-{uuid.uuid4().hex[:10]}"  # the OpenID, as the gateway will send it

    before = _say(assistant, sender, "我的优待证办好了没")
    assert "需要先核验身份" in before and "绑定身份" in before

    offer = _say(assistant, sender, "绑定身份")
    link = re.search(r"http://127\.0\.0\.1:\d+/bind\?t=\S+", offer).group(0)
    assert link.startswith(assistant["gateway"]) and "10分钟内有效" in offer

    form = _get(link)
    assert "身份证号" in form
    code_page = _post(assistant["gateway"] + "/bind", {
        "t": _hidden(form, "t"), "csrf": _hidden(form, "csrf"),
        "name": DEMO_VETERAN.name, "id_number": DEMO_VETERAN.id_number, "phone": DEMO_VETERAN.phone,
    })
    code = re.search(r"验证码为 <strong>(\d{6})</strong>", code_page).group(1)  # the demo sender's page
    done = _post(assistant["gateway"] + "/bind/code", {
        "t": _hidden(code_page, "t"), "csrf": _hidden(code_page, "csrf"), "code": code,
    })
    assert "绑定成功" in done
    with pytest.raises(urllib.error.HTTPError) as used:  # single use
        _get(link)
    assert used.value.code == 410

    records = _say(assistant, sender, "我的优待证办好了没")
    assert records.startswith("张*军您好")
    assert "优待证：制卡中" in records and "残疾军人（十级）" in records
    assert records.rstrip().endswith("咨询电话：021-5999-0000")

    again = _say(assistant, sender, "我要实名认证")
    assert "已绑定退役军人身份（张*军）" in again

    assert "已解除" in _say(assistant, sender, "解除绑定")
    assert "需要先核验身份" in _say(assistant, sender, "我的优待证办好了没")


def test_find_station_by_place_name(assistant):
    sender = f"e2e-{uuid.uuid4().hex[:6]}"
    answer = _say(assistant, sender, "安亭镇的退役军人服务站在什么地方")
    assert "安亭" in answer and "地址" in answer and "电话" in answer


def test_personal_numbers_never_reach_the_tracker_store_or_the_logs(assistant):
    sender = f"e2e-{uuid.uuid4().hex[:6]}"
    numbers = {
        "id": DEMO_VETERAN.id_number,
        "mobile": "13912345678",
        "bank": "6222020200001234567",
    }
    first = _say(assistant, sender, f"我的优待证办好了没 身份证{numbers['id']} 手机{numbers['mobile']}")
    assert first.startswith("为保护您的隐私") and "已被自动隐去" in first
    answer = first.split("\n", 1)[1]  # and the question itself is still answered
    assert "优待证" in answer or "待遇" in answer
    second = _say(assistant, sender, f"补助打到卡号 {numbers['bank'][:4]} {numbers['bank'][4:8]} "
                                      f"{numbers['bank'][8:12]} {numbers['bank'][12:]} 了吗")
    assert "已被自动隐去" not in second  # told once per conversation

    var_dir = assistant["var_dir"]
    with sqlite3.connect(var_dir / "tracker.db") as db:
        rows = db.execute("SELECT sender_id, data FROM events").fetchall()
    # Rasa stores each event as JSON with non-ASCII escaped; decode it to read the markers.
    stored = "\n".join(f"{sid} {json.dumps(json.loads(data), ensure_ascii=False)}" for sid, data in rows)
    raw_files = b"".join(path.read_bytes() for path in var_dir.glob("tracker.db*"))
    logs = (var_dir / "serve.log").read_text(encoding="utf-8", errors="replace")
    # Positive controls: we are reading the right conversation and the debug log.
    assert sender in stored and "[身份证号已隐去]" in stored and "[银行卡号已隐去]" in stored
    # Rasa's structured debug lines escape non-ASCII characters as JSON does.
    assert json.dumps("[手机号已隐去]")[1:-1] in logs or "[手机号已隐去]" in logs
    for haystack in (stored, logs):
        flat = re.sub(r"[\s\-]", "", haystack)
        for number in numbers.values():
            assert number not in haystack and number not in flat
    for number in numbers.values():  # nor anywhere in the database files, WAL included
        assert number.encode() not in raw_files
