"""A long message that asks several things, end to end through WeChat's door.

Before, a 500-character message asking four things got one answer, with no word of
the other three and no offer of a person. Now the first is answered, the others are
offered by number, and 转人工 is offered for the rest; a number then answers one."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wechat_user

pytestmark = pytest.mark.e2e

# Written for this test (not taken from the training data): background first, as
# people write, then four numbered questions, then thanks; over 500 characters.
LONG = (
    "同志您好，打扰了。我叫老王，是2019年从部队退役的，在部队干了十二年，当过班长，退役以后回到嘉定，"
    "现在住在安亭镇这边，家里有老人有孩子，压力比较大。之前一直在外地跑运输，最近才回来，很多政策都不太清楚，"
    "身边的战友说的也不一样，有的说要去区里，有的说去镇上就行，我也搞不明白，所以想在这里集中问几个问题，"
    "麻烦你们抽空帮我看一下。我这个人不太会用手机，打字也慢，这些字是一个一个敲出来的，有说得不清楚的地方，"
    "还请多多包涵。我白天要上班，晚上才有时间看手机，所以这么晚才发。"
    "第一，我退役的时候养老保险和医疗保险是部队转过来的，后来我在外地一家私企上班，单位也给交了两年社保，"
    "现在回到上海，不知道这些社保怎么接续，要去哪里办理，需要准备什么？"
    "第二，我听说退役军人可以办优待证，坐公交、去景区都有优惠，我到现在还没有拿到，请问优待证怎么申请？"
    "第三，我想和两个战友合伙开个小饭店，听说退役军人自主创业有贷款贴息和税收优惠，请问具体怎么申请，额度是多少？"
    "第四，我父亲也是老兵，今年七十多岁了，前两年做过手术，身体一直不好，母亲没有工作，家里经济比较困难，"
    "有没有什么帮扶政策可以申请？"
    "问题有点多，写得也比较乱，不好意思，麻烦你们帮我解答一下，谢谢！辛苦了！"
)


async def test_four_questions_in_one_long_message_are_all_acknowledged(assistant):
    assert len(LONG) > 500
    async with wechat_user(assistant) as user:
        first = await user.say(LONG)
        replies = "\n".join(first.texts + await user.later_texts(timeout=3))
        assert "【保险接续】" in replies  # the first question, answered
        offer = replies[replies.index("您的留言还问到了"):]
        assert "转人工" in offer
        # The other three, offered by number: 优待证, 就业创业, 困难帮扶.
        lines = [line for line in offer.splitlines() if line[:1].isdigit()]
        assert len(lines) == 3
        assert "优待证" in lines[0] and "就业创业" in lines[1] and "困难帮扶" in lines[2]

        picked = await user.say("3")
        answer = "\n".join(picked.texts + await user.later_texts(timeout=3))
        assert "【困难帮扶" in answer and "系统繁忙" not in answer
