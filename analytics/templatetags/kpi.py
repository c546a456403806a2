"""Formatting of KPIs and statistics on the analytics pages. ``{% load kpi %}``.

Every filter shows None (an undefined rate, a missing interval) as "—", never "nan"."""

from decimal import Decimal
from typing import Any

from django import template

from analytics.experiments import METRIC_LABELS

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
