"""What the console's analytics screens show, each one call over rollups (never raw
events): the analytics report of a filter, and the dashboard's summary."""

import zoneinfo
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from analytics.buckets import day_start, local_date
from analytics.kpis import (
    Breakdown,
    Kpis,
    MetricsFilter,
    ModelVersionHistory,
    PromotedItem,
    RowSum,
    SeriesPoint,
    bucket_starts,
    catalog_size,
    grouped_sums,
    kpi_series,
    kpi_totals,
    kpis_by_model_version,
    kpis_by_placement,
    kpis_by_promotion,
    kpis_by_variant,
    model_version_history,
    promoted_items,
    rollup_rows,
    sum_kpis,
)
from analytics.models import ExperimentLook, Period, PlacementRollup
from campaigns.models import Experiment
from catalog.models import Shop
from recommender.kinds import DEFAULT_PRIMARY_METRIC, UnknownKind, kind_spec
from recommender.models import ActiveModel


@dataclass(frozen=True)
class AnalyticsReport:
    metrics_filter: MetricsFilter
    totals: Kpis
    series: list[SeriesPoint]
    by_placement: list[Breakdown]
    by_variant: list[Breakdown]
    by_promotion: list[Breakdown]
    by_model_version: list[Breakdown]
    promoted: list[PromotedItem]
    versions: list[ModelVersionHistory]


def analytics_report(shop: Shop, metrics_filter: MetricsFilter) -> AnalyticsReport:
    """Everything the analytics page shows for one filter."""
    size = catalog_size(shop)
    return AnalyticsReport(
        metrics_filter=metrics_filter,
        totals=kpi_totals(shop, metrics_filter, size=size),
        series=kpi_series(shop, metrics_filter, size=size),
        by_placement=kpis_by_placement(shop, metrics_filter, size=size),
        by_variant=kpis_by_variant(shop, metrics_filter, size=size),
        by_promotion=kpis_by_promotion(shop, metrics_filter),
        by_model_version=kpis_by_model_version(shop, metrics_filter, size=size),
        promoted=promoted_items(shop, metrics_filter, limit=50),
        versions=model_version_history(shop, size=size),
    )


# --- dashboard ---------------------------------------------------------------------------------

TREND_DAYS = 7
CHART_DAYS = 28


@dataclass(frozen=True)
class PlacementTrend:
    """A placement's last 7 days against the 7 before, and its daily series."""

    slug: str
    current: Kpis
    previous: Kpis
    daily: list[SeriesPoint]

    @property
    def ctr_change(self) -> float | None:
        """Relative change of CTR (0.1 = up 10%); None without a base."""
        now, before = self.current.ctr, self.previous.ctr
        return (now - before) / before if now is not None and before else None

    @property
    def revenue_change(self) -> float | None:
        before = self.previous.revenue
        return float((self.current.revenue - before) / before) if before else None


@dataclass(frozen=True)
class LiveExperiment:
    experiment_id: int
    name: str
    placement_slug: str
    started_at: datetime | None
    version: int
    primary_metric: str
    units: int | None  # None: not analysed yet
    srm_flagged: bool | None


@dataclass(frozen=True)
class ModelStatus:
    kind: str
    version_id: int
    number: int
    activated_at: datetime
    metric: str
    offline_value: float | None
    online: Kpis | None  # the last 7 days


@dataclass(frozen=True)
class DashboardSummary:
    first_day: date  # of the current 7 days
    totals: Kpis  # last 7 days, all placements (with coverage)
    previous: Kpis
    placements: list[PlacementTrend]
    daily: list[SeriesPoint]  # all placements, CHART_DAYS days
    experiments: list[LiveExperiment]
    models: list[ModelStatus]


