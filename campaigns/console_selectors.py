"""Reads for the merchandising console pages: promotion rows with their derived status,
the month calendar of what is live, which products a target matches, and the labels
that describe a promotion or a seasonal boost in words.

Everything that depends on time takes the instant (``at``) and reads local days and
hours in the shop's time zone, like serving does (campaigns.schedule).
"""

import calendar
import threading
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count

from campaigns import selectors
from campaigns.matching import snapshot_index
from campaigns.models import Experiment, Placement, Promotion, SeasonalBoost, Strategy
from campaigns.rules import _times as times  # a multiplier as reasons write it: x1.5, x2
from campaigns.schedule import (
    Schedule,
    local_instant,
    schedule_active,
    schedule_next_boundary,
    seasonal_multiplier,
)
from campaigns.targets import Target
from catalog.models import Shop
from catalog.snapshot import CatalogSnapshot, snapshot_load, snapshot_refresh

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MATCHES_SHOWN = 20


# --- Words for promotions and seasonal boosts ---------------------------------------------


def action_label(promotion: Promotion) -> str:
    if promotion.action == Promotion.Action.PIN:
        return f"Pin to slot {promotion.slot}"
    if promotion.action == Promotion.Action.BOOST:
        return f"Boost {times(promotion.factor or 1.0)}"
    return {
        Promotion.Action.BURY: "Bury",
        Promotion.Action.EXCLUDE: "Exclude",
        Promotion.Action.RESTRICT: "Restrict to target",
    }[Promotion.Action(promotion.action)]


def _day_label(month_day: tuple[int, int]) -> str:
    return f"{month_day[1]} {calendar.month_abbr[month_day[0]]}"


def _local(value: datetime, tz: zoneinfo.ZoneInfo) -> str:
    local = value.astimezone(tz)
    return f"{local.day} {local:%b %Y %H:%M}"


def schedule_label(schedule: Schedule, tz: zoneinfo.ZoneInfo) -> str:
    """The schedule in words, local to the shop: ``from 20 Nov 2026 09:00 · every year
    20 Nov to 24 Dec · Mon, Fri · 09:00-17:00``; ``Always`` when nothing limits it."""
    parts = []
    if schedule.starts_at and schedule.ends_at:
        parts.append(f"{_local(schedule.starts_at, tz)} to {_local(schedule.ends_at, tz)}")
    elif schedule.starts_at:
        parts.append(f"from {_local(schedule.starts_at, tz)}")
    elif schedule.ends_at:
        parts.append(f"until {_local(schedule.ends_at, tz)}")
    if schedule.yearly is not None:
        parts.append(f"every year {_day_label(schedule.yearly.first)} to {_day_label(schedule.yearly.last)}")
    if schedule.weekdays:
        parts.append(", ".join(WEEKDAY_NAMES[d] for d in sorted(schedule.weekdays)))
    if schedule.hours is not None:
        parts.append(f"{schedule.hours.start:%H:%M}\u2013{schedule.hours.end:%H:%M}")  # en dash
    label = " · ".join(parts) if parts else "Always"
    return label[:1].upper() + label[1:]


def scope_label(promotion: Promotion) -> str:
    if promotion.all_placements:
        return "All placements"
    return ", ".join(sorted(p.slug for p in promotion.placements.all()))


def window_label(boost: SeasonalBoost) -> str:
    if boost.recurrence == SeasonalBoost.Recurrence.YEARLY:
        window = boost.window.yearly
        assert window is not None
        return f"Every year {_day_label(window.first)} to {_day_label(window.last)}"
    assert boost.first_day is not None and boost.last_day is not None
    return f"{boost.first_day.day} {boost.first_day:%b %Y} to {boost.last_day.day} {boost.last_day:%b %Y}"


def _short_action(promotion: Promotion) -> str:
    """The action in a word or two, for a calendar day: ``slot 1``, ``x1.5``, ``bury``."""
    if promotion.action == Promotion.Action.PIN:
        return f"slot {promotion.slot}"
    if promotion.action == Promotion.Action.BOOST:
        return times(promotion.factor or 1.0)
    return {"bury": "bury", "exclude": "exclude", "restrict": "only"}[promotion.action]


# --- Promotions -------------------------------------------------------------------------------

STATUSES = ("draft", "scheduled", "live", "paused", "ended")


@dataclass(frozen=True)
class PromotionRow:
    promotion: Promotion
    status: str  # draft, scheduled, live, paused or ended at the instant asked
    action: str
    target: str
    scope: str
    schedule: str


