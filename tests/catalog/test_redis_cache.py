"""The Redis fast paths of the ingestion path (skipped without TEST_REDIS_URL)."""

import os
import time

import pytest
from django.core.cache import cache

from catalog.selectors import shopper_history
from catalog.services import shopper_history_cache_key, shopper_key_hash
from tests.factories import ProductFactory, event_payload

pytestmark = pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL=redis://...")


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["TEST_REDIS_URL"],
            "KEY_PREFIX": f"test-ingest-{os.getpid()}-{time.time_ns()}",
        }
    }
    return cache


def test_new_events_drop_the_cached_history_of_their_shopper(
    api, secret_key, shop, redis_cache, django_capture_on_commit_callbacks
):
    # Given a shopper whose recent events are cached in Redis
    ProductFactory(shop=shop, sku="SKU-A")
    client = api(secret_key)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/events", {"events": [event_payload(1)]}, format="json")
    assert len(shopper_history(shop, "s-1")) == 1
    key = shopper_history_cache_key(shop.pk, shopper_key_hash(shop, "s-1"))
    assert redis_cache.get(key) is not None
    # When another event of theirs comes in and commits
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/events", {"events": [event_payload(2, type="click")]}, format="json")
    # Then the cached history is gone, and the next read sees both events
    assert redis_cache.get(key) is None
    assert len(shopper_history(shop, "s-1")) == 2
    redis_cache.delete(key)
