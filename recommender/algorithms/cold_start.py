"""Cold-start hybrid: ALS item factors, with a learned text -> factor map for new items.

A ridge regression from an item's text embedding to its ALS factor vector is fitted on
warm items. Items without interactions get the projected vector, so they rank in
personalised lists next to warm items; products added after training get theirs from
:meth:`ColdStartHybrid.project` without a retrain.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from recommender.algorithms.als import Als, AlsConfig, fold_in_query
from recommender.algorithms.base import AlgorithmConfig, VectorAlgorithm
from recommender.algorithms.data import Interactions, ItemFeatures, Query


@dataclass(frozen=True)
class ColdStartConfig(AlgorithmConfig):
    als: AlsConfig = field(default_factory=AlsConfig)
    # Items with at least this many events teach the text -> factor map.
    min_events_to_fit_map: int = 5
    # Items with fewer events than this get the projected vector instead of their own.
    min_events_for_own_vector: int = 1
    ridge_regularization: float = 10.0
    # Rescale the map so projected vectors are as long, on average, as the warm items'
    # own vectors (see _fit_map).
    match_warm_norms: bool = True

    def __post_init__(self) -> None:
        if self.ridge_regularization <= 0 or self.min_events_to_fit_map < 1 or self.min_events_for_own_vector < 1:
            raise ValueError("ridge_regularization > 0 and event thresholds >= 1 are required")


def fit_ridge(inputs: np.ndarray, targets: np.ndarray, regularization: float) -> tuple[np.ndarray, np.ndarray]:
    """Weights (d_in x d_out) and bias (d_out,) of ridge regression; the bias is not
    regularised (inputs and targets are centred)."""
    inputs = inputs.astype(np.float64)
    targets = targets.astype(np.float64)
    input_mean, target_mean = inputs.mean(axis=0), targets.mean(axis=0)
    centred = inputs - input_mean
    system = centred.T @ centred + regularization * np.eye(inputs.shape[1])
    weights = np.linalg.solve(system, centred.T @ (targets - target_mean))
    bias = target_mean - input_mean @ weights
    return weights.astype(np.float32), bias.astype(np.float32)


class ColdStartHybrid(VectorAlgorithm[ColdStartConfig]):
    """ALS with projected vectors for items too new to have their own; needs text embeddings.

    Queries are folded in exactly like :class:`~recommender.algorithms.als.Als`, over the
    combined vectors (a shopper who viewed a new item is folded in with its projection).
    """

    kind = "cold_start"
    config_class = ColdStartConfig

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        als = Als(self.config.als).fit(interactions, features)
        self._fit_map(als.item_vectors(), interactions, features)

    @classmethod
    def from_als(
        cls, als: Als, interactions: Interactions, features: ItemFeatures, config: ColdStartConfig | None = None
    ) -> Self:
        """The hybrid around an already fitted ALS (trained on ``interactions``), so a
        training run does not factorise twice. ``config.als`` is replaced by ``als``'s."""
        hybrid = cls(dataclasses.replace(config or ColdStartConfig(), als=als.config))
        hybrid._fit_map(als.item_vectors(), interactions, features)
        hybrid._n_items = interactions.n_items
        return hybrid

    def _fit_map(self, item_factors: np.ndarray, interactions: Interactions, features: ItemFeatures) -> None:
        embeddings = features.text_embeddings
        if embeddings is None:
            raise ValueError("the cold-start hybrid needs features.text_embeddings")
        events_per_item = np.bincount(interactions.item, minlength=interactions.n_items)
        has_text = np.any(embeddings != 0, axis=1)
        teachers = (events_per_item >= self.config.min_events_to_fit_map) & has_text
        if teachers.sum() < 2:
            raise ValueError("too few warm items with text to learn the text -> factor map")
        weights, bias = fit_ridge(embeddings[teachers], item_factors[teachers], self.config.ridge_regularization)
        if self.config.match_warm_norms:
            # Ridge predictions shrink towards the mean vector, so projected items would
            # score below every warm item and never reach a personalised list. Scale
            # the map so the teachers' projections are as long as their own vectors.
            predicted = embeddings[teachers] @ weights + bias
            own_norm = np.linalg.norm(item_factors[teachers], axis=1).mean()
            projected_norm = np.linalg.norm(predicted, axis=1).mean()
            scale = own_norm / projected_norm if projected_norm > 0 else 1.0
            weights, bias = weights * scale, bias * scale
        self._weights, self._bias = weights.astype(np.float32), bias.astype(np.float32)
        projected = self.project(embeddings)
        projected[~has_text] = 0.0
        self._own_vector = events_per_item >= self.config.min_events_for_own_vector
        self._set_combined(np.where(self._own_vector[:, None], item_factors, projected))

    def _set_combined(self, vectors: np.ndarray) -> None:
        self._set_item_vectors(vectors)
        combined = self._item_vectors.astype(np.float64)
        self._gram = combined.T @ combined

    def project(self, embeddings: np.ndarray) -> np.ndarray:
        """float32 factor vectors (n, factors) for text embeddings (n, d)."""
        return (np.asarray(embeddings, dtype=np.float32) @ self._weights + self._bias).astype(np.float32)

    def own_vector_mask(self) -> np.ndarray:
        """Boolean per item: True where the vector is the item's own ALS factor."""
        return self._own_vector

    def query_vector(self, query: Query) -> np.ndarray | None:
        return fold_in_query(query, self._item_vectors, self._gram, self.config.als)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_vectors": self._item_vectors,
            "own_vector": self._own_vector,
            "map_weights": self._weights,
            "map_bias": self._bias,
        }

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._own_vector = arrays["own_vector"]
        self._weights = arrays["map_weights"]
        self._bias = arrays["map_bias"]
        self._set_combined(arrays["item_vectors"])
