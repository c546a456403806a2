"""How much one event counts: its type's weight, its own weight, and how long ago it was."""

from collections.abc import Mapping

import numpy as np

from recommender.algorithms.data import History, Interactions, Query, event_type_codes

SECONDS_PER_DAY = 86_400.0


def default_event_weights() -> dict[str, float]:
    """The same defaults as the shop setting (catalog.models.default_event_weights):
    view < click < add_to_cart < purchase, impressions do not count."""
    return {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0, "impression": 0.0}


def time_decay(ts: np.ndarray, now: float, half_life_days: float | None) -> np.ndarray:
    """float32 factors ``0.5 ** (age / half_life)``; 1 for no half-life or future events."""
    if half_life_days is None:
        return np.ones(len(ts), dtype=np.float32)
    age_days = np.maximum(now - np.asarray(ts, dtype=np.float64), 0.0) / SECONDS_PER_DAY
    return np.exp2(-age_days / half_life_days).astype(np.float32)


def event_values(
    interactions: Interactions,
    *,
    event_weights: Mapping[str, float],
    half_life_days: float | None = None,
    now: float | None = None,
) -> np.ndarray:
    """float32 value of each event: type weight x own weight x time decay to ``now``
    (default: the last event's time)."""
    if now is None:
        now = float(interactions.ts.max()) if len(interactions) else 0.0
    type_weight = event_type_codes(event_weights)[interactions.event_type]
    return type_weight * interactions.weight * time_decay(interactions.ts, now, half_life_days)


def query_item_weights(
    query: Query,
    *,
    n_items: int,
    event_weights: Mapping[str, float],
    half_life_days: float | None,
    context_weight: float,
    max_events: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct items of a query and how much each counts, for folding it in.

    The last ``max_events`` history events count by type weight x own weight x decay to
    the query's time; each context item adds ``context_weight``. Items the model does not
    know (>= n_items) and items of weight 0 are dropped. Returns (int32 items, float32
    weights), items ascending.
    """
    history: History = query.history.last(max_events)
    now = query.reference_time()
    history_weight = (
        event_type_codes(event_weights)[history.event_type]
        * history.weight
        * time_decay(history.ts, now, half_life_days)
    )
    items = np.concatenate([history.item, query.context_items]).astype(np.int64)
    weights = np.concatenate([history_weight, np.full(len(query.context_items), context_weight, dtype=np.float32)])
    known = (items >= 0) & (items < n_items)
    distinct, inverse = np.unique(items[known], return_inverse=True)
    summed = np.bincount(inverse, weights=weights[known], minlength=len(distinct)).astype(np.float32)
    keep = summed > 0
    return distinct[keep].astype(np.int32), summed[keep]
