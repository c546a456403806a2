"""POST /api/v1/events: the contract, partial success and idempotency."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from catalog.models import Event, Rejection
from tests.factories import ProductFactory

URL = "/api/v1/events"


def event(n: int = 1, **overrides):
    body = {
        "event_id": f"e-{n}",
        "type": "view",
        "shopper": "s-1",
        "sku": "SKU-A",
        "ts": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    body.update(overrides)
    return body


@pytest.fixture
def product(shop):
    return ProductFactory(shop=shop, sku="SKU-A")


def test_valid_events_are_accepted_and_stored(api, secret_key, shop, product):
    # Given two valid events
    # When they are posted
    response = api(secret_key).post(
        URL, {"events": [event(1), event(2, type="purchase", price=9.5, quantity=2)]}, format="json"
    )
    # Then both are stored for the shop
    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "rejected": [], "warnings": []}
    stored = Event.objects.get(shop=shop, event_id="e-2")
    assert (stored.type, stored.quantity, str(stored.price), stored.product_id) == ("purchase", 2, "9.50", product.pk)


def test_replayed_event_is_a_duplicate_not_a_second_row(api, secret_key, shop, product):
    client = api(secret_key)
    client.post(URL, {"events": [event(1)]}, format="json")
    response = client.post(URL, {"events": [event(1), event(1)]}, format="json")
    assert response.json()["accepted"] == 0
    assert response.json()["duplicates"] == 2
    assert Event.objects.filter(shop=shop, event_id="e-1").count() == 1


def test_invalid_events_are_rejected_with_reasons_and_kept(api, secret_key, shop, product):
    response = api(secret_key).post(
        URL, {"events": [event(1), event(2, type="wink"), event(3, quantity="2")]}, format="json"
    )
    body = response.json()
    assert response.status_code == 200
    assert body["accepted"] == 1
    assert body["rejected"] == [
        {
            "index": 1,
            "event_id": "e-2",
            "field": "type",
            "reason": "must be one of add_to_cart, click, impression, purchase, view, got 'wink'",
        },
        {"index": 2, "event_id": "e-3", "field": "quantity", "reason": "must be a whole number, got a string"},
    ]
    kept = Rejection.objects.filter(shop=shop, kind="event").order_by("record_id")
    assert [json.loads(r.payload)["event_id"] for r in kept] == ["e-2", "e-3"]


def test_unknown_sku_is_kept_and_flagged(api, secret_key, shop):
    response = api(secret_key).post(URL, {"events": [event(1, sku="NOPE")]}, format="json")
    assert response.json()["accepted"] == 1
    assert response.json()["warnings"] == [
        {"index": 0, "event_id": "e-1", "field": "sku", "reason": "unknown product; the event is kept"}
    ]
    stored = Event.objects.get(shop=shop, event_id="e-1")
    assert (stored.product_id, stored.sku) == (None, "NOPE")


def test_text_plain_body_with_key_in_body_works_for_beacons(api, publishable_key, shop, product):
    body = json.dumps({"key": publishable_key, "events": [event(1)]})
    response = api(None).post(URL, body, content_type="text/plain", HTTP_ORIGIN="https://shop.example")
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


def test_secret_key_in_body_is_refused(api, secret_key):
    body = json.dumps({"key": secret_key, "events": [event(1)]})
    response = api(None).post(URL, body, content_type="text/plain")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_publishable_key_from_unknown_origin_is_forbidden(api, publishable_key, product):
    response = api(publishable_key).post(URL, {"events": [event(1)]}, format="json", HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"


def test_no_key_is_401(api):
    response = api(None).post(URL, {"events": []}, format="json")
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "details"}
