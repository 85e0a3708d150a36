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
    # Landlines with their area code are someone's home or office number too.
    ("家里电话021-69590001", ("phone",), "家里电话[电话号码已隐去]"),
    ("座机 0510 8234 5678 白天有人", ("phone",), "座机 [电话号码已隐去] 白天有人"),
    ("010-12345678", ("phone",), "[电话号码已隐去]"),
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
    "12345",
    "59990000",  # no area code: could be anything
    "0123456789",  # not an area code
    "我1985年入伍 2003年退伍",
    "预约12月5号下午3点",
    "优待金3个月没发 每月980元",
    "",
])
def test_other_numbers_are_left_alone(text):
    assert redact(text).text == text
    assert not redact(text).changed


# Issue 16: numbers a security review saw get through, and the other ways people write
# or dictate them. tests/test_redaction_property.py generates thousands more.
@pytest.mark.parametrize("text, kept, phones", [
    # two numbers separated by a single space, each found on its own
    ("13812345678 13987654321", "[手机号已隐去] [手机号已隐去]", ("13812345678", "13987654321")),
    ("021-69590001 13812345678", "[电话号码已隐去] [手机号已隐去]", ("02169590001", "13812345678")),
    ("13812345678-13987654321", "[手机号已隐去]-[手机号已隐去]", ("13812345678", "13987654321")),
    # labels glued to the digits stay; the number goes
    ("tel13912345678", "tel[手机号已隐去]", ("13912345678",)),
    ("TEL:13912345678", "TEL:[手机号已隐去]", ("13912345678",)),
    ("Tel.139 1234 5678", "Tel.[手机号已隐去]", ("13912345678",)),
    ("手机:13912345678", "手机:[手机号已隐去]", ("13912345678",)),
    ("手机号13912345678", "手机号[手机号已隐去]", ("13912345678",)),
    # separators
    ("139.1234.5678", "[手机号已隐去]", ("13912345678",)),
    ("139  1234  5678", "[手机号已隐去]", ("13912345678",)),
    ("139\t1234\t5678", "[手机号已隐去]", ("13912345678",)),
    ("139/1234/5678", "[手机号已隐去]", ("13912345678",)),
    ("１３９．１２３４．５６７８", "[手机号已隐去]", ("13912345678",)),
    ("(021)69590001", "[电话号码已隐去]", ("02169590001",)),
    ("座机（0512）6823 4567", "座机[电话号码已隐去]", ("051268234567",)),
    # prefixes
    ("+86 21 6959 0001", "[电话号码已隐去]", ("02169590001",)),
    ("0086 139 1234 5678", "[手机号已隐去]", ("13912345678",)),
    ("(+86)138-1234-5678", "[手机号已隐去]", ("13812345678",)),
    ("013812345678", "[手机号已隐去]", ("13812345678",)),
    # dictated digit by digit, as voice input writes it
    ("一三九一二三四五六七八", "[手机号已隐去]", ("13912345678",)),
    ("我的手机号是幺三九 幺两三四 五六七八谢谢", "我的手机号是[手机号已隐去]谢谢", ("13912345678",)),
    ("零二一 六九五九 零零零一", "[电话号码已隐去]", ("02169590001",)),
    ("退伍一三九一二三四五六七八", "退伍[手机号已隐去]", ("13912345678",)),
    ("139一二三四5678", "[手机号已隐去]", ("13912345678",)),
    # ID numbers and bank cards next to other numbers
    ("11010519491231002x 13812345678", "[身份证号已隐去] [手机号已隐去]", ("13812345678",)),
    ("110105 19491231 002 X", "[身份证号已隐去]", ()),
    ("6222 0202 0000 1234 567 13812345678", "[银行卡号已隐去] [手机号已隐去]", ("13812345678",)),
    ("TS20261122-0007 13812345678", "TS20261122-0007 [手机号已隐去]", ("13812345678",)),
    ("2026-12-08 13812345678", "2026-12-08 [手机号已隐去]", ("13812345678",)),
])
def test_what_people_really_type_and_dictate(text, kept, phones):
    result = redact(text)
    assert result.text == kept
    assert result.phones == phones


@pytest.mark.parametrize("text", [
    "TS20261122-0007 TS20261015-0032",
    "2026-12-08",
    "2026年12月8日",
    "1985 1990 2003 2010",  # grouped like a card, but years
    "一九八五年入伍 二〇〇三年退伍",
    "1,250.50元",
    "400-820-8820",
])
def test_more_numbers_that_are_not_personal(text):
    assert redact(text).text == text


def test_a_long_run_of_numbers_is_read_whole():
    # One run of 22,000 digits (a single space between the numbers): every number found.
    result = redact("13812345678 " * 2000)
    assert result.phones == ("13812345678",) * 2000
    assert result.text == "[手机号已隐去] " * 2000


def test_the_phone_numbers_removed_are_kept_apart_and_never_printed():
    result = redact("手机+86 138 1234 5678，座机021-69590001，身份证110105194912310021")
    assert result.phones == ("13812345678", "02169590001")
    assert "13812345678" not in repr(result) and "69590001" not in repr(result)
    assert redact("没有号码").phones == ()
