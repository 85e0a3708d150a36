"""`vetbot seed`: realistic demo data for the veteran database.

Veterans with zh_CN names, ID numbers whose GB 11643 check digit, birth date
and gender agree, service dates in a plausible order for their discharge
category, households in the demo district's communities, entitlements,
优待证 and 帮扶 applications with their status history, periodic subsidies.

Fast enough for a million veterans: rows are built in Python and written
with one multi-row INSERT per batch and table (SQLAlchemy Core), primary
keys assigned here so that child rows need no round trip.

One documented demo veteran (DEMO_VETERAN) is always present, so that anyone
can try identity binding and the personal queries on a demo machine.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import sessionmaker

from bot import idcard
from bot.db.models import (
    ApplicationStep,
    BenefitApplication,
    Entitlement,
    Station,
    Subsidy,
    Veteran,
    utcnow,
)
from bot.db.session import session_scope
from bot.pii import VETERAN_PHONE, PiiVault

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
# Given-name characters by generation feel; men dominate the roster as they do in life.
MALE_CHARS = "建军国华明伟强勇斌杰峰涛磊超鹏飞刚平志红卫东海波辉林军兵永胜利民文武德福新春学忠"
FEMALE_CHARS = "秀英丽华玉兰芳敏静燕红霞梅琳婷慧娟洁雪琴晶颖"
BRANCHES = (("陆军", 52), ("海军", 12), ("空军", 12), ("火箭军", 6), ("武警部队", 12), ("战略支援部队", 3), ("联勤保障部队", 3))
# Area codes printed in ID numbers: where the veteran's first registration was.
AREA_CODES = (("310114", 45), ("310222", 15), ("310104", 5), ("320581", 5), ("320583", 5), ("340104", 5),
              ("410102", 5), ("510104", 5), ("370102", 5), ("430102", 5))
ENTITLEMENTS = (("残疾军人（六级）", 3), ("残疾军人（八级）", 4), ("残疾军人（十级）", 4), ("在乡复员军人", 2),
                ("带病回乡退伍军人", 2), ("参战退役人员", 3), ("参试退役人员", 1))
CARD_STEPS = ("已受理", "审核中", "制卡中", "待领取", "已领取")
AID_STEPS = ("已受理", "审核中")
AID_OUTCOMES = ("已批准", "未通过")


@dataclass(frozen=True)
class DemoVeteran:
    name: str
    id_number: str
    phone: str


# A made-up person (valid check digit, unassigned 13800000000-style number) for trying the demo.
DEMO_VETERAN = DemoVeteran(
    name="张建军", id_number=idcard.make("310114", dt.date(1985, 6, 15), 371), phone="13800000000"
)


def _weighted(rng: random.Random, table: Sequence[Tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    if end <= start:
        return start
    return start + dt.timedelta(days=rng.randrange((end - start).days + 1))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


class _Ids:
    """Primary keys handed out here, continuing after what the table holds."""

    def __init__(self, session, model) -> None:
        self.next = (session.execute(select(func.max(model.id))).scalar() or 0) + 1

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value


@dataclass
class SeedResult:
    veterans: int
    entitlements: int
    applications: int
    steps: int
    subsidies: int


class Seeder:
    def __init__(self, factory: sessionmaker, vault: PiiVault, today: dt.date, seed: int = 2026):
        self.factory = factory
        self.vault = vault
        self.today = today
        self.rng = random.Random(seed)
        self.seen_ids: set = {DEMO_VETERAN.id_number}
        self.seen_phones: set = set()

    # --- one person ------------------------------------------------------------
    def _name(self, gender: str) -> str:
        chars = MALE_CHARS if gender == "男" else FEMALE_CHARS
        given = "".join(self.rng.choice(chars) for _ in range(self.rng.choice((1, 2, 2, 2))))
        return self.rng.choice(SURNAMES) + given

    def _id_number(self, birth: dt.date, gender: str) -> str:
        while True:
            sequence = self.rng.randrange(500) * 2 + (1 if gender == "男" else 0)
            number = idcard.make(_weighted(self.rng, AREA_CODES), birth, sequence)
            if number not in self.seen_ids:
                self.seen_ids.add(number)
                return number

    def _phone(self) -> str:
        while True:
            number = self.rng.choice("3456789")
            number = "1" + number + "".join(self.rng.choices("0123456789", k=9))
            if number not in self.seen_phones and not number.startswith("1380000"):
                self.seen_phones.add(number)
                return number

    def _service(self, birth: dt.date) -> Tuple[dt.date, dt.date, str]:
        """Enlistment, discharge and discharge category that fit the person's age."""
        rng = self.rng
        enlisted = _date_between(rng, _add_years(birth, 17), _add_years(birth, 22))
        enlisted = enlisted.replace(month=rng.choice((3, 9, 9, 12)), day=1)
        if enlisted < _add_years(birth, 17):  # the intake month fell before the 17th birthday
            enlisted = _add_years(enlisted, 1)
        latest = self.today - dt.timedelta(days=730)  # the youngest have served two years
        if enlisted > latest:
            enlisted = _date_between(rng, _add_years(birth, 17), latest)
        if enlisted.year < 1993:
            category = rng.choices(("复员", "转业", "安排工作", "退休"), weights=(55, 25, 15, 5))[0]
        else:
            category = rng.choices(("自主就业", "安排工作", "转业", "逐月领取退役金", "退休"),
                                   weights=(62, 12, 16, 4, 6))[0]
        years = {"复员": (3, 6), "自主就业": (2, 12), "安排工作": (12, 18), "转业": (12, 24),
                 "逐月领取退役金": (20, 26), "退休": (30, 36)}[category]
        discharged = _add_years(enlisted, rng.randint(*years)).replace(month=rng.choice((8, 9, 12)), day=1)
        if discharged > self.today:
            discharged = _date_between(rng, max(enlisted, self.today - dt.timedelta(days=730)), self.today)
        return enlisted, discharged, category

    def veteran_row(self, vid: int, community: Tuple[int, str, str, str]) -> Dict:
        rng = self.rng
        gender = "男" if rng.random() < 0.95 else "女"
        birth = _date_between(rng, dt.date(1930, 1, 1), _add_years(self.today, -20))
        enlisted, discharged, category = self._service(birth)
        station_id, district, street, name_of_community = community
        age = (self.today - birth).days // 365
        deceased = age > 80 and rng.random() < 0.3
        protected_id = self.vault.protect_id(self._id_number(birth, gender))
        has_phone = not deceased and rng.random() < 0.93
        protected_phone = (self.vault.protect_phone(self._phone(), VETERAN_PHONE, protected_id.lookup)
                           if has_phone else None)
        return {
            "id": vid, "name": self._name(gender),
            "id_hash": protected_id.lookup, "id_cipher": protected_id.cipher, "id_masked": protected_id.masked,
            "phone_hash": protected_phone.lookup if protected_phone else None,
            "phone_cipher": protected_phone.cipher if protected_phone else None,
            "phone_masked": protected_phone.masked if protected_phone else None,
            "birth_date": birth, "gender": gender, "enlisted_on": enlisted, "discharged_on": discharged,
            "branch": _weighted(rng, BRANCHES), "discharge_category": category,
            "district": district, "street": street, "community": name_of_community, "station_id": station_id,
            "status": "已故" if deceased else "在世",
            "deceased_on": _date_between(rng, max(discharged, _add_years(birth, 70)), self.today) if deceased else None,
            "created_at": self.now, "updated_at": self.now,
        }

    def records_for(self, veteran: Dict, ids: Dict[str, _Ids], out: Dict[str, List[Dict]]) -> None:
        """Entitlements, applications with history, and subsidies for one veteran."""
        rng = self.rng
        vid = veteran["id"]
        categories = []
        if rng.random() < 0.08:
            categories.append(_weighted(rng, ENTITLEMENTS))
        for category in categories:
            since = _date_between(rng, veteran["discharged_on"], veteran["deceased_on"] or self.today)
            out["entitlements"].append({"id": ids["entitlements"].take(), "veteran_id": vid,
                                        "category": category, "since": since})
            if category.startswith("残疾军人") or category in ("在乡复员军人", "带病回乡退伍军人"):
                kind = "残疾抚恤金" if category.startswith("残疾军人") else "定期生活补助"
                out["subsidies"].append({"id": ids["subsidies"].take(), "veteran_id": vid, "kind": kind,
                                         "monthly_amount_fen": rng.choice((980, 1250, 1630, 2210, 3060)) * 100,
                                         "since": since, "until": veteran["deceased_on"]})
        if veteran["status"] != "在世":
            return
        # 优待证: applications opened nationally in 2022-2023.
        if rng.random() < 0.7:
            steps = CARD_STEPS[: rng.choices((1, 2, 3, 4, 5), weights=(3, 5, 7, 10, 75))[0]]
            self._application(veteran, "preferential_card", "YDZ", steps, dt.date(2023, 1, 1), ids, out)
        if rng.random() < 0.03:
            steps = list(AID_STEPS[: rng.choice((1, 2))])
            if len(steps) == 2 and rng.random() < 0.6:
                steps.append(rng.choices(AID_OUTCOMES, weights=(85, 15))[0])
            self._application(veteran, "hardship_aid", "BF", steps, self.today - dt.timedelta(days=400), ids, out)

    def _application(self, veteran, kind, prefix, steps, earliest, ids, out) -> None:
        rng = self.rng
        app_id = ids["applications"].take()
        day = _date_between(rng, max(earliest, veteran["discharged_on"]), self.today - dt.timedelta(days=3))
        submitted = day
        for status in steps:
            out["steps"].append({"id": ids["steps"].take(), "application_id": app_id, "status": status,
                                 "happened_on": day, "note": None})
            day = min(self.today, day + dt.timedelta(days=rng.randint(3, 40)))
        final = steps[-1]
        closed = final in ("已领取", "已批准", "未通过")
        out["applications"].append({
            "id": app_id, "veteran_id": veteran["id"], "kind": kind,
            "reference": f"{prefix}{submitted:%Y%m%d}{app_id:07d}", "status": final,
            "submitted_on": submitted, "closed": closed,
            "amount_fen": rng.choice((2000, 3000, 5000)) * 100 if final == "已批准" else None,
        })

    # --- the whole run ------------------------------------------------------------
    def run(self, count: int, batch_size: int = 5000, progress: bool = True) -> SeedResult:
        self.now = utcnow()
        with session_scope(self.factory) as session:
            communities = [
                (s.id, s.district, s.street, s.community)
                for s in session.execute(select(Station).where(Station.tier == "community")).scalars()
            ]
            if not communities:
                raise RuntimeError("no community stations in the database: load data/stations.yml first")
            ids = {"veterans": _Ids(session, Veteran), "entitlements": _Ids(session, Entitlement),
                   "applications": _Ids(session, BenefitApplication), "steps": _Ids(session, ApplicationStep),
                   "subsidies": _Ids(session, Subsidy)}
            # Hashes already in the table: a second seed must not collide with the first.
            existing = session.execute(select(func.count()).select_from(Veteran)).scalar()
        result = SeedResult(0, 0, 0, 0, 0)
        bar = _progress(count, progress)
        done = 0
        while done < count:
            size = min(batch_size, count - done)
            out: Dict[str, List[Dict]] = {"veterans": [], "entitlements": [], "applications": [],
                                          "steps": [], "subsidies": []}
            for _ in range(size):
                row = self.veteran_row(ids["veterans"].take(), self.rng.choice(communities))
                out["veterans"].append(row)
                self.records_for(row, ids, out)
            if existing:
                out = self._drop_known(out)
            self._write(out)
            result.veterans += len(out["veterans"])
            result.entitlements += len(out["entitlements"])
            result.applications += len(out["applications"])
            result.steps += len(out["steps"])
            result.subsidies += len(out["subsidies"])
            done += size
            bar.update(size)
        bar.close()
        self._advance_sequences()
        return result

    def _advance_sequences(self) -> None:
        """PostgreSQL's id sequences do not see ids given explicitly; move them past ours."""
        with session_scope(self.factory) as session:
            if session.bind.dialect.name != "postgresql":
                return
            for model in (Veteran, Entitlement, BenefitApplication, ApplicationStep, Subsidy):
                table = model.__tablename__
                session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                ))

    def _drop_known(self, out: Dict[str, List[Dict]]) -> Dict[str, List[Dict]]:
        hashes = [row["id_hash"] for row in out["veterans"]]
        with session_scope(self.factory) as session:
            known = set(session.execute(select(Veteran.id_hash).where(Veteran.id_hash.in_(hashes))).scalars())
        if not known:
            return out
        dropped = {row["id"] for row in out["veterans"] if row["id_hash"] in known}
        apps = {row["id"] for row in out["applications"] if row["veteran_id"] in dropped}
        return {
            "veterans": [r for r in out["veterans"] if r["id"] not in dropped],
            "entitlements": [r for r in out["entitlements"] if r["veteran_id"] not in dropped],
            "subsidies": [r for r in out["subsidies"] if r["veteran_id"] not in dropped],
            "applications": [r for r in out["applications"] if r["id"] not in apps],
            "steps": [r for r in out["steps"] if r["application_id"] not in apps],
        }

    def _write(self, out: Dict[str, List[Dict]]) -> None:
        with session_scope(self.factory) as session:
            for model, key in ((Veteran, "veterans"), (Entitlement, "entitlements"),
                               (BenefitApplication, "applications"), (ApplicationStep, "steps"),
                               (Subsidy, "subsidies")):
                if out[key]:
                    session.execute(insert(model.__table__), out[key])


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit=" 人", desc="生成退役军人", disable=not enabled, file=sys.stderr,
                mininterval=1.0)


