"""Candidate sources: each turns a request's signals into a ranked list of products
(snapshot indices) with its own raw scores, best first, at most ``k``.

These are the names a strategy weights (campaigns.strategy.SOURCES). A source whose
model is not loaded, or that has nothing to go on (no history, no context), returns an
empty list; the blend then rests on the others and the fallbacks fill what is missing.

- personal: the collaborative model (cold_start, else als) folds the shopper's latest
  events into a query vector (the model's own ``query_vector``: the exact ALS user
  step); top-k by its vector index, plus fresh products projected into the same space.
- session: the session model (sasrec) on the live session's items and the context items.
- similar: to the context items (or, without any, the shopper's latest items): text
  neighbours (text_similarity vectors and fresh embeddings) fused with behavioural ones
  (item_knn lists) by the shared normalised blend, equal weights.
- also_viewed / bought_together: the co-occurrence lists of the context items (cart
  items on a cart page); without context, of the latest events, read as the model reads
  a query (``query_item_weights`` with its own settings).
- trending: in the categories of the context items, else global.
- new_arrivals: the newest recommendable products (``ServingState.new_arrivals``),
  scored by recency, including products created seconds ago.

Every function is pure over immutable state: thread-safe.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from recommender.algorithms.blend import blend
from recommender.algorithms.cooccurrence import CoOccurrence
from recommender.algorithms.data import Query
from recommender.algorithms.item_knn import ItemKNN
from recommender.algorithms.neighbours import NeighbourLists
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.weighting import query_item_weights
from recommender.serving.bundle import NO_FRESH, FreshVectors, ModelView
from recommender.serving.filters import contains
from recommender.serving.signals import Signals

SECONDS_PER_DAY = 86_400.0
SIMILAR_ANCHORS_FROM_HISTORY = 5

_EMPTY = Ranking(items=np.zeros(0, dtype=np.int32), scores=np.zeros(0, dtype=np.float32))
_EMPTY_POSITIONS = np.zeros(0, dtype=np.intp)


@dataclass
class SourceInput:
    """One request's inputs to the sources, with what they share (the folded-in
    shopper vector is computed once, by the first source that needs it)."""

    view: ModelView
    signals: Signals
    new_arrivals: np.ndarray  # snapshot indices, newest first
    created_ts: np.ndarray  # float64 per snapshot index
    category_ids: np.ndarray  # int64 per snapshot index
    k: int
    _personal_vector: np.ndarray | None = field(default=None, init=False)
    _personal_done: bool = field(default=False, init=False)

    def personal_vector(self) -> np.ndarray | None:
        if not self._personal_done:
            self._personal_done = True
            kind = self.view.collaborative
            if kind is not None and self.signals.has_history:
                model = self.view.models[kind].model
                history = self.signals.model_history(self.view.spaces[kind].from_snapshot)
                self._personal_vector = model.query_vector(Query(history=history, now=self.signals.now))  # type: ignore[attr-defined]
        return self._personal_vector


def top(items: np.ndarray, scores: np.ndarray, k: int, *, distinct: bool = False) -> Ranking:
    """The k best (score descending, then lower index), distinct items (best score kept).
    ``distinct``: the caller knows no item repeats (one index's hits), so none is dropped."""
    if len(items) == 0:
        return _EMPTY
    order = np.lexsort((items, -scores))
    if distinct:
        keep = order[:k]
    else:
        items, scores = items[order], scores[order]
        _, first = np.unique(items, return_index=True)
        keep = np.sort(first)[:k]
    return Ranking(items=items[keep].astype(np.int32), scores=scores[keep].astype(np.float32))


def _vector_search(
    source: SourceInput, kind: str, vector: np.ndarray, fresh: FreshVectors, *, superseded: np.ndarray | None = None
) -> Ranking:
    """Top-k of the kind's index for ``vector``, merged with the fresh products' scores.
    Index hits in ``superseded`` (sorted snapshot indices) are dropped: their vectors
    in the model are stale and the fresh ones score them."""
    model = source.view.models[kind]
    assert model.index is not None
    rows, scores = model.index.search(vector, source.k)
    mapped = source.view.spaces[kind].to_snapshot[rows]
    keep = mapped >= 0
    if superseded is not None:
        keep &= ~contains(superseded, mapped)
    items, values = mapped[keep], scores[keep]
    if not len(fresh):
        return top(items, values, source.k, distinct=True)  # an index holds each product once
    items = np.concatenate([items, fresh.indices])
    values = np.concatenate([values, (fresh.vectors @ vector).astype(np.float32)])
    return top(items, values, source.k)


def personal(source: SourceInput) -> Ranking:
    kind = source.view.collaborative
    vector = source.personal_vector()
    if kind is None or vector is None:
        return _EMPTY
    return _vector_search(source, kind, vector, source.view.fresh_collaborative)


def session(source: SourceInput) -> Ranking:
    model = source.view.models.get("sasrec")
    signals = source.signals
    if model is None or not (signals.in_session.any() or len(signals.context)):
        return _EMPTY
    space = source.view.spaces["sasrec"]
    query = Query(
        history=signals.model_history(space.from_snapshot, session_only=True),
        context_items=space.from_snapshot[signals.context],
        now=signals.now,
    )
    vector = model.model.query_vector(query)  # type: ignore[attr-defined]
    if vector is None:
        return _EMPTY
    return _vector_search(source, "sasrec", vector, NO_FRESH)


def _anchors(signals: Signals) -> np.ndarray:
    return signals.context if len(signals.context) else signals.recent_items(SIMILAR_ANCHORS_FROM_HISTORY)


def _text_neighbours(source: SourceInput, anchors: np.ndarray) -> Ranking:
    """Products whose text is like the anchors' (mean of their embeddings, cosine)."""
    view = source.view
    text = view.models.get("text_similarity")
    fresh = view.fresh_text
    vectors = []
    for anchor in anchors.tolist():
        at = np.flatnonzero(fresh.indices == anchor) if len(fresh) else _EMPTY_POSITIONS
        if len(at):  # a fresh embedding is newer than the model's
            vectors.append(fresh.vectors[at[0]])
        elif text is not None and (item := view.spaces["text_similarity"].from_snapshot[anchor]) >= 0:
            vector = text.model.item_vectors()[item]  # type: ignore[attr-defined]
            if vector.any():
                vectors.append(vector)
    if not vectors:
        return _EMPTY
    query = np.mean(vectors, axis=0)
    norm = float(np.linalg.norm(query))
    if norm == 0:
        return _EMPTY
    query = (query / norm).astype(np.float32)
    if text is None:
        return top(fresh.indices, fresh.vectors @ query, source.k)
    return _vector_search(source, "text_similarity", query, fresh, superseded=view.fresh_sorted)


def _neighbours(lists: NeighbourLists, items: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``sum_h weights[h] * score(items[h] -> j)`` over the lists of ``items`` only: the
    same sum as NeighbourLists.aggregate, without an array over the whole catalog.
    Returns the k best (model items, scores)."""
    starts, ends = lists.indptr[items], lists.indptr[items + 1]
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(total)
    neighbour = lists.indices[positions]
    contribution = lists.scores[positions] * np.repeat(weights, lengths)
    distinct, inverse = np.unique(neighbour, return_inverse=True)
    summed = np.bincount(inverse, weights=contribution, minlength=len(distinct))
    order = np.lexsort((distinct, -summed))[:k]
    return distinct[order].astype(np.int64), summed[order].astype(np.float32)


def _behavioural_neighbours(source: SourceInput, anchors: np.ndarray) -> Ranking:
    model = source.view.models.get("item_knn")
    if model is None or not isinstance(model.model, ItemKNN):
        return _EMPTY
    space = source.view.spaces["item_knn"]
    items = space.from_snapshot[anchors]
    items = items[items >= 0]
    if not len(items):
        return _EMPTY
    found, scores = _neighbours(model.model.neighbour_lists(), items, np.ones(len(items)), source.k)
    return space.rankings_to_snapshot(found, scores)


def similar(source: SourceInput) -> Ranking:
    anchors = _anchors(source.signals)
    if not len(anchors):
        return _EMPTY
    parts = {"text": _text_neighbours(source, anchors), "behaviour": _behavioural_neighbours(source, anchors)}
    parts = {name: ranking for name, ranking in parts.items() if len(ranking)}
    if len(parts) == 1:
        return next(iter(parts.values()))
    fused = blend(parts, {"text": 1.0, "behaviour": 1.0}, k=source.k)
    return Ranking(items=fused.items, scores=fused.scores)


def _cooccurrence(source: SourceInput, kind: str) -> Ranking:
    model = source.view.models.get(kind)
    if model is None or not isinstance(model.model, CoOccurrence):
        return _EMPTY
    signals = source.signals
    space = source.view.spaces[kind]
    config = model.model.config
    context = space.from_snapshot[signals.context]
    history = signals.model_history(space.from_snapshot) if not len(signals.context) else None
    query = (
        Query(context_items=context, now=signals.now) if history is None else Query(history=history, now=signals.now)
    )
    items, weights = query_item_weights(
        query,
        n_items=len(model.product_ids),
        event_weights=config.event_weights,
        half_life_days=config.history_half_life_days,
        context_weight=config.context_weight,
        max_events=config.history_events,
    )
    if not len(items):
        return _EMPTY
    found, scores = _neighbours(model.model.neighbour_lists(), items.astype(np.int64), weights, source.k)
    return space.rankings_to_snapshot(found, scores)


def also_viewed(source: SourceInput) -> Ranking:
    return _cooccurrence(source, "also_viewed")


def bought_together(source: SourceInput) -> Ranking:
    return _cooccurrence(source, "bought_together")


def trending(source: SourceInput) -> Ranking:
    model = source.view.models.get("trending")
    if model is None or model.trending is None:
        return _EMPTY
    lists = model.trending
    space = source.view.spaces["trending"]
    categories = {int(c) for c in source.category_ids[source.signals.context] if c}
    picked = [lists.by_category[c] for c in sorted(categories) if c in lists.by_category]
    if not picked:
        return space.rankings_to_snapshot(lists.items[: source.k], lists.scores[: source.k])
    items = np.concatenate([p[0] for p in picked])
    scores = np.concatenate([p[1] for p in picked])
    ranked = space.rankings_to_snapshot(items, scores)
    return top(ranked.items.astype(np.int64), ranked.scores, source.k)


def new_arrivals(source: SourceInput) -> Ranking:
    items = source.new_arrivals[: source.k]
    if not len(items):
        return _EMPTY
    age_days = np.maximum(source.signals.now - source.created_ts[items], 0.0) / SECONDS_PER_DAY
    return Ranking(items=items.astype(np.int32), scores=(1.0 / (1.0 + age_days)).astype(np.float32))


SOURCES: dict[str, Callable[[SourceInput], Ranking]] = {
    "personal": personal,
    "session": session,
    "similar": similar,
    "also_viewed": also_viewed,
    "bought_together": bought_together,
    "trending": trending,
    "new_arrivals": new_arrivals,
}