def promotion_row(promotion: Promotion, at: datetime) -> PromotionRow:
    tz = zoneinfo.ZoneInfo(promotion.shop.timezone)
    return PromotionRow(
        promotion=promotion,
        status=promotion.lifecycle(at),
        action=action_label(promotion),
        target=promotion.target_spec.describe(),
        scope=scope_label(promotion),
        schedule=schedule_label(promotion.schedule, tz),
    )


def promotion_rows(shop: Shop, at: datetime, status: str = "") -> list[PromotionRow]:
    """Every promotion of the shop in rule order (highest priority, then oldest), with its
    status at ``at``; only those with ``status`` when one is given."""
    rows = [promotion_row(p, at) for p in selectors.promotions_for_shop(shop)]
    return [row for row in rows if row.status == status] if status else rows


# --- Placements and strategies ----------------------------------------------------------------


@dataclass(frozen=True)
class PlacementRow:
    placement: Placement
    promotions_scoped: int  # promotions limited to this placement (besides those on all placements)
    experiment: Experiment | None  # the running or scheduled one


def placement_rows(shop: Shop) -> list[PlacementRow]:
    placements = (
        selectors.placements_for_shop(shop)
        .select_related("default_strategy")
        .annotate(scoped=Count("promotions", distinct=True))
    )
    active: dict[int, Experiment] = {}
    for experiment in Experiment.objects.filter(
        shop=shop, status__in=(Experiment.Status.RUNNING, Experiment.Status.SCHEDULED)
    ).order_by("-status", "starts_at"):  # the running one, else the next scheduled
        active.setdefault(experiment.placement_id, experiment)
    return [PlacementRow(placement=p, promotions_scoped=p.scoped, experiment=active.get(p.pk)) for p in placements]


@dataclass(frozen=True)
class StrategyRow:
    strategy: Strategy
    placements: list[str]  # slugs of the placements it is the default of
    variants: int  # experiment variants that serve it


def strategy_rows(shop: Shop) -> list[StrategyRow]:
    strategies = selectors.strategies_for_shop(shop).annotate(variant_count=Count("experiment_variants"))
    slugs: dict[int, list[str]] = {}
    for strategy_id, slug in (
        Placement.objects.filter(shop=shop).order_by("slug").values_list("default_strategy_id", "slug")
    ):
        slugs.setdefault(strategy_id, []).append(slug)
    return [StrategyRow(s, slugs.get(s.pk, []), s.variant_count) for s in strategies]


def strategy_usage(strategy: Strategy) -> StrategyRow:
    """Where a strategy is used: placements (default) and experiments (variants)."""
    placements = list(strategy.placements.order_by("slug").values_list("slug", flat=True))
    return StrategyRow(strategy, placements, strategy.experiment_variants.count())


# --- Seasonal boosts -------------------------------------------------------------------------


@dataclass(frozen=True)
class SeasonalRow:
    boost: SeasonalBoost
    window: str
    multiplier_now: float  # 1.0 outside the window (or when switched off)


def seasonal_rows(shop: Shop, at: datetime) -> list[SeasonalRow]:
    tz = zoneinfo.ZoneInfo(shop.timezone)
    return [
        SeasonalRow(
            boost=boost,
            window=window_label(boost),
            multiplier_now=seasonal_multiplier(
                boost.window, boost.factor, boost.ramp_up_days, boost.ramp_down_days, at, tz
            )
            if boost.active
            else 1.0,
        )
        for boost in selectors.seasonal_boosts_for_shop(shop)
    ]


# --- The calendar ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarEntry:
    kind: str  # "promotion" or "seasonal"
    id: int
    name: str
    detail: str  # "Pin to slot 1", "x1.25"
    action: str  # the promotion's action, or "seasonal"


@dataclass(frozen=True)
class CalendarDay:
    day: date
    in_month: bool
    is_today: bool
    entries: tuple[CalendarEntry, ...]


@dataclass(frozen=True)
class CalendarMonth:
    first: date  # the first day of the month shown
    previous: date  # first day of the month before
    next: date  # first day of the month after
    weeks: list[list[CalendarDay]]  # Monday to Sunday, covering the whole month
    promotions: int  # how many different promotions are live at some time in the month
    boosts: int  # how many different seasonal boosts are live in the month


def live_during(schedule: Schedule, start: datetime, end: datetime, tz: zoneinfo.ZoneInfo) -> bool:
    """Whether the schedule is active at some instant of ``[start, end)`` (a local day)."""
    if schedule_active(schedule, start, tz):
        return True
    # A day holds at most one local midnight and the daily hours; two days of look-ahead
    # cover every boundary that can fall inside it, without the year-long default horizon.
    boundary = schedule_next_boundary(schedule, start, tz, horizon_days=2)
    return boundary is not None and boundary < end


