"""Changing a shop's settings from the console: validated with Shop.full_clean, audited."""

from dataclasses import dataclass
from typing import Any

from django.db import transaction

from catalog.audit import Actor, audit_record
from catalog.models import Shop

EDITABLE_FIELDS = (
    "name",
    "timezone",
    "currency",
    "event_weights",
    "decay_half_life_days",
    "attribution_window_hours",
    "retrain_every_hours",
)


@dataclass(frozen=True)
class ShopSettings:
    name: str
    timezone: str
    currency: str
    event_weights: dict[str, float]
    decay_half_life_days: float
    attribution_window_hours: int
    retrain_every_hours: int


def shop_settings_of(shop: Shop) -> ShopSettings:
    return ShopSettings(**{name: getattr(shop, name) for name in EDITABLE_FIELDS})


def shop_settings_update(*, shop: Shop, settings: ShopSettings, actor: Actor) -> list[str]:
    """Apply the settings; the names of the fields that changed (none: nothing written).

    Raises django.core.exceptions.ValidationError (field -> messages) when
    ``Shop.full_clean`` refuses the values; the shop row is then unchanged.
    """
    with transaction.atomic():
        current = Shop.objects.select_for_update().get(pk=shop.pk)
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for name in EDITABLE_FIELDS:
            value = getattr(settings, name)
            if getattr(current, name) != value:
                before[name] = getattr(current, name)
                after[name] = value
                setattr(current, name, value)
        if not after:
            return []
        current.full_clean()
        current.save(update_fields=list(after))
        audit_record(
            shop=current,
            actor=actor,
            action="update",
            object_type="shop",
            object_id=current.pk,
            object_repr=current.name,
            before=before,
            after=after,
        )
    for name, value in after.items():
        setattr(shop, name, value)
    return list(after)
