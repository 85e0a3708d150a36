import pytest

from bot.choices import chinese_to_int, parse_choice


@pytest.mark.parametrize(
    "text, number",
    [
        ("1", 1), ("２", 2), ("选3", 3), ("第二个", 2), ("第三项", 3), ("我选4", 4),
        ("5号", 5), ("就第二个吧", 2), ("一", 1), ("十二", 12), ("20", 20), ("  6 ", 6),
        ("第十个", 10), ("两", 2),
    ],
)
def test_parse_choice(text, number):
    assert parse_choice(text) == number


@pytest.mark.parametrize("text", ["", "好的", "1和2", "第一个还是第二个", "你好"])
def test_parse_choice_refuses_what_names_no_single_number(text):
    assert parse_choice(text) is None


@pytest.mark.parametrize("numeral, value", [("一", 1), ("十", 10), ("十五", 15), ("二十", 20), ("九十九", 99), ("十十", None)])
def test_chinese_to_int(numeral, value):
    assert chinese_to_int(numeral) == value
