"""The service network: loading data/stations.yml, finding a station, opening hours.

Runs on SQLite and on PostgreSQL (the `session_factory` fixture)."""

from __future__ import annotations

import copy
import datetime as dt
import re

import pytest
import yaml
from sqlalchemy import event, func, select

from bot.db.models import OpeningHours, Station
from bot.db.session import session_scope
from bot.services.stations import (
    SHANGHAI,
    StationDataError,
    day_status,
    describe,
    find_by_place,
    for_community,
    hours_on,
    is_open,
    load_stations,
    nearest,
    next_open_day,
)
from bot.settings import PROJECT_ROOT

STATIONS_FILE = PROJECT_ROOT / "data" / "stations.yml"
T = dt.time


@pytest.fixture
def loaded(session_factory):
    with session_scope(session_factory) as session:
        load_stations(session, STATIONS_FILE)
    return session_factory


def by_code(session, code: str) -> Station:
    return session.execute(select(Station).where(Station.code == code)).scalar_one()


# --- loading ----------------------------------------------------------------------------


def test_the_demo_network_loads_with_three_tiers(session_factory):
    with session_scope(session_factory) as session:
        count = load_stations(session, STATIONS_FILE)
    with session_scope(session_factory) as session:
        stations = session.execute(select(Station)).scalars().all()
        assert count == len(stations) == 60
        tiers = {tier: [s for s in stations if s.tier == tier] for tier in ("district", "street", "community")}
        assert [s.name for s in tiers["district"]] == ["嘉定区退役军人服务中心"]
        centre = tiers["district"][0]
        assert {s.street for s in tiers["street"]} == {
            "新成路街道", "真新街道", "嘉定镇街道", "菊园新区", "南翔镇", "安亭镇",
            "马陆镇", "徐行镇", "华亭镇", "外冈镇", "江桥镇", "嘉定工业区",
        }
        for street in tiers["street"]:
            assert street.parent_id == centre.id
            children = [s for s in tiers["community"] if s.parent_id == street.id]
            assert 3 <= len(children) <= 5, street.name
            assert all(c.street == street.street and c.community for c in children)
        for station in stations:
            assert 31.2 < station.latitude < 31.5 and 121.1 < station.longitude < 121.4, station.name
            assert re.fullmatch(r"021-6959\d{4}", station.phone), station.name
            assert station.hours, station.name
        assert len({s.phone for s in stations}) == len(stations)
        assert {"嘉定新城", "马陆"} <= set(by_code(session, "JD-ML").aliases)


def test_the_file_says_it_is_demo_data():
    head = STATIONS_FILE.read_text(encoding="utf-8")[:600]
    assert "演示数据" in head and "before going live" in head


