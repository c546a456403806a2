"""The serving pipeline on a trained shop: filters, fallbacks, provenance, diversity.

Given a shop whose trending model is trained (40 products in 4 categories), each test
serves a placement through recommendations_serve and checks one property exactly."""

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import F

from campaigns.services import promotion_create, promotion_publish
from catalog.models import Product, Shop
from catalog.services import events_ingest, product_deactivate
from recommender.serving.state import registry
from tests.factories import ProductFactory, ShopFactory
from tests.recommender.serving.fixtures import SYSTEM, placement, serve, skus, train
from tests.recommender.shop_data import build_shop_history

TRENDING = {"sources": {"trending": 1.0}, "size": 8}


@pytest.fixture
def shop(db):
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending"])
    return shop


def _trending_order(shop, size=40):
    """The global trending order as the model ranks it (all 40 products have events)."""
    placement(shop, "all-trending", {"sources": {"trending": 1.0}, "filters": {"in_stock": False}, "size": size})
    return skus(serve(shop, "all-trending"))


def _live(shop, *promotions: dict) -> list:
    """Create and publish these promotions (fields as the service takes them); the
    serving state is rebuilt on the next request."""
    published = []
    for fields in promotions:
        promotion = promotion_create(shop=shop, actor=SYSTEM, fields=fields)
        promotion_publish(promotion=promotion, actor=SYSTEM)
        published.append(promotion)
    registry.reset()
    return published


def _refresh(shop):
    Shop.objects.filter(pk=shop.pk).update(catalog_version=F("catalog_version") + 1)
    assert registry.refresh(shop.pk)


def _purchase(shop, shopper, sku, n=1):
    now = datetime.now(UTC)
    result = events_ingest(
        shop=shop,
        records=[
            {
                "event_id": f"buy-{shopper}-{sku}-{n}",
                "type": "purchase",
                "shopper": shopper,
                "sku": sku,
                "ts": (now - timedelta(hours=2)).isoformat(),
            }
        ],
    )
    assert result.accepted == 1


def test_the_list_is_the_trending_order_of_recommendable_products(shop):
    order = _trending_order(shop)
    placement(shop, "trending", TRENDING)

    served = serve(shop, "trending")

    assert skus(served) == order[:8]
    assert {name for item in served.items for name in item.sources} == {"trending"}


def test_inactive_and_out_of_stock_products_are_filtered(shop):
    order = _trending_order(shop)
    placement(shop, "trending", TRENDING)
    product_deactivate(shop=shop, sku=order[0])
    Product.objects.filter(shop=shop, sku=order[1]).update(in_stock=False)
    _refresh(shop)

    assert skus(serve(shop, "trending")) == order[2:10]


def test_out_of_stock_products_are_served_when_the_strategy_allows_them(shop):
    order = _trending_order(shop)
    placement(shop, "with-stockouts", {**TRENDING, "filters": {"in_stock": False}})
    Product.objects.filter(shop=shop, sku=order[0]).update(in_stock=False)
    _refresh(shop)

    assert skus(serve(shop, "with-stockouts")) == order[:8]


def test_purchases_are_filtered_only_when_the_strategy_says_so(shop):
    order = _trending_order(shop)
    placement(shop, "no-repeats", {**TRENDING, "filters": {"exclude_purchased": True}})
    placement(shop, "repeats", {**TRENDING, "filters": {"exclude_purchased": False}})
    _purchase(shop, "buyer", order[0])
    _purchase(shop, "buyer", order[2])

    assert skus(serve(shop, "no-repeats", shopper_id="buyer")) == [order[1], *order[3:10]]
    assert skus(serve(shop, "repeats", shopper_id="buyer")) == order[:8]


