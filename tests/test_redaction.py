"""Personal numbers typed into chat are replaced before Rasa sees the text."""

import pytest

from bot.redaction import MARKERS, redact
from bot.text import normalize


@pytest.mark.parametrize("text, kinds, kept", [
    ("我的身份证号是110105194912310021帮我查下", ("id_card",), "我的身份证号是[身份证号已隐去]帮我查下"),
    ("身份证11010519491231002x", ("id_card",), "身份证[身份证号已隐去]"),
    ("110105 19491231 002X", ("id_card",), "[身份证号已隐去]"),
    ("老身份证110105491231002", ("id_card",), "老身份证[身份证号已隐去]"),
    ("电话13812345678", ("mobile",), "电话[手机号已隐去]"),
    ("电话 138 1234 5678 打我", ("mobile",), "电话 [手机号已隐去] 打我"),
    ("+86-138-1234-5678", ("mobile",), "[手机号已隐去]"),
    ("手机１３８１２３４５６７８", ("mobile",), "手机[手机号已隐去]"),
    ("卡号6222 0202 0000 1234 567", ("bank_card",), "卡号[银行卡号已隐去]"),
    ("工资卡6217000010001234567没到账", ("bank_card",), "工资卡[银行卡号已隐去]没到账"),
    ("我叫张三 13812345678 身份证110105194912310021",
     ("mobile", "id_card"), "我叫张三 [手机号已隐去] 身份证[身份证号已隐去]"),
])
def test_personal_numbers_are_replaced(text, kinds, kept):
    result = redact(text)
    assert result.kinds == kinds
    assert result.text == kept
    # The NLU sees blanks where the markers are, at the same offsets.
    blanked = normalize(result.text)
    assert len(blanked) == len(result.text)
    assert not any(marker in blanked for marker in MARKERS.values())


@pytest.mark.parametrize("text", [
    "编号TS20261122-0007的投诉到哪了",
    "服务电话021-69590001",
    "12345",
    "我1985年入伍 2003年退伍",
    "预约12月5号下午3点",
    "优待金3个月没发 每月980元",
    "",
])
def test_other_numbers_are_left_alone(text):
    assert redact(text).text == text
    assert not redact(text).changed
