"""Template messages (模板消息) for notices that reach a user outside the 48-hour window.

WeChat accepts a customer-service message only within 48 hours of the user's last
message to the account (45015 after that). The delivery worker (bot.wechat.delivery)
sends a notice as a customer-service message while the window is open
(bot.services.wechat_window) and as a template message otherwise, with the template
of its kind from ``data/notice_templates.yml``: the account's template id, what each
field (first, keyword1 …, remark) says, with ``{name}`` filled in from the notice
(``VALUES``: the names each kind offers), and an optional link.
"""

from __future__ import annotations

import datetime as dt
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple

import yaml

from bot.services import appointments, complaints
from bot.services.datafile import DataFileError
from bot.settings import PROJECT_ROOT

TEMPLATES_FILE = PROJECT_ROOT / "data" / "notice_templates.yml"
MAX_VALUE_CHARS = 200  # what WeChat shows of one field; the mock API refuses longer
FIELD_NAMES = ("first", "remark")  # besides keyword1, keyword2 …
CENTRE = "退役军人服务中心"


def _day(value: object) -> str:
    day = dt.date.fromisoformat(str(value)[:10])
    return f"{day.year}年{day.month}月{day.day}日"


def _reminder(payload: Mapping[str, object]) -> Dict[str, str]:
    start, end = dt.datetime.fromisoformat(str(payload["start"])), dt.datetime.fromisoformat(str(payload["end"]))
    materials = payload.get("materials") or []
    return {"service": str(payload["service"]), "time": appointments.format_slot(start, end),
            "station": str(payload["station"]), "address": str(payload.get("address") or ""),
            "phone": str(payload.get("phone") or ""), "code": str(payload["code"]),
            "materials": "；".join(str(m) for m in materials) if materials else "以服务站要求为准"}


def _case(payload: Mapping[str, object]) -> Dict[str, str]:
    return {"case_number": str(payload["case_number"]), "category": str(payload.get("category") or "其他")}


# What each kind of notice offers its template, from an outbox row's payload.
VALUES: Dict[str, Callable[[Mapping[str, object]], Dict[str, str]]] = {
    appointments.REMINDER_KIND: _reminder,
    complaints.ACCEPTED_KIND: lambda p: {**_case(p), "due": _day(p["due"])},
    complaints.REJECTED_KIND: lambda p: {**_case(p), "reason": str(p["reason"])},
    complaints.ANSWER_KIND: lambda p: {**_case(p), "assigned_to": str(p.get("assigned_to") or CENTRE)},
    complaints.FOLLOW_UP_KIND: lambda p: {**_case(p), "until": _day(p["until"])},
}
# A payload of each kind, to check the data file's fields against.
SAMPLES: Dict[str, Mapping[str, object]] = {
    appointments.REMINDER_KIND: {"service": "退役报到", "start": "2026-12-09T09:00:00+08:00",
                                 "end": "2026-12-09T09:30:00+08:00", "station": "嘉定区退役军人服务中心",
                                 "address": "嘉定区博乐路", "phone": "021-00000000", "code": "YY7KQ4M2XD",
                                 "materials": ["身份证", "退役证"]},
    complaints.ACCEPTED_KIND: {"case_number": "TS20261208-0001", "category": "待遇发放", "due": "2026-12-23"},
    complaints.REJECTED_KIND: {"case_number": "TS20261208-0001", "category": "待遇发放", "reason": "不属于本机关职责"},
    complaints.ANSWER_KIND: {"case_number": "TS20261208-0001", "category": "待遇发放", "assigned_to": "新成路街道服务站"},
    complaints.FOLLOW_UP_KIND: {"case_number": "TS20261208-0001", "category": "待遇发放", "until": "2026-12-31"},
}


@dataclass(frozen=True)
class Template:
    kind: str
    template_id: str
    fields: Tuple[Tuple[str, str], ...]  # (field, text with {names}), in the file's order
    url: Optional[str] = None

    def data(self, payload: Mapping[str, object]) -> Dict[str, str]:
        """The template's fields for one notice (each cut to MAX_VALUE_CHARS)."""
        values = VALUES[self.kind](payload)
        return {name: _cut(text.format_map(values)) for name, text in self.fields}


def _cut(value: str) -> str:
    return value if len(value) <= MAX_VALUE_CHARS else value[:MAX_VALUE_CHARS - 1] + "…"


def _field_name_ok(name: str) -> bool:
    return name in FIELD_NAMES or (name.startswith("keyword") and name[7:].isdigit())


def load_templates(path: Path = TEMPLATES_FILE) -> Dict[str, Template]:
    """The templates by notice kind; DataFileError lists every mistake in the file."""
    source = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise DataFileError(source, [f"无法读取：{error}"]) from None
    entries = raw.get("templates") if isinstance(raw, dict) else None
    if not isinstance(entries, dict):
        raise DataFileError(source, ["缺少 templates：每种通知一项"])
    problems: List[str] = []
    templates: Dict[str, Template] = {}
    for kind, entry in entries.items():
        where, found_before = f"templates.{kind}", len(problems)
        if kind not in VALUES:
            problems.append(f"{where}：没有这种通知（可用：{'、'.join(VALUES)}）")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{where}：应包含 template_id 和 fields")
            continue
        template_id, fields, url = entry.get("template_id"), entry.get("fields"), entry.get("url")
        if not isinstance(template_id, str) or not template_id.strip():
            problems.append(f"{where}.template_id：未填写模板 ID")
        if not isinstance(fields, dict) or not fields:
            problems.append(f"{where}.fields：未填写模板字段")
            continue
        if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
            problems.append(f"{where}.url：应为以 https:// 开头的网址，或者不填")
        offered = VALUES[kind](SAMPLES[kind])
        for name, text in fields.items():
            if not _field_name_ok(str(name)):
                problems.append(f"{where}.fields.{name}：字段名应为 first、keyword1、keyword2 …… 或 remark")
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}.fields.{name}：内容为空")
                continue
            for _, placeholder, _, _ in string.Formatter().parse(text):
                if placeholder is not None and placeholder not in offered:
                    problems.append(f"{where}.fields.{name}：{{{placeholder}}} 不是这种通知的内容"
                                    f"（可用：{'、'.join('{' + n + '}' for n in offered)}）")
        if len(problems) == found_before:
            templates[kind] = Template(kind, template_id.strip(), tuple((str(n), t) for n, t in fields.items()),
                                       url or None)
    if problems:
        raise DataFileError(source, problems)
    return templates
