"""Content similarity on the items' text embeddings (computed by catalog.embedding)."""

from dataclasses import dataclass, field

import numpy as np

from recommender.algorithms.base import AlgorithmConfig, VectorAlgorithm
from recommender.algorithms.data import Interactions, ItemFeatures, Query
from recommender.algorithms.weighting import default_event_weights, query_item_weights


@dataclass(frozen=True)
class TextSimilarityConfig(AlgorithmConfig):
    # A query is the weighted mean of its items' embeddings: the last events by type
    # weight and age, context items counting ``context_weight`` each.
    event_weights: dict[str, float] = field(default_factory=default_event_weights)
    history_events: int = 20
    history_half_life_days: float | None = 1.0
    context_weight: float = 8.0


class TextSimilarity(VectorAlgorithm[TextSimilarityConfig]):
    """Cosine similarity of text embeddings; needs ``features.text_embeddings``.

    Works for items without any behaviour, so it also serves brand-new products.
    Items without text (an all-zero embedding) have no opinion.
    """

    kind = "text_similarity"
    config_class = TextSimilarityConfig

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        if features.text_embeddings is None:
            raise ValueError("text similarity needs features.text_embeddings")
        self._set_item_vectors(features.text_embeddings)

    def query_vector(self, query: Query) -> np.ndarray | None:
        items, weights = query_item_weights(
            query,
            n_items=self.n_items,
            event_weights=self.config.event_weights,
            half_life_days=self.config.history_half_life_days,
            context_weight=self.config.context_weight,
            max_events=self.config.history_events,
        )
        mean = weights @ self._item_vectors[items]
        norm = float(np.linalg.norm(mean))
        if norm == 0:
            return None
        return (mean / norm).astype(np.float32)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"text_embeddings": self._item_vectors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_item_vectors(arrays["text_embeddings"])
