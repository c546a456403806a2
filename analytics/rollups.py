"""Rollups: incremental, idempotent aggregation of attributed behaviour.

How it works (``rollups_run`` / ``rollups_step``):

1. **Mark.** The per-shop cursor (``RollupState``) remembers up to which ``received_at``
   events, and up to which ``served_at`` served lists, have been looked at. A step reads
   the next chunk of each (at most ``MARK_CHUNK`` rows), starting ``OVERLAP`` before the
   cursor, and marks the hour buckets their ``ts`` / ``served_at`` fall in as dirty
   (``DirtyHour``). A click that arrives after a purchase it explains marks that
   purchase's hour too. The overlap re-reads the last minutes every time, so rows whose
   transaction committed a little after their ``received_at`` (or ``served_at``) are not
   missed; marking twice is harmless.
2. **Recompute.** Up to ``HOURS_PER_STEP`` dirty hours are recomputed *from the sources*:
   that hour's served lists and events, attributed (analytics.attribution), aggregated,
   and written as absolute values: every derived row of the hour is deleted and inserted
   again in the step's transaction. Then the days those hours belong to are recomputed
   from their hour rows, and the per-unit experiment totals of every unit those hours
   touched from the unit's hour rows. Nothing is ever incremented, so a rerun, an
   overlap or a redelivered task yields exactly the same tables.

Each step is one transaction that holds the shop's ``RollupState`` row locked
(``FOR UPDATE SKIP LOCKED`` on Postgres: a second worker for the same shop finds it
locked and steps aside; on SQLite the database's single writer lock serialises steps).
A crash loses the step's work and nothing else; the cursor moves in the same commit.

When the shop's time zone changes, every derived row of the shop is deleted and rebuilt
(hour and day buckets are local); when the attribution window changes, every hour is
recomputed in place.

Costs: recomputing an hour reads that hour's events and served lists through their
(shop, ts) and (shop, served_at) indexes; in steady state a step recomputes the current
hour (and the previous one near its end).
"""

import logging
import time
import zoneinfo
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.functions import TruncHour
from django.utils import timezone

from analytics.attribution import (
    ATTRIBUTED_TYPES,
    ZERO,
    Attribution,
    EventFacts,
    ServedListFacts,
    any_of,
    attribute,
    catalog_prices,
    clicks_of,
    events_between,
    parse_request_id,
    served_lists_between,
    served_lists_by_id,
)
from analytics.bitmaps import bitmap_encode, bitmap_merge
from analytics.buckets import HOUR, day_range, hour_start, hours_of_utc_hours, local_date
from analytics.models import (
    AttributedEvent,
    DirtyHour,
    ExperimentLook,
    ExperimentUnit,
    ExperimentUnitHour,
    ModelVersionRollup,
    Period,
    PlacementRollup,
    PromotedItemRollup,
    PromotionRollup,
    RollupState,
    ServedProductBit,
)
from campaigns.models import ExperimentVersion
from catalog.models import Event, EventType, Product, Shop
from recommender.models import ServedList

logger = logging.getLogger(__name__)

MARK_CHUNK = 200_000
# SQLite has one write lock and no queue for it: a writer that finds it taken sleeps and
# retries (busy_timeout), so a loop that commits and begins its next step at once takes
# it back first every time. In the embedded demo the first catch-up (84 steps, 40 s)
# kept the training worker's heartbeat out past its 10 s timeout. A pause after each
# step lets waiting writers in (their busy handler retries within 100 ms).
SQLITE_PAUSE_BETWEEN_STEPS_S = 0.15
HOURS_PER_STEP = 24
_CHUNK = 1000
_LOAD_ALL_ABOVE = 2000  # products to look up in one step above which the shop's whole list is read

COUNT_FIELDS = (
    "requests",
    "item_slots",
    "new_item_slots",
    "impressions",
    "clicks",
    "add_to_carts",
    "purchases",
)
UNIT_COUNT_FIELDS = ("exposures", "impressions", "clicks", "add_to_carts", "purchases")
EVENT_FIELD: dict[str, str] = {
    EventType.IMPRESSION: "impressions",
    EventType.CLICK: "clicks",
    EventType.ADD_TO_CART: "add_to_carts",
    EventType.PURCHASE: "purchases",
}


def overlap() -> timedelta:
    """How far before the cursor each step re-reads (``ANALYTICS_OVERLAP_S``, default 10 min)."""
    return timedelta(seconds=getattr(settings, "ANALYTICS_OVERLAP_S", 600))


def new_item_age() -> timedelta:
    """A product served at most this long after it was created counts as new."""
    return timedelta(days=getattr(settings, "ANALYTICS_NEW_ITEM_DAYS", 30))


