"""Server-side SVG charts of the analytics pages: a line over time and an interval
(forest) plot. Same rules as the console's other charts: no inline styles or scripts
(strict CSP), colours and sizes from classes of console.css, a <title> and <desc> for
screen readers and a <title> per point as tooltip."""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from itertools import count
from typing import Any

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from analytics.kpis import SeriesPoint
from analytics.models import Period

WIDTH = 720
HEIGHT = 180
PAD_LEFT = 56
PAD_RIGHT = 10
PAD_TOP = 10
PAD_BOTTOM = 24
GRID_LINES = 4
ROW_HEIGHT = 30
LABEL_WIDTH = 150

_ids = count(1)


def format_html(format_string: str, *args: Any) -> SafeString:
    """Like Django's ``format_html``, but numbers keep their format specs (``{:.1f}``):
    Django escapes every argument to a string first. Text is escaped, safe text kept."""
    return mark_safe(format_string.format(*(a if isinstance(a, (int, float)) else conditional_escape(a) for a in args)))


def format_html_join(separator: str, format_string: str, rows: Iterable[Sequence[Any]]) -> SafeString:
    return mark_safe(conditional_escape(separator).join(format_html(format_string, *row) for row in rows))


@dataclass(frozen=True)
class SeriesValue:
    label: str  # tooltip, e.g. "Tue 3 Dec"
    value: float | None  # None: undefined (no denominator); the line breaks there
    tick: str = ""


@dataclass(frozen=True)
class IntervalRow:
    label: str
    estimate: float
    low: float
    high: float
    note: str = ""  # for the tooltip


def _frame(title: str, description: str, height: int, body: SafeString) -> SafeString:
    chart_id = f"achart-{next(_ids)}"
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-labelledby="{}-title {}-desc">'
        '<title id="{}-title">{}</title><desc id="{}-desc">{}</desc>{}</svg>',
        WIDTH,
        height,
        chart_id,
        chart_id,
        chart_id,
        title,
        chart_id,
        description,
        body,
    )


def _nice_top(value: float) -> float:
    if value <= 0:
        return 1.0
    power = 10.0
    while power > value:
        power /= 10
    while power * 10 < value:
        power *= 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def line_chart(points: Sequence[SeriesValue], *, title: str, fmt: Callable[[float], str]) -> SafeString:
    """A line over time; ``fmt`` writes a value (axis and tooltips)."""
    defined = [p.value for p in points if p.value is not None]
    top = _nice_top(max(defined, default=0.0))
    plot_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    step = (WIDTH - PAD_LEFT - PAD_RIGHT) / max(len(points) - 1, 1)

    def y(value: float) -> float:
        return PAD_TOP + plot_h - plot_h * value / top

    grid = format_html_join(
        "",
        '<line class="chart__grid" x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}"></line>'
        '<text class="chart__label chart__label--y" x="{}" y="{:.1f}">{}</text>',
        (
            (
                PAD_LEFT,
                WIDTH - PAD_RIGHT,
                y(top * i / GRID_LINES),
                y(top * i / GRID_LINES),
                PAD_LEFT - 6,
                y(top * i / GRID_LINES) + 4,
                fmt(top * i / GRID_LINES),
            )
            for i in range(GRID_LINES + 1)
        ),
    )
    segments: list[list[tuple[float, float]]] = [[]]
    for i, point in enumerate(points):
        if point.value is None:
            if segments[-1]:
                segments.append([])
            continue
        segments[-1].append((PAD_LEFT + step * i, y(point.value)))
    lines = format_html_join(
        "",
        '<polyline class="chart__line" points="{}"></polyline>',
        ((" ".join(f"{x:.1f},{yy:.1f}" for x, yy in segment),) for segment in segments if segment),
    )
    dots = format_html_join(
        "",
        '<circle class="chart__dot" cx="{:.1f}" cy="{:.1f}" r="2.5"><title>{}: {}</title></circle>',
        ((PAD_LEFT + step * i, y(p.value), p.label, fmt(p.value)) for i, p in enumerate(points) if p.value is not None),
    )
    ticks = format_html_join(
        "",
        '<text class="chart__label chart__label--x" x="{:.1f}" y="{}">{}</text>',
        ((PAD_LEFT + step * i, HEIGHT - 6, p.tick) for i, p in enumerate(points) if p.tick),
    )
    if defined:
        peak = max((p for p in points if p.value is not None), key=lambda p: p.value or 0.0)
        description = f"{len(points)} points; the highest is {fmt(peak.value or 0.0)} at {peak.label}."
    else:
        description = "No data in this range."
    return _frame(title, description, HEIGHT, format_html("{}{}{}{}", grid, lines, dots, ticks))


