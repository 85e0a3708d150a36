"""A veteran's own records in plain Chinese: 优待证, 帮扶申请, 优抚类别, 定期抚恤补助."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import BenefitApplication, Veteran

KIND_NAMES = {"preferential_card": "退役军人优待证", "hardship_aid": "帮扶援助申请"}

# What happens after each step, so the user knows what to expect next.
NEXT_STEP = {
    ("preferential_card", "已受理"): "正在等待审核",
    ("preferential_card", "审核中"): "审核通过后进入制卡",
    ("preferential_card", "制卡中"): "制卡完成后会通知您领取",
    ("preferential_card", "待领取"): "请携带本人身份证到{station}领取",
    ("preferential_card", "已领取"): "",
    ("preferential_card", "未通过"): "如有疑问请咨询{station}",
    ("hardship_aid", "已受理"): "正在等待审核",
    ("hardship_aid", "审核中"): "审核结果会及时告知您",
    ("hardship_aid", "已批准"): "",
    ("hardship_aid", "未通过"): "如有疑问请咨询{station}",
}


@dataclass
class ApplicationView:
    kind: str
    status: str
    last_step_on: dt.date
    reference: str
    closed: bool
    amount_fen: Optional[int]


@dataclass
class BenefitSummary:
    name: str
    station_name: Optional[str]
    station_phone: Optional[str]
    applications: List[ApplicationView] = field(default_factory=list)
    entitlements: List[str] = field(default_factory=list)
    subsidies: List[str] = field(default_factory=list)
    deceased: bool = False


def summarise(session: Session, veteran_id: int, today: dt.date) -> BenefitSummary:
    veteran = session.execute(
        select(Veteran).where(Veteran.id == veteran_id).options(
            selectinload(Veteran.applications).selectinload(BenefitApplication.history),
            selectinload(Veteran.entitlements), selectinload(Veteran.subsidies),
            selectinload(Veteran.station),
        )
    ).scalars().one()
    summary = BenefitSummary(
        name=veteran.name,
        station_name=veteran.station.name if veteran.station else None,
        station_phone=veteran.station.phone if veteran.station else None,
        deceased=veteran.status == "已故",
    )
    for application in sorted(veteran.applications, key=lambda a: (a.kind, a.submitted_on)):
        last = application.history[-1].happened_on if application.history else application.submitted_on
        summary.applications.append(ApplicationView(
            application.kind, application.status, last, application.reference, application.closed,
            application.amount_fen,
        ))
    summary.entitlements = sorted(e.category for e in veteran.entitlements)
    for subsidy in veteran.subsidies:
        if subsidy.until is None or subsidy.until >= today:
            summary.subsidies.append(f"{subsidy.kind}每月{_yuan(subsidy.monthly_amount_fen)}元")
    return summary


def _yuan(fen: int) -> str:
    return f"{fen // 100}" if fen % 100 == 0 else f"{fen / 100:.2f}"


def _day(value: dt.date, today: dt.date) -> str:
    return f"{value.month}月{value.day}日" if value.year == today.year else f"{value.year}年{value.month}月{value.day}日"


def describe(summary: BenefitSummary, display_name: str, today: dt.date) -> str:
    """The short answer for 我的待遇 (query_my_benefits)."""
    station = summary.station_name or "户籍所在地的退役军人服务站"
    lines = [f"{display_name}您好，以下是您在我局登记的信息："]
    cards = [a for a in summary.applications if a.kind == "preferential_card"]
    if cards:
        card = cards[-1]
        line = f"· 优待证：{card.status}（{_day(card.last_step_on, today)}）"
        hint = NEXT_STEP.get((card.kind, card.status), "").format(station=station)
        lines.append(line + (f"，{hint}。" if hint else "。"))
    else:
        lines.append(f"· 优待证：暂无申请记录。符合条件的可到{station}申请。")
    for aid in (a for a in summary.applications if a.kind == "hardship_aid"):
        if aid.closed and (today - aid.last_step_on).days > 365:
            continue  # an old, finished application is not news
        line = f"· 帮扶援助申请（{aid.reference}）：{aid.status}（{_day(aid.last_step_on, today)}）"
        if aid.status == "已批准" and aid.amount_fen:
            line += f"，帮扶金额{_yuan(aid.amount_fen)}元"
        hint = NEXT_STEP.get((aid.kind, aid.status), "").format(station=station)
        lines.append(line + (f"，{hint}。" if hint else "。"))
    if summary.entitlements:
        lines.append("· 优抚类别：" + "、".join(summary.entitlements) + "。")
    if summary.subsidies:
        lines.append("· 定期抚恤补助：" + "；".join(summary.subsidies) + "。")
    contact = f"{summary.station_name}（电话 {summary.station_phone}）" if summary.station_phone else station
    lines.append(f"如信息有误或有疑问，请联系{contact}。")
    return "\n".join(lines)