def pre_period() -> timedelta:
    """The pre-experiment period of the CUPED covariate."""
    return timedelta(days=getattr(settings, "ANALYTICS_PRE_PERIOD_DAYS", 28))


# --- runs and steps --------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    """``busy``: another worker holds the shop's lock; ``idle``: nothing left to do."""

    status: str  # "busy", "idle" or "worked"
    marked_hours: int = 0
    recomputed_hours: int = 0
    more: bool = False  # more marking or more dirty hours are waiting


@dataclass
class RunReport:
    steps: int = 0
    marked_hours: int = 0
    recomputed_hours: int = 0
    busy: bool = False
    finished: bool = False  # caught up (False: the time budget ran out first)


def rollups_run(shop_id: int, *, budget_s: float = 40.0, now: datetime | None = None) -> RunReport:
    """Bring one shop's rollups up to date, step by step, for at most about ``budget_s``.

    Idempotent and safe to run concurrently or redelivered: each step is a transaction
    under the shop's lock row, and a worker that finds the lock taken returns at once
    (``busy``). Whatever is left when the budget runs out is done by the next run.
    """
    report = RunReport()
    deadline = time.monotonic() + budget_s
    while True:
        result = rollups_step(shop_id, now=now)
        report.steps += 1
        report.marked_hours += result.marked_hours
        report.recomputed_hours += result.recomputed_hours
        if result.status == "busy":
            report.busy = True
            return report
        if not result.more:
            report.finished = True
            return report
        if time.monotonic() >= deadline:
            return report
        if connection.vendor == "sqlite":
            time.sleep(SQLITE_PAUSE_BETWEEN_STEPS_S)


def rollups_step(shop_id: int, *, now: datetime | None = None) -> StepResult:
    """One transaction: mark a chunk of new data, then recompute up to HOURS_PER_STEP dirty
    hours with their days and units. See the module docstring for the contract."""
    with transaction.atomic():
        state = _locked_state(shop_id)
        if state is None:
            return StepResult("busy")
        shop = Shop.objects.get(pk=shop_id)
        _follow_settings(state, shop)
        context = StepContext(shop=shop, zone=zoneinfo.ZoneInfo(shop.timezone))
        marked, more_to_mark = _mark(state, context, now or timezone.now())
        hours = list(
            DirtyHour.objects.filter(shop_id=shop_id)
            .order_by("start")
            .values_list("start", flat=True)[: HOURS_PER_STEP + 1]
        )
        more_dirty = len(hours) > HOURS_PER_STEP
        hours = hours[:HOURS_PER_STEP]
        units = hours_recompute(context, hours) if hours else set()
        DirtyHour.objects.filter(shop_id=shop_id, start__in=hours).delete()
        for day in sorted({local_date(start, context.zone) for start in hours}):
            day_recompute(context, day)
        units_recompute(context, units)
        state.last_step_at = timezone.now()
        state.save(update_fields=["events_through", "served_through", "last_step_at"])
    if not marked and not hours:
        return StepResult("idle")
    return StepResult("worked", marked_hours=marked, recomputed_hours=len(hours), more=more_to_mark or more_dirty)


def rollups_rebuild(shop_id: int) -> None:
    """Recompute everything of a shop from the sources: the cursor goes back to the start,
    so the next runs mark and recompute every hour (rows are replaced, not cleared first)."""
    with transaction.atomic():
        RollupState.objects.get_or_create(shop_id=shop_id)
        RollupState.objects.filter(shop_id=shop_id).update(events_through=None, served_through=None)


def _locked_state(shop_id: int) -> RollupState | None:
    RollupState.objects.get_or_create(shop_id=shop_id)
    rows = RollupState.objects.filter(shop_id=shop_id)
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True)
    return rows.first()


def _follow_settings(state: RollupState, shop: Shop) -> None:
    """Rebuild when the rollups were made with another time zone or attribution window."""
    if state.timezone and state.timezone != shop.timezone:
        logger.info("shop %s changed its time zone: rebuilding its analytics", shop.pk)
        derived_rows_delete(shop.pk)
        state.events_through = state.served_through = None
    if state.attribution_window_hours is not None and state.attribution_window_hours != shop.attribution_window_hours:
        state.events_through = state.served_through = None
    if state.timezone != shop.timezone or state.attribution_window_hours != shop.attribution_window_hours:
        state.timezone = shop.timezone
        state.attribution_window_hours = shop.attribution_window_hours
        state.save(update_fields=["timezone", "attribution_window_hours"])


