"""Demo data (vetbot seed) and the veteran's own records in plain Chinese."""

import datetime as dt

from sqlalchemy import func, insert, select

from bot import idcard
from bot.db.models import ApplicationStep, BenefitApplication, Station, Veteran
from bot.db.session import session_scope
from bot.pii import VETERAN_ID, VETERAN_PHONE
from bot.seed import DEMO_VETERAN, seed
from bot.services import benefits, veterans

TODAY = dt.date(2026, 11, 22)


def _network(factory):
    # Core executemany takes its columns from the first row: every row names every column.
    base = dict(district="嘉定区", address="示例路1号", phone="021-69590000", aliases=[], community=None)
    with session_scope(factory) as session:
        session.execute(insert(Station.__table__), [dict(base, id=1, code="C", name="区中心", tier="district")])
        session.execute(insert(Station.__table__), [
            dict(base, id=2, code="S", name="安亭镇服务站", tier="street", parent_id=1, street="安亭镇"),
            dict(base, id=3, code="K1", name="甲社区服务站", tier="community", parent_id=2, street="安亭镇",
                 community="甲社区", phone="021-69590003"),
            dict(base, id=4, code="K2", name="乙村服务站", tier="community", parent_id=2, street="安亭镇",
                 community="乙村"),
        ])


def test_seed_makes_consistent_people(session_factory, vault):
    _network(session_factory)
    result = seed(session_factory, vault, 300, today=TODAY, progress=False)
    assert result.veterans == 300
    with session_scope(session_factory) as session:
        people = session.execute(select(Veteran)).scalars().all()
        assert len(people) == 301  # and the documented demo veteran
        for person in people:
            number = vault.decrypt(person.id_cipher, VETERAN_ID, person.id_hash)
            card = idcard.parse(number)
            assert card is not None, "every ID number has a valid check character"
            assert card.birth_date == person.birth_date and card.gender == person.gender
            assert person.id_masked == number[:4] + "*" * 14
            assert person.birth_date < person.enlisted_on <= person.discharged_on <= TODAY
            assert (person.enlisted_on - person.birth_date).days >= 17 * 365
            assert person.community in ("甲社区", "乙村") and person.station_id in (3, 4)
            assert person.id_hash == vault.id_lookup(number)
            if person.phone_cipher:
                assert vault.phone_lookup(vault.decrypt(person.phone_cipher, VETERAN_PHONE, person.id_hash)) == person.phone_hash
        # Application histories end in the status the application shows.
        for application in session.execute(select(BenefitApplication)).scalars():
            assert application.history and application.history[-1].status == application.status
            days = [step.happened_on for step in application.history]
            assert days == sorted(days)
        assert session.execute(select(func.count()).select_from(ApplicationStep)).scalar() == result.steps + 5


def test_seeding_again_with_the_same_seed_adds_no_one_twice(session_factory, vault):
    _network(session_factory)
    seed(session_factory, vault, 50, today=TODAY, progress=False)
    again = seed(session_factory, vault, 80, today=TODAY, progress=False)
    assert again.veterans == 30
    with session_scope(session_factory) as session:
        assert session.execute(select(func.count()).select_from(Veteran)).scalar() == 81


def test_demo_veteran_has_records_in_every_state(session_factory, vault):
    _network(session_factory)
    seed(session_factory, vault, 0, today=TODAY, progress=False)
    with session_scope(session_factory) as session:
        demo = veterans.by_id_number(session, vault, DEMO_VETERAN.id_number)
        assert demo.name == DEMO_VETERAN.name
        assert [v.id for v in veterans.by_phone(session, vault, DEMO_VETERAN.phone)] == [demo.id]
        summary = benefits.summarise(session, demo.id, TODAY)
    text = benefits.describe(summary, veterans.masked_name(summary.name), TODAY)
    assert text.startswith("张*军您好")
    assert "优待证：制卡中（11月16日），制卡完成后会通知您领取。" in text
    assert "帮扶援助申请（BFDEMO0000001）：审核中（11月14日）" in text
    assert "优抚类别：残疾军人（十级）" in text
    assert "残疾抚恤金每月980元" in text
    assert "甲社区服务站（电话 021-69590003）" in text


def test_describe_without_any_application_points_to_the_station():
    summary = benefits.BenefitSummary(name="王芳", station_name=None, station_phone=None)
    text = benefits.describe(summary, "王*", TODAY)
    assert "优待证：暂无申请记录。符合条件的可到户籍所在地的退役军人服务站申请。" in text
    assert "优抚类别" not in text and "抚恤补助" not in text


def test_card_ready_for_collection_names_the_station():
    summary = benefits.BenefitSummary(name="王芳", station_name="甲社区服务站", station_phone="021-1",
                                      applications=[benefits.ApplicationView(
                                          "preferential_card", "待领取", dt.date(2025, 12, 30), "YDZ1", False, None)])
    text = benefits.describe(summary, "王*", TODAY)
    assert "优待证：待领取（2025年12月30日），请携带本人身份证到甲社区服务站领取。" in text


def test_masked_name():
    assert veterans.masked_name("张建军") == "张*军"
    assert veterans.masked_name("欧阳建国") == "欧**国"
    assert veterans.masked_name("李明") == "李*"
