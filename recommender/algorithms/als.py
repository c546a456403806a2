"""Collaborative filtering on implicit feedback: ALS (implicit's CPU solver), with fold-in.

Only the item factors are kept. A shopper is always folded in at request time from the
events in the query with the exact ALS user step, so new and returning shoppers are
served alike and serving holds no user factors.
"""

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from recommender.algorithms.base import AlgorithmConfig, VectorAlgorithm
from recommender.algorithms.data import Interactions, ItemFeatures, Query
from recommender.algorithms.matrices import group_item_matrix
from recommender.algorithms.weighting import default_event_weights, event_values, query_item_weights


@dataclass(frozen=True)
class AlsConfig(AlgorithmConfig):
    # Defaults chosen on the MovieLens validation split (recommender.bench): strong
    # regularisation and a month's half-life follow the drift of a catalog's interest.
    factors: int = 64
    regularization: float = 20.0
    # Confidence of an observed (user, item) = alpha * summed event value.
    alpha: float = 1.0
    iterations: int = 15
    event_weights: dict[str, float] = field(default_factory=default_event_weights)
    # Age decay of event values at training time; None counts all time alike.
    half_life_days: float | None = 30.0
    # implicit's solver threads; BLAS is held at one thread while fitting.
    num_threads: int = 1
    random_seed: int = 0
    # How a query is folded in: its last events by type weight and age, context items
    # counting ``context_weight`` each.
    history_events: int = 200
    history_half_life_days: float | None = 30.0
    context_weight: float = 8.0

    def __post_init__(self) -> None:
        if self.factors < 1 or self.iterations < 1 or self.regularization <= 0 or self.alpha <= 0:
            raise ValueError("factors >= 1, iterations >= 1, regularization > 0 and alpha > 0 are required")


def fold_in(
    item_factors: np.ndarray, gram: np.ndarray, regularization: float, items: np.ndarray, confidences: np.ndarray
) -> np.ndarray:
    """The ALS user step for one shopper (implicit's ``recalculate_user``), in closed form.

    Solves ``(YtY + reg I + sum_i (c_i - 1) y_i y_i^T) x = sum_i c_i y_i`` over the
    shopper's items i with confidences c_i, i.e. the least-squares user vector with
    preference 1 and weight c_i on their items, preference 0 and weight 1 elsewhere.
    ``gram`` is ``Y^T Y`` (float64). Returns float32 (factors,).
    """
    factors = item_factors[items].astype(np.float64)
    system = gram + (factors.T * (confidences - 1.0)) @ factors
    system.flat[:: len(gram) + 1] += regularization  # + reg I, without building I
    right_side = factors.T @ confidences.astype(np.float64)
    # With confidences >= 0 the system is symmetric positive definite: one Cholesky
    # solve (LAPACK dposv) costs half of np.linalg.solve's LU on the request path. A
    # negative confidence can break definiteness; LU then solves it as before.
    _, solution, info = lapack.dposv(system, right_side, lower=1)
    if info != 0:
        solution = np.linalg.solve(system, right_side)
    return solution.astype(np.float32)


def query_items(query: Query, n_items: int, config: AlsConfig) -> tuple[np.ndarray, np.ndarray]:
    """The distinct items of a query and their event values, as ALS folds them in."""
    return query_item_weights(
        query,
        n_items=n_items,
        event_weights=config.event_weights,
        half_life_days=config.history_half_life_days,
        context_weight=config.context_weight,
        max_events=config.history_events,
    )


def fold_in_query(query: Query, item_factors: np.ndarray, gram: np.ndarray, config: AlsConfig) -> np.ndarray | None:
    """The folded-in user vector of a query's events and context items (None if none)."""
    items, values = query_items(query, len(item_factors), config)
    if len(items) == 0:
        return None
    return fold_in(item_factors, gram, config.regularization, items, config.alpha * values.astype(np.float64))


class Als(VectorAlgorithm[AlsConfig]):
    """Implicit-feedback matrix factorisation; scores are ``item_factors @ fold_in(query)``."""

    kind = "als"
    config_class = AlsConfig

    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None:
        config = self.config
        values = event_values(interactions, event_weights=config.event_weights, half_life_days=config.half_life_days)
        user_items = group_item_matrix(
            interactions.user,
            interactions.item,
            interactions.ts,
            values,
            n_groups=interactions.n_users,
            n_items=interactions.n_items,
        )
        self._set_item_factors(train_item_factors(user_items, config))

    def _set_item_factors(self, item_factors: np.ndarray) -> None:
        self._set_item_vectors(item_factors)
        factors = self._item_vectors.astype(np.float64)
        self._gram = factors.T @ factors

    def query_vector(self, query: Query) -> np.ndarray | None:
        return fold_in_query(query, self._item_vectors, self._gram, self.config)

    def fold_in(self, items: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The user vector of a shopper with these distinct items and summed event values."""
        confidences = self.config.alpha * np.asarray(values, dtype=np.float64)
        return fold_in(self._item_vectors, self._gram, self.config.regularization, items, confidences)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self._item_vectors}

    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        self._set_item_factors(arrays["item_factors"])


def train_item_factors(user_items: sp.csr_matrix, config: AlsConfig) -> np.ndarray:
    """Item factors (float32, n_items x factors) of implicit's CPU ALS on a user x item
    CSR of event values; confidences are ``alpha * value``."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = sp.csr_matrix(user_items, dtype=np.float32)
    # implicit parallelises over users itself; a multi-threaded BLAS underneath it
    # oversubscribes the cores (implicit warns about exactly this).
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            dtype=np.float32,
            calculate_training_loss=False,
            num_threads=config.num_threads,
            random_state=config.random_seed,
        )
        model.fit(matrix, show_progress=False)
    return np.asarray(model.item_factors, dtype=np.float32)
