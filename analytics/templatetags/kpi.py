"""Formatting of KPIs and statistics on the analytics pages, and the dashboard's KPI
sections. ``{% load kpi %}``.

Every filter shows None (an undefined rate, a missing interval) as "—", never "nan"."""

import zoneinfo
from decimal import Decimal
from typing import Any

from django import template
from django.utils import timezone

from analytics.charts import SeriesValue, line_chart, series_charts
from analytics.experiments import METRIC_LABELS
from analytics.kpis import Kpis
from analytics.models import Period
from analytics.selectors import dashboard_summary

register = template.Library()
DASH = "—"


@register.filter
def percent(value: Any, digits: int = 2) -> str:
    """A share as a percentage: 0.0312 -> "3.12%"."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.{int(digits)}f}%"


@register.filter
def change(value: Any) -> str:
    """A relative change with its sign: 0.123 -> "+12.3%"."""
    if value is None:
        return DASH
    return f"{float(value) * 100:+.1f}%"


@register.filter
def money(value: Any) -> str:
    if value is None:
        return DASH
    return f"{Decimal(value):,.2f}"


@register.filter
def pvalue(value: Any) -> str:
    if value is None:
        return DASH
    value = float(value)
    return "< 0.0001" if value < 0.0001 else f"{value:.4f}"


@register.filter
def decimal3(value: Any) -> str:
    if value is None:
        return DASH
    return f"{float(value):.3f}"


@register.filter
def metric_name(metric: str) -> str:
    """An experiment metric in words."""
    return METRIC_LABELS.get(metric, metric)


@register.filter
def metric_value(value: Any, metric: str) -> str:
    """A metric's value: rates as percentages, revenue per unit as money."""
    if value is None:
        return DASH
    return f"{float(value):,.2f}" if metric == "revenue_per_unit" else f"{float(value) * 100:.2f}%"


@register.filter
def metric_difference(value: Any, metric: str) -> str:
    """A difference: rates in percentage points, revenue per unit as signed money."""
    if value is None:
        return DASH
    return f"{float(value):+,.2f}" if metric == "revenue_per_unit" else f"{float(value) * 100:+.2f} pp"


@register.filter
def trend(value: Any) -> str:
    """The class of a change: up, down or flat (for colour; the sign is in the text too)."""
    if value is None or abs(float(value)) < 0.0005:
        return "neutral"
    return "success" if float(value) > 0 else "danger"


def relative_change(now: float | Decimal | None, before: float | Decimal | None) -> float | None:
    """(now - before) / before; None without a base."""
    if now is None or not before:
        return None
    return float((Decimal(str(now)) - Decimal(str(before))) / Decimal(str(before)))


@register.inclusion_tag("console/analytics/dashboard_kpis.html", takes_context=True)
def dashboard_kpis(context: template.Context) -> dict[str, Any]:
    """The dashboard's recommendation sections: KPIs of the last 7 days against the 7
    before, per placement with a daily chart, live experiments with their sample-ratio
    verdict and the active model versions (analytics.selectors.dashboard_summary: rollups
    only). Needs ``shop`` in the context."""
    shop = context["shop"]
    zone = zoneinfo.ZoneInfo(shop.timezone)
    summary = dashboard_summary(shop, timezone.now())
    charts = series_charts(summary.daily, Period.DAY, zone)
    placements = []
    for placement in summary.placements:
        points = [
            SeriesValue(
                f"{p.start.astimezone(zone):%a %-d %b}",
                p.kpis.ctr,
                "" if i % 7 else f"{p.start.astimezone(zone):%-d %b}",
            )
            for i, p in enumerate(placement.daily)
        ]
        placements.append(
            {
                "trend": placement,
                "chart": line_chart(
                    points, title=f"{placement.slug}: click-through rate per day", fmt=lambda v: f"{v * 100:.2f}%"
                ),
            }
        )
    return {
        "shop": shop,
        "summary": summary,
        "changes": _changes(summary.totals, summary.previous),
        "charts": charts,
        "placements": placements,
    }


def _changes(now: Kpis, before: Kpis) -> dict[str, float | None]:
    return {
        "requests": relative_change(now.requests, before.requests),
        "ctr": relative_change(now.ctr, before.ctr),
        "conversion_rate": relative_change(now.conversion_rate, before.conversion_rate),
        "revenue": relative_change(now.revenue, before.revenue),
    }
