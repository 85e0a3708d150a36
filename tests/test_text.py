import random

import pytest

from bot.text import normalize, to_halfwidth, to_simplified


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("優待證辦好了沒", "优待证办好了没"),
        ("退役報到要帶什麼材料", "退役报到要带什么材料"),
        ("我想預約，下週三上午", "我想预约,下周三上午"),
        ("１２月５號下午", "12月5号下午"),
        ("ＴＳ２０２６１１２２－０００７", "TS20261122-0007"),
        ("你好　在嗎？", "你好 在吗?"),
        ("已经是简体", "已经是简体"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


def test_halfwidth_keeps_chinese_punctuation_it_does_not_own():
    # Only the full-width ASCII block is folded; 。and 、 are not ASCII forms.
    assert to_halfwidth("好的。１、２") == "好的。1、2"


def test_normalisation_keeps_length_for_any_text():
    rng = random.Random(7)
    alphabet = "優待證辦臺灣後裡麵發乾係０１ＡＢ　？！abc退役报到军人"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        assert len(normalize(text)) == len(text)


def test_simplified_fallback_is_per_character_when_phrase_changes_length(monkeypatch):
    class PhraseConverter:
        def convert(self, text):
            return text.replace("臺灣", "台湾省") if len(text) > 1 else {"臺": "台", "灣": "湾"}.get(text, text)

    monkeypatch.setattr("bot.text._converter", lambda: PhraseConverter())
    assert to_simplified("臺灣老兵") == "台湾老兵"