def interval_chart(rows: Sequence[IntervalRow], *, title: str, fmt: Callable[[float], str]) -> SafeString:
    """One horizontal interval per row with its estimate, and a line at zero: a difference
    whose interval crosses the line is not distinguishable from no difference."""
    height = PAD_TOP + PAD_BOTTOM + ROW_HEIGHT * max(len(rows), 1)
    if not rows:
        return _frame(title, "No comparisons yet.", height, mark_safe(""))
    low = min(0.0, *(r.low for r in rows))
    high = max(0.0, *(r.high for r in rows))
    if high == low:
        high = low + 1.0
    pad = (high - low) * 0.05
    low, high = low - pad, high + pad
    left, right = LABEL_WIDTH, WIDTH - PAD_RIGHT

    def x(value: float) -> float:
        return left + (right - left) * (value - low) / (high - low)

    zero = format_html(
        '<line class="chart__grid" x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}"></line>'
        '<text class="chart__label chart__label--x" x="{:.1f}" y="{}">0</text>',
        x(0.0),
        x(0.0),
        PAD_TOP,
        height - PAD_BOTTOM,
        x(0.0),
        height - 6,
    )
    bounds = format_html(
        '<text class="chart__label chart__label--x" x="{:.1f}" y="{}">{}</text>'
        '<text class="chart__label chart__label--y" x="{:.1f}" y="{}">{}</text>',
        left,
        height - 6,
        fmt(low),
        right,
        height - 6,
        fmt(high),
    )
    body = format_html_join(
        "",
        '<text class="chart__label chart__label--y" x="{}" y="{:.1f}">{}</text>'
        '<line class="chart__line" x1="{:.1f}" x2="{:.1f}" y1="{:.1f}" y2="{:.1f}"></line>'
        '<circle class="chart__dot" cx="{:.1f}" cy="{:.1f}" r="4"><title>{}: {} ({} to {}){}</title></circle>',
        (
            (
                LABEL_WIDTH - 8,
                PAD_TOP + ROW_HEIGHT * i + ROW_HEIGHT / 2 + 4,
                r.label,
                x(r.low),
                x(r.high),
                PAD_TOP + ROW_HEIGHT * i + ROW_HEIGHT / 2,
                PAD_TOP + ROW_HEIGHT * i + ROW_HEIGHT / 2,
                x(r.estimate),
                PAD_TOP + ROW_HEIGHT * i + ROW_HEIGHT / 2,
                r.label,
                fmt(r.estimate),
                fmt(r.low),
                fmt(r.high),
                f"; {r.note}" if r.note else "",
            )
            for i, r in enumerate(rows)
        ),
    )
    description = "; ".join(f"{r.label}: {fmt(r.estimate)} ({fmt(r.low)} to {fmt(r.high)})" for r in rows)
    return _frame(title, description, height, format_html("{}{}{}", zero, bounds, body))


def series_charts(series: Sequence[SeriesPoint], granularity: str, zone: tzinfo) -> dict[str, SafeString]:
    """Served lists, CTR and attributed revenue over a KPI series, labelled in ``zone``
    (the shop's: buckets are its local hours and days)."""

    def label(point: SeriesPoint) -> str:
        local = point.start.astimezone(zone)
        return f"{local:%a %-d %b, %H:00}" if granularity == Period.HOUR else f"{local:%a %-d %b %Y}"

    every = max(1, len(series) // 8)

    def tick(index: int, point: SeriesPoint) -> str:
        local = point.start.astimezone(zone)
        if granularity == Period.HOUR:
            return f"{local:%a %-d}" if local.hour == 0 else ""
        return f"{local:%-d %b}" if index % every == 0 else ""

    def points(value: Callable[[SeriesPoint], float | None]) -> list[SeriesValue]:
        return [SeriesValue(label(p), value(p), tick(i, p)) for i, p in enumerate(series)]

    return {
        "requests": line_chart(points(lambda p: float(p.kpis.requests)), title="Served lists", fmt=_count),
        "ctr": line_chart(points(lambda p: p.kpis.ctr), title="Click-through rate", fmt=_percent),
        "revenue": line_chart(points(lambda p: float(p.kpis.revenue)), title="Attributed revenue", fmt=_money),
    }


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def _money(value: float) -> str:
    return f"{value:,.2f}"
