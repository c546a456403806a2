"""Trending: time-decayed popularity, globally and per category."""

from dataclasses import dataclass, field

import numpy as np

from recommender.algorithms.base import Algorithm, AlgorithmConfig
from recommender.algorithms.data import Interactions, ItemFeatures, Query
from recommender.algorithms.ranking import Ranking, top_k
from recommender.algorithms.weighting import default_event_weights, event_values


@dataclass(frozen=True)
class TrendingConfig(AlgorithmConfig):
    # Chosen on the MovieLens validation split (recommender.bench.tune_blend): interest
    # moves within days, a week-long half-life already trails it.
    half_life_days: float = 3.0
    event_weights: dict[str, float] = field(default_factory=default_event_weights)

    def __post_init__(self) -> None:
        if self.half_life_days <= 0:
            raise ValueError("half_life_days must be > 0")


class Trending(Algorithm[TrendingConfig]):
    """Each item's score is the sum of its events' values (type weight x event weight),
    each halved every ``half_life_days`` before the last training event.

    Decay multiplies every score by the same factor as time passes, so the order at
    training time stays the order at any later time until the next training. Items
    without events have no opinion (``-inf``).
    """

    kind = "trending"
    config_class = TrendingConfig

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        values = event_values(
            interactions, event_weights=self.config.event_weights, half_life_days=self.config.half_life_days
        )
        self._scores = np.bincount(interactions.item, weights=values, minlength=interactions.n_items).astype(np.float32)
        self._item_category = features.category.copy()
        self.reference_ts = int(interactions.ts.max()) if len(interactions) else 0

    def scores(self, category: int = -1) -> np.ndarray:
        """float32 trending score per item, decayed to ``reference_ts``; with a category
        (>= 0), items outside it get ``-inf``. Items without events get ``-inf``."""
        scores = np.where(self._scores > 0, self._scores, -np.inf).astype(np.float32)
        if category >= 0:
            scores[self._item_category != category] = -np.inf
        return scores

    def top(self, k: int, category: int = -1) -> Ranking:
        """The ``k`` trending items, globally or within one category."""
        return top_k(self.scores(category), k)

    def score(self, query: Query) -> np.ndarray:
        """Trending in ``query.category`` if one is given, else global; history is unused."""
        return self.scores(query.category)

    def similar_items(self, item: int, k: int) -> Ranking:
        """Trending items of the item's category (global when it has none)."""
        return top_k(self.scores(int(self._item_category[item])), k, exclude=np.array([item]))

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "scores": self._scores,
            "item_category": self._item_category,
            "reference_ts": np.array(self.reference_ts, dtype=np.int64),
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._scores = arrays["scores"]
        self._item_category = arrays["item_category"]
        self.reference_ts = int(arrays["reference_ts"])
