"""Attribution: which served list an impression, click, add-to-cart or purchase came from,
by its request id or (purchases) by a click of the same shopper within the shop's window.
Given served lists and events as serving and ingestion write them, when the rollups run,
then ``AttributedEvent`` holds exactly the attributed events."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from analytics.experiments import experiment_results
from analytics.models import AttributedEvent, ExperimentUnit
from campaigns.assignment import experiment_assign
from campaigns.state import state_load
from tests.analytics.helpers import catch_up, event, serve, split_experiment
from tests.factories import PlacementFactory, ProductFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def base() -> Any:
    """A whole hour three days ago (events are never in the future)."""
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=3)


@pytest.fixture
def products(shop: Any) -> list[Any]:
    return [ProductFactory(shop=shop, price=Decimal("10.00")) for _ in range(3)]


@pytest.fixture
def shopper(shop: Any) -> Any:
    return ShopperFactory(shop=shop)


def attributed(shop: Any) -> list[tuple[Any, ...]]:
    return list(
        AttributedEvent.objects.filter(shop=shop)
        .order_by("ts", "event_id")
        .values_list("event_id", "type", "kind", "request_id", "via_event_id", "position", "promotion_ids", "revenue")
    )


def test_events_that_carry_the_request_id_belong_to_their_list(
    shop: Any, products: list[Any], shopper: Any, base: Any
) -> None:
    served = serve(shop, products, base, shopper=shopper, promotions={products[0].pk: [41]})
    seen = event(shop, "impression", shopper, products[0], base + timedelta(seconds=5), served=served)
    click = event(shop, "click", shopper, products[0], base + timedelta(seconds=9), served=served)
    cart = event(shop, "add_to_cart", shopper, products[0], base + timedelta(seconds=30), served=served)
    bought = event(
        shop, "purchase", shopper, products[0], base + timedelta(minutes=5), served=served, price="12.50", quantity=2
    )
    event(shop, "view", shopper, products[1], base + timedelta(seconds=7), served=served)  # views never count

    catch_up(shop.pk)

    rid = served.request_id
    assert attributed(shop) == [
        (seen.pk, "impression", "request_id", rid, None, 1, [41], Decimal("0.00")),
        (click.pk, "click", "request_id", rid, None, 1, [41], Decimal("0.00")),
        (cart.pk, "add_to_cart", "request_id", rid, None, 1, [41], Decimal("0.00")),
        (bought.pk, "purchase", "request_id", rid, None, 1, [41], Decimal("25.00")),
    ]


def test_a_purchase_within_the_window_after_a_click_takes_the_clicked_list(
    shop: Any, products: list[Any], shopper: Any, base: Any
) -> None:
    served = serve(shop, products, base, shopper=shopper)
    click = event(shop, "click", shopper, products[1], base + timedelta(seconds=10), served=served)
    # No request id and no price: the catalog price is the unit price.
    bought = event(shop, "purchase", shopper, products[1], base + timedelta(hours=23), quantity=3)

    catch_up(shop.pk)

    assert attributed(shop)[1] == (
        bought.pk,
        "purchase",
        "window",
        served.request_id,
        click.pk,
        2,
        [],
        Decimal("30.00"),
    )


def test_a_purchase_outside_the_window_is_not_attributed_until_the_shop_widens_it(
    shop: Any, products: list[Any], shopper: Any, base: Any
) -> None:
    served = serve(shop, products, base, shopper=shopper)
    event(shop, "click", shopper, products[0], base + timedelta(seconds=10), served=served)
    late = event(shop, "purchase", shopper, products[0], base + timedelta(hours=25), price="10.00")

    catch_up(shop.pk)
    assert [row[1] for row in attributed(shop)] == ["click"]

    shop.attribution_window_hours = 48  # a per-shop setting: the rollups follow it
    shop.save(update_fields=["attribution_window_hours"])
    catch_up(shop.pk)
    assert [(row[0], row[2]) for row in attributed(shop)][1:] == [(late.pk, "window")]


def test_the_latest_click_before_the_purchase_wins(shop: Any, products: list[Any], shopper: Any, base: Any) -> None:
    first = serve(shop, products, base, shopper=shopper, placement="home")
    second = serve(shop, list(reversed(products)), base + timedelta(hours=1), shopper=shopper, placement="pdp")
    event(shop, "click", shopper, products[0], base + timedelta(minutes=1), served=first)
    later_click = event(shop, "click", shopper, products[0], base + timedelta(hours=1, minutes=1), served=second)
    bought = event(shop, "purchase", shopper, products[0], base + timedelta(hours=2), price="10.00")

    catch_up(shop.pk)

    row = AttributedEvent.objects.get(event_id=bought.pk)
    assert (row.request_id, row.via_event_id, row.placement_slug, row.position) == (
        second.request_id,
        later_click.pk,
        "pdp",
        3,
    )


def test_clicks_of_other_products_or_shoppers_and_foreign_request_ids_attribute_nothing(
    shop: Any, other_shop: Any, products: list[Any], shopper: Any, base: Any
) -> None:
    served = serve(shop, products, base, shopper=shopper)
    foreign = serve(other_shop, [ProductFactory(shop=other_shop)], base, shopper=ShopperFactory(shop=other_shop))
    someone_else = ShopperFactory(shop=shop)
    event(shop, "click", shopper, products[0], base + timedelta(seconds=10), served=served)
    event(shop, "purchase", shopper, products[1], base + timedelta(hours=1), price="10.00")  # another product
    event(shop, "purchase", someone_else, products[0], base + timedelta(hours=1), price="10.00")  # another shopper
    event(shop, "click", shopper, products[2], base + timedelta(hours=2), served=foreign)  # another shop's list
    event(shop, "impression", shopper, products[2], base + timedelta(hours=2), request_id="not-a-uuid")
    event(shop, "purchase", shopper, products[0], base - timedelta(hours=1), price="10.00")  # before the click

    catch_up(shop.pk)

    assert [row[1] for row in attributed(shop)] == ["click"]


def test_assignment_never_puts_a_unit_in_two_variants_of_one_version(shop: Any) -> None:
    placement = PlacementFactory(shop=shop, slug="pdp")
    split_experiment(shop, placement, holdout_percent=10)
    state = next(iter(state_load(shop.pk).experiments.values()))[0]

    def variant_of(unit: str) -> str:
        assigned = experiment_assign(state, unit)
        return assigned.name if assigned is not None else "holdout"

    first = {f"s-{n}": variant_of(f"s-{n}") for n in range(2000)}
    again = {unit: variant_of(unit) for unit in reversed(first)}

    assert again == first
    assert set(first.values()) == {"control", "b", "holdout"}


def test_a_unit_logged_in_two_variants_of_one_version_is_left_out_but_two_versions_are_fine(
    shop: Any, products: list[Any], base: Any
) -> None:
    placement = PlacementFactory(shop=shop, slug="pdp")
    experiment = split_experiment(shop, placement, started=base)
    pk = experiment.pk
    faulty, fine = ShopperFactory(shop=shop), ShopperFactory(shop=shop)
    # A logging fault: one shopper's lists of version 1 name both variants.
    serve(shop, products, base + timedelta(minutes=1), shopper=faulty, unit_id="faulty", experiment=(pk, 1, "control"))
    serve(shop, products, base + timedelta(minutes=2), shopper=faulty, unit_id="faulty", experiment=(pk, 1, "b"))
    # Another shopper in control in version 1 and in b in version 2: re-randomised, not mixed.
    serve(shop, products, base + timedelta(minutes=3), shopper=fine, unit_id="fine", experiment=(pk, 1, "control"))
    serve(shop, products, base + timedelta(hours=5), shopper=fine, unit_id="fine", experiment=(pk, 2, "b"))

    catch_up(shop.pk)

    units = sorted(
        ExperimentUnit.objects.filter(experiment_id=pk).values_list("experiment_version", "variant", "variants_seen")
    )
    assert units == [(1, "", 2), (1, "control", 1), (2, "b", 1)]
    results = experiment_results(experiment, 1, record=False)
    assert results is not None
    assert results.mixed_units == 1
    assert {v.name: v.units for v in results.analysis.variants} == {"control": 1, "b": 0}
