"""Template filters of the merchandising pages. ``{% load merchandising %}``."""

from typing import Any

from django import template

from campaigns.console_selectors import times as _times
from campaigns.forms import METRIC_LABELS, SOURCE_LABELS

register = template.Library()


@register.filter
def source_label(source: str) -> str:
    """A strategy source in words: ``bought_together`` -> "Bought together"."""
    return SOURCE_LABELS.get(source, source)


@register.filter
def metric_label(metric: str) -> str:
    """An experiment's metric in words: ``ctr`` -> "Click-through rate"."""
    return METRIC_LABELS.get(metric, metric)


@register.filter
def weight(value: Any) -> str:
    """A source weight without trailing zeros: 0.30 -> "0.3", 1.0 -> "1"."""
    return f"{float(value):g}"


@register.filter
def times(factor: Any) -> str:
    """A score multiplier as the rules engine writes it: 1.5 -> "x1.5"."""
    return _times(float(factor))


@register.filter
def share(percent: Any) -> str:
    """A share in percent with at most one decimal: 45.0 -> "45%", 22.5 -> "22.5%"."""
    return f"{float(percent):.1f}".removesuffix(".0") + "%"
