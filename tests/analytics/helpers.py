"""Building blocks of the analytics tests: served lists and events written as serving and
ingestion write them, and snapshots of the derived tables."""

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import count
from typing import Any

from analytics.models import (
    AttributedEvent,
    ExperimentUnit,
    ExperimentUnitHour,
    ModelVersionRollup,
    PlacementRollup,
    PromotedItemRollup,
    PromotionRollup,
    ServedProductBit,
)
from analytics.rollups import RunReport, rollups_run
from campaigns import services as campaigns_services
from campaigns.models import Experiment, Placement
from campaigns.services import VariantSpec
from catalog.audit import Actor
from catalog.models import Event, Product, Shop, Shopper
from recommender.models import ServedList

_events = count(1)


def unit_hash_of(unit_id: str) -> str:
    """A stand-in for serving's keyed hash of the unit id (any stable hash will do here)."""
    return hashlib.sha256(f"unit:{unit_id}".encode()).hexdigest()[:32]


def serve(
    shop: Shop,
    products: Sequence[Product],
    served_at: datetime,
    *,
    placement: str = "pdp",
    shopper: Shopper | None = None,
    unit_id: str = "",
    experiment: tuple[int, int, str] | None = None,
    promotions: dict[int, list[int]] | None = None,
    model_versions: dict[str, int] | None = None,
) -> ServedList:
    """A served list of ``products`` in order; ``promotions``: product id -> promotion ids;
    ``experiment``: (id, version, variant)."""
    experiment_id, version, variant = experiment if experiment else (None, None, "")
    return ServedList.objects.create(
        request_id=uuid.uuid4(),
        shop=shop,
        placement_slug=placement,
        experiment_id=experiment_id,
        experiment_version=version,
        variant=variant,
        shopper=shopper,
        unit_hash=unit_hash_of(unit_id) if unit_id else "",
        items=[
            {
                "product_id": product.pk,
                "sku": product.sku,
                "position": position,
                "score": 1.0 / position,
                "sources": {"trending": 0.5},
                "promotion_ids": (promotions or {}).get(product.pk, []),
                "reasons": [],
            }
            for position, product in enumerate(products, start=1)
        ],
        model_versions=model_versions or {},
        latency_ms=12.0,
        served_at=served_at,
    )


def event(
    shop: Shop,
    type: str,
    shopper: Shopper,
    product: Product | None,
    ts: datetime,
    *,
    served: ServedList | None = None,
    request_id: str | None = None,
    quantity: int = 1,
    price: str | None = None,
    sku: str | None = None,
) -> Event:
    """An event as ingestion stores it; ``served``: it carries that list's request id."""
    return Event.objects.create(
        shop=shop,
        event_id=f"analytics-{next(_events)}",
        type=type,
        shopper=shopper,
        product=product,
        sku=sku if sku is not None else (product.sku if product is not None else "UNKNOWN"),
        ts=ts,
        quantity=quantity,
        price=Decimal(price) if price is not None else None,
        request_id=request_id if request_id is not None else (str(served.request_id) if served else ""),
    )


DERIVED = (
    AttributedEvent,
    PlacementRollup,
    PromotionRollup,
    PromotedItemRollup,
    ModelVersionRollup,
    ExperimentUnitHour,
    ExperimentUnit,
    ServedProductBit,
)


def snapshot(shop: Shop) -> dict[str, list[tuple[Any, ...]]]:
    """Every derived row of the shop, without surrogate ids, in a stable order."""
    tables = {}
    for model in DERIVED:
        names = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows = [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in model.objects.filter(shop=shop).values_list(*names)
        ]
        tables[model.__name__] = sorted(rows, key=repr)
    return tables


def catch_up(shop_id: int) -> RunReport:
    """Run the rollups of a shop until they are caught up (however slow the machine)."""
    report = rollups_run(shop_id, budget_s=600.0)
    assert report.finished, report
    return report


def split_experiment(
    shop: Shop, placement: Placement, *, started: datetime | None = None, start: bool = True, **fields: Any
) -> Experiment:
    """An experiment on ``placement`` with a control and a "b" arm, 50/50, started at
    ``started`` (default now) unless ``start`` is False (a draft)."""
    actor = Actor.system("tests")
    experiment = campaigns_services.experiment_create(
        shop=shop,
        actor=actor,
        fields={"name": "Split", "placement": placement, **fields},
        variants=[VariantSpec("control", 50, is_control=True), VariantSpec("b", 50)],
    )
    if not start:
        return experiment
    return campaigns_services.experiment_start(experiment=experiment, actor=actor, now=started)
