"""recommendations_preview: the same pipeline as the API, for the console, with time
travel, promotions switched off, a chosen variant and a pretend session."""

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.models import Placement
from campaigns.services import VariantSpec, experiment_create, experiment_start, promotion_create, promotion_publish
from recommender.models import ServedList
from recommender.serving.log import served_log
from recommender.serving.service import recommendations_preview
from recommender.serving.state import registry
from tests.factories import ShopFactory
from tests.recommender.serving.fixtures import SYSTEM, placement, serve, skus, train
from tests.recommender.shop_data import build_shop_history


@pytest.fixture
def shop(db):
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending"])
    placement(shop, "home", {"sources": {"trending": 1.0}, "size": 6})
    return shop


def _skus(preview):
    return [preview.snapshot.skus[item.index] for item in preview.items]


def test_the_preview_is_what_the_api_serves_and_logs_nothing(shop):
    preview = recommendations_preview(shop=shop, placement_slug="home")

    assert _skus(preview) == skus(serve(shop, "home"))
    served_log.discard()
    recommendations_preview(shop=shop, placement_slug="home")
    assert served_log.pending() == 0 and ServedList.objects.count() == 0


def test_time_travel_and_disabled_promotions(shop):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    pin = promotion_create(
        shop=shop,
        actor=SYSTEM,
        fields={
            "name": "Black Friday",
            "target": {"skus": ["P0039"]},
            "action": "pin",
            "slot": 1,
            "starts_at": now + timedelta(days=2),
            "ends_at": now + timedelta(days=3),
        },
    )
    exclude = promotion_create(
        shop=shop, actor=SYSTEM, fields={"name": "Hide", "target": {"skus": [_top(shop)]}, "action": "exclude"}
    )
    for promotion in (pin, exclude):
        promotion_publish(promotion=promotion, actor=SYSTEM)
    registry.refresh(shop.pk)

    today = recommendations_preview(shop=shop, placement_slug="home")
    friday = recommendations_preview(shop=shop, placement_slug="home", at=now + timedelta(days=2, hours=1))
    without = recommendations_preview(
        shop=shop, placement_slug="home", at=now + timedelta(days=2, hours=1), disabled_promotion_ids=[pin.pk]
    )

    assert _skus(today)[0] != "P0039"
    assert [c.reasons for c in today.removed] == [['excluded by promotion "Hide"']]
    assert _skus(friday)[0] == "P0039"
    assert friday.items[0].pinned_slot == 1 and friday.items[0].promotion_ids == [pin.pk]
    assert friday.live_rules == 2
    assert _skus(without)[0] != "P0039" and without.live_rules == 1


def _top(shop):
    return skus(serve(shop, "home"))[0]


def test_a_variant_is_previewed_with_its_strategy(shop):
    other = placement(shop, "unused", {"sources": {"new_arrivals": 1.0}, "size": 6})
    home = Placement.objects.get(shop=shop, slug="home")
    experiment = experiment_create(
        shop=shop,
        actor=SYSTEM,
        fields={"name": "New vs trending", "placement": home, "holdout_percent": 10},
        variants=[
            VariantSpec(name="control", is_control=True, allocation=50),
            VariantSpec(name="newest", allocation=50, strategy=other.default_strategy),
        ],
    )
    experiment_start(experiment=experiment, actor=SYSTEM)
    registry.refresh(shop.pk)

    control = recommendations_preview(shop=shop, placement_slug="home", variant="control")
    newest = recommendations_preview(shop=shop, placement_slug="home", variant="newest")
    held_out = recommendations_preview(shop=shop, placement_slug="home", variant="holdout")

    assert (control.resolution.variant, newest.resolution.variant, held_out.resolution.variant) == (
        "control",
        "newest",
        "holdout",
    )
    assert {name for item in control.items for name in item.sources} == {"trending"}
    assert {name for item in newest.items for name in item.sources} == {"new_arrivals"}
    with pytest.raises(LookupError):
        recommendations_preview(shop=shop, placement_slug="home", variant="nope")


def test_a_pretend_session_reaches_the_session_source(shop):
    train(shop, ["sasrec"])
    placement(shop, "visit", {"sources": {"session": 1.0}, "size": 6})
    registry.refresh(shop.pk)

    plain = recommendations_preview(shop=shop, placement_slug="visit")
    visiting = recommendations_preview(shop=shop, placement_slug="visit", session_items=["P0002", "P0006"])

    assert {item.fallback for item in plain.items} == {"trending"}
    assert all("session" in item.sources for item in visiting.items)
