"""KPIs over the rollups: per placement, variant, promotion and model version, series with
a point per bucket, coverage and new items, and the dashboard's summary. Given a small
shop whose right answers are counted by hand."""

import zoneinfo
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from analytics.buckets import day_start, local_date
from analytics.experiments import experiment_results
from analytics.kpis import (
    MetricsFilter,
    kpi_series,
    kpi_totals,
    kpis_by_model_version,
    kpis_by_placement,
    kpis_by_promotion,
    kpis_by_variant,
    model_version_history,
    promoted_items,
)
from analytics.models import Period
from analytics.selectors import dashboard_summary
from catalog.models import Product
from recommender.models import ActiveModel, ModelVersion
from tests.analytics.helpers import catch_up, event, serve, split_experiment
from tests.factories import PlacementFactory, ProductFactory, PromotionFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(shop: Any) -> dict[str, Any]:
    """Two lists two days ago (local 10:00 and 11:00): home with a promoted item and an ALS
    version, pdp in variant b of an experiment. One product of the five served is new; one
    active product is never served and one inactive product does not count."""
    zone = zoneinfo.ZoneInfo(shop.timezone)
    today = local_date(timezone.now(), zone)
    day = today - timedelta(days=2)
    at = day_start(day, zone) + timedelta(hours=10)
    products = [ProductFactory(shop=shop, price=Decimal("10.00")) for _ in range(6)]
    ProductFactory(shop=shop, active=False)
    Product.objects.filter(pk__in=[p.pk for p in products[:4] + products[5:]]).update(
        created_at=at - timedelta(days=100)
    )
    Product.objects.filter(pk=products[4].pk).update(created_at=at - timedelta(days=3))
    promotion = PromotionFactory(shop=shop, name="Lamps up")
    version = ModelVersion.objects.create(
        shop=shop,
        kind="als",
        number=1,
        metrics={"ndcg_at_10": 0.125},
        artifact_path="tests/als/1",
        artifact_sha256="0" * 64,
    )
    ActiveModel.objects.create(shop=shop, kind="als", version_id=version.pk, activated_at=at, activated_by="tests")
    placement = PlacementFactory(shop=shop, slug="pdp")
    experiment = split_experiment(shop, placement, started=at)
    one, two = ShopperFactory(shop=shop), ShopperFactory(shop=shop)
    home = serve(
        shop,
        [products[0], products[1], products[4]],
        at,
        placement="home",
        shopper=one,
        promotions={products[1].pk: [promotion.pk]},
        model_versions={"als": version.pk},
    )
    pdp = serve(
        shop,
        [products[2], products[3]],
        at + timedelta(hours=1),
        placement="pdp",
        shopper=two,
        unit_id="two",
        experiment=(experiment.pk, 1, "b"),
    )
    event(shop, "impression", one, products[0], at + timedelta(seconds=2), served=home)
    event(shop, "impression", one, products[1], at + timedelta(seconds=2), served=home)
    event(shop, "click", one, products[1], at + timedelta(seconds=5), served=home)
    event(shop, "purchase", one, products[1], at + timedelta(minutes=5), served=home, price="20.00")
    event(shop, "impression", two, products[2], at + timedelta(hours=1, seconds=2), served=pdp)
    catch_up(shop.pk)
    return {
        "day": day,
        "today": today,
        "zone": zone,
        "products": products,
        "promotion": promotion,
        "version": version,
        "experiment": experiment,
    }


def days(shop: Any, world: dict[str, Any], count: int = 3, **filters: Any) -> MetricsFilter:
    zone, last = world["zone"], world["today"]
    return MetricsFilter(
        start=day_start(last - timedelta(days=count - 1), zone),
        end=day_start(last + timedelta(days=1), zone),
        granularity=Period.DAY,
        **filters,
    )


def test_totals_are_counted_per_impression_with_coverage_and_new_items(shop: Any, world: dict[str, Any]) -> None:
    kpis = kpi_totals(shop, days(shop, world))

    assert (kpis.requests, kpis.item_slots, kpis.new_item_slots) == (2, 5, 1)
    assert (kpis.impressions, kpis.clicks, kpis.add_to_carts, kpis.purchases) == (3, 1, 0, 1)
    assert kpis.revenue == Decimal("20.00")
    assert kpis.ctr == pytest.approx(1 / 3)
    assert kpis.add_to_cart_rate == 0.0
    assert kpis.conversion_rate == pytest.approx(1 / 3)
    assert kpis.revenue_per_mille == Decimal("6666.67")
    assert (kpis.distinct_items, kpis.catalog_size) == (5, 6)
    assert kpis.coverage == pytest.approx(5 / 6)
    assert kpis.new_item_share == pytest.approx(1 / 5)


def test_a_range_without_traffic_has_no_rates_rather_than_nan(shop: Any, world: dict[str, Any]) -> None:
    zone = world["zone"]
    empty = MetricsFilter(
        start=day_start(world["today"], zone), end=day_start(world["today"] + timedelta(days=1), zone)
    )

    kpis = kpi_totals(shop, empty)

    assert (kpis.requests, kpis.ctr, kpis.conversion_rate, kpis.revenue_per_mille, kpis.coverage) == (
        0,
        None,
        None,
        None,
        0.0,
    )


