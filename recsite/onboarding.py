"""Setting up a new shop: the tenant row, its first keys and its default placements.

Lives in recsite/ because it spans apps (catalog for the shop and keys, campaigns for
placements); nothing below recsite imports it.
"""

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction

from campaigns.services import placements_create_defaults
from catalog.api_keys import api_key_create
from catalog.audit import Actor, audit_record
from catalog.models import ApiKey, Shop

# A shop's console lives at /console/<slug>/, next to the console's own pages
# (recsite/console_urls.py: login, logout, account); the site's top-level paths
# (recsite/urls.py, STATIC_URL) are reserved too, so that a shop never shadows a page
# of recsite nor is shadowed by one. tests/recsite/test_onboarding.py checks that every
# fixed first path segment of both URL confs is in this set.
RESERVED_SHOP_SLUGS = frozenset(
    {"login", "logout", "account", "console", "api", "docs", "admin", "static", "media", "healthz"}
)


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
    """Create the shop, its keys and default placements in one transaction. Raises
    ValidationError (keyed by field) for bad values, a taken slug or a reserved one."""
    if slug.strip().lower() in RESERVED_SHOP_SLUGS:
        raise ValidationError(
            {"slug": [f"{slug!r} is reserved for recsite's own pages (/console/{slug}/); choose another slug."]}
        )
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
