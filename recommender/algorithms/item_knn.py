"""Item-kNN over shoppers' histories, aimed at what is being bought now.

"Shoppers who interacted with i also interacted with j, recently": the target side of
every pair is decayed by the age of the event, so an item's neighbours lean towards what
its audience is into at the moment. Over a query's history this is user-kNN with overlap
similarity and recency-weighted neighbours, precomputed as item lists so serving needs
no shopper vocabulary.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.base import Algorithm, AlgorithmConfig
from recommender.algorithms.data import Interactions, ItemFeatures, Query, event_type_codes
from recommender.algorithms.matrices import group_item_matrix
from recommender.algorithms.neighbours import NeighbourLists, top_k_cooccurrence
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.weighting import default_event_weights, event_values, query_item_weights


@dataclass(frozen=True)
class ItemKNNConfig(AlgorithmConfig):
    top_k: int = 200
    # A shopper's most recent distinct items that count (bounds pairs per shopper).
    max_items_per_user: int = 200
    # Age decay of the target event of a pair; None counts all time alike.
    half_life_days: float | None = 7.0
    event_weights: dict[str, float] = field(default_factory=default_event_weights)
    # C[i, j] = sum_u [u had i] * value(u, j) / |u|^user_activity_exponent
    #           / n_i^source_popularity_exponent / n_j^target_popularity_exponent
    # With a source exponent of 1, C[i, j] is the (decayed, activity-weighted) share of
    # i's shoppers who had j: every history item then carries the same weight. Chosen,
    # like the half-life, on the MovieLens validation split.
    user_activity_exponent: float = 0.5
    source_popularity_exponent: float = 1.0
    target_popularity_exponent: float = 0.0
    # How a query is read: its last counted events and its context items each mark the
    # item as had (weight 1, decayed by age if a half-life is set), as in training.
    history_events: int = 200
    history_half_life_days: float | None = None

    def __post_init__(self) -> None:
        if self.top_k < 1 or self.max_items_per_user < 1:
            raise ValueError("top_k and max_items_per_user must be >= 1")


class ItemKNN(Algorithm[ItemKNNConfig]):
    """Precomputed top-k neighbour lists from user-level co-occurrence with decayed targets."""

    kind = "item_knn"
    config_class = ItemKNNConfig

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        config = self.config
        counted = event_type_codes(config.event_weights)[interactions.event_type] > 0
        events = interactions.select(counted)
        shape = {"n_groups": interactions.n_users, "n_items": interactions.n_items}
        had = group_item_matrix(
            events.user,
            events.item,
            events.ts,
            np.ones(len(events), dtype=np.float32),
            max_items_per_group=config.max_items_per_user,
            **shape,
        )
        had.data[:] = 1.0
        values = event_values(events, event_weights=config.event_weights, half_life_days=config.half_life_days)
        recent = group_item_matrix(events.user, events.item, events.ts, values, **shape)
        # Keep the target side to the same capped items as the source side.
        recent = sp.csr_matrix(recent.multiply(had))
        items_per_user = np.diff(had.indptr).astype(np.float64)
        had_scaled = sp.diags(1.0 / np.maximum(items_per_user, 1.0) ** config.user_activity_exponent) @ had
        users_per_item = np.asarray(had.sum(axis=0)).ravel()
        self._neighbours = top_k_cooccurrence(
            sp.csr_matrix(had_scaled),
            recent,
            k=config.top_k,
            source_norm=users_per_item**config.source_popularity_exponent,
            target_norm=np.maximum(users_per_item, 1.0) ** config.target_popularity_exponent,
        )

    def neighbours(self, item: int) -> Ranking:
        return self._neighbours.of(item)

    def neighbour_lists(self) -> NeighbourLists:
        return self._neighbours

    def similar_items(self, item: int, k: int) -> Ranking:
        ranking = self._neighbours.of(item)
        return Ranking(items=ranking.items[:k], scores=ranking.scores[:k])

    def score(self, query: Query) -> np.ndarray:
        items, weights = query_item_weights(
            query,
            n_items=self.n_items,
            # Every counted event marks the item as "had", as in training.
            event_weights={name: float(value > 0) for name, value in self.config.event_weights.items()},
            half_life_days=self.config.history_half_life_days,
            context_weight=1.0,
            max_events=self.config.history_events,
        )
        if len(items) == 0:
            return self._no_opinion()
        # Repeat events of one item must not count more than having it, as in training.
        return self._neighbours.aggregate(items, np.minimum(weights, 1.0))

    def _arrays(self) -> dict[str, np.ndarray]:
        return self._neighbours.to_arrays("neighbours_")

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._neighbours = NeighbourLists.from_arrays(arrays, "neighbours_")
