"""Seasonal lift: which categories sold unusually well in the coming weeks last year.

For each of the next ``WEEKS_AHEAD`` weeks (Monday to Sunday, shop-local), take the same
week 52 weeks earlier (52 weeks, not one calendar year, so weekdays line up: Black Friday
last year was 364 days before this year's). For each category, its share of the shop's
weighted add-to-cart and purchase volume in that week, divided by its share over the
whole 52 weeks before today, is the lift. A lift of at least ``LIFT_THRESHOLD`` from at
least ``MIN_WINDOW_EVENTS`` events is worth a suggestion. Weights are the shop's own
event weights. Products count for the category they are in now.
"""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count

from campaigns.schedule import local_instant
from catalog.models import Event, EventType, Shop

WEEKS_AHEAD = 6
LIFT_THRESHOLD = 1.3
MIN_WINDOW_EVENTS = 20
MAX_SUGGESTED_FACTOR = 2.0
YEAR = timedelta(days=364)


@dataclass(frozen=True)
class SeasonalLift:
    category_id: int
    first_day: date  # of the coming window (this year)
    last_day: date
    lift: float
    window_volume: float  # last year's weighted volume of the category in the window
    window_events: int

    @property
    def suggested_factor(self) -> float:
        """Half the measured lift, at most x2: a nudge, not the full swing."""
        return round(min(MAX_SUGGESTED_FACTOR, 1.0 + (self.lift - 1.0) / 2.0), 2)


def upcoming_weeks(today: date, weeks: int = WEEKS_AHEAD) -> list[tuple[date, date]]:
    """(Monday, Sunday) of the next ``weeks`` weeks, starting with the first Monday on or
    after ``today``, so daily runs produce the same windows all week (idempotent rows)."""
    monday = today + timedelta(days=(7 - today.weekday()) % 7)
    return [(monday + timedelta(weeks=w), monday + timedelta(weeks=w, days=6)) for w in range(weeks)]


def _volumes(shop: Shop, first_day: date, last_day: date) -> dict[int, tuple[float, int]]:
    """category id -> (weighted volume, event count) of add-to-cart and purchase events
    on local days ``first_day``..``last_day``."""
    tz = zoneinfo.ZoneInfo(shop.timezone)
    start = local_instant(datetime.combine(first_day, time(0)), tz)
    end = local_instant(datetime.combine(last_day + timedelta(days=1), time(0)), tz)
    weights = {t: float(shop.event_weights.get(t, 0.0)) for t in (EventType.ADD_TO_CART, EventType.PURCHASE)}
    rows = (
        Event.objects.filter(
            shop=shop, type__in=list(weights), ts__gte=start, ts__lt=end, product__category__isnull=False
        )
        .values_list("product__category_id", "type")
        .annotate(n=Count("id"))
    )
    found: dict[int, list[float]] = defaultdict(lambda: [0.0, 0])
    for category_id, event_type, count in rows:
        found[category_id][0] += count * weights[event_type]
        found[category_id][1] += count
    return {category_id: (volume, int(count)) for category_id, (volume, count) in found.items()}


def seasonal_lifts_measure(shop: Shop, today: date) -> list[SeasonalLift]:
    """The category-weeks ahead whose last-year lift clears the threshold (a few queries)."""
    baseline = _volumes(shop, today - YEAR, today - timedelta(days=1))
    baseline_total = sum(volume for volume, _ in baseline.values())
    if baseline_total <= 0:
        return []
    lifts = []
    for first_day, last_day in upcoming_weeks(today):
        window = _volumes(shop, first_day - YEAR, last_day - YEAR)
        window_total = sum(volume for volume, _ in window.values())
        if window_total <= 0:
            continue
        for category_id, (volume, count) in sorted(window.items()):
            base_volume = baseline.get(category_id, (0.0, 0))[0]
            if count < MIN_WINDOW_EVENTS or base_volume <= 0:
                continue
            lift = (volume / window_total) / (base_volume / baseline_total)
            if lift >= LIFT_THRESHOLD:
                lifts.append(SeasonalLift(category_id, first_day, last_day, round(lift, 4), volume, count))
    return lifts