def test_reloading_the_same_file_changes_nothing(loaded):
    def snapshot():
        with session_scope(loaded) as session:
            stations = session.execute(select(Station.id, Station.code, Station.parent_id)).all()
            hours = session.execute(select(OpeningHours.id, OpeningHours.station_id)).all()
            return sorted(stations), sorted(hours)

    writes = []

    def record(_conn, _cursor, statement, *_args):
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            writes.append(statement)

    before = snapshot()
    engine = loaded.kw["bind"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        with session_scope(loaded) as session:
            assert load_stations(session, STATIONS_FILE) == 60
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert writes == []
    assert snapshot() == before


def test_an_edited_file_updates_the_database(loaded, tmp_path):
    data = yaml.safe_load(STATIONS_FILE.read_text(encoding="utf-8"))
    anting = next(s for s in data["stations"] if s["code"] == "JD-AT")
    anting["address"] = "上海市嘉定区安亭镇新地址1号"
    anting["aliases"] = ["安亭", "老安亭"]
    anting["hours"] = "区中心"  # now also open on Saturday mornings
    edited = tmp_path / "stations.yml"
    edited.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with session_scope(loaded) as session:
        load_stations(session, edited)
    with session_scope(loaded) as session:
        station = by_code(session, "JD-AT")
        assert station.address == "上海市嘉定区安亭镇新地址1号"
        assert find_by_place(session, "老安亭那边")[0].code == "JD-AT"
        assert hours_on(station, dt.date(2026, 10, 17)) == [(T(9), T(11, 30))]  # a Saturday
        assert session.execute(select(func.count()).select_from(Station)).scalar_one() == 60


def _minimal():
    return {
        "hours_profiles": {"街镇站": {"周一至周五": ["9:00-11:30", "13:30-17:00"]}},
        "stations": [
            {"code": "C", "name": "测试区退役军人服务中心", "tier": "district", "district": "测试区",
             "address": "测试路1号", "phone": "021-69590000", "latitude": 31.3, "longitude": 121.2,
             "aliases": ["区中心"], "hours": "街镇站"},
            {"code": "C-A", "name": "甲镇退役军人服务站", "tier": "street", "parent": "C", "district": "测试区",
             "street": "甲镇", "address": "甲路1号", "phone": "021-69590001", "latitude": 31.31,
             "longitude": 121.21, "aliases": ["甲"], "hours": "街镇站"},
        ],
    }


def _unknown_parent(d):
    d["stations"][1]["parent"] = "X"


def _duplicate_code(d):
    d["stations"].append(dict(d["stations"][1], name="乙镇退役军人服务站", street="乙镇", aliases=[]))


def _bad_time(d):
    d["hours_profiles"]["街镇站"]["周一至周五"] = ["9:00-25:00"]


def _closes_before_opening(d):
    d["hours_profiles"]["街镇站"]["周一至周五"] = ["17:00-9:00"]


def _missing_address(d):
    del d["stations"][1]["address"]


def _unknown_profile(d):
    d["stations"][1]["hours"] = "夜班"


def _misspelt_field(d):
    d["stations"][1]["adress"] = d["stations"][1].pop("address")


def _alias_of_another(d):
    d["stations"][1]["aliases"] = ["区中心"]


def _community_without_community(d):
    d["stations"].append({"code": "C-A-1", "name": "甲镇一村退役军人服务站", "tier": "community", "parent": "C-A",
                          "district": "测试区", "street": "甲镇", "address": "一村", "phone": "021-69590002",
                          "hours": "街镇站"})


@pytest.mark.parametrize(
    "break_it, expected",
    [
        (_unknown_parent, "station C-A (甲镇退役军人服务站): parent: unknown station code 'X'"),
        (_duplicate_code, "station C-A (乙镇退役军人服务站): code: duplicate code"),
        (_bad_time, "hours profile '街镇站': time '9:00-25:00' is not a time of day"),
        (_closes_before_opening, "hours profile '街镇站': time '17:00-9:00' closes before it opens"),
        (_missing_address, "station C-A (甲镇退役军人服务站): address: missing"),
        (_unknown_profile, "station C-A (甲镇退役军人服务站): hours: unknown hours profile '夜班'"),
        (_misspelt_field, "station C-A (甲镇退役军人服务站): adress: unknown field"),
        (_alias_of_another, "station C-A (甲镇退役军人服务站): aliases: '区中心' already names station C"),
        (_community_without_community, "station C-A-1 (甲镇一村退役军人服务站): community: missing"),
    ],
)
def test_a_bad_file_is_refused_naming_the_station_and_field(session_factory, tmp_path, break_it, expected):
    data = copy.deepcopy(_minimal())
    break_it(data)
    path = tmp_path / "stations.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StationDataError) as raised:
        with session_scope(session_factory) as session:
            load_stations(session, path)
    assert expected in str(raised.value)
    assert str(path) in str(raised.value)
    with session_scope(session_factory) as session:
        assert session.execute(select(func.count()).select_from(Station)).scalar_one() == 0


def test_the_minimal_file_itself_is_good(session_factory, tmp_path):
    path = tmp_path / "stations.yml"
    path.write_text(yaml.safe_dump(_minimal(), allow_unicode=True), encoding="utf-8")
    with session_scope(session_factory) as session:
        assert load_stations(session, path) == 2


def test_an_unquoted_time_gets_a_hint(session_factory, tmp_path):
    path = tmp_path / "stations.yml"
    text = yaml.safe_dump(_minimal(), allow_unicode=True).replace("- 9:00-11:30", "- 9:00")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StationDataError, match="must be written in quotes"):
        with session_scope(session_factory) as session:
            load_stations(session, path)


# --- finding a station ---------------------------------------------------------------------

