"""bot.wechat.render: numbered choices, safe characters, chunks within WeChat's byte limit."""

from __future__ import annotations

import re

import pytest

from bot.choices import parse_choice
from bot.wechat import simulator as sim
from bot.wechat.protocol import MAX_TEXT_BYTES
from bot.wechat.render import message_text, pack, sanitize, split_text, to_wechat_texts
from tests.wechat.conftest import user_for, webhook_for


def size(text: str) -> int:
    return len(text.encode("utf-8"))


def test_buttons_become_a_numbered_list_that_the_choice_parser_reads_back():
    message = {"text": "请问您要办理哪项业务？",
               "buttons": [{"title": "退役报到", "payload": "/book_appointment"},
                           {"title": "政策咨询", "payload": "/ask_policy"},
                           {"title": "我的待遇", "payload": "/query_my_benefits"}]}
    text = message_text(message)
    assert text == "请问您要办理哪项业务？\n1. 退役报到\n2. 政策咨询\n3. 我的待遇"
    # The user answers with the number; the line with that number names the button.
    number = parse_choice("第二个")
    assert f"{number}. {message['buttons'][number - 1]['title']}" in text.splitlines()


def test_image_and_custom_text_are_shown_as_text():
    assert message_text({"image": "https://example.gov.cn/map.png"}) == "图片：https://example.gov.cn/map.png"
    assert message_text({"text": "地址如下", "custom": {"text": "宝山区友谊路1号"}}) == "地址如下\n宝山区友谊路1号"
    assert message_text({"custom": {"kind": "not text"}}) == ""


def test_sanitize_keeps_line_breaks_and_removes_other_control_characters():
    assert sanitize("第一行\r\n第二行\r第三行\t结束\x00\x08\x1b[31m\x7f\x85") == "第一行\n第二行\n第三行 结束[31m"
    assert sanitize("a]]>b") == "a]]>b"  # kept: the XML layer splits it across CDATA sections
    assert sanitize("\ud800坏") == "坏"


def sentences(count: int) -> str:
    return "".join(f"第{n}句说明退役军人报到需要准备的材料和办理地点。" for n in range(count))


def test_long_text_is_split_at_sentence_ends_within_the_byte_limit():
    text = sentences(100)
    assert size(text) > 3 * MAX_TEXT_BYTES
    chunks = split_text(text)
    assert len(chunks) >= 4
    assert all(size(chunk) <= MAX_TEXT_BYTES for chunk in chunks)
    assert all(chunk.endswith("。") for chunk in chunks)
    assert "".join(chunks) == text
    # Greedy: a chunk is not closed while the next sentence would still fit.
    first_sentence_of_next = re.match(r"[^。]*。", chunks[1]).group(0)
    assert size(chunks[0] + first_sentence_of_next) > MAX_TEXT_BYTES


def test_line_breaks_and_other_sentence_marks_are_split_points():
    text = "您好！\n" + "问" * 10 + "？" + "答" * 10 + "!"
    assert split_text(text, limit=40) == ["您好！", "问" * 10 + "？", "答" * 10 + "!"]


def test_a_sentence_longer_than_the_limit_is_cut_without_breaking_characters():
    text = "很长的一句话没有标点" * 100 + "😀" * 50
    chunks = split_text(text, limit=100)
    assert all(size(chunk) <= 100 for chunk in chunks)
    assert "".join(chunks) == text


def test_an_over_long_sentence_prefers_a_comma():
    text = "甲" * 20 + "，" + "乙" * 20 + "。"
    chunks = split_text(text, limit=90)
    assert chunks[0] == "甲" * 20 + "，"


def test_short_messages_are_joined_into_one_passive_reply():
    messages = [{"text": "您好，我是荣军助手。"}, {"text": "请选择：", "buttons": [{"title": "预约", "payload": "/a"}]}]
    assert to_wechat_texts(messages) == ["您好，我是荣军助手。\n\n请选择：\n1. 预约"]


def test_messages_that_do_not_fit_together_stay_apart_in_order():
    long_one = sentences(50)
    texts = to_wechat_texts([{"text": "开头。"}, {"text": long_one}, {"text": "结尾。"}])
    assert all(size(text) <= MAX_TEXT_BYTES for text in texts)
    assert texts[0].startswith("开头。\n\n第0句")
    assert texts[-1].endswith("结尾。")
    assert "".join(texts).replace("\n\n", "") == "开头。" + long_one + "结尾。"


def test_pack_never_exceeds_the_limit():
    texts = ["字" * 300, "字" * 300, "字" * 300]  # 900 bytes each
    assert [size(text) for text in pack(texts)] == [900 + 2 + 900, 900]


def test_nothing_to_say_is_an_empty_list():
    assert to_wechat_texts([{"text": "  "}, {}, {"buttons": []}]) == []


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
async def test_rendered_texts_reach_the_user_unchanged(mode):
    user, hook = user_for(mode), webhook_for(mode)
    request = user.build(sim.text("你好"))
    inbound = await hook.receive(request.query, request.body)
    texts = to_wechat_texts([{"text": "示例：if a[b[0]]>c 则\x07继续。"}, {"text": sentences(60)}])
    assert len(texts) > 1
    received = [user.read_reply(hook.passive_reply(inbound, [text]))[0] for text in texts]
    assert received == texts
    assert "if a[b[0]]>c 则继续。" in received[0]
