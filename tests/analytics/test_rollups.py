"""Rollups: incremental and idempotent. A rerun, a rebuild from nothing, an overlap or a
redelivered task never changes or double counts anything; late data lands in its hour.
Run this module on SQLite and on Postgres (DATABASE_URL=postgres://...)."""

import zoneinfo
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from analytics import tasks
from analytics.models import DirtyHour, Period, PlacementRollup, PromotionRollup, RollupState
from analytics.rollups import rollups_rebuild, rollups_run, rollups_step
from tests.analytics.helpers import catch_up, event, serve, snapshot
from tests.factories import ProductFactory, ShopFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def base() -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=3)


def traffic(shop: Any, base: datetime) -> dict[str, Any]:
    """Two placements over two days: lists, impressions, clicks, purchases by request id and
    by window, one promotion and two model versions."""
    products = [ProductFactory(shop=shop, price=Decimal("8.00")) for _ in range(4)]
    shoppers = [ShopperFactory(shop=shop) for _ in range(3)]
    lists = []
    for n in range(6):
        at = base + timedelta(hours=7 * n, minutes=n)
        shopper = shoppers[n % 3]
        served = serve(
            shop,
            products[n % 2 : n % 2 + 3],
            at,
            placement="pdp" if n % 2 else "home",
            shopper=shopper,
            promotions={products[1].pk: [5]},
            model_versions={"als": 100 + n // 3},
        )
        lists.append(served)
        first = products[n % 2]
        event(shop, "impression", shopper, first, at + timedelta(seconds=3), served=served)
        if n % 3 != 2:
            event(shop, "click", shopper, first, at + timedelta(seconds=8), served=served)
        if n == 1:
            event(shop, "purchase", shopper, first, at + timedelta(hours=2), price="8.00", quantity=2)
        if n == 4:
            event(shop, "purchase", shopper, first, at + timedelta(minutes=9), served=served, price="9.50")
    return {"products": products, "shoppers": shoppers, "lists": lists}


def test_a_rerun_changes_nothing_and_a_rebuild_from_nothing_gives_the_same_tables(shop: Any, base: datetime) -> None:
    traffic(shop, base)
    first = catch_up(shop.pk)
    tables = snapshot(shop)
    assert first.finished and first.recomputed_hours > 0
    assert sum(len(rows) for rows in tables.values()) > 0

    # Within the overlap (10 minutes before the cursor) the rerun reads every row again
    # and recomputes their hours: the tables stay exactly as they were.
    again = catch_up(shop.pk)

    assert (again.recomputed_hours, again.finished) == (first.recomputed_hours, True) == (7, True)
    assert snapshot(shop) == tables

    rollups_rebuild(shop.pk)
    rebuilt = catch_up(shop.pk)
    assert rebuilt.recomputed_hours == first.recomputed_hours
    assert snapshot(shop) == tables


def test_day_rows_are_the_sums_of_their_hour_rows_and_count_each_event_once(shop: Any, base: datetime) -> None:
    traffic(shop, base)
    catch_up(shop.pk)
    rollups_rebuild(shop.pk)
    catch_up(shop.pk)  # an overlapping second pass

    fields = ("requests", "item_slots", "impressions", "clicks", "purchases", "revenue")
    hours = PlacementRollup.objects.filter(shop=shop, period=Period.HOUR).aggregate(*(Sum(f) for f in fields))
    days = PlacementRollup.objects.filter(shop=shop, period=Period.DAY).aggregate(*(Sum(f) for f in fields))
    assert hours == days
    assert [days[f"{f}__sum"] for f in fields] == [6, 18, 6, 4, 2, Decimal("25.50")]
    promoted = PromotionRollup.objects.filter(shop=shop, period=Period.DAY, promotion_id=5)
    assert promoted.aggregate(Sum("item_slots"), Sum("requests")) == {"item_slots__sum": 6, "requests__sum": 6}


def test_late_data_lands_in_its_hour_and_only_dirty_hours_are_recomputed(
    shop: Any, base: datetime, settings: Any
) -> None:
    settings.ANALYTICS_OVERLAP_S = 0  # so that only the new row is read again
    made = traffic(shop, base)
    catch_up(shop.pk)
    served, shopper, product = made["lists"][0], made["shoppers"][0], made["products"][0]

    # A click that arrives now, about a list served three days ago...
    event(shop, "click", shopper, product, base + timedelta(minutes=30), served=served)
    late = catch_up(shop.pk)
    incremental = snapshot(shop)

    assert late.recomputed_hours == 1
    hour = PlacementRollup.objects.get(shop=shop, period=Period.HOUR, start=base, placement_slug="home")
    assert (hour.clicks, hour.impressions) == (2, 1)
    # ... gives the same tables as a rebuild from nothing.
    rollups_rebuild(shop.pk)
    catch_up(shop.pk)
    assert snapshot(shop) == incremental


def test_a_click_that_arrives_after_the_purchase_it_explains_attributes_it(shop: Any, base: datetime) -> None:
    product, shopper = ProductFactory(shop=shop), ShopperFactory(shop=shop)
    served = serve(shop, [product], base, shopper=shopper)
    event(shop, "purchase", shopper, product, base + timedelta(hours=3), price="10.00")
    catch_up(shop.pk)
    # Summed over days: three hours after the list may be the next local day.
    assert _day_purchases(shop) == 0

    event(shop, "click", shopper, product, base + timedelta(minutes=1), served=served)  # delivered late
    catch_up(shop.pk)

    assert _day_purchases(shop) == 1


def _day_purchases(shop: Any) -> int:
    return sum(PlacementRollup.objects.filter(shop=shop, period=Period.DAY).values_list("purchases", flat=True))


def test_buckets_are_the_shops_local_hours_and_days(base: datetime) -> None:
    shop = ShopFactory(timezone="Asia/Kolkata")  # +05:30: local hours are not UTC hours
    product, shopper = ProductFactory(shop=shop), ShopperFactory(shop=shop)
    zone = zoneinfo.ZoneInfo("Asia/Kolkata")
    local_midnight = datetime.combine(base.astimezone(zone).date(), datetime.min.time(), tzinfo=zone)
    serve(shop, [product], local_midnight - timedelta(minutes=10), shopper=shopper)  # 23:50 the day before
    serve(shop, [product], local_midnight + timedelta(minutes=10), shopper=shopper)  # 00:10

    catch_up(shop.pk)

    days = dict(PlacementRollup.objects.filter(shop=shop, period=Period.DAY).values_list("start", "requests"))
    assert days == {local_midnight - timedelta(days=1): 1, local_midnight: 1}
    hours = sorted(PlacementRollup.objects.filter(shop=shop, period=Period.HOUR).values_list("start", flat=True))
    assert hours == [local_midnight - timedelta(hours=1), local_midnight]
    assert hours[1].astimezone(UTC).minute == 30


def test_a_time_zone_change_rebuilds_every_bucket(shop: Any, base: datetime) -> None:
    traffic(shop, base)
    catch_up(shop.pk)
    shop.timezone = "America/New_York"
    shop.save(update_fields=["timezone"])

    catch_up(shop.pk)

    zone = zoneinfo.ZoneInfo("America/New_York")
    starts = PlacementRollup.objects.filter(shop=shop, period=Period.DAY).values_list("start", flat=True)
    assert {start.astimezone(zone).time() for start in starts} == {datetime.min.time()}
    assert RollupState.objects.get(shop=shop).timezone == "America/New_York"


def test_a_step_works_through_a_bounded_number_of_hours(
    shop: Any, base: datetime, settings: Any, monkeypatch: Any
) -> None:
    settings.ANALYTICS_OVERLAP_S = 0
    monkeypatch.setattr("analytics.rollups.HOURS_PER_STEP", 3)
    traffic(shop, base)

    steps = [rollups_step(shop.pk) for _ in range(4)]

    assert [(s.status, s.recomputed_hours, s.more) for s in steps] == [
        ("worked", 3, True),
        ("worked", 3, True),
        ("worked", 1, False),
        ("idle", 0, False),
    ]
    assert DirtyHour.objects.filter(shop=shop).count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_on_the_same_shop_steps_aside_while_the_first_holds_the_lock(base: datetime) -> None:
    import psycopg
    from django.db import connection

    shop = ShopFactory()
    traffic(shop, base)
    RollupState.objects.create(shop=shop)
    params = connection.get_connection_params()
    with psycopg.connect(**{k: v for k, v in params.items() if k != "cursor_factory"}) as other:
        other.execute("SELECT 1 FROM analytics_rollupstate WHERE shop_id = %s FOR UPDATE", [shop.pk])

        busy = rollups_run(shop.pk)

        assert (busy.busy, busy.recomputed_hours) == (True, 0)
        assert not PlacementRollup.objects.filter(shop=shop).exists()
    assert catch_up(shop.pk).recomputed_hours == 7


def test_the_periodic_task_refreshes_every_shop_and_a_rerun_changes_nothing(
    shop: Any, other_shop: Any, base: datetime, settings: Any
) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from recsite.celery import app

    app.conf.task_always_eager = True
    try:
        traffic(shop, base)
        traffic(other_shop, base)

        assert tasks.rollups_refresh_all.delay().get() == 2
        tables = (snapshot(shop), snapshot(other_shop))
        assert PlacementRollup.objects.filter(shop=other_shop, period=Period.DAY).exists()

        result = tasks.rollups_refresh.delay(shop.pk).get()
        assert (result["recomputed_hours"], result["busy"], result["finished"]) == (7, False, True)
        tasks.rollups_refresh_all.delay().get()  # a redelivered beat tick
        assert (snapshot(shop), snapshot(other_shop)) == tables
    finally:
        app.conf.task_always_eager = False


def test_the_task_for_a_deleted_shop_logs_and_returns(db: Any) -> None:
    assert tasks.rollups_refresh(987654321) == {"steps": 0}


def test_a_catch_up_on_sqlite_pauses_between_steps_so_other_writers_get_the_lock(monkeypatch: Any) -> None:
    from django.db import connection

    import analytics.rollups as rollups

    results = iter([rollups.StepResult("worked", 1, 1, more=True)] * 3 + [rollups.StepResult("idle")])
    monkeypatch.setattr(rollups, "rollups_step", lambda shop_id, now=None: next(results))
    pauses: list[float] = []
    monkeypatch.setattr(rollups.time, "sleep", pauses.append)

    report = rollups.rollups_run(1)

    assert (report.steps, report.finished) == (4, True)
    expected = [rollups.SQLITE_PAUSE_BETWEEN_STEPS_S] * 3 if connection.vendor == "sqlite" else []
    assert pauses == expected