PLACES = [
    ("菊园新区附近的服务站在哪", ["JD-JY"]),
    ("菊园", ["JD-JY"]),
    ("請問同志 菊園新區的服務站在什麼路", ["JD-JY"]),
    ("安亭镇", ["JD-AT"]),
    ("安亭镇退役军人服务站地址", ["JD-AT"]),
    ("南翔的服务站电话", ["JD-NX"]),
    ("我住在黄渡社区", ["JD-AT-HD"]),
    ("我住安亭镇黄渡社区，该去哪里", ["JD-AT-HD"]),
    ("我住安亭新镇", ["JD-AT-XZ"]),
    ("俺住徐行 最近的站在哪", ["JD-XH"]),
    ("我家在曹王村", ["JD-XH-CW"]),
    ("嘉定新城那边有服务站吗", ["JD-ML"]),
    ("马陆镇大裕村", ["JD-ML-DY"]),
    ("能不能在外岡也設個點", ["JD-WG"]),
    ("外岗镇服务站电话多少", ["JD-WG"]),
    ("工业区有站点吗", ["JD-GYQ"]),
    ("嘉定工业区娄塘", ["JD-GYQ-LT"]),
    ("嘉定镇街道那边", ["JD-JDZ"]),
    ("新成路街道的服务站在哪个位置", ["JD-XCL"]),
    ("我在真新 该去哪个站", ["JD-ZX"]),
    ("江桥镇服务站几点开门", ["JD-JQ"]),
    ("嘉定区退役军人服务中心在哪里", ["JD"]),
    ("服务中心电话多少", ["JD"]),
    ("嘉定区安亭镇", ["JD-AT"]),
    ("安亭和南翔哪个近", ["JD-AT", "JD-NX"]),
    ("最近的服务站在哪", []),
    ("周六上班吗", []),
    ("", []),
]


def test_places_in_free_text(loaded):
    # One database for the whole table; a failure shows the phrases that differ.
    with session_scope(loaded) as session:
        found = {text: [s.code for s in find_by_place(session, text)] for text, _ in PLACES}
    assert found == dict(PLACES)


def test_nearest_to_a_point_in_anting(loaded):
    with session_scope(loaded) as session:
        found = nearest(session, 31.2960, 121.1650)
        assert len(found) == 3
        assert found[0][0].code == "JD-AT"
        assert found[0][1] < 1.0
        assert [km for _, km in found] == sorted(km for _, km in found)
        assert all(s.street == "安亭镇" for s, _ in found)
        assert len(nearest(session, 31.2960, 121.1650, limit=1)) == 1


HOUSEHOLDS = [
    ("安亭镇", "黄渡社区", "JD-AT-HD"),
    ("安亭", "黄渡", "JD-AT-HD"),
    ("马陆镇", "不存在村", "JD-ML"),
    ("马陆镇", None, "JD-ML"),
    ("南翔镇", "黄渡社区", "JD-NX"),  # a community of another town: the town's station
    (None, "曹王村", "JD-XH-CW"),
    ("外省某镇", None, "JD"),
    (None, None, "JD"),
]


def test_the_station_for_a_household(loaded):
    with session_scope(loaded) as session:
        found = {(street, community): for_community(session, street, community).code
                 for street, community, _ in HOUSEHOLDS}
    assert found == {(street, community): code for street, community, code in HOUSEHOLDS}


# --- opening hours ---------------------------------------------------------------------------

STREET_DAY = [(T(9), T(11, 30)), (T(13, 30), T(17))]


def test_hours_on_a_normal_weekday(loaded):
    with session_scope(loaded) as session:
        thursday = dt.date(2026, 10, 15)
        assert hours_on(by_code(session, "JD-AT"), thursday) == STREET_DAY
        assert hours_on(by_code(session, "JD-AT-HD"), thursday) == [(T(9), T(11, 30)), (T(13, 30), T(16, 30))]
        assert hours_on(by_code(session, "JD-AT-XT"), thursday) == [(T(8, 30), T(11)), (T(13), T(16))]


def test_hours_on_a_weekend(loaded):
    with session_scope(loaded) as session:
        saturday, sunday = dt.date(2026, 10, 17), dt.date(2026, 10, 18)
        assert hours_on(by_code(session, "JD-AT"), saturday) == []
        assert hours_on(by_code(session, "JD"), saturday) == [(T(9), T(11, 30))]
        assert hours_on(by_code(session, "JD"), sunday) == []


def test_golden_week_closes_every_station(loaded):
    friday = dt.date(2026, 10, 2)
    assert day_status(friday).kind == "holiday" and day_status(friday).holiday == "国庆节"
    with session_scope(loaded) as session:
        for station in session.execute(select(Station)).scalars():
            assert hours_on(station, friday) == []
        assert next_open_day(by_code(session, "JD-AT"), friday) == dt.date(2026, 10, 8)


