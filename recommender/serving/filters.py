"""Step 5 of the request path: which products a strategy lets through, vectorised.

A product passes when it is active, in stock (if the strategy says so), inside the
strategy's price range and categories (a category includes its descendants), not one
of the request's context items and, if the strategy excludes purchases, not bought by
the shopper. The rules engine's exclusions come after (campaigns.rules); fallbacks go
through the same mask, so no step can bring back what a filter removed.
"""

from collections.abc import Iterable

import numpy as np

from campaigns.strategy import Filters
from catalog.snapshot import CatalogSnapshot
from recommender.serving.signals import Signals


def category_ids_for_paths(snapshot: CatalogSnapshot, paths: Iterable[str]) -> np.ndarray:
    """Sorted int64 ids of the categories at ``paths`` and below them (unknown paths: none)."""
    by_path = {path: category_id for category_id, path in snapshot.categories.path.items()}
    found: set[int] = set()
    for path in paths:
        category_id = by_path.get(path)
        if category_id is not None:
            found |= snapshot.categories.descendants(category_id)
    return np.array(sorted(found), dtype=np.int64)


def contains(sorted_values: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Boolean per value: whether it is in ``sorted_values`` (ascending). A binary search
    per value: for the few ids a request checks against (purchases, categories), several
    times cheaper than ``np.isin``, which on every call builds a table over the range of
    ``sorted_values`` or sorts both arrays together."""
    if not len(sorted_values):
        return np.zeros(len(values), dtype=bool)
    position = np.minimum(np.searchsorted(sorted_values, values), len(sorted_values) - 1)
    return sorted_values[position] == values


def passes(
    snapshot: CatalogSnapshot,
    items: np.ndarray,
    filters: Filters,
    signals: Signals,
    categories: np.ndarray | None,
) -> np.ndarray:
    """Boolean per item of ``items`` (snapshot indices). ``categories``: the sorted ids of
    ``category_ids_for_paths(filters.categories)``, or None when the strategy names none."""
    ok = snapshot.active[items]
    if filters.in_stock:
        ok &= snapshot.in_stock[items]
    if filters.price_min is not None:
        ok &= snapshot.prices[items] >= filters.price_min
    if filters.price_max is not None:
        ok &= snapshot.prices[items] <= filters.price_max
    if categories is not None:
        ok &= contains(categories, snapshot.category_ids[items])
    if len(signals.context):
        ok &= ~np.isin(items, signals.context)
    if filters.exclude_purchased and signals.has_history:
        ok &= ~contains(signals.purchased, items)
    return ok
