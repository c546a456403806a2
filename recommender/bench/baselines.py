"""Reference recommenders the product is measured against (benchmark only, not served).

Each ``fit_*`` function trains on the training events and returns a scorer for the
evaluation code, so baselines and product algorithms are measured identically.
"""

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.data import Interactions, ItemFeatures
from recommender.algorithms.evaluation import EvaluationCase, Scorer
from recommender.algorithms.matrices import group_item_matrix

DAY = 86_400


def fit_most_popular(train: Interactions, *, last_days: float | None = None) -> Scorer:
    """Items by number of events, over all training time or its last ``last_days``."""
    events = train if last_days is None else train.select(train.ts >= train.ts.max() - last_days * DAY)
    counts = np.bincount(events.item, minlength=train.n_items).astype(np.float32)
    return lambda case: counts


def fit_category_popularity(train: Interactions, features: ItemFeatures) -> Scorer:
    """Each item scored by the mean number of training events per item of its category:
    the only popularity an item without events of its own can have."""
    counts = np.bincount(train.item, minlength=train.n_items).astype(np.float64)
    category = features.category
    has_events = counts > 0
    known = category >= 0
    n_categories = int(category.max()) + 1 if known.any() else 0
    events_per_category = np.bincount(category[known], weights=counts[known], minlength=n_categories)
    items_per_category = np.bincount(category[known & has_events], minlength=n_categories)
    mean = events_per_category / np.maximum(items_per_category, 1)
    scores = np.where(known, mean[np.maximum(category, 0)], 0.0).astype(np.float32)
    return lambda case: scores


def binary_user_items(train: Interactions) -> sp.csr_matrix:
    matrix = group_item_matrix(
        train.user, train.item, train.ts, np.ones(len(train)), n_groups=train.n_users, n_items=train.n_items
    )
    matrix.data[:] = 1.0
    return matrix


def fit_implicit_als_defaults(train: Interactions, *, seed: int = 0) -> Scorer:
    """``implicit``'s ALS with its default parameters on the binary user x item matrix,
    scoring a shopper with their trained user factors (the library's usual use)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(random_state=seed, num_threads=1)
        model.fit(binary_user_items(train).astype(np.float32), show_progress=False)
    user_factors = np.asarray(model.user_factors)
    item_factors = np.asarray(model.item_factors)

    def score(case: EvaluationCase) -> np.ndarray:
        return item_factors @ user_factors[case.user]

    return score


def fit_ease(train: Interactions, *, regularization: float) -> Scorer:
    """EASE (Steck, 2019): ``B = I - P / diag(P)`` with ``P = (X^T X + lambda I)^-1`` on
    the binary user x item matrix, diagonal zero; a shopper scores ``x_u @ B`` from their
    training history."""
    matrix = binary_user_items(train)
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)
    weights[np.diag_indices_from(weights)] = 0.0

    def score(case: EvaluationCase) -> np.ndarray:
        return weights[case.seen].sum(axis=0).astype(np.float32)

    return score