@pytest.mark.parametrize("makeup_day", [dt.date(2026, 10, 10), dt.date(2026, 2, 14), dt.date(2026, 9, 20)])
def test_a_makeup_working_weekend_day_keeps_weekday_hours(loaded, makeup_day):
    assert makeup_day.weekday() >= 5 and day_status(makeup_day).kind == "makeup"
    with session_scope(loaded) as session:
        assert hours_on(by_code(session, "JD-AT"), makeup_day) == STREET_DAY
        # The district centre works its full weekday, not its Saturday morning.
        assert hours_on(by_code(session, "JD"), makeup_day) == STREET_DAY


def test_a_year_without_a_holiday_schedule_uses_the_weekly_hours(loaded):
    with session_scope(loaded) as session:
        assert hours_on(by_code(session, "JD-AT"), dt.date(2099, 10, 1)) == STREET_DAY  # a Thursday


BOUNDARIES = {
    (8, 59, 59): False,
    (9, 0, 0): True,  # opening time included
    (11, 29, 59): True,
    (11, 30, 0): False,  # closing time excluded
    (13, 29, 59): False,
    (13, 30, 0): True,
    (16, 59, 59): True,
    (17, 0, 0): False,
}


def test_is_open_at_the_boundaries(loaded):
    with session_scope(loaded) as session:
        station = by_code(session, "JD-AT")
        aware = {m: is_open(station, dt.datetime(2026, 10, 15, *m, tzinfo=SHANGHAI)) for m in BOUNDARIES}
        naive = {m: is_open(station, dt.datetime(2026, 10, 15, *m)) for m in BOUNDARIES}  # = Beijing time
    assert aware == BOUNDARIES
    assert naive == BOUNDARIES


def test_is_open_converts_other_time_zones(loaded):
    with session_scope(loaded) as session:
        station = by_code(session, "JD-AT")
        assert is_open(station, dt.datetime(2026, 10, 15, 1, 0, tzinfo=dt.timezone.utc))  # 9:00 in Shanghai
        assert not is_open(station, dt.datetime(2026, 10, 15, 9, 0, tzinfo=dt.timezone.utc))  # 17:00
        assert not is_open(station, dt.datetime(2026, 10, 2, 2, 0, tzinfo=dt.timezone.utc))  # National Day


def test_describe_while_open(loaded):
    with session_scope(loaded) as session:
        text = describe(by_code(session, "JD-AT"), dt.datetime(2026, 10, 15, 10, 0, tzinfo=SHANGHAI))
    assert text.splitlines() == [
        "【安亭镇退役军人服务站】",
        "地址：上海市嘉定区安亭镇墨玉南路1018号（安亭镇社区事务受理服务中心内）",
        "电话：021-69591106",
        "今日办公时间：9:00—11:30，13:30—17:00",
        "现在正在办公，欢迎前来办理。",
    ]


def test_describe_at_lunch_says_when_it_reopens(loaded):
    with session_scope(loaded) as session:
        text = describe(by_code(session, "JD-AT"), dt.datetime(2026, 10, 15, 12, 0, tzinfo=SHANGHAI))
    assert text.endswith("现在不在办公时间，今天13:30起办公。")


def test_describe_on_a_holiday_gives_the_next_open_day(loaded):
    with session_scope(loaded) as session:
        text = describe(by_code(session, "JD-AT"), dt.datetime(2026, 10, 2, 10, 0, tzinfo=SHANGHAI))
    assert "今日（国庆节假期）不办公。" in text
    assert "现在不在办公时间。" in text
    assert text.endswith("下一个办公日：10月8日（周四）9:00—11:30，13:30—17:00。")


def test_describe_before_a_makeup_saturday_and_on_it(loaded):
    with session_scope(loaded) as session:
        station = by_code(session, "JD-AT")
        friday_evening = describe(station, dt.datetime(2026, 10, 9, 18, 0, tzinfo=SHANGHAI))
        saturday = describe(station, dt.datetime(2026, 10, 10, 10, 0, tzinfo=SHANGHAI))
    assert friday_evening.endswith("下一个办公日：10月10日（周六，调休工作日）9:00—11:30，13:30—17:00。")
    assert "今日（调休工作日）办公时间：9:00—11:30，13:30—17:00" in saturday
    assert "现在正在办公" in saturday


def test_describe_on_an_ordinary_sunday(loaded):
    with session_scope(loaded) as session:
        text = describe(by_code(session, "JD-AT"), dt.datetime(2026, 10, 18, 10, 0, tzinfo=SHANGHAI))
    assert "今日（周日）不办公。" in text
    assert text.endswith("下一个办公日：10月19日（周一）9:00—11:30，13:30—17:00。")
