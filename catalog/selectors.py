"""Reads of the catalog and behaviour store. Every read takes the shop."""

from dataclasses import dataclass
from datetime import datetime

from django.core.cache import cache
from django.db.models import QuerySet

from catalog.models import ApiKey, Event, EventType, Membership, Product, Rejection, Shop, Shopper
from catalog.services import SHOPPER_HISTORY_CACHE_S, shopper_history_cache_key, shopper_key_hash

SHOPPER_HISTORY_LENGTH = 100


@dataclass(frozen=True, slots=True)
class RecentEvent:
    product_id: int
    type: str
    ts: datetime
    session: str


def shop_by_slug(slug: str) -> Shop | None:
    return Shop.objects.filter(slug=slug).first()


def product_by_sku(shop: Shop, sku: str) -> Product | None:
    return Product.objects.filter(shop=shop, sku=sku).select_related("category").first()


def products_for_shop(shop: Shop) -> QuerySet[Product]:
    return Product.objects.filter(shop=shop)


def shopper_by_external_id(shop: Shop, external_id: str) -> Shopper | None:
    return Shopper.objects.filter(shop=shop, key_hash=shopper_key_hash(shop, external_id)).first()


def shopper_recent_events(shop: Shop, external_id: str) -> list[RecentEvent]:
    """The shopper's latest non-impression events on known products, newest first.

    Cached per shopper; ingestion and erasure delete the entry when they commit, so
    the next request sees what the shopper just did.
    """
    key_hash = shopper_key_hash(shop, external_id)
    cache_key = shopper_history_cache_key(shop.pk, key_hash)
    cached = cache.get(cache_key)
    if cached is not None:
        return [RecentEvent(*row) for row in cached]
    # The shopper first, then their events by (shopper, -ts): a join on key_hash lets the
    # planner walk the shop's whole event history by time instead.
    shopper_id = Shopper.objects.filter(shop=shop, key_hash=key_hash).values_list("pk", flat=True).first()
    if shopper_id is None:
        cache.set(cache_key, [], SHOPPER_HISTORY_CACHE_S)
        return []
    rows = list(
        Event.objects.filter(shop=shop, shopper_id=shopper_id, product__isnull=False)
        .exclude(type=EventType.IMPRESSION)
        .order_by("-ts", "-id")
        .values_list("product_id", "type", "ts", "session")[:SHOPPER_HISTORY_LENGTH]
    )
    cache.set(cache_key, rows, SHOPPER_HISTORY_CACHE_S)
    return [RecentEvent(*row) for row in rows]


def api_keys_for_shop(shop: Shop) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(shop=shop).order_by("-created_at")


def rejections_for_shop(shop: Shop, kind: str | None = None) -> QuerySet[Rejection]:
    rejections = Rejection.objects.filter(shop=shop).order_by("-received_at", "-id")
    return rejections.filter(kind=kind) if kind else rejections


def memberships_for_user(user_id: int) -> QuerySet[Membership]:
    return Membership.objects.filter(user_id=user_id).select_related("shop").order_by("shop__name")