def test_the_series_has_a_point_per_day_zero_where_nothing_happened(shop: Any, world: dict[str, Any]) -> None:
    series = kpi_series(shop, days(shop, world))

    zone = world["zone"]
    assert [point.start.astimezone(zone).date() for point in series] == [
        world["day"],
        world["day"] + timedelta(days=1),
        world["today"],
    ]
    assert [(p.kpis.requests, p.kpis.clicks, p.kpis.revenue) for p in series] == [
        (2, 1, Decimal("20.00")),
        (0, 0, Decimal("0.00")),
        (0, 0, Decimal("0.00")),
    ]


def test_hourly_series_puts_each_list_in_its_local_hour(shop: Any, world: dict[str, Any]) -> None:
    zone = world["zone"]
    start = day_start(world["day"], zone)
    hours = kpi_series(shop, MetricsFilter(start=start, end=start + timedelta(days=1), granularity=Period.HOUR))

    assert len(hours) == 24
    assert {p.start.astimezone(zone).hour: p.kpis.requests for p in hours if p.kpis.requests} == {10: 1, 11: 1}


def test_breakdowns_by_placement_variant_promotion_and_model_version(shop: Any, world: dict[str, Any]) -> None:
    window = days(shop, world)

    placements = {
        b.label: (b.kpis.requests, b.kpis.impressions, b.kpis.clicks) for b in kpis_by_placement(shop, window)
    }
    variants = [(b.key, b.kpis.requests, b.kpis.impressions) for b in kpis_by_variant(shop, window)]
    promotions = [(b.label, b.kpis.item_slots, b.kpis.clicks, b.kpis.revenue) for b in kpis_by_promotion(shop, window)]
    models = [(b.label, b.kpis.requests, b.extra["offline"]) for b in kpis_by_model_version(shop, window)]

    assert placements == {"home": (1, 2, 1), "pdp": (1, 1, 0)}
    assert variants == [(("pdp", world["experiment"].pk, 1, "b"), 1, 1)]
    assert promotions == [("Lamps up", 1, 1, Decimal("20.00"))]
    assert models == [("als v1", 1, {"ndcg_at_10": 0.125})]


def test_filters_narrow_to_a_placement_variant_or_promotion(shop: Any, world: dict[str, Any]) -> None:
    assert kpi_totals(shop, days(shop, world, placement="pdp")).requests == 1
    assert kpi_totals(shop, days(shop, world, variant="b")).impressions == 1
    assert kpi_totals(shop, days(shop, world, variant="control")).requests == 0
    promoted = kpi_totals(shop, days(shop, world, promotion_id=world["promotion"].pk))
    assert (promoted.requests, promoted.item_slots, promoted.purchases, promoted.distinct_items) == (1, 1, 1, None)


def test_each_promoted_item_shows_how_often_it_was_served_seen_and_clicked(shop: Any, world: dict[str, Any]) -> None:
    items = promoted_items(shop, days(shop, world))

    product = world["products"][1]
    assert [(i.sku, i.promotion, i.served, i.impressions, i.clicks, i.purchases, i.ctr) for i in items] == [
        (product.sku, "Lamps up", 1, 1, 1, 1, 1.0)
    ]


def test_model_versions_show_offline_metrics_beside_online_kpis(shop: Any, world: dict[str, Any]) -> None:
    ModelVersion.objects.create(
        shop=shop, kind="als", number=2, metrics={"ndcg_at_10": 0.2}, artifact_path="x", artifact_sha256="0" * 64
    )

    history = model_version_history(shop)

    assert [(v.number, v.active, v.offline, v.online.requests if v.online else None) for v in history] == [
        (2, False, {"ndcg_at_10": 0.2}, None),
        (1, True, {"ndcg_at_10": 0.125}, 1),
    ]


def test_the_dashboard_summary_compares_the_last_seven_days_with_the_seven_before(
    shop: Any, world: dict[str, Any]
) -> None:
    now = timezone.now()
    summary = dashboard_summary(shop, now)
    assert summary.experiments[0].units is None  # not analysed yet

    experiment_results(world["experiment"])  # what the periodic task does after a refresh
    summary = dashboard_summary(shop, now)

    assert (summary.totals.requests, summary.totals.clicks, summary.previous.requests) == (2, 1, 0)
    assert [(p.slug, p.current.requests, p.previous.requests, p.ctr_change) for p in summary.placements] == [
        ("home", 1, 0, None),
        ("pdp", 1, 0, None),
    ]
    assert len(summary.daily) == 28 and sum(p.kpis.requests for p in summary.daily) == 2
    live = summary.experiments[0]
    assert (live.name, live.placement_slug, live.units, live.srm_flagged) == ("Split", "pdp", 1, False)
    model = summary.models[0]
    assert (model.kind, model.number, model.offline_value, model.online.requests if model.online else None) == (
        "als",
        1,
        0.125,  # its primary offline metric
        1,
    )


def test_another_shops_rollups_are_never_counted(shop: Any, other_shop: Any, world: dict[str, Any]) -> None:
    product = ProductFactory(shop=other_shop)
    at: datetime = day_start(world["day"], world["zone"]) + timedelta(hours=12)
    serve(other_shop, [product], at, placement="home", shopper=ShopperFactory(shop=other_shop))
    catch_up(other_shop.pk)

    assert kpi_totals(shop, days(shop, world)).requests == 2
    assert kpi_totals(other_shop, days(shop, world)).requests == 1
