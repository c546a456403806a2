"""Synthetic inputs for the rules benchmark, built in memory (no database): a catalog
snapshot of N products and a campaign state with live promotions and seasonal boosts."""

from datetime import UTC, datetime, time, timedelta
from types import MappingProxyType

import numpy as np

from campaigns.candidates import Candidate
from campaigns.schedule import DailyHours, Schedule, SeasonalWindow, YearlyWindow
from campaigns.state import CampaignState, PlacementState, PromotionRule, SeasonalRule
from campaigns.strategy import default_strategy
from campaigns.targets import Target
from catalog.snapshot import CatalogSnapshot, CategoryTree

TOP_CATEGORIES = 20
SUBCATEGORIES = 10
BRANDS = 500
TAGS = 200
COLORS = ("red", "blue", "green", "black", "white", "grey", "pink", "brown", "yellow", "purple", "orange", "beige")
SIZES = ("XS", "S", "M", "L", "XL", "XXL", "36", "42")


def synthetic_snapshot(products: int, *, at: datetime, seed: int = 7) -> CatalogSnapshot:
    """A shop of ``products`` products in 20 x 10 categories, 500 brands, 200 tags,
    colour and size attributes; 95 % in stock, 98 % active, created over the last year."""
    rng = np.random.default_rng(seed)
    parent: dict[int, int | None] = {}
    path: dict[int, str] = {}
    leaves = []
    for top in range(TOP_CATEGORIES):
        top_id = 1 + top * (SUBCATEGORIES + 1)
        parent[top_id], path[top_id] = None, f"Dept {top}"
        for sub in range(SUBCATEGORIES):
            sub_id = top_id + 1 + sub
            parent[sub_id], path[sub_id] = top_id, f"Dept {top} > Aisle {sub}"
            leaves.append(sub_id)
    skus = [f"SKU-{i:06d}" for i in range(products)]
    tag_counts = rng.integers(0, 4, products)
    tag_ids = rng.integers(0, TAGS, int(tag_counts.sum()))
    tags, cursor = [], 0
    for count in tag_counts:
        tags.append(tuple(f"tag-{t}" for t in tag_ids[cursor : cursor + count]))
        cursor += count
    colors = rng.integers(0, len(COLORS), products)
    sizes = rng.integers(0, len(SIZES), products)
    return CatalogSnapshot(
        shop_id=-1,
        version=1,
        loaded_through=at,
        product_ids=np.arange(1, products + 1, dtype=np.int64),
        skus=skus,
        titles=[f"Product {i}" for i in range(products)],
        urls=[""] * products,
        image_urls=[""] * products,
        prices=np.round(rng.lognormal(3.5, 0.8, products), 2),
        brands=[f"Brand {b}" for b in rng.integers(0, BRANDS, products)],
        category_ids=np.array(leaves, dtype=np.int64)[rng.integers(0, len(leaves), products)],
        tags=tags,
        attributes=[{"color": COLORS[c], "size": SIZES[s]} for c, s in zip(colors, sizes, strict=True)],
        in_stock=rng.random(products) < 0.95,
        active=rng.random(products) < 0.98,
        created_ts=at.timestamp() - rng.random(products) * 365 * 86400,
        categories=CategoryTree(parent=parent, path=path),
        index_by_sku={sku: i for i, sku in enumerate(skus)},
        index_by_product_id={i + 1: i for i in range(products)},
    )


def _target(rng: np.random.Generator, kind: int, products: int) -> Target:
    if kind == 0:
        return Target(skus=tuple(f"SKU-{i:06d}" for i in rng.integers(0, products, int(rng.integers(1, 30)))))
    if kind == 1:
        return Target(categories=(f"Dept {rng.integers(TOP_CATEGORIES)} > Aisle {rng.integers(SUBCATEGORIES)}",))
    if kind == 2:
        return Target(brands=tuple(f"Brand {b}" for b in rng.integers(0, BRANDS, 3)))
    if kind == 3:
        return Target(tags=(f"tag-{rng.integers(TAGS)}",), price_max=float(rng.integers(20, 200)))
    if kind == 4:
        return Target(categories=(f"Dept {rng.integers(TOP_CATEGORIES)}",), attributes=(("color", ("red", "blue")),))
    return Target(new_within_days=int(rng.integers(7, 60)))


def synthetic_state(promotions: int, boosts: int, *, products: int, at: datetime, seed: int = 11) -> CampaignState:
    """One placement ("home") with ``promotions`` promotions live at ``at`` (pins, boosts,
    buries, excludes, a few restricts that allow everything, some on recurring schedules)
    and ``boosts`` seasonal boosts in their ramp or full phase."""
    rng = np.random.default_rng(seed)
    strategy = default_strategy("home")
    placement = PlacementState(1, "home", "Home", "home", 1, strategy, True, None)
    actions = ["pin"] * 20 + ["boost"] * 100 + ["bury"] * 40 + ["exclude"] * 36 + ["restrict"] * 4
    rules = []
    for i in range(promotions):
        action = actions[i % len(actions)]
        schedule = Schedule(starts_at=at - timedelta(days=3), ends_at=at + timedelta(days=20))
        if i % 5 == 1:
            schedule = Schedule(
                yearly=YearlyWindow((at.month, 1), (at.month, 28)), hours=DailyHours(time(0), time(23, 59))
            )
        target = Target(price_max=1e9) if action == "restrict" else _target(rng, i % 6, products)
        rules.append(
            PromotionRule(
                id=i + 1,
                name=f"Promotion {i}",
                action=action,
                target=target,
                slot=int(rng.integers(1, 11)) if action == "pin" else None,
                factor=float(rng.choice([1.2, 1.5, 2.0, 3.0])) if action == "boost" else None,
                priority=int(rng.integers(0, 5)),
                created_at=at - timedelta(days=30, minutes=i),
                all_placements=True,
                placement_ids=frozenset(),
                schedule=schedule,
            )
        )
    rules.sort(key=lambda r: (-r.priority, r.created_at, r.id))
    seasonal = [
        SeasonalRule(
            id=i + 1,
            name=f"Season {i}",
            categories=(f"Dept {i % TOP_CATEGORIES}",) if i % 2 == 0 else (),
            tags=(f"tag-{i}",) if i % 2 else (f"tag-{i + 100}",),
            factor=1.5,
            window=SeasonalWindow(
                first_day=(at - timedelta(days=5 + i)).date(), last_day=(at + timedelta(days=30)).date()
            ),
            ramp_up_days=10,
            ramp_down_days=5,
        )
        for i in range(boosts)
    ]
    return CampaignState(
        shop_id=-1,
        version=1,
        timezone="Europe/Berlin",
        placements=MappingProxyType({"home": placement}),
        promotions=tuple(rules),
        seasonal_boosts=tuple(seasonal),
        experiments=MappingProxyType({}),
    )


def synthetic_requests(
    snapshot: CatalogSnapshot, requests: int, candidates: int, *, seed: int = 13
) -> list[list[Candidate]]:
    """Per request, ``candidates`` distinct recommendable products with blended scores."""
    rng = np.random.default_rng(seed)
    pool = np.flatnonzero(snapshot.recommendable)
    out = []
    for _ in range(requests):
        picked = rng.choice(pool, candidates, replace=False)
        scores = np.sort(rng.random(candidates))[::-1]
        out.append(
            [
                Candidate(index=int(i), score=float(s), sources={"personal": float(s)}, reasons=[])
                for i, s in zip(picked, scores, strict=True)
            ]
        )
    return out


BENCH_INSTANT = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
