"""DELETE /api/v1/shoppers/{id}: events, profile, rejections naming them, cached history."""

import pytest
from django.core.cache import cache

from catalog.models import AuditEntry, Event, Rejection, Shopper
from catalog.selectors import shopper_history
from catalog.services import shopper_history_cache_key, shopper_key_hash
from tests.factories import ProductFactory, event_payload

EVENTS = "/api/v1/events"


@pytest.fixture
def client(api, secret_key):
    return api(secret_key)


@pytest.fixture
def history(client, shop):
    """Shopper s-1 with two events and a rejected event; shopper s-2 with one event."""
    ProductFactory(shop=shop, sku="SKU-A")
    events = [
        event_payload(1, shopper="s-1"),
        event_payload(2, shopper="s-1", type="click"),
        event_payload(3, shopper="s-2"),
        event_payload(4, shopper="s-1", type="wink"),
        event_payload(5, shopper="s-2", type="wink"),
    ]
    response = client.post(EVENTS, {"events": events}, format="json")
    assert response.json()["accepted"] == 3
    return shop


def test_erasure_removes_the_shoppers_events_profile_and_rejections(
    client, history, shop, django_capture_on_commit_callbacks
):
    # Given the history above, with s-1's recent events cached
    assert sorted(shopper_history(shop, "s-1").types) == ["click", "view"]
    key_hash = shopper_key_hash(shop, "s-1")
    assert cache.get(shopper_history_cache_key(shop.pk, key_hash)) is not None
    # When s-1 is erased (and the transaction commits)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.delete("/api/v1/shoppers/s-1")
    # Then their events, profile, rejected events and cached history are gone; s-2's are not
    assert response.status_code == 200
    assert response.json() == {"found": True, "events_deleted": 2}
    assert list(Event.objects.filter(shop=shop).values_list("event_id", flat=True)) == ["e-3"]
    assert not Shopper.objects.filter(shop=shop, key_hash=key_hash).exists()
    assert list(Rejection.objects.filter(shop=shop).values_list("record_id", flat=True)) == ["e-5"]
    assert cache.get(shopper_history_cache_key(shop.pk, key_hash)) is None
    assert len(shopper_history(shop, "s-1")) == 0
    entry = AuditEntry.objects.get(shop=shop, action="erase")
    assert (entry.object_type, entry.before, entry.actor_label.startswith("key:")) == ("shopper", {"events": 2}, True)


def test_erasing_an_unknown_shopper_finds_nothing(client, history, shop):
    response = client.delete("/api/v1/shoppers/nobody")
    assert response.json() == {"found": False, "events_deleted": 0}
    assert Event.objects.filter(shop=shop).count() == 3


def test_erasure_is_idempotent(client, history):
    client.delete("/api/v1/shoppers/s-1")
    assert client.delete("/api/v1/shoppers/s-1").json() == {"found": False, "events_deleted": 0}


def test_the_id_is_cleaned_as_at_ingestion(client, history, shop):
    # " s-1 " was stored as "s-1" (ids are trimmed): erasing " s-1 " erases them
    response = client.delete("/api/v1/shoppers/%20s-1%20")
    assert response.json() == {"found": True, "events_deleted": 2}


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/api/v1/shoppers/" + "x" * 257, "must be at most 256 characters, got 257"),
        ("/api/v1/shoppers/a%00b", "must not contain control characters, NUL or lone surrogates"),
        ("/api/v1/shoppers/%20", "must not be empty"),
    ],
)
def test_an_id_no_shopper_can_have_is_a_400(client, shop, path, reason):
    response = client.delete(path)
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"shopper": [reason]}


def test_a_shopper_who_comes_back_is_a_new_shopper(client, history, shop):
    client.delete("/api/v1/shoppers/s-1")
    client.post(EVENTS, {"events": [event_payload(9, shopper="s-1")]}, format="json")
    assert Event.objects.filter(shop=shop, shopper__key_hash=shopper_key_hash(shop, "s-1")).count() == 1


def test_a_publishable_key_cannot_erase(api, publishable_key, history):
    response = api(publishable_key).delete("/api/v1/shoppers/s-1")
    assert response.status_code == 403
    assert Event.objects.count() == 3