def derived_rows_delete(shop_id: int) -> None:
    """Every derived row of a shop (the sources stay)."""
    for model in (
        DirtyHour,
        AttributedEvent,
        PlacementRollup,
        PromotionRollup,
        PromotedItemRollup,
        ModelVersionRollup,
        ExperimentUnitHour,
        ExperimentUnit,
        ExperimentLook,
    ):
        model.objects.filter(shop_id=shop_id).delete()


# --- marking ---------------------------------------------------------------------------------


def _mark(state: RollupState, context: "StepContext", now: datetime) -> tuple[int, bool]:
    """Mark the hours of the next chunk of events and of served lists dirty and move the
    cursor past them. Returns (hours marked, whether more rows wait beyond the chunk)."""
    shop_id = context.shop.pk
    events = Event.objects.filter(shop_id=shop_id)
    event_window, events_through, more_events = _chunk(events, "received_at", state.events_through, now)
    lists = ServedList.objects.filter(shop_id=shop_id)
    list_window, served_through, more_lists = _chunk(lists, "served_at", state.served_through, now)

    utc_hours = set(
        event_window.filter(type__in=ATTRIBUTED_TYPES)
        .annotate(hour=TruncHour("ts", tzinfo=UTC))
        .values_list("hour", flat=True)
        .distinct()
    )
    utc_hours |= set(
        list_window.annotate(hour=TruncHour("served_at", tzinfo=UTC)).values_list("hour", flat=True).distinct()
    )
    hours = hours_of_utc_hours(utc_hours, context.zone)
    if state.events_through is not None:
        hours |= _hours_of_explained_purchases(context, event_window, state.events_through - overlap())
    DirtyHour.objects.bulk_create(
        [DirtyHour(shop_id=shop_id, start=start) for start in sorted(hours)], ignore_conflicts=True
    )
    state.events_through, state.served_through = events_through, served_through
    return len(hours), more_events or more_lists


def _chunk(
    rows: models.QuerySet[Any], column: str, cursor: datetime | None, now: datetime
) -> tuple[models.QuerySet[Any], datetime, bool]:
    """The rows of the next chunk by ``column`` (``(cursor - overlap, end]``), the new
    cursor ``end`` and whether rows beyond it are waiting. ``end`` is the column's value
    at the MARK_CHUNK-th row after the cursor, or ``now`` when fewer are left."""
    after = rows.filter(**{f"{column}__gt": cursor}) if cursor is not None else rows
    nth = list(after.order_by(column).values_list(column, flat=True)[MARK_CHUNK - 1 : MARK_CHUNK])
    end = nth[0] if nth else (now if cursor is None else max(now, cursor))
    window = rows.filter(**{f"{column}__lte": end})
    if cursor is not None:
        window = window.filter(**{f"{column}__gt": cursor - overlap()})
    return window, end, bool(nth)


def _hours_of_explained_purchases(
    context: "StepContext", event_window: models.QuerySet[Event], seen_before: datetime
) -> set[datetime]:
    """Hours of purchases that were received before this chunk and may now be explained by
    one of its clicks (same shopper and product, within the window after the click)."""
    window = context.window
    clicks = list(
        event_window.filter(type=EventType.CLICK)
        .exclude(request_id="")
        .values_list("shopper_id", "product_id", "sku", "ts")
    )
    hours: set[datetime] = set()
    by_shopper: dict[int, list[tuple[int | None, str, datetime]]] = defaultdict(list)
    for shopper_id, product_id, sku, ts in clicks:
        by_shopper[shopper_id].append((product_id, sku, ts))
    shoppers = sorted(by_shopper)
    for offset in range(0, len(shoppers), _CHUNK):
        chunk = shoppers[offset : offset + _CHUNK]
        first = min(ts for s in chunk for _, _, ts in by_shopper[s])
        last = max(ts for s in chunk for _, _, ts in by_shopper[s]) + window
        purchases = Event.objects.filter(
            shop_id=context.shop.pk,
            shopper_id__in=chunk,
            type=EventType.PURCHASE,
            ts__gte=first,
            ts__lte=last,
            received_at__lte=seen_before,
        ).values_list("shopper_id", "product_id", "sku", "ts")
        for shopper_id, product_id, sku, ts in purchases:
            for click_product, click_sku, click_ts in by_shopper[shopper_id]:
                matches = product_id == click_product if (product_id or click_product) else sku == click_sku
                if matches and click_ts <= ts <= click_ts + window:
                    hours.add(hour_start(ts, context.zone))
    return hours


# --- recomputing an hour ---------------------------------------------------------------------

UnitKey = tuple[int, int, str]  # experiment id, version, unit hash


