"""Item-to-item co-occurrence within sessions: "also viewed" and "bought together"."""

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from recommender.algorithms.base import Algorithm, AlgorithmConfig
from recommender.algorithms.data import PURCHASE, Interactions, ItemFeatures, Query, event_type_codes
from recommender.algorithms.matrices import dense_ids, group_item_matrix
from recommender.algorithms.neighbours import NeighbourLists, top_k_cooccurrence
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.weighting import default_event_weights, query_item_weights

Relation = Literal["also_viewed", "bought_together"]


@dataclass(frozen=True)
class CoOccurrenceConfig(AlgorithmConfig):
    # also_viewed: any counted event in the same session; bought_together: purchases in
    # the same session.
    relation: Relation = "also_viewed"
    top_k: int = 100
    # The most recent distinct items of a session that count: a session of n items makes
    # n^2 pairs, so this caps the cost of a crawler or a marathon visit.
    max_items_per_session: int = 50
    # Pairs seen together in fewer sessions are noise.
    min_sessions: int = 2
    # Score of a pair is count / (n_i^a * n_j^b) with n the item's number of sessions:
    # b > 0 stops popular items from being everyone's neighbour; a evens out how much
    # each history item contributes when several are summed.
    source_popularity_exponent: float = 0.5
    target_popularity_exponent: float = 0.5
    # How a query is read: its last events, weighted by type and age; context items
    # (the product on the page) count as much as ``context_weight``.
    event_weights: dict[str, float] = field(default_factory=default_event_weights)
    history_events: int = 20
    history_half_life_days: float | None = 1.0
    context_weight: float = 8.0

    def __post_init__(self) -> None:
        if self.relation not in ("also_viewed", "bought_together"):
            raise ValueError("relation must be also_viewed or bought_together")
        if self.top_k < 1 or self.max_items_per_session < 2 or self.min_sessions < 1:
            raise ValueError("top_k >= 1, max_items_per_session >= 2 and min_sessions >= 1 are required")


class CoOccurrence(Algorithm[CoOccurrenceConfig]):
    """Precomputed top-k neighbour lists of items that occur in the same sessions.

    ``neighbours(item)`` is the "also viewed"/"bought together" list of an item; a query
    is scored by summing the lists of its context items and recent history items.
    """

    kind = "cooccurrence"
    config_class = CoOccurrenceConfig

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        config = self.config
        # Event types of weight 0 (impressions by default) are not behaviour.
        keep = event_type_codes(config.event_weights)[interactions.event_type] > 0
        if config.relation == "bought_together":
            keep &= interactions.event_type == PURCHASE
        events = interactions.select(keep)
        session, n_sessions = dense_ids(events.session)
        sessions = group_item_matrix(
            session,
            events.item,
            events.ts,
            np.ones(len(events), dtype=np.float32),
            n_groups=n_sessions,
            n_items=interactions.n_items,
            max_items_per_group=config.max_items_per_session,
        )
        sessions.data[:] = 1.0
        sessions_per_item = np.asarray(sessions.sum(axis=0)).ravel()
        self._neighbours = top_k_cooccurrence(
            sessions,
            sessions,
            k=config.top_k,
            source_norm=sessions_per_item**config.source_popularity_exponent,
            target_norm=sessions_per_item**config.target_popularity_exponent,
            min_count=config.min_sessions,
        )

    def neighbours(self, item: int) -> Ranking:
        """The precomputed neighbour list of ``item``, best first (may be empty)."""
        return self._neighbours.of(item)

    def neighbour_lists(self) -> NeighbourLists:
        """All lists at once (CSR arrays), for serving to hold in memory."""
        return self._neighbours

    def similar_items(self, item: int, k: int) -> Ranking:
        ranking = self._neighbours.of(item)
        return Ranking(items=ranking.items[:k], scores=ranking.scores[:k])

    def score(self, query: Query) -> np.ndarray:
        items, weights = query_item_weights(
            query,
            n_items=self.n_items,
            event_weights=self.config.event_weights,
            half_life_days=self.config.history_half_life_days,
            context_weight=self.config.context_weight,
            max_events=self.config.history_events,
        )
        if len(items) == 0:
            return self._no_opinion()
        return self._neighbours.aggregate(items, weights)

    def _arrays(self) -> dict[str, np.ndarray]:
        return self._neighbours.to_arrays("neighbours_")

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._neighbours = NeighbourLists.from_arrays(arrays, "neighbours_")
