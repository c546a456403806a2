"""Tenant isolation: shop B's keys can neither read nor change anything of shop A."""

import pytest

from catalog.models import Event, Product, Rejection, Shopper
from catalog.services import shopper_key_hash
from tests.factories import ProductFactory, event_payload, product_payload


@pytest.fixture
def shop_a(api, shop, secret_key):
    """Shop A: a product "SECRET-1" titled "A's secret product", shopper "alice" with two events."""
    ProductFactory(shop=shop, sku="SECRET-1", title="A's secret product")
    events = [event_payload(1, shopper="alice", sku="SECRET-1"), event_payload(2, shopper="alice", sku="SECRET-1")]
    assert api(secret_key).post("/api/v1/events", {"events": events}, format="json").json()["accepted"] == 2
    return shop


@pytest.fixture
def as_b(api, other_secret_key):
    return api(other_secret_key)


def assert_nothing_of_a(response) -> None:
    assert b"secret product" not in response.content
    assert b"alice" not in response.content


def test_b_cannot_deactivate_a_product_of_a(shop_a, as_b):
    response = as_b.delete("/api/v1/products/SECRET-1")
    assert response.status_code == 404
    assert_nothing_of_a(response)
    assert Product.objects.get(shop=shop_a, sku="SECRET-1").active is True


def test_b_cannot_erase_a_shopper_of_a(shop_a, as_b):
    response = as_b.delete("/api/v1/shoppers/alice")
    assert response.json() == {"found": False, "events_deleted": 0}
    assert Event.objects.filter(shop=shop_a).count() == 2
    assert Shopper.objects.filter(shop=shop_a, key_hash=shopper_key_hash(shop_a, "alice")).exists()


def test_b_upserting_a_sku_of_a_makes_its_own_product(shop_a, other_shop, as_b):
    response = as_b.put("/api/v1/products", {"products": [product_payload("SECRET-1", title="B's")]}, format="json")
    assert response.json() == {"created": 1, "updated": 0, "unchanged": 0, "rejected": []}
    assert Product.objects.get(shop=shop_a, sku="SECRET-1").title == "A's secret product"
    assert Product.objects.get(shop=other_shop, sku="SECRET-1").title == "B's"


def test_b_cannot_attach_events_to_a_product_or_event_id_of_a(shop_a, other_shop, as_b):
    # B sends an event with A's SKU and A's event id
    response = as_b.post(
        "/api/v1/events", {"events": [event_payload(1, shopper="alice", sku="SECRET-1")]}, format="json"
    )
    assert response.json()["accepted"] == 1  # ids are per shop: not a duplicate of A's
    assert response.json()["warnings"][0]["reason"] == "unknown product; the event is kept"
    assert_nothing_of_a(response)
    event = Event.objects.get(shop=other_shop)
    assert event.product_id is None
    assert event.shopper.shop_id == other_shop.pk
    assert Event.objects.filter(shop=shop_a).count() == 2


def test_b_rejections_and_erasures_stay_in_b(shop_a, other_shop, as_b):
    as_b.post("/api/v1/events", {"events": [event_payload(1, shopper="alice", type="wink")]}, format="json")
    Rejection.objects.create(shop=shop_a, kind="event", source="api", payload='{"shopper": "alice"}', reasons=[])
    as_b.delete("/api/v1/shoppers/alice")
    assert Rejection.objects.filter(shop=shop_a).count() == 1
    assert Rejection.objects.filter(shop=other_shop).count() == 0


def test_a_publishable_key_of_b_cannot_send_events_for_a(api, shop_a, other_shop):
    from tests.factories import make_key

    key = make_key(other_shop, "publishable", allowed_origins=["https://b.example"])
    response = api(key).post(
        "/api/v1/events", {"events": [event_payload(9)]}, format="json", HTTP_ORIGIN="https://b.example"
    )
    assert response.status_code == 200
    assert Event.objects.filter(shop=shop_a).count() == 2
    assert Event.objects.filter(shop=other_shop).count() == 1