def dashboard_summary(shop: Shop, now: datetime) -> DashboardSummary:
    """KPIs per placement (7 days vs the 7 before, daily for 28 days), live experiments
    with their last SRM verdict, active model versions with offline and online numbers."""
    zone = zoneinfo.ZoneInfo(shop.timezone)
    today = local_date(now, zone)
    first_current = today - timedelta(days=TREND_DAYS - 1)
    first_previous = first_current - timedelta(days=TREND_DAYS)
    first_chart = today - timedelta(days=CHART_DAYS - 1)
    end = day_start(today + timedelta(days=1), zone)
    size = catalog_size(shop)
    chart_filter = MetricsFilter(start=day_start(first_chart, zone), end=end, granularity=Period.DAY)
    current_filter = replace(chart_filter, start=day_start(first_current, zone))
    previous_start, previous_end = day_start(first_previous, zone), day_start(first_current, zone)

    by_day = grouped_sums(
        rollup_rows(PlacementRollup, shop, replace(chart_filter, start=min(chart_filter.start, previous_start))),
        ("placement_slug", "start"),
        False,
    )
    slugs = sorted({slug for slug, _ in by_day})
    placements = []
    for slug in slugs:
        placement_filter = replace(chart_filter, placement=slug)
        days = kpi_days(shop, placement_filter, by_day, slug, size)
        current = _sum(by_day, slug, current_filter.start, end, size)
        previous = _sum(by_day, slug, previous_start, previous_end, size)
        placements.append(PlacementTrend(slug=slug, current=current, previous=previous, daily=days))
    return DashboardSummary(
        first_day=first_current,
        totals=kpi_totals(shop, current_filter, size=size),
        previous=_sum(by_day, None, previous_start, previous_end, size),
        placements=placements,
        daily=kpi_series(shop, chart_filter, size=size),
        experiments=live_experiments(shop),
        models=model_status(shop, current_filter, size),
    )


def kpi_days(
    shop: Shop, metrics_filter: MetricsFilter, by_day: dict[tuple[str, datetime], RowSum], slug: str, size: int
) -> list[SeriesPoint]:
    return [
        SeriesPoint(start, by_day[(slug, start)].kpis(size) if (slug, start) in by_day else Kpis(catalog_size=size))
        for start in bucket_starts(shop, metrics_filter)
    ]


def _sum(
    by_day: dict[tuple[str, datetime], RowSum], slug: str | None, start: datetime, end: datetime, size: int
) -> Kpis:
    return sum_kpis(
        total.kpis(size) for (s, day), total in by_day.items() if (slug is None or s == slug) and start <= day < end
    )


def live_experiments(shop: Shop) -> list[LiveExperiment]:
    """Running experiments with the verdict of their last analysis (ExperimentLook)."""
    experiments = list(
        Experiment.objects.filter(shop=shop, status=Experiment.Status.RUNNING)
        .select_related("placement")
        .order_by("started_at", "id")
    )
    looks = {
        (look.experiment_id, look.experiment_version): look
        for look in ExperimentLook.objects.filter(experiment_id__in=[e.pk for e in experiments])
    }
    live = []
    for experiment in experiments:
        look = looks.get((experiment.pk, experiment.version))
        summary = look.summary if look is not None and look.summary else None
        live.append(
            LiveExperiment(
                experiment_id=experiment.pk,
                name=experiment.name,
                placement_slug=experiment.placement.slug,
                started_at=experiment.started_at,
                version=experiment.version,
                primary_metric=experiment.primary_metric,
                units=sum(summary["units"].values()) if summary else None,
                srm_flagged=summary["srm_flagged"] if summary else None,
            )
        )
    return live


def model_status(shop: Shop, metrics_filter: MetricsFilter, size: int) -> list[ModelStatus]:
    """The active version of each kind: its primary offline metric and online KPIs."""
    online = {b.key[1]: b.kpis for b in kpis_by_model_version(shop, metrics_filter, size=size)}
    statuses = []
    for active in ActiveModel.objects.filter(shop=shop).select_related("version").order_by("kind"):
        try:
            metric = kind_spec(active.kind).primary_metric
        except UnknownKind:
            metric = DEFAULT_PRIMARY_METRIC
        value = (active.version.metrics or {}).get(metric)
        statuses.append(
            ModelStatus(
                kind=active.kind,
                version_id=active.version_id,
                number=active.version.number,
                activated_at=active.activated_at,
                metric=metric,
                offline_value=float(value) if isinstance(value, (int, float)) else None,
                online=online.get(active.version_id),
            )
        )
    return statuses
