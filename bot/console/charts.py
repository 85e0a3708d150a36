"""Small bar charts as inline SVG, drawn on the server (the console runs no chart script
and loads nothing from the internet; IE 11 and every later browser show inline SVG).

Each chart carries its title (``<title>``, read out by screen readers), axis labels,
and a ``<title>`` on every bar with its label and value, so a hover shows the figure;
the pages also print the numbers in a table next to the chart. A chart without data is
a polite 暂无数据, never an empty frame.
"""

from __future__ import annotations

import itertools
import math
from typing import List, Optional, Sequence, Tuple

from markupsafe import Markup, escape

FONT = "Microsoft YaHei, PingFang SC, Hiragino Sans GB, SimSun, sans-serif"
BAR = "#c62828"
HIGHLIGHT = "#8a1c14"
AXIS = "#8f959e"
GRID = "#e4e6eb"
TEXT = "#1f2329"
EMPTY = Markup('<p class="empty">暂无数据</p>')

_ids = itertools.count(1)


def nice_ceiling(value: float) -> Tuple[float, float]:
    """A round axis maximum at or above ``value`` and the step of its (4 or 5) ticks."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1:
        step = 1.0  # counts: no fractional ticks
    return step * math.ceil(value / step), step


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _text(x: float, y: float, content: str, anchor: str = "middle", size: int = 12, fill: str = TEXT,
          bold: bool = False, rotate: Optional[float] = None) -> str:
    extra = ' font-weight="bold"' if bold else ""
    if rotate is not None:
        extra += f' transform="rotate({rotate:g} {x:.1f} {y:.1f})"'
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}"{extra}>'
            f"{escape(content)}</text>")


def _open(width: int, height: int, title: str, description: str) -> List[str]:
    ident = f"chart{next(_ids)}"
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="{ident}t {ident}d" '
        f'font-family="{FONT}">',
        f'<title id="{ident}t">{escape(title)}</title>',
        f'<desc id="{ident}d">{escape(description)}</desc>',
    ]


def bar_chart(title: str, points: Sequence[Tuple[str, float]], *, x_label: str, y_label: str, unit: str = "",
              width: int = 720, height: int = 280, tooltips: Optional[Sequence[str]] = None,
              highlight: Sequence[int] = ()) -> Markup:
    """Vertical bars, one per point (label, value), e.g. messages per day. Labels are
    thinned out when there are many; each bar's ``<title>`` has its exact figure."""
    if not points or not any(v for _, v in points):
        return EMPTY
    left, right, top, bottom = 56, 16, 34, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    maximum, step = nice_ceiling(max(v for _, v in points))
    n = len(points)
    slot = plot_w / n
    bar_w = max(2.0, slot * 0.7)
    every = max(1, math.ceil(n / 12))  # at most about 12 labels under the axis
    summary = "；".join(f"{label}：{_number(v)}{unit}" for label, v in points)
    out = _open(width, height, title, f"{x_label}与{y_label}：{summary}")
    out.append(_text(left, 16, title, anchor="start", size=14, bold=True))
    ticks = int(round(maximum / step))
    for i in range(ticks + 1):
        value = step * i
        y = top + plot_h - plot_h * value / maximum
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="{GRID}"/>')
        out.append(_text(left - 6, y + 4, _number(value), anchor="end", size=11, fill=AXIS))
    for i, (label, value) in enumerate(points):
        x = left + slot * i + (slot - bar_w) / 2
        h = plot_h * value / maximum
        y = top + plot_h - h
        tip = tooltips[i] if tooltips else f"{label}：{_number(value)}{unit}"
        color = HIGHLIGHT if i in highlight else BAR
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{max(h, 0):.1f}" fill="{color}">'
                   f"<title>{escape(tip)}</title></rect>")
        if n <= 14 and value:
            out.append(_text(x + bar_w / 2, y - 4, _number(value), size=11))
        if i % every == 0:
            out.append(_text(x + bar_w / 2, top + plot_h + 16, label, size=11))
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{AXIS}"/>')
    out.append(_text(left + plot_w / 2, height - 10, x_label, size=12, fill=AXIS))
    out.append(_text(14, top + plot_h / 2, y_label, size=12, fill=AXIS, rotate=-90))
    out.append("</svg>")
    return Markup("".join(out))


def hbar_chart(title: str, rows: Sequence[Tuple[str, float, str]], *, x_label: str, y_label: str,
               width: int = 720, label_width: int = 170, highlight: Sequence[int] = ()) -> Markup:
    """Horizontal bars, one per row (label, value, the text written after the bar), e.g.
    the top intents with their counts and shares."""
    if not rows or not any(v for _, v, _ in rows):
        return EMPTY
    row_h, top, bottom, right = 26, 34, 44, 120
    height = top + row_h * len(rows) + bottom
    left = label_width
    plot_w = width - left - right
    maximum, step = nice_ceiling(max(v for _, v, _ in rows))
    summary = "；".join(f"{label}：{text}" for label, _, text in rows)
    out = _open(width, height, title, f"{y_label}与{x_label}：{summary}")
    out.append(_text(8, 16, title, anchor="start", size=14, bold=True))
    plot_bottom = top + row_h * len(rows)
    ticks = int(round(maximum / step))
    for i in range(ticks + 1):
        value = step * i
        x = left + plot_w * value / maximum
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{plot_bottom}" stroke="{GRID}"/>')
        out.append(_text(x, plot_bottom + 14, _number(value), size=11, fill=AXIS))
    for i, (label, value, text) in enumerate(rows):
        y = top + row_h * i
        w = plot_w * value / maximum
        color = HIGHLIGHT if i in highlight else BAR
        shown = label if len(label) <= 12 else label[:11] + "…"
        out.append(_text(left - 8, y + row_h / 2 + 4, shown, anchor="end", size=12))
        out.append(f'<rect x="{left}" y="{y + 4}" width="{max(w, 0):.1f}" height="{row_h - 8}" fill="{color}">'
                   f"<title>{escape(label)}：{escape(text)}</title></rect>")
        out.append(_text(left + w + 6, y + row_h / 2 + 4, text, anchor="start", size=12))
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{plot_bottom}" stroke="{AXIS}"/>')
    out.append(_text(left + plot_w / 2, height - 8, x_label, size=12, fill=AXIS))
    out.append(_text(8, height - 8, y_label, anchor="start", size=12, fill=AXIS))
    out.append("</svg>")
    return Markup("".join(out))
