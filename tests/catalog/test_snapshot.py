"""The in-memory catalog snapshot: full load and incremental refresh."""

from decimal import Decimal

from catalog.services import products_upsert
from catalog.snapshot import snapshot_load, snapshot_refresh


def test_load_then_refresh_sees_new_and_changed_products(shop):
    # Given a snapshot of a shop with two products
    products_upsert(
        shop=shop,
        records=[
            {"sku": "A", "title": "Apple", "price": 1.5, "category": "Food > Fruit", "tags": ["red"]},
            {"sku": "B", "title": "Bread", "price": "2.00", "category": "Food"},
        ],
    )
    first = snapshot_load(shop.pk)
    assert first.skus == ["A", "B"]
    assert first.category_path(0) == "Food > Fruit"
    # When one product changes and a new one arrives
    products_upsert(shop=shop, records=[{"sku": "B", "in_stock": False}, {"sku": "C", "title": "Cheese", "price": 4}])
    second = snapshot_refresh(first)
    # Then the refreshed snapshot has both changes and the old one is untouched
    assert second.skus == ["A", "B", "C"]
    assert second.in_stock.tolist() == [True, False, True]
    assert second.recommendable.tolist() == [True, False, True]
    assert first.in_stock.tolist() == [True, True]
    assert second.prices.tolist() == [1.5, 2.0, 4.0]
    assert second.index_by_sku["C"] == 2
    assert second.indices_of_product_ids([second.product_ids[2], 999999]).tolist() == [2, -1]
    food = next(cid for cid, path in second.categories.path.items() if path == "Food")
    assert {second.categories.path[c] for c in second.categories.descendants(food)} == {"Food", "Food > Fruit"}


def test_refresh_without_changes_returns_the_same_snapshot(shop):
    products_upsert(shop=shop, records=[{"sku": "A", "title": "Apple", "price": Decimal("1.00")}])
    first = snapshot_load(shop.pk)
    assert snapshot_refresh(first) is first


def test_product_id_lookup_handles_unknown_empty_and_unsorted_ids(shop):
    products_upsert(shop=shop, records=[{"sku": s, "title": s, "price": 1} for s in ("C", "A", "B")])
    snapshot = snapshot_load(shop.pk)
    ids = snapshot.product_ids
    assert snapshot.indices_of_product_ids([ids[2], -5, ids[0], ids[1], ids[2]]).tolist() == [2, -1, 0, 1, 2]
    assert snapshot.indices_of_product_ids([]).tolist() == []
    empty = snapshot_load(shop.pk + 1000)
    assert empty.indices_of_product_ids([1, 2]).tolist() == [-1, -1]