@dataclass
class StepContext:
    """Per-step caches: catalog facts of products and the coverage bit of each product."""

    shop: Shop
    zone: zoneinfo.ZoneInfo
    _created: dict[int, datetime] = field(default_factory=dict)
    _new_since: datetime | None = None
    _prices: dict[int, Decimal] = field(default_factory=dict)
    _bits: dict[int, int] = field(default_factory=dict)
    _all_bits: bool = False
    _next_bit: int | None = None

    @property
    def window(self) -> timedelta:
        return timedelta(hours=self.shop.attribution_window_hours)

    def new_products(self, since: datetime) -> dict[int, datetime]:
        """Products created at or after ``since`` with their creation time: every product
        that can count as new for lists served from ``since + new_item_age()`` on (one
        query on the (shop, created_at) index, remembered for the step)."""
        if self._new_since is None or since < self._new_since:
            self._created = dict(
                Product.objects.filter(shop_id=self.shop.pk, created_at__gte=since).values_list("pk", "created_at")
            )
            self._new_since = since
        return self._created

    def prices(self, product_ids: Iterable[int]) -> dict[int, Decimal]:
        missing = set(product_ids) - self._prices.keys()
        if missing:
            self._prices.update(catalog_prices(self.shop.pk, missing))
        return self._prices

    def bits(self, product_ids: Iterable[int]) -> dict[int, int]:
        """The coverage bit of each product, giving new products the next free numbers
        (in product id order; the caller holds the shop's rollup lock)."""
        missing = set(product_ids) - self._bits.keys()
        if len(missing) > _LOAD_ALL_ABOVE and not self._all_bits:
            self._bits.update(ServedProductBit.objects.filter(shop_id=self.shop.pk).values_list("product_id", "bit"))
            self._all_bits = True
            missing -= self._bits.keys()
        wanted = sorted(missing)
        if not self._all_bits:
            for offset in range(0, len(wanted), _CHUNK):
                chunk = wanted[offset : offset + _CHUNK]
                self._bits.update(
                    ServedProductBit.objects.filter(
                        shop_id=self.shop.pk, product_id__in=any_of(chunk, "bigint")
                    ).values_list("product_id", "bit")
                )
        new = [pk for pk in wanted if pk not in self._bits]
        if new:
            if self._next_bit is None:
                top = ServedProductBit.objects.filter(shop_id=self.shop.pk).aggregate(top=models.Max("bit"))["top"]
                self._next_bit = 0 if top is None else top + 1
            first = self._next_bit
            insert_rows(
                ServedProductBit,
                ("shop_id", "product_id", "bit"),
                [(self.shop.pk, pk, first + i) for i, pk in enumerate(new)],
            )
            self._bits.update({pk: first + i for i, pk in enumerate(new)})
            self._next_bit = first + len(new)
        return self._bits


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    revenue: Decimal = ZERO
    products: set[int] = field(default_factory=set)


def _arm(served: ServedListFacts) -> tuple[str, int, int, str]:
    return (served.placement_slug, served.experiment_id, served.experiment_version, served.variant)


ATTRIBUTED_COLUMNS = (
    "event_id",
    "shop_id",
    "type",
    "ts",
    "shopper_id",
    "product_id",
    "kind",
    "request_id",
    "via_event_id",
    "placement_slug",
    "experiment_id",
    "experiment_version",
    "variant",
    "unit_hash",
    "position",
    "promotion_ids",
    "quantity",
    "revenue",
)
ARM = ("placement_slug", "experiment_id", "experiment_version", "variant")
_BUCKET = ("shop_id", "period", "start")
_COUNTS = (*COUNT_FIELDS, "revenue")
_ITEMS = ("distinct_items", "items_served")
PLACEMENT_COLUMNS = (*_BUCKET, *ARM, *_COUNTS, *_ITEMS)
PROMOTION_COLUMNS = (*_BUCKET, *ARM, "promotion_id", *_COUNTS)
PROMOTED_ITEM_COLUMNS = (*_BUCKET, *ARM, "promotion_id", "product_id", *_COUNTS)
MODEL_VERSION_COLUMNS = (*_BUCKET, "placement_slug", "model_kind", "model_version_id", *_COUNTS, *_ITEMS)
UNIT_COLUMNS = (
    "shop_id",
    "experiment_id",
    "experiment_version",
    "unit_hash",
    "variant",
    "variants_seen",
    "shopper_id",
    "first_hour",
    "pre_revenue",
    *UNIT_COUNT_FIELDS,
    "revenue",
)
UNIT_HOUR_COLUMNS = (
    "shop_id",
    "start",
    "experiment_id",
    "experiment_version",
    "unit_hash",
    "variant",
    "shopper_id",
    *UNIT_COUNT_FIELDS,
    "revenue",
)