def ensure_demo_veteran(factory: sessionmaker, vault: PiiVault, today: dt.date) -> int:
    """The documented demo person, with records in every interesting state. Idempotent."""
    demo = DEMO_VETERAN
    with session_scope(factory) as session:
        existing = session.execute(
            select(Veteran.id).where(Veteran.id_hash == vault.id_lookup(demo.id_number))
        ).scalar()
        if existing:
            return existing
        station = session.execute(
            select(Station).where(Station.tier == "community").order_by(Station.code)
        ).scalars().first()
        protected_id = vault.protect_id(demo.id_number)
        protected_phone = vault.protect_phone(demo.phone, VETERAN_PHONE, protected_id.lookup)
        veteran = Veteran(
            name=demo.name, id_hash=protected_id.lookup, id_cipher=protected_id.cipher,
            id_masked=protected_id.masked, phone_hash=protected_phone.lookup,
            phone_cipher=protected_phone.cipher, phone_masked=protected_phone.masked,
            birth_date=dt.date(1985, 6, 15), gender="男", enlisted_on=dt.date(2003, 12, 1),
            discharged_on=dt.date(2018, 9, 1), branch="陆军", discharge_category="自主就业",
            district=station.district if station else "嘉定区", street=station.street if station else None,
            community=station.community if station else None, station=station, status="在世",
        )
        veteran.entitlements.append(Entitlement(category="残疾军人（十级）", since=dt.date(2018, 10, 1)))
        veteran.subsidies.append(Subsidy(kind="残疾抚恤金", monthly_amount_fen=98000, since=dt.date(2018, 10, 1)))
        card = BenefitApplication(kind="preferential_card", reference="YDZDEMO0000001", status="制卡中",
                                  submitted_on=today - dt.timedelta(days=30))
        for status, days_ago in (("已受理", 30), ("审核中", 21), ("制卡中", 6)):
            card.history.append(ApplicationStep(status=status, happened_on=today - dt.timedelta(days=days_ago)))
        aid = BenefitApplication(kind="hardship_aid", reference="BFDEMO0000001", status="审核中",
                                 submitted_on=today - dt.timedelta(days=12))
        for status, days_ago in (("已受理", 12), ("审核中", 8)):
            aid.history.append(ApplicationStep(status=status, happened_on=today - dt.timedelta(days=days_ago)))
        veteran.applications.extend([card, aid])
        session.add(veteran)
        session.flush()
        return veteran.id


def seed(factory: sessionmaker, vault: PiiVault, veterans: int, today: Optional[dt.date] = None,
         random_seed: int = 2026, progress: bool = True) -> SeedResult:
    today = today or dt.date.today()
    result = Seeder(factory, vault, today, random_seed).run(veterans, progress=progress)
    ensure_demo_veteran(factory, vault, today)
    return result