def test_context_items_are_never_served(shop):
    order = _trending_order(shop)
    placement(shop, "trending-anywhere", {"sources": {"trending": 1.0}, "size": 8})
    # The context item's category narrows trending; the context item itself is filtered.
    served = serve(shop, "trending-anywhere", context_skus=(order[0], "NO-SUCH-SKU"))

    same_category = [sku for sku in order[1:] if int(sku[1:]) % 4 == int(order[0][1:]) % 4]
    assert skus(served) == same_category[:8]


def test_price_and_category_filters(shop):
    order = _trending_order(shop)
    cheap = order[:5]
    Product.objects.filter(shop=shop, sku__in=cheap).update(price=5)
    Product.objects.filter(shop=shop).exclude(sku__in=cheap).update(price=50)
    _refresh(shop)
    placement(shop, "cheap", {**TRENDING, "filters": {"price_max": 10}})
    placement(shop, "category-1", {**TRENDING, "filters": {"categories": ["Category 1"]}})

    assert skus(serve(shop, "cheap")) == cheap
    served = serve(shop, "category-1")
    assert [served.snapshot.category_path(item.index) for item in served.items] == ["Category 1"] * 8
    assert skus(served) == [sku for sku in order if int(sku[1:]) % 4 == 1][:8]


def test_empty_history_and_unknown_items_still_fill_the_list_from_fallbacks(shop):
    order = _trending_order(shop)
    placement(shop, "personal-only", {"sources": {"personal": 1.0}, "size": 10})

    served = serve(shop, "personal-only", shopper_id="never-seen", context_skus=("NOPE",))

    assert skus(served) == order[:10]
    assert [item.fallback for item in served.items] == ["trending"] * 10
    assert [item.reasons for item in served.items] == [["Popular in the shop"]] * 10
    assert all(item.sources == {} for item in served.items)


def test_when_every_candidate_is_filtered_the_fallbacks_respect_the_filters(shop):
    placement(
        shop, "trending-cat-2", {"sources": {"trending": 1.0}, "size": 12, "filters": {"categories": ["Category 2"]}}
    )

    served = serve(shop, "trending-cat-2")

    # Only 10 products pass the filter: the list holds all of them, and no other.
    assert sorted(skus(served)) == [f"P{p:04d}" for p in range(2, 40, 4)]


def test_a_shop_without_any_model_is_served_its_newest_products(db):
    shop = ShopFactory()
    old = ProductFactory(shop=shop, sku="OLD")
    Product.objects.filter(pk=old.pk).update(created_at=datetime.now(UTC) - timedelta(days=3))
    for n in range(5):
        ProductFactory(shop=shop, sku=f"NEW-{n}")
    ProductFactory(shop=shop, sku="GONE", active=False)
    placement(shop, "home", {"sources": {"personal": 1.0, "trending": 1.0}, "size": 10})

    served = serve(shop, "home", shopper_id="anyone")

    assert skus(served) == ["NEW-4", "NEW-3", "NEW-2", "NEW-1", "NEW-0", "OLD"]
    assert {item.fallback for item in served.items} == {"recent"}


def test_provenance_names_each_source_with_its_raw_score(shop):
    placement(shop, "two-sources", {"sources": {"trending": 1.0, "new_arrivals": 0.5}, "size": 8})
    trending = registry.state(shop.pk).models["trending"].model

    served = serve(shop, "two-sources", explain=True)

    state = registry.state(shop.pk)
    model_item = {pid: i for i, pid in enumerate(state.models["trending"].product_ids.tolist())}
    for item in served.items:
        product_id = int(served.snapshot.product_ids[item.index])
        assert set(item.sources) <= {"trending", "new_arrivals"}
        assert item.sources["trending"] == pytest.approx(float(trending.scores()[model_item[product_id]]), rel=1e-5)
        assert item.reasons[0] == "Trending now"