@dataclass
class HourRows:
    """The derived rows of the hours one step recomputes, written together."""

    attributed: list[tuple[Any, ...]] = field(default_factory=list)
    placements: list[tuple[Any, ...]] = field(default_factory=list)
    promotions: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)
    models: list[tuple[Any, ...]] = field(default_factory=list)
    units: list[tuple[Any, ...]] = field(default_factory=list)


def hours_recompute(context: StepContext, hours: list[datetime]) -> set[UnitKey]:
    """Recompute every derived row of these hour buckets from the sources and replace the
    stored ones (delete, then insert, inside the caller's transaction). Returns the
    experiment units whose hour rows were replaced (before or after).

    The sources of all the hours are read together (one query per run of consecutive
    hours), then attributed and counted hour by hour."""
    shop_id = context.shop.pk
    hours = sorted(hours)
    lists_of: dict[datetime, list[ServedListFacts]] = defaultdict(list)
    events_of: dict[datetime, list[EventFacts]] = defaultdict(list)
    for first, last in _runs(hours):
        for served_list in served_lists_between(shop_id, first, last + HOUR):
            lists_of[_bucket_of(served_list.served_at, hours)].append(served_list)
        for event in events_between(shop_id, first, last + HOUR):
            events_of[_bucket_of(event.ts, hours)].append(event)
    events = [event for start in hours for event in events_of[start]]
    served = {served_list.request_id: served_list for start in hours for served_list in lists_of[start]}
    named = {request_id for event in events if (request_id := parse_request_id(event.request_id)) is not None}
    served.update(served_lists_by_id(shop_id, named - served.keys()))
    orphans = [e for e in events if e.type == EventType.PURCHASE and parse_request_id(e.request_id) not in served]
    clicks = []
    if orphans:
        first_ts = min(e.ts for e in orphans)
        last_ts = max(e.ts for e in orphans)
        clicks = clicks_of(shop_id, {e.shopper_id for e in orphans}, first_ts - context.window, last_ts)
        clicked = {request_id for click in clicks if (request_id := parse_request_id(click.request_id)) is not None}
        served.update(served_lists_by_id(shop_id, clicked - served.keys()))
    unpriced = {e.product_id for e in events if e.type == EventType.PURCHASE and e.price is None and e.product_id}
    attributions = attribute(events, served, clicks, context.window, context.prices(unpriced))
    attributions_of: dict[datetime, list[Attribution]] = defaultdict(list)
    for attribution in attributions:
        attributions_of[_bucket_of(attribution.event.ts, hours)].append(attribution)
    created = context.new_products(hours[0] - new_item_age())

    rows = HourRows()
    for start in hours:
        _hour_rows(context, start, lists_of[start], attributions_of[start], created, rows)
    units_before = set(
        ExperimentUnitHour.objects.filter(shop_id=shop_id, start__in=hours).values_list(
            "experiment_id", "experiment_version", "unit_hash"
        )
    )
    in_hours = models.Q()
    for first, last in _runs(hours):
        in_hours |= models.Q(ts__gte=first, ts__lt=last + HOUR)
    AttributedEvent.objects.filter(in_hours, shop_id=shop_id).delete()
    for model in (PlacementRollup, PromotionRollup, PromotedItemRollup, ModelVersionRollup):
        model.objects.filter(shop_id=shop_id, period=Period.HOUR, start__in=hours).delete()
    ExperimentUnitHour.objects.filter(shop_id=shop_id, start__in=hours).delete()
    insert_rows(AttributedEvent, ATTRIBUTED_COLUMNS, rows.attributed)
    insert_rows(PlacementRollup, PLACEMENT_COLUMNS, rows.placements)
    insert_rows(PromotionRollup, PROMOTION_COLUMNS, rows.promotions)
    insert_rows(PromotedItemRollup, PROMOTED_ITEM_COLUMNS, rows.items)
    insert_rows(ModelVersionRollup, MODEL_VERSION_COLUMNS, rows.models)
    insert_rows(ExperimentUnitHour, UNIT_HOUR_COLUMNS, rows.units)
    return units_before | {(row[2], row[3], row[4]) for row in rows.units}


def _runs(hours: list[datetime]) -> list[tuple[datetime, datetime]]:
    """Consecutive hours as (first, last) pairs; ``hours`` sorted."""
    runs: list[tuple[datetime, datetime]] = []
    for start in hours:
        if runs and start == runs[-1][1] + HOUR:
            runs[-1] = (runs[-1][0], start)
        else:
            runs.append((start, start))
    return runs


