"""Charts as inline SVG, rendered on the server.

Inline SVG elements are allowed under the console's strict Content-Security-Policy
(only inline ``style`` and ``script`` are not), so the charts use classes for every
colour and size (console.css) and carry no style attributes. Each chart has a
<title> and <desc> for screen readers and a <title> per bar or point as tooltip.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 200
PAD_LEFT = 44
PAD_RIGHT = 8
PAD_TOP = 10
PAD_BOTTOM = 26
GRID_LINES = 4

_ids = count(1)


@dataclass(frozen=True)
class Point:
    label: str  # shown on hover, e.g. "Tue 3 Dec, 14:00"
    value: float
    tick: str = ""  # x-axis label under this point, or "" for none


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (>= 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def _frame(points: Sequence[Point], title: str, description: str, body: SafeString, top: float) -> SafeString:
    chart_id = f"chart-{next(_ids)}"
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    grid = format_html_join(
        "",
        '<line class="chart__grid" x1="{}" x2="{}" y1="{}" y2="{}"></line>'
        '<text class="chart__label chart__label--y" x="{}" y="{}">{}</text>',
        (
            (
                PAD_LEFT,
                WIDTH - PAD_RIGHT,
                f"{PAD_TOP + plot_h - plot_h * i / GRID_LINES:.1f}",
                f"{PAD_TOP + plot_h - plot_h * i / GRID_LINES:.1f}",
                PAD_LEFT - 6,
                f"{PAD_TOP + plot_h - plot_h * i / GRID_LINES + 4:.1f}",
                _number(top * i / GRID_LINES),
            )
            for i in range(GRID_LINES + 1)
        ),
    )
    step = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(len(points), 1)
    ticks = format_html_join(
        "",
        '<text class="chart__label chart__label--x" x="{}" y="{}">{}</text>',
        ((f"{PAD_LEFT + step * i:.1f}", HEIGHT - 8, p.tick) for i, p in enumerate(points) if p.tick),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}{}{}</svg>',
        WIDTH,
        HEIGHT,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        grid,
        body,
        ticks,
    )


def _describe(points: Sequence[Point], unit: str) -> str:
    if not points:
        return "No data."
    total = sum(p.value for p in points)
    peak = max(points, key=lambda p: p.value)
    return (
        f"{_number(total)} {unit} in total over {len(points)} intervals; "
        f"the highest was {_number(peak.value)} at {peak.label}."
    )


def bar_chart(points: Sequence[Point], *, title: str, unit: str) -> SafeString:
    top = nice_ceiling(max((p.value for p in points), default=0))
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(len(points), 1)
    gap = min(1.0, step * 0.2)
    bars = format_html_join(
        "",
        '<rect class="chart__bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {} {}</title></rect>',
        (
            (
                f"{PAD_LEFT + step * i + gap / 2:.2f}",
                f"{PAD_TOP + plot_h - plot_h * p.value / top:.2f}",
                f"{max(step - gap, 0.5):.2f}",
                f"{plot_h * p.value / top:.2f}",
                p.label,
                _number(p.value),
                unit,
            )
            for i, p in enumerate(points)
        ),
    )
    return _frame(points, title, _describe(points, unit), bars, top)


def line_chart(points: Sequence[Point], *, title: str, unit: str) -> SafeString:
    top = nice_ceiling(max((p.value for p in points), default=0))
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(len(points) - 1, 1)
    coords = [(PAD_LEFT + step * i, PAD_TOP + plot_h - plot_h * p.value / top) for i, p in enumerate(points)]
    if not coords:
        return _frame(points, title, _describe(points, unit), mark_safe(""), top)
    line = " ".join(f"{x:.2f},{y:.2f}" for x, y in coords)
    base = PAD_TOP + plot_h
    area = f"{coords[0][0]:.2f},{base} {line} {coords[-1][0]:.2f},{base}"
    dots = format_html_join(
        "",
        '<circle class="chart__dot" cx="{}" cy="{}" r="3"><title>{}: {} {}</title></circle>',
        ((f"{x:.2f}", f"{y:.2f}", p.label, _number(p.value), unit) for (x, y), p in zip(coords, points, strict=True)),
    )
    body = format_html(
        '<polygon class="chart__area" points="{}"></polygon><polyline class="chart__line" points="{}"></polyline>{}',
        area,
        line,
        dots,
    )
    return _frame(points, title, _describe(points, unit), body, top)
