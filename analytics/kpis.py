"""KPIs: selectors over the rollups (never the raw events), always scoped by shop.

Definitions (``Kpis``):

- requests: served lists; impressions, clicks, add-to-carts, purchases: attributed events;
- CTR = clicks / impressions; add-to-cart rate = add-to-carts / impressions; conversion
  rate = purchases / impressions (all per impression, so they compare across placements);
- attributed revenue (price x quantity of attributed purchases) and revenue per 1,000
  impressions;
- catalog coverage: distinct products served in the period / active products now;
- new-item share: served item slots holding a product created at most
  ``ANALYTICS_NEW_ITEM_DAYS`` (30) days earlier / all served item slots.

A rate with a zero denominator is None (shown as "—"), never NaN. Periods are the
shop's local hours or days; ``MetricsFilter.start``/``end`` are bucket boundaries.
"""

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Model, QuerySet

from analytics.bitmaps import bitmap_count, bitmap_union
from analytics.buckets import day_start, hours_between, local_date
from analytics.models import ModelVersionRollup, Period, PlacementRollup, PromotedItemRollup, PromotionRollup
from campaigns.models import Promotion
from catalog.models import Product, Shop
from recommender.models import ActiveModel, ModelVersion

ZERO = Decimal("0.00")
_SUMMED = ("requests", "item_slots", "new_item_slots", "impressions", "clicks", "add_to_carts", "purchases", "revenue")


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class Kpis:
    requests: int = 0
    item_slots: int = 0
    new_item_slots: int = 0
    impressions: int = 0
    clicks: int = 0
    add_to_carts: int = 0
    purchases: int = 0
    revenue: Decimal = ZERO
    distinct_items: int | None = None  # None: not measured for this breakdown (promotions)
    catalog_size: int = 0

    @property
    def ctr(self) -> float | None:
        return _rate(self.clicks, self.impressions)

    @property
    def add_to_cart_rate(self) -> float | None:
        return _rate(self.add_to_carts, self.impressions)

    @property
    def conversion_rate(self) -> float | None:
        return _rate(self.purchases, self.impressions)

    @property
    def revenue_per_mille(self) -> Decimal | None:
        if not self.impressions:
            return None
        return (self.revenue * 1000 / self.impressions).quantize(Decimal("0.01"))

    @property
    def coverage(self) -> float | None:
        return None if self.distinct_items is None else _rate(self.distinct_items, self.catalog_size)

    @property
    def new_item_share(self) -> float | None:
        return _rate(self.new_item_slots, self.item_slots)


@dataclass(frozen=True)
class MetricsFilter:
    """What to aggregate: ``[start, end)`` in whole buckets of ``granularity``; optional
    placement slug, experiment arm (variant name, experiment id) and promotion id."""

    start: datetime
    end: datetime
    granularity: str = Period.DAY
    placement: str | None = None
    variant: str | None = None
    experiment_id: int | None = None
    promotion_id: int | None = None


@dataclass(frozen=True)
class SeriesPoint:
    start: datetime
    kpis: Kpis


@dataclass(frozen=True)
class Breakdown:
    """KPIs of one value of a dimension (a placement, an arm, a promotion, a model version)."""

    key: tuple[Any, ...]
    label: str
    kpis: Kpis
    extra: dict[str, Any] = field(default_factory=dict)


