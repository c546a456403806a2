"""Setting up a new shop: the tenant row, its first keys and its default placements.

Lives in recsite/ because it spans apps (catalog for the shop and keys, campaigns for
placements); nothing below recsite imports it.
"""

from dataclasses import dataclass

from django.db import transaction

from campaigns.services import placements_create_defaults
from catalog.api_keys import api_key_create
from catalog.audit import Actor, audit_record
from catalog.models import ApiKey, Shop


@dataclass(frozen=True)
class NewShop:
    shop: Shop
    publishable_key: str  # shown once, never stored
    secret_key: str  # shown once, never stored


@transaction.atomic
def shop_create(
    *,
    name: str,
    slug: str,
    timezone: str = "UTC",
    currency: str = "EUR",
    allowed_origins: list[str] | None = None,
    actor: Actor,
) -> NewShop:
    shop = Shop(name=name, slug=slug, timezone=timezone, currency=currency)
    shop.full_clean()
    shop.save()
    audit_record(
        shop=shop,
        actor=actor,
        action="create",
        object_type="shop",
        object_id=shop.pk,
        object_repr=shop.name,
        after={"name": name, "slug": slug, "timezone": timezone, "currency": currency},
    )
    publishable = api_key_create(
        shop=shop,
        kind=ApiKey.Kind.PUBLISHABLE,
        name="Widget",
        allowed_origins=allowed_origins or [],
        actor=actor,
    )
    secret = api_key_create(shop=shop, kind=ApiKey.Kind.SECRET, name="Server", actor=actor)
    placements_create_defaults(shop=shop, actor=actor)
    return NewShop(shop=shop, publishable_key=publishable.raw, secret_key=secret.raw)