def _bucket_of(instant: datetime, hours: list[datetime]) -> datetime:
    """The hour of ``hours`` (sorted starts) that holds ``instant``."""
    return hours[bisect_right(hours, instant) - 1]


def _hour_rows(
    context: StepContext,
    start: datetime,
    lists: list[ServedListFacts],
    attributions: list[Attribution],
    created: dict[int, datetime],
    rows: HourRows,
) -> None:
    """Count one hour; append its rows. ``created``: creation times of the products that
    may count as new."""
    shop_id = context.shop.pk
    tallies = _tally(lists, attributions, created)
    rows.attributed.extend(
        (
            a.event.id,
            shop_id,
            a.event.type,
            a.event.ts,
            a.event.shopper_id,
            a.event.product_id,
            a.kind,
            a.served.request_id,
            a.via_event_id,
            a.served.placement_slug,
            a.served.experiment_id,
            a.served.experiment_version,
            a.served.variant,
            a.served.unit_hash,
            a.item.position if a.item is not None else None,
            list(a.item.promotion_ids) if a.item is not None else [],
            a.event.quantity,
            a.revenue,
        )
        for a in attributions
    )
    bucket = (shop_id, Period.HOUR, start)
    bits = context.bits(
        {p for tally in tallies.placements.values() for p in tally.products}
        | {p for tally in tallies.models.values() for p in tally.products}
    )
    rows.placements.extend(
        (*bucket, *arm, *_counts(tally), len(tally.products), bitmap_encode(bits[p] for p in tally.products))
        for arm, tally in tallies.placements.items()
    )
    rows.promotions.extend((*bucket, *key, *_counts(tally)) for key, tally in tallies.promotions.items())
    rows.items.extend((*bucket, *key, *_counts(tally)) for key, tally in tallies.items.items())
    rows.models.extend(
        (*bucket, *key, *_counts(tally), len(tally.products), bitmap_encode(bits[p] for p in tally.products))
        for key, tally in tallies.models.items()
    )
    rows.units.extend(
        (
            shop_id,
            start,
            experiment_id,
            version,
            unit_hash,
            variant,
            tallies.unit_shoppers.get((experiment_id, version, unit_hash, variant)),
            tally.counts["requests"],
            *(tally.counts[name] for name in UNIT_COUNT_FIELDS[1:]),
            tally.revenue,
        )
        for (experiment_id, version, unit_hash, variant), tally in tallies.units.items()
    )


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert plain rows: with COPY on Postgres (an order of magnitude faster than INSERT
    for the thousands of rows an hour makes), with ``bulk_create`` elsewhere."""
    if not rows:
        return
    meta = model._meta
    fields = [cast("models.Field[Any, Any]", meta.get_field(name)) for name in columns]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(  # type: ignore[attr-defined]
            [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
        )
        return
    from psycopg.types.json import Jsonb

    json_at = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    names = ", ".join(connection.ops.quote_name(cast(str, f.column)) for f in fields)
    with connection.cursor() as cursor, cursor.copy(f"COPY {meta.db_table} ({names}) FROM STDIN") as copy:
        for row in rows:
            if json_at:
                values = list(row)
                for i in json_at:
                    values[i] = Jsonb(values[i])
                row = tuple(values)
            copy.write_row(row)


@dataclass
class HourTallies:
    placements: dict[tuple[str, int, int, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    promotions: dict[tuple[str, int, int, str, int], Tally] = field(default_factory=lambda: defaultdict(Tally))
    items: dict[tuple[str, int, int, str, int, int], Tally] = field(default_factory=lambda: defaultdict(Tally))
    models: dict[tuple[str, str, int], Tally] = field(default_factory=lambda: defaultdict(Tally))
    units: dict[tuple[int, int, str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    unit_shoppers: dict[tuple[int, int, str, str], int] = field(default_factory=dict)


def _tally(lists: list[ServedListFacts], attributions: list[Attribution], created: dict[int, datetime]) -> HourTallies:
    """Count one hour: served lists by ``served_at``, attributed events by their ``ts``."""
    tallies = HourTallies()
    newness = new_item_age()
    for served in sorted(lists, key=lambda s: (s.served_at, s.request_id)):
        arm = _arm(served)
        products = {item.product_id for item in served.items if item.product_id is not None}
        new = sum(
            1
            for item in served.items
            if item.product_id is not None
            and (made := created.get(item.product_id)) is not None
            and made >= served.served_at - newness
        )
        slots = len(served.items)
        for tally in (
            tallies.placements[arm],
            *(tallies.models[(served.placement_slug, k, v)] for k, v in served.model_versions),
        ):
            tally.counts["requests"] += 1
            tally.counts["item_slots"] += slots
            tally.counts["new_item_slots"] += new
            tally.products |= products
        promotions_of_list: set[int] = set()
        for item in served.items:
            for promotion_id in item.promotion_ids:
                promotion = tallies.promotions[(*arm, promotion_id)]
                promotion.counts["item_slots"] += 1
                is_new = (
                    item.product_id is not None
                    and (made := created.get(item.product_id)) is not None
                    and (made >= served.served_at - newness)
                )
                promotion.counts["new_item_slots"] += int(is_new)
                promotions_of_list.add(promotion_id)
                if item.product_id is not None:
                    promoted = tallies.items[(*arm, promotion_id, item.product_id)]
                    promoted.counts["requests"] += 1
                    promoted.counts["item_slots"] += 1
                    promoted.counts["new_item_slots"] += int(is_new)
        for promotion_id in promotions_of_list:
            tallies.promotions[(*arm, promotion_id)].counts["requests"] += 1
        if served.experiment_id and served.unit_hash:
            unit = (served.experiment_id, served.experiment_version, served.unit_hash, served.variant)
            tallies.units[unit].counts["requests"] += 1
            if served.shopper_id is not None:
                tallies.unit_shoppers[unit] = served.shopper_id

    for a in attributions:
        served, name = a.served, EVENT_FIELD[a.event.type]
        arm = _arm(served)
        targets = [
            tallies.placements[arm],
            *(tallies.models[(served.placement_slug, k, v)] for k, v in served.model_versions),
        ]
        if a.item is not None:
            for promotion_id in a.item.promotion_ids:
                targets.append(tallies.promotions[(*arm, promotion_id)])
                if a.item.product_id is not None:
                    targets.append(tallies.items[(*arm, promotion_id, a.item.product_id)])
        if served.experiment_id and served.unit_hash:
            unit = (served.experiment_id, served.experiment_version, served.unit_hash, served.variant)
            targets.append(tallies.units[unit])
            if served.shopper_id is not None:
                tallies.unit_shoppers.setdefault(unit, served.shopper_id)
        for tally in targets:
            tally.counts[name] += 1
            tally.revenue += a.revenue
    return tallies


def _counts(tally: Tally) -> tuple[Any, ...]:
    return (*(tally.counts[name] for name in COUNT_FIELDS), tally.revenue)


# --- days ------------------------------------------------------------------------------------

_FAMILIES: tuple[tuple[type[models.Model], tuple[str, ...], bool], ...] = (
    (PlacementRollup, ARM, True),
    (PromotionRollup, (*ARM, "promotion_id"), False),
    (PromotedItemRollup, (*ARM, "promotion_id", "product_id"), False),
    (ModelVersionRollup, ("placement_slug", "model_kind", "model_version_id"), True),
)


def day_recompute(context: StepContext, day: date) -> None:
    """Replace the day rows of local date ``day`` with the sums (and bitmap unions) of its
    hour rows."""
    shop_id = context.shop.pk
    start, end = day_range(day, context.zone)
    width = len(_COUNTS)
    for model, dims, has_items in _FAMILIES:
        sums: dict[tuple[Any, ...], list[Any]] = {}
        bitmaps: dict[tuple[Any, ...], list[bytes]] = defaultdict(list)
        hours = model._default_manager.filter(  # type: ignore[attr-defined]
            shop_id=shop_id, period=Period.HOUR, start__gte=start, start__lt=end
        ).values_list(*dims, *_COUNTS, *(("items_served",) if has_items else ()))
        for row in hours:
            key = tuple(row[: len(dims)])
            values = row[len(dims) : len(dims) + width]
            total = sums.get(key)
            sums[key] = list(values) if total is None else [a + b for a, b in zip(total, values, strict=True)]
            if has_items:
                bitmaps[key].append(row[-1])
        model._default_manager.filter(shop_id=shop_id, period=Period.DAY, start=start).delete()  # type: ignore[attr-defined]
        rows = []
        for key, values in sorted(sums.items()):
            merged = bitmap_merge(bitmaps[key]) if has_items else None
            rows.append(
                (shop_id, Period.DAY, start, *key, *values, *((merged[1], merged[0]) if merged is not None else ()))
            )
        insert_rows(model, (*_BUCKET, *dims, *_COUNTS, *(_ITEMS if has_items else ())), rows)


# --- experiment units --------------------------------------------------------------------------


def units_recompute(context: StepContext, units: set[UnitKey]) -> None:
    """Replace the totals of these units from their hour rows. A unit keeps the pre-period
    revenue it was given when it first appeared (computed now for new units)."""
    by_version: dict[tuple[int, int], list[str]] = defaultdict(list)
    for experiment_id, version, unit_hash in units:
        by_version[(experiment_id, version)].append(unit_hash)
    for (experiment_id, version), hashes in sorted(by_version.items()):
        hashes.sort()
        for offset in range(0, len(hashes), _CHUNK):
            _units_recompute(context, experiment_id, version, hashes[offset : offset + _CHUNK])


def _units_recompute(context: StepContext, experiment_id: int, version: int, hashes: list[str]) -> None:
    shop_id = context.shop.pk
    scope = {"shop_id": shop_id, "experiment_id": experiment_id, "experiment_version": version}
    totals: dict[str, dict[str, Any]] = {}
    hour_rows = (
        ExperimentUnitHour.objects.filter(**scope, unit_hash__in=hashes)
        .order_by("start", "variant")
        .values_list("unit_hash", "variant", "shopper_id", "start", *UNIT_COUNT_FIELDS, "revenue")
    )
    for unit_hash, variant, shopper_id, start, *counts, revenue in hour_rows:
        total = totals.setdefault(
            unit_hash,
            {
                "variants": set(),
                "shopper_id": None,
                "first_hour": start,
                "revenue": ZERO,
                **dict.fromkeys(UNIT_COUNT_FIELDS, 0),
            },
        )
        total["variants"].add(variant)
        if shopper_id is not None:
            total["shopper_id"] = shopper_id  # the latest known
        for name, value in zip(UNIT_COUNT_FIELDS, counts, strict=True):
            total[name] += value
        total["revenue"] += revenue
    known = {
        unit_hash: (shopper_id, pre_revenue)
        for unit_hash, shopper_id, pre_revenue in ExperimentUnit.objects.filter(
            **scope, unit_hash__in=hashes
        ).values_list("unit_hash", "shopper_id", "pre_revenue")
    }
    fresh = {
        unit_hash: total["shopper_id"]
        for unit_hash, total in totals.items()
        if total["shopper_id"] is not None and (unit_hash not in known or known[unit_hash][0] != total["shopper_id"])
    }
    pre_revenue = _pre_period_revenue(context, experiment_id, version, set(fresh.values()), totals) if fresh else {}
    rows = []
    for unit_hash, total in sorted(totals.items()):
        if unit_hash in fresh:
            pre = pre_revenue.get(fresh[unit_hash], ZERO)
        else:
            pre = known[unit_hash][1] if unit_hash in known else ZERO
        variants = total["variants"]
        rows.append(
            (
                shop_id,
                experiment_id,
                version,
                unit_hash,
                next(iter(variants)) if len(variants) == 1 else "",
                len(variants),
                total["shopper_id"],
                total["first_hour"],
                pre,
                *(total[name] for name in UNIT_COUNT_FIELDS),
                total["revenue"],
            )
        )
    ExperimentUnit.objects.filter(**scope, unit_hash__in=hashes).delete()
    insert_rows(ExperimentUnit, UNIT_COLUMNS, rows)


def _pre_period_revenue(
    context: StepContext, experiment_id: int, version: int, shopper_ids: set[int], totals: dict[str, dict[str, Any]]
) -> dict[int, Decimal]:
    """Purchase revenue per shopper in the pre-period before the version started."""
    started = (
        ExperimentVersion.objects.filter(experiment_id=experiment_id, number=version)
        .values_list("started_at", flat=True)
        .first()
    )
    if started is None:  # not a version campaigns knows: the first exposure stands in for its start
        started = min(total["first_hour"] for total in totals.values())
    revenue: dict[int, Decimal] = defaultdict(lambda: ZERO)
    wanted = sorted(shopper_ids)
    for offset in range(0, len(wanted), _CHUNK):
        rows = list(
            Event.objects.filter(
                shop_id=context.shop.pk,
                shopper_id__in=wanted[offset : offset + _CHUNK],
                type=EventType.PURCHASE,
                ts__gte=started - pre_period(),
                ts__lt=started,
            ).values_list("shopper_id", "product_id", "quantity", "price")
        )
        prices = context.prices(p for _, p, _, price in rows if price is None and p is not None)
        for shopper_id, product_id, quantity, price in rows:
            unit_price = price if price is not None else prices.get(product_id, ZERO) if product_id else ZERO
            revenue[shopper_id] += (unit_price * quantity).quantize(Decimal("0.01"))
    return dict(revenue)
