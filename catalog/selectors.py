"""Reads of the catalog and behaviour store. Every read takes the shop."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from django.core.cache import cache
from django.db.models import QuerySet

from catalog.models import ApiKey, Event, EventType, Membership, Product, Rejection, Shop, Shopper
from catalog.redis_cache import cache_get
from catalog.services import SHOPPER_HISTORY_CACHE_S, shopper_history_cache_key, shopper_key_hash

SHOPPER_HISTORY_LENGTH = 100


# Event types as the history stores them (one byte each), in this order.
HISTORY_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EventType.values if t != EventType.IMPRESSION)
_HISTORY_TYPE_CODE = {name: code for code, name in enumerate(HISTORY_EVENT_TYPES)}


@dataclass(frozen=True, eq=False)
class ShopperHistory:
    """A shopper's latest non-impression events on known products, newest first, as
    arrays: what serving reads on every personal request (decoded from the cache in
    microseconds, no object per event)."""

    product_ids: np.ndarray  # int64
    type_codes: np.ndarray  # int8, index into HISTORY_EVENT_TYPES
    ts: np.ndarray  # float64, Unix seconds
    session_codes: np.ndarray  # int32, index into sessions
    sessions: tuple[str, ...]  # the distinct session ids

    def __len__(self) -> int:
        return len(self.product_ids)

    @property
    def types(self) -> list[str]:
        return [HISTORY_EVENT_TYPES[code] for code in self.type_codes.tolist()]

    def rows(self) -> list[tuple[int, str, float, str]]:
        """(product_id, type, unix seconds, session) per event, newest first."""
        sessions = [self.sessions[code] for code in self.session_codes.tolist()]
        return list(zip(self.product_ids.tolist(), self.types, self.ts.tolist(), sessions, strict=True))

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, str, float, str]]) -> "ShopperHistory":
        """From (product_id, type, unix seconds, session) rows, newest first."""
        distinct: dict[str, int] = {}
        return cls(
            product_ids=np.array([row[0] for row in rows], dtype=np.int64),
            type_codes=np.array([_HISTORY_TYPE_CODE[row[1]] for row in rows], dtype=np.int8),
            ts=np.array([row[2] for row in rows], dtype=np.float64),
            session_codes=np.array([distinct.setdefault(row[3], len(distinct)) for row in rows], dtype=np.int32),
            sessions=tuple(distinct),
        )

    def until(self, ts: float) -> "ShopperHistory":
        """The events at or before ``ts`` (Unix seconds)."""
        keep = self.ts <= ts
        return ShopperHistory(
            self.product_ids[keep], self.type_codes[keep], self.ts[keep], self.session_codes[keep], self.sessions
        )

    def to_cache(self) -> tuple[bytes, bytes, bytes, bytes, tuple[str, ...]]:
        return (
            self.product_ids.tobytes(),
            self.type_codes.tobytes(),
            self.ts.tobytes(),
            self.session_codes.tobytes(),
            self.sessions,
        )

    @classmethod
    def from_cache(cls, value: tuple[bytes, bytes, bytes, bytes, tuple[str, ...]]) -> "ShopperHistory":
        product_ids, type_codes, ts, session_codes, sessions = value
        return cls(
            np.frombuffer(product_ids, dtype=np.int64),
            np.frombuffer(type_codes, dtype=np.int8),
            np.frombuffer(ts, dtype=np.float64),
            np.frombuffer(session_codes, dtype=np.int32),
            sessions,
        )


NO_HISTORY = ShopperHistory.from_rows([])


def shop_by_slug(slug: str) -> Shop | None:
    return Shop.objects.filter(slug=slug).first()


def product_by_sku(shop: Shop, sku: str) -> Product | None:
    return Product.objects.filter(shop=shop, sku=sku).select_related("category").first()


def products_for_shop(shop: Shop) -> QuerySet[Product]:
    return Product.objects.filter(shop=shop)


def shopper_by_external_id(shop: Shop, external_id: str) -> Shopper | None:
    return Shopper.objects.filter(shop=shop, key_hash=shopper_key_hash(shop, external_id)).first()


def shopper_history(
    shop: Shop, external_id: str, *, prefetched: Mapping[str, Any] = MappingProxyType({})
) -> ShopperHistory:
    """The shopper's latest SHOPPER_HISTORY_LENGTH non-impression events on known
    products, newest first.

    Cached per shopper (``shopper_history_key``); ingestion and erasure delete the
    entry when they commit, so the next request sees what the shopper just did.
    ``prefetched``: cache values read already (the API throttle's round trip), by key.
    """
    key_hash = shopper_key_hash(shop, external_id)
    cache_key = shopper_history_cache_key(shop.pk, key_hash)
    cached = prefetched[cache_key] if cache_key in prefetched else cache_get(cache_key)
    if cached is not None:
        return ShopperHistory.from_cache(cached)
    # The shopper first, then their events by (shopper, -ts): a join on key_hash lets the
    # planner walk the shop's whole event history by time instead.
    shopper_id = Shopper.objects.filter(shop=shop, key_hash=key_hash).values_list("pk", flat=True).first()
    rows: list[tuple[int, str, float, str]] = []
    if shopper_id is not None:
        rows = [
            (product_id, event_type, ts.timestamp(), session)
            for product_id, event_type, ts, session in Event.objects.filter(
                shop=shop, shopper_id=shopper_id, product__isnull=False
            )
            .exclude(type=EventType.IMPRESSION)
            .order_by("-ts", "-id")
            .values_list("product_id", "type", "ts", "session")[:SHOPPER_HISTORY_LENGTH]
        ]
    history = ShopperHistory.from_rows(rows)
    cache.set(cache_key, history.to_cache(), SHOPPER_HISTORY_CACHE_S)
    return history


def shopper_history_key(shop: Shop, external_id: str) -> str:
    """The cache key of the shopper's history (for a caller that reads it ahead)."""
    return shopper_history_cache_key(shop.pk, shopper_key_hash(shop, external_id))


def api_keys_for_shop(shop: Shop) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(shop=shop).order_by("-created_at")


def rejections_for_shop(shop: Shop, kind: str | None = None) -> QuerySet[Rejection]:
    rejections = Rejection.objects.filter(shop=shop).order_by("-received_at", "-id")
    return rejections.filter(kind=kind) if kind else rejections


def memberships_for_user(user_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user_id).select_related("shop").order_by("shop__name")
