"""Fast paths around Django's Redis cache for the hot ingestion and serving paths.

Django's RedisCache builds a new redis client object (with its callback tables) on
every call and validates every key for memcached compatibility; on a path that runs
per request with a hundred keys that costs more than the round trip. These helpers
use one client per cache object and fall back to the plain cache API for any other
backend (the file cache of the embedded set-up, the memory cache of the tests).
"""

from collections.abc import Sequence
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache


def redis_client(backend: Any) -> Any | None:
    """The redis client of the cache's write pool, made once per cache object; None
    when the cache is not Redis."""
    if not isinstance(backend, RedisCache):
        return None
    client = getattr(backend, "_recsite_client", None)
    if client is None:
        client = backend._cache.get_client(None, write=True)
        backend._recsite_client = client  # type: ignore[attr-defined]
    return client


def cache_get(key: str) -> Any:
    """The value of this key of the default cache, None when there is none."""
    backend = caches["default"]
    client = redis_client(backend)
    if client is None:
        return backend.get(key)
    return cache_value(client.get(backend.make_key(key)))


def cache_value(raw: bytes | None) -> Any:
    """A value read from the default cache's Redis as its backend stored it (None stays None)."""
    return None if raw is None else caches["default"]._cache._serializer.loads(raw)  # type: ignore[attr-defined]


def cache_delete_many(keys: Sequence[str]) -> None:
    """Delete these keys of the default cache (one round trip on Redis)."""
    if not keys:
        return
    backend = caches["default"]
    client = redis_client(backend)
    if client is None:
        backend.delete_many(keys)
    else:
        client.delete(*(backend.make_key(key) for key in keys))
