"""Shared fixtures: a shop with keys, API clients that send those keys."""

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from tests.factories import ShopFactory, make_key


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    skip = pytest.mark.skip(reason="needs Postgres (set DATABASE_URL=postgres://...)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_cache(settings: Any, tmp_path: Any) -> None:
    """Each test gets its own empty cache (throttle counters, shopper history)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": str(tmp_path)}
    }
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _serving_isolated(request: pytest.FixtureRequest, settings: Any, tmp_path: Any) -> Iterator[None]:
    """No serving state, refresher or served-list flusher carried from one test to the
    next or left running over a test's open transaction. Tests that need the threads
    turn them on themselves; browser tests keep them (a live server runs as production)."""
    from recommender.serving.log import served_log
    from recommender.serving.state import registry

    if request.node.get_closest_marker("browser") is None:
        settings.SERVING_BACKGROUND_THREADS = False
    settings.SERVING_INDEX_DIR = tmp_path / "serving-indexes"
    registry.reset()
    served_log.stop(flush=False)
    served_log.discard()
    yield
    registry.reset()
    served_log.stop(flush=False)
    served_log.discard()


@pytest.fixture(autouse=True)
def _forget_api_keys() -> None:
    from catalog import api_keys

    api_keys._cache.clear()
    api_keys._origins_cache = (0.0, frozenset())


@pytest.fixture
def shop(db: Any) -> Any:
    return ShopFactory()


@pytest.fixture
def secret_key(shop: Any) -> str:
    return make_key(shop, "secret")


@pytest.fixture
def publishable_key(shop: Any) -> str:
    return make_key(shop, "publishable", allowed_origins=["https://shop.example"])


@pytest.fixture
def api() -> Callable[[str | None], APIClient]:
    def client(key: str | None) -> APIClient:
        c = APIClient()
        if key:
            c.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return c

    return client


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def other_shop(db: Any) -> Any:
    """A second tenant, for isolation tests."""
    return ShopFactory()


@pytest.fixture
def other_secret_key(other_shop: Any) -> str:
    return make_key(other_shop, "secret")


@pytest.fixture
def throttle_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pins the clock of the API throttles (fixed one-minute windows): call it with a time."""
    from recsite.api import ApiThrottle

    def pin(now: float) -> None:
        monkeypatch.setattr(ApiThrottle, "clock", staticmethod(lambda: now))

    pin(1_800_000_030.0)  # 30 s into a window
    return pin
