"""Throttles: per API key and per client address, 429 with Retry-After, forged
X-Forwarded-For does not help, the trusted proxy's address is the client's."""

import os
import time

import pytest

from tests.factories import event_payload, make_key

URL = "/api/v1/events"


def send(client, **extra):
    return client.post(URL, {"events": [event_payload(1)]}, format="json", **extra)


def test_a_key_over_its_limit_gets_429_with_retry_after(api, secret_key, settings, throttle_clock):
    # Given a limit of 2 requests a minute per key, 30 s into the minute
    settings.API_THROTTLE_KEY_PER_MINUTE = 2
    client = api(secret_key)
    # When the key sends 3 requests
    statuses = [send(client).status_code for _ in range(3)]
    # Then the third is throttled until the minute ends
    assert statuses == [200, 200, 429]
    response = send(client)
    assert response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "throttled"


def test_the_limit_resets_with_the_next_window(api, secret_key, settings, throttle_clock):
    settings.API_THROTTLE_KEY_PER_MINUTE = 1
    client = api(secret_key)
    assert [send(client).status_code for _ in range(2)] == [200, 429]
    throttle_clock(1_800_000_030.0 + 60)
    assert send(client).status_code == 200


def test_each_key_has_its_own_limit(api, shop, settings, throttle_clock):
    settings.API_THROTTLE_KEY_PER_MINUTE = 1
    first, second = api(make_key(shop, "secret")), api(make_key(shop, "secret"))
    assert [send(first).status_code, send(second).status_code, send(first).status_code] == [200, 200, 429]


def test_a_forged_x_forwarded_for_does_not_dodge_the_address_limit(api, shop, settings, throttle_clock):
    # Given no trusted proxy and a limit of 2 requests a minute per address
    settings.TRUSTED_PROXY_COUNT = 0
    settings.API_THROTTLE_IP_PER_MINUTE = 2
    # When one address sends with a new key and a new forged X-Forwarded-For each time
    statuses = [
        send(
            api(make_key(shop, "secret")), HTTP_X_FORWARDED_FOR=f"203.0.113.{n}", REMOTE_ADDR="198.51.100.7"
        ).status_code
        for n in range(3)
    ]
    # Then the socket address counts: the third is throttled
    assert statuses == [200, 200, 429]


def test_behind_one_trusted_proxy_the_rightmost_address_counts(api, shop, settings, throttle_clock):
    # Given one trusted proxy (which appends the address it saw) and a limit of 1 per address
    settings.TRUSTED_PROXY_COUNT = 1
    settings.API_THROTTLE_IP_PER_MINUTE = 1
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def from_client(forwarded: str) -> int:
        return send(api(make_key(shop, "secret")), HTTP_X_FORWARDED_FOR=forwarded, **proxy).status_code

    # When a client forges entries left of the proxy's, and another client comes through the proxy
    first = from_client("203.0.113.9, 198.51.100.7")
    forged = from_client("203.0.113.10, 198.51.100.7")
    other_client = from_client("198.51.100.8")
    # Then the forged entry is ignored (same client, throttled); the other client is not
    assert (first, forged, other_client) == (200, 429, 200)


def test_the_schema_is_not_throttled(api, db, settings, throttle_clock):
    settings.API_THROTTLE_IP_PER_MINUTE = 1
    client = api(None)
    assert [client.get("/api/v1/schema").status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL=redis://...")
def test_throttle_counts_are_kept_in_redis(api, secret_key, settings, throttle_clock):
    # Given the cache in Redis (the production set-up: counters shared by all web processes)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["TEST_REDIS_URL"],
            "KEY_PREFIX": f"test-throttle-{os.getpid()}-{time.time_ns()}",
        }
    }
    from django.core.cache import cache

    settings.API_THROTTLE_KEY_PER_MINUTE = 2
    client = api(secret_key)
    # When the key sends 3 requests
    statuses = [send(client).status_code for _ in range(3)]
    # Then the third is throttled, and the window's counters (the key's and the
    # address's, counted in one round trip) live in Redis with an expiry
    assert statuses == [200, 200, 429]
    prefix = secret_key.split("_")[1]
    window = int(1_800_000_030.0 // 60)
    counters = [f"throttle:key:{prefix}:{window}", f"throttle:ip:127.0.0.1:{window}"]
    assert [cache.get(counter) for counter in counters] == [3, 3]
    import redis

    client = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
    assert all(0 < client.ttl(cache.make_key(counter)) <= 120 for counter in counters)
    cache.delete_many(counters)