def local_range(shop: Shop, first: date, last: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of the local dates ``first`` to ``last`` (inclusive)."""
    zone = zoneinfo.ZoneInfo(shop.timezone)
    return day_start(first, zone), day_start(last + timedelta(days=1), zone)


def bucket_starts(shop: Shop, metrics_filter: MetricsFilter) -> list[datetime]:
    """Every bucket of the range, so that a series has a point (maybe zero) per bucket."""
    zone = zoneinfo.ZoneInfo(shop.timezone)
    if metrics_filter.granularity == Period.HOUR:
        return hours_between(metrics_filter.start, metrics_filter.end, zone)
    starts, day = [], local_date(metrics_filter.start, zone)
    while (start := day_start(day, zone)) < metrics_filter.end:
        if start >= metrics_filter.start:
            starts.append(start)
        day += timedelta(days=1)
    return starts


def catalog_size(shop: Shop) -> int:
    """Active products now: the denominator of coverage."""
    return Product.objects.filter(shop=shop, active=True).count()


# --- reading rollups ---------------------------------------------------------------------------


def rollup_rows(model: type[Model], shop: Shop, metrics_filter: MetricsFilter) -> QuerySet[Any]:
    rows = model._default_manager.filter(  # type: ignore[attr-defined]
        shop=shop, period=metrics_filter.granularity, start__gte=metrics_filter.start, start__lt=metrics_filter.end
    )
    if metrics_filter.placement:
        rows = rows.filter(placement_slug=metrics_filter.placement)
    if model is not ModelVersionRollup:
        if metrics_filter.variant:
            rows = rows.filter(variant=metrics_filter.variant)
        if metrics_filter.experiment_id:
            rows = rows.filter(experiment_id=metrics_filter.experiment_id)
    if metrics_filter.promotion_id and model in (PromotionRollup, PromotedItemRollup):
        rows = rows.filter(promotion_id=metrics_filter.promotion_id)
    return rows


def _source(metrics_filter: MetricsFilter) -> type[Model]:
    return PromotionRollup if metrics_filter.promotion_id else PlacementRollup


class RowSum:
    """Adds rollup rows up; unions their item bitmaps when they have them."""

    __slots__ = ("bitmaps", "values")

    def __init__(self) -> None:
        self.values: list[Any] = [0] * (len(_SUMMED) - 1) + [ZERO]
        self.bitmaps: list[bytes] | None = None

    def add(self, row: Sequence[Any], bitmap: bytes | None, with_items: bool) -> None:
        for index, value in enumerate(row):
            self.values[index] += value
        if with_items:
            if self.bitmaps is None:
                self.bitmaps = []
            self.bitmaps.append(bitmap or b"")

    def kpis(self, size: int) -> Kpis:
        distinct = bitmap_count(bitmap_union(self.bitmaps)) if self.bitmaps is not None else None
        return Kpis(**dict(zip(_SUMMED, self.values, strict=True)), distinct_items=distinct, catalog_size=size)


def grouped_sums(rows: QuerySet[Any], key_columns: Sequence[str], with_items: bool) -> dict[tuple[Any, ...], RowSum]:
    columns = (*key_columns, *_SUMMED, *(("items_served",) if with_items else ()))
    sums: dict[tuple[Any, ...], RowSum] = defaultdict(RowSum)
    width = len(key_columns)
    for row in rows.values_list(*columns):
        sums[tuple(row[:width])].add(row[width : width + len(_SUMMED)], row[-1] if with_items else None, with_items)
    return sums


def kpi_totals(shop: Shop, metrics_filter: MetricsFilter, *, size: int | None = None) -> Kpis:
    """The KPIs of everything the filter selects, over its whole range."""
    model = _source(metrics_filter)
    with_items = model is PlacementRollup
    total = grouped_sums(rollup_rows(model, shop, metrics_filter), (), with_items).get(())
    size = catalog_size(shop) if size is None else size
    if total is None:
        return Kpis(distinct_items=0 if with_items else None, catalog_size=size)
    return total.kpis(size)


def kpi_series(shop: Shop, metrics_filter: MetricsFilter, *, size: int | None = None) -> list[SeriesPoint]:
    """One point per bucket of the range (zero where nothing happened)."""
    model = _source(metrics_filter)
    with_items = model is PlacementRollup
    sums = grouped_sums(rollup_rows(model, shop, metrics_filter), ("start",), with_items)
    size = catalog_size(shop) if size is None else size
    empty = Kpis(distinct_items=0 if with_items else None, catalog_size=size)
    return [
        SeriesPoint(start, sums[(start,)].kpis(size) if (start,) in sums else empty)
        for start in bucket_starts(shop, metrics_filter)
    ]


def kpis_by_placement(shop: Shop, metrics_filter: MetricsFilter, *, size: int | None = None) -> list[Breakdown]:
    model = _source(metrics_filter)
    with_items = model is PlacementRollup
    size = catalog_size(shop) if size is None else size
    sums = grouped_sums(rollup_rows(model, shop, metrics_filter), ("placement_slug",), with_items)
    return [Breakdown(key, key[0], total.kpis(size)) for key, total in sorted(sums.items())]


def kpis_by_variant(shop: Shop, metrics_filter: MetricsFilter, *, size: int | None = None) -> list[Breakdown]:
    """Per experiment arm (placement, experiment, version, variant); traffic outside any
    experiment is left out."""
    model = _source(metrics_filter)
    with_items = model is PlacementRollup
    size = catalog_size(shop) if size is None else size
    rows = rollup_rows(model, shop, metrics_filter).exclude(experiment_id=0)
    sums = grouped_sums(rows, ("placement_slug", "experiment_id", "experiment_version", "variant"), with_items)
    return [
        Breakdown(key, f"{key[0]} · experiment {key[1]} v{key[2]} · {key[3]}", total.kpis(size))
        for key, total in sorted(sums.items())
    ]


def kpis_by_promotion(shop: Shop, metrics_filter: MetricsFilter) -> list[Breakdown]:
    """Per promotion: the slots its items took and what they earned."""
    sums = grouped_sums(rollup_rows(PromotionRollup, shop, metrics_filter), ("promotion_id",), False)
    names = dict(Promotion.objects.filter(shop=shop, pk__in=[k[0] for k in sums]).values_list("pk", "name"))
    return [
        Breakdown(key, names.get(key[0], f"promotion {key[0]} (deleted)"), total.kpis(0))
        for key, total in sorted(sums.items())
    ]


def kpis_by_model_version(shop: Shop, metrics_filter: MetricsFilter, *, size: int | None = None) -> list[Breakdown]:
    """Per model version, with its offline metrics beside the online ones."""
    size = catalog_size(shop) if size is None else size
    sums = grouped_sums(rollup_rows(ModelVersionRollup, shop, metrics_filter), ("model_kind", "model_version_id"), True)
    versions = {
        v.pk: v
        for v in ModelVersion.objects.filter(shop=shop, pk__in=[k[1] for k in sums]).only("kind", "number", "metrics")
    }
    breakdowns = []
    for key, total in sorted(sums.items()):
        version = versions.get(key[1])
        label = f"{key[0]} v{version.number}" if version is not None else f"{key[0]} #{key[1]} (deleted)"
        breakdowns.append(
            Breakdown(key, label, total.kpis(size), {"offline": dict(version.metrics) if version is not None else {}})
        )
    return breakdowns


@dataclass(frozen=True)
class PromotedItem:
    promotion_id: int
    promotion: str
    product_id: int
    sku: str
    title: str
    served: int
    impressions: int
    clicks: int
    purchases: int
    revenue: Decimal

    @property
    def ctr(self) -> float | None:
        return _rate(self.clicks, self.impressions)


def promoted_items(shop: Shop, metrics_filter: MetricsFilter, *, limit: int = 200) -> list[PromotedItem]:
    """How often each promoted product was served, seen and clicked, most served first."""
    sums = grouped_sums(rollup_rows(PromotedItemRollup, shop, metrics_filter), ("promotion_id", "product_id"), False)
    top = sorted(sums.items(), key=lambda kv: (-kv[1].values[1], kv[0]))[:limit]
    products = {
        pk: (sku, title)
        for pk, sku, title in Product.objects.filter(shop=shop, pk__in=[k[1] for k, _ in top]).values_list(
            "pk", "sku", "title"
        )
    }
    names = dict(Promotion.objects.filter(shop=shop, pk__in={k[0] for k, _ in top}).values_list("pk", "name"))
    items = []
    for (promotion_id, product_id), total in top:
        kpis = total.kpis(0)
        sku, title = products.get(product_id, ("", "(unknown product)"))
        items.append(
            PromotedItem(
                promotion_id=promotion_id,
                promotion=names.get(promotion_id, f"promotion {promotion_id} (deleted)"),
                product_id=product_id,
                sku=sku,
                title=title,
                served=kpis.item_slots,
                impressions=kpis.impressions,
                clicks=kpis.clicks,
                purchases=kpis.purchases,
                revenue=kpis.revenue,
            )
        )
    return items


@dataclass(frozen=True)
class ModelVersionHistory:
    """A trained version: offline metrics from its evaluation, online KPIs since it served."""

    version_id: int
    kind: str
    number: int
    created_at: datetime
    status: str
    active: bool
    offline: dict[str, float]
    online: Kpis | None  # None: it never served


def model_version_history(shop: Shop, *, size: int | None = None, limit: int = 50) -> list[ModelVersionHistory]:
    """The shop's model versions, newest first per kind, offline metrics beside online KPIs
    (all-time day rollups of the version)."""
    versions = list(ModelVersion.objects.filter(shop=shop).order_by("kind", "-number")[:limit])
    active = set(ActiveModel.objects.filter(shop=shop).values_list("version_id", flat=True))
    size = catalog_size(shop) if size is None else size
    rows = ModelVersionRollup.objects.filter(
        shop=shop, period=Period.DAY, model_version_id__in=[v.pk for v in versions]
    )
    sums = grouped_sums(rows, ("model_version_id",), True)
    return [
        ModelVersionHistory(
            version_id=v.pk,
            kind=v.kind,
            number=v.number,
            created_at=v.created_at,
            status=v.status,
            active=v.pk in active,
            offline={k: float(x) for k, x in (v.metrics or {}).items() if isinstance(x, (int, float))},
            online=sums[(v.pk,)].kpis(size) if (v.pk,) in sums else None,
        )
        for v in versions
    ]


def with_range(metrics_filter: MetricsFilter, start: datetime, end: datetime) -> MetricsFilter:
    return replace(metrics_filter, start=start, end=end)


def sum_kpis(items: Iterable[Kpis]) -> Kpis:
    """Counts added up (coverage is not additive: left out)."""
    values: list[Any] = [0] * (len(_SUMMED) - 1) + [ZERO]
    size = 0
    for kpis in items:
        size = kpis.catalog_size
        for index, name in enumerate(_SUMMED):
            values[index] += getattr(kpis, name)
    return Kpis(**dict(zip(_SUMMED, values, strict=True)), catalog_size=size)