def test_promotions_move_items_and_say_so(shop):
    order = _trending_order(shop)
    placement(shop, "promoted", TRENDING)
    boost, pin = _live(
        shop,
        {"name": "Push", "target": {"skus": [order[9]]}, "action": "boost", "factor": 100},
        {"name": "Pin", "target": {"skus": [order[20]]}, "action": "pin", "slot": 3},
    )

    served = serve(shop, "promoted", explain=True)

    assert skus(served)[:3] == [order[9], order[0], order[20]]
    assert served.items[0].promotion_ids == [boost.pk]
    assert served.items[0].rule_reasons == ['boosted x100 by promotion "Push"']
    assert served.items[2].pinned_slot == 3
    assert served.items[2].promotion_ids == [pin.pk]
    assert served.items[2].rule_reasons == ['pinned to slot 3 by promotion "Pin"']
    assert served.items[1].promotion_ids == [] and served.items[1].rule_reasons == []


def test_a_pin_that_lost_its_slot_is_credited_to_itself_only(shop):
    # Both pins want slot 1 and "Holder" (higher priority) also matches the item "Mover"
    # pins: the moved item's reason names both, its provenance only the pin that placed it.
    order = _trending_order(shop)
    placement(shop, "contested", TRENDING)
    holder, mover = _live(
        shop,
        {"name": "Holder", "target": {"skus": [order[10], order[20]]}, "action": "pin", "slot": 1, "priority": 5},
        {"name": "Mover", "target": {"skus": [order[20]]}, "action": "pin", "slot": 1},
    )

    served = serve(shop, "contested", explain=True)

    assert skus(served)[:2] == [order[10], order[20]]
    assert served.items[0].promotion_ids == [holder.pk]
    assert (served.items[1].pinned_slot, served.items[1].promotion_ids) == (2, [mover.pk])
    assert 'promotion "Holder"' in served.items[1].rule_reasons[0]


def test_a_pin_beyond_the_list_served_leaves_its_item_where_it_ranks(shop):
    # The rules see more candidates than the 8 slots (for diversity to choose from), but
    # a pin to slot 20 is a pin for longer lists: here its item keeps its own place.
    order = _trending_order(shop)
    placement(shop, "short", TRENDING)
    _live(shop, {"name": "Far", "target": {"skus": [order[2]]}, "action": "pin", "slot": 20})

    served = serve(shop, "short", explain=True)

    assert skus(served) == order[:8]
    assert served.items[2].pinned_slot is None and served.items[2].promotion_ids == []
    assert served.result.notes == ['promotion "Far" pins to slot 20, beyond the 8 items served']


def test_category_cap_keeps_pins_in_place(shop):
    order = _trending_order(shop)
    placement(shop, "diverse", {"sources": {"trending": 1.0}, "size": 12, "diversity": {"max_per_category": 2}})
    category_0 = [sku for sku in order if int(sku[1:]) % 4 == 0]
    _live(shop, {"name": "Pin", "target": {"skus": [category_0[5]]}, "action": "pin", "slot": 1})

    served = serve(shop, "diverse")

    # Slot 1 is the pin; then trending order, two per category (the pin counts); once
    # every category is full the cap is relaxed rather than the list left short.
    rest = [sku for sku in order if sku != category_0[5]]
    counts = Counter({0: 1})
    admitted, held_back = [], []
    for sku in rest:
        category = int(sku[1:]) % 4
        if counts[category] < 2:
            counts[category] += 1
            admitted.append(sku)
        else:
            held_back.append(sku)
    assert skus(served) == [category_0[5], *admitted, *held_back[:4]]
    categories = [served.snapshot.category_path(item.index) for item in served.items]
    assert Counter(categories[:8]) == {"Category 0": 2, "Category 1": 2, "Category 2": 2, "Category 3": 2}


def test_mmr_spreads_the_first_items_over_categories(shop):
    placement(shop, "mmr", {"sources": {"trending": 1.0}, "size": 8, "diversity": {"mmr_lambda": 0.9}})

    served = serve(shop, "mmr")

    assert len({served.snapshot.category_path(item.index) for item in served.items[:4]}) == 4
