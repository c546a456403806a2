"""Fixtures for campaigns: a small catalog with a known shape, and helpers to publish rules."""

from datetime import UTC, datetime
from typing import Any

import pytest

from campaigns import services
from campaigns.candidates import Candidate
from campaigns.models import Placement, Promotion
from campaigns.state import CampaignState, state_load
from catalog.audit import Actor
from catalog.services import products_upsert
from catalog.snapshot import CatalogSnapshot, snapshot_load

ACTOR = Actor.system("tests")

# SKU, category, brand, tags, price, attributes, in stock, active
PRODUCTS = [
    ("SKU-1", "Toys > Lego", "Acme", ["gift"], 10, {}, True, True),
    ("SKU-2", "Toys", "Acme", [], 20, {}, True, True),
    ("SKU-3", "Toys > Dolls", "Bravo", ["Gift", "new"], 30, {}, True, True),
    ("SKU-4", "Garden", "Bravo", [], 40, {"color": "red"}, True, True),
    ("SKU-5", "Garden", "cobra", [], 50, {"color": ["Red", "blue"], "size": 42}, True, True),
    ("SKU-6", "Kitchen", "Cobra", [], 60, {}, False, True),
    ("SKU-7", "Kitchen", "Delta", [], 70, {}, True, False),
    ("SKU-8", "Kitchen", "", [], 80, {}, True, True),
    ("SKU-9", "Kitchen", "", [], 90, {}, True, True),
]
# The candidates a request brings: SKU-1..5 and SKU-8, best first.
CANDIDATE_SCORES = {"SKU-1": 0.9, "SKU-2": 0.8, "SKU-3": 0.7, "SKU-4": 0.6, "SKU-5": 0.5, "SKU-8": 0.4}

# Wednesday 2 December 2026, 12:00 UTC (13:00 in Berlin): inside the winter sale window.
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def snapshot(shop: Any) -> CatalogSnapshot:
    products_upsert(
        shop=shop,
        records=[
            {
                "sku": sku,
                "title": f"Product {sku}",
                "category": category,
                "brand": brand,
                "tags": tags,
                "price": price,
                "attributes": attributes,
                "in_stock": in_stock,
                "active": active,
            }
            for sku, category, brand, tags, price, attributes, in_stock, active in PRODUCTS
        ],
    )
    return snapshot_load(shop.pk)


@pytest.fixture
def placements(shop: Any) -> dict[str, Placement]:
    return {p.slug: p for p in services.placements_create_defaults(shop=shop, actor=ACTOR)}


def candidates(snapshot: CatalogSnapshot, scores: dict[str, float] | None = None) -> list[Candidate]:
    return [
        Candidate(index=snapshot.index_by_sku[sku], score=score, sources={"personal": score}, reasons=["personal"])
        for sku, score in (scores or CANDIDATE_SCORES).items()
    ]


def skus(snapshot: CatalogSnapshot, served: list[Candidate]) -> list[str]:
    return [snapshot.skus[c.index] for c in served]


def publish(shop: Any, *, placements: list[Placement] | None = None, **fields: Any) -> Promotion:
    """Create and publish a promotion (scope: all placements unless ``placements``)."""
    fields.setdefault("name", f"{fields['action'].title()} {fields['target']}")
    if placements:
        fields["all_placements"] = False
    promotion = services.promotion_create(shop=shop, actor=ACTOR, fields=fields, placements=placements)
    return services.promotion_publish(promotion=promotion, actor=ACTOR, now=datetime(2026, 1, 1, tzinfo=UTC))


def load(shop: Any) -> CampaignState:
    return state_load(shop.pk)