def calendar_month(
    shop: Shop, first: date, today: date, *, promotions: bool = True, seasonal: bool = True
) -> CalendarMonth:
    """The month of ``first`` as weeks of local days, each with the published promotions
    live at some time that day and the active seasonal boosts in their window that day
    (with the multiplier at local noon, so ramps show)."""
    tz = zoneinfo.ZoneInfo(shop.timezone)
    first = first.replace(day=1)
    start = first - timedelta(days=first.weekday())
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    end = last + timedelta(days=6 - last.weekday())
    published = list(selectors.promotions_for_shop(shop, Promotion.Status.PUBLISHED)) if promotions else []
    boosts = [b for b in selectors.seasonal_boosts_for_shop(shop) if b.active] if seasonal else []
    seen_promotions: set[int] = set()
    seen_boosts: set[int] = set()
    days = []
    day = start
    while day <= end:
        day_start = local_instant(datetime.combine(day, time(0)), tz)
        day_end = local_instant(datetime.combine(day + timedelta(days=1), time(0)), tz)
        noon = local_instant(datetime.combine(day, time(12)), tz)
        entries = [
            CalendarEntry("promotion", p.pk, p.name, _short_action(p), p.action)
            for p in published
            if live_during(p.schedule, day_start, day_end, tz)
        ]
        entries += [
            CalendarEntry(
                "seasonal",
                b.pk,
                b.name,
                times(seasonal_multiplier(b.window, b.factor, b.ramp_up_days, b.ramp_down_days, noon, tz)),
                "seasonal",
            )
            for b in boosts
            if b.window.occurrence(day) is not None
        ]
        if first <= day <= last:
            seen_promotions.update(e.id for e in entries if e.kind == "promotion")
            seen_boosts.update(e.id for e in entries if e.kind == "seasonal")
        days.append(CalendarDay(day, first <= day <= last, day == today, tuple(entries)))
        day += timedelta(days=1)
    return CalendarMonth(
        first=first,
        previous=(first - timedelta(days=1)).replace(day=1),
        next=last + timedelta(days=1),
        weeks=[days[i : i + 7] for i in range(0, len(days), 7)],
        promotions=len(seen_promotions),
        boosts=len(seen_boosts),
    )


# --- Target matching on the catalog snapshot ------------------------------------------------

_snapshots: dict[int, CatalogSnapshot] = {}
_snapshots_lock = threading.Lock()


def current_snapshot(shop_id: int) -> CatalogSnapshot:
    """The shop's catalog snapshot, kept per process and refreshed with the products
    written since (one indexed read of the catalog version when nothing changed), so the
    target builder does not reload the catalog on every keystroke."""
    with _snapshots_lock:
        cached = _snapshots.get(shop_id)
    fresh = snapshot_load(shop_id) if cached is None else snapshot_refresh(cached)
    if fresh is not cached:
        with _snapshots_lock:
            _snapshots[shop_id] = fresh
    return fresh


def snapshot_cache_clear() -> None:
    with _snapshots_lock:
        _snapshots.clear()


@dataclass(frozen=True)
class MatchedProduct:
    sku: str
    title: str
    category: str
    price: float
    active: bool
    in_stock: bool


@dataclass(frozen=True)
class TargetMatches:
    count: int  # products the target matches, active or not
    recommendable: int  # of those, active and in stock
    catalog_size: int
    shown: list[MatchedProduct]  # the first MATCHES_SHOWN, in catalog order


def target_matches(shop: Shop, target: Target, at: datetime, limit: int = MATCHES_SHOWN) -> TargetMatches:
    """Which products of the shop's current catalog snapshot ``target`` matches at ``at``
    (``new_within_days`` counts back from it), with campaigns.matching - the matching
    the rules engine uses."""
    snapshot = current_snapshot(shop.pk)
    indices = snapshot_index(snapshot).indices(target, at)
    return TargetMatches(
        count=len(indices),
        recommendable=int(snapshot.recommendable[indices].sum()),
        catalog_size=len(snapshot),
        shown=list(_products(snapshot, indices[:limit])),
    )


def _products(snapshot: CatalogSnapshot, indices: Iterable[int]) -> Iterable[MatchedProduct]:
    for i in indices:
        yield MatchedProduct(
            sku=snapshot.skus[i],
            title=snapshot.titles[i],
            category=snapshot.category_path(i),
            price=float(snapshot.prices[i]),
            active=bool(snapshot.active[i]),
            in_stock=bool(snapshot.in_stock[i]),
        )
