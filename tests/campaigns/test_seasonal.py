"""Seasonal lift: last year's events suggest boosts for the coming weeks."""

from datetime import UTC, date, datetime, timedelta

import pytest

from campaigns import services
from campaigns.models import SeasonalBoost, SeasonalSuggestion
from campaigns.seasonal import seasonal_lifts_measure, upcoming_weeks
from campaigns.tasks import seasonal_suggestions_refresh, seasonal_suggestions_refresh_all
from catalog.models import Event
from tests.campaigns.conftest import ACTOR
from tests.factories import CategoryFactory, ProductFactory, ShopperFactory

TODAY = date(2026, 11, 18)  # a Wednesday; the next Monday is 23 Nov


def purchases(shop, product, first_ts: datetime, count: int, kind: str = "purchase") -> None:
    shopper = ShopperFactory(shop=shop)
    Event.objects.bulk_create(
        Event(
            shop=shop,
            event_id=f"{product.sku}-{kind}-{first_ts.isoformat()}-{n}",
            type=kind,
            shopper=shopper,
            product=product,
            sku=product.sku,
            ts=first_ts + timedelta(hours=n),
        )
        for n in range(count)
    )


@pytest.fixture
def history(shop):
    """Candles sell mostly in the last week of November; garden all year."""
    candles = ProductFactory(shop=shop, category=CategoryFactory(shop=shop, name="Candles", path="Home > Candles"))
    garden = ProductFactory(shop=shop, category=CategoryFactory(shop=shop, name="Garden", path="Garden"))
    window = datetime(2025, 11, 24, 9, tzinfo=UTC)  # 52 weeks before Monday 23 Nov 2026
    purchases(shop, candles, window, 30)
    purchases(shop, candles, datetime(2026, 3, 2, tzinfo=UTC), 10)
    purchases(shop, garden, window, 10)
    purchases(shop, garden, datetime(2026, 5, 4, tzinfo=UTC), 200)
    purchases(shop, garden, window, 50, kind="view")  # views do not count
    return candles.category, garden.category


def test_upcoming_weeks_start_on_the_next_monday():
    assert upcoming_weeks(TODAY, 2) == [
        (date(2026, 11, 23), date(2026, 11, 29)),
        (date(2026, 11, 30), date(2026, 12, 6)),
    ]
    assert upcoming_weeks(date(2026, 11, 23), 1) == [(date(2026, 11, 23), date(2026, 11, 29))]


def test_lift_compares_the_window_share_with_the_yearly_share(shop, history):
    candles, _ = history
    lifts = seasonal_lifts_measure(shop, TODAY)
    # window: candles 30 of 40 purchases (0.75); year: 40 of 250 (0.16) -> 4.6875
    assert [(x.category_id, x.first_day, x.last_day, x.lift, x.window_events) for x in lifts] == [
        (candles.pk, date(2026, 11, 23), date(2026, 11, 29), 4.6875, 30)
    ]
    assert lifts[0].window_volume == 240.0  # 30 purchases x weight 8
    assert lifts[0].suggested_factor == 2.0


def test_suggestions_are_idempotent_and_decisions_are_kept(shop, history):
    candles, _ = history
    assert services.seasonal_suggestions_update(shop=shop, today=TODAY) == 1
    assert services.seasonal_suggestions_update(shop=shop, today=TODAY + timedelta(days=1)) == 0
    suggestion = SeasonalSuggestion.objects.get(shop=shop)
    assert (suggestion.category_id, suggestion.status, suggestion.lift) == (candles.pk, "suggested", 4.6875)
    boost = services.seasonal_suggestion_accept(suggestion=suggestion, actor=ACTOR, factor=1.4)
    assert (boost.categories, boost.factor, boost.recurrence, boost.first_day, boost.last_day) == (
        ["Home > Candles"],
        1.4,
        "once",
        date(2026, 11, 23),
        date(2026, 11, 29),
    )
    services.seasonal_suggestions_update(shop=shop, today=TODAY)
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.boost_id) == ("accepted", boost.pk)
    assert SeasonalSuggestion.objects.filter(shop=shop).count() == 1
    assert SeasonalBoost.objects.filter(shop=shop).count() == 1


def test_small_counts_are_not_suggested(shop):
    product = ProductFactory(shop=shop, category=CategoryFactory(shop=shop, name="Rare", path="Rare"))
    other = ProductFactory(shop=shop, category=CategoryFactory(shop=shop, name="Other", path="Other"))
    purchases(shop, product, datetime(2025, 11, 24, 9, tzinfo=UTC), 5)  # lift is high, but 5 < 20 events
    purchases(shop, other, datetime(2026, 4, 1, tzinfo=UTC), 100)
    assert seasonal_lifts_measure(shop, TODAY) == []


def test_task_skips_a_missing_shop_and_fans_out_one_task_per_shop(shop, monkeypatch):
    assert seasonal_suggestions_refresh(999_999) == 0
    assert seasonal_suggestions_refresh(shop.pk) == 0  # no history, nothing to suggest
    queued: list[int] = []
    monkeypatch.setattr(seasonal_suggestions_refresh, "delay", queued.append)
    assert seasonal_suggestions_refresh_all() == 1
    assert queued == [shop.pk]
