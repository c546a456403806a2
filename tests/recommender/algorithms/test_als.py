"""ALS fold-in (the cold-start hybrid built on it: test_cold_start.py)."""

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.als import Als, AlsConfig, fold_in
from recommender.algorithms.data import Interactions, ItemFeatures
from tests.recommender.algorithms.conftest import N_ITEMS

TINY = AlsConfig(factors=4, regularization=0.1, alpha=2.0, iterations=10)
ITEMS = np.array([0, 2, 5])
VALUES = np.array([1.0, 8.0, 3.0], dtype=np.float32)


def test_fold_in_is_the_weighted_least_squares_user_vector(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = Als(TINY).fit(tiny_interactions, tiny_features)
    factors = model.item_vectors().astype(np.float64)
    # Preference 1 with confidence alpha * value on the shopper's items, 0 with 1 elsewhere.
    confidence = np.ones(N_ITEMS)
    confidence[ITEMS] = TINY.alpha * VALUES
    preference = np.zeros(N_ITEMS)
    preference[ITEMS] = 1.0
    weighted = factors.T * confidence
    expected = np.linalg.solve(weighted @ factors + TINY.regularization * np.eye(4), weighted @ preference)
    np.testing.assert_allclose(model.fold_in(ITEMS, VALUES), expected, rtol=1e-4, atol=1e-6)


def test_fold_in_matches_implicits_recalculate_user(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    from implicit.cpu.als import AlternatingLeastSquares

    model = Als(TINY).fit(tiny_interactions, tiny_features)
    reference = AlternatingLeastSquares(factors=4, regularization=TINY.regularization, alpha=TINY.alpha)
    reference.item_factors = model.item_vectors().copy()
    row = sp.csr_matrix((VALUES, (np.zeros(3, dtype=int), ITEMS)), shape=(1, N_ITEMS))
    np.testing.assert_allclose(model.fold_in(ITEMS, VALUES), reference.recalculate_user(0, row), rtol=1e-4, atol=1e-6)


def test_fold_in_solves_a_system_that_is_not_positive_definite() -> None:
    # A negative confidence (never produced by event weights, possible for a caller)
    # breaks definiteness: the Cholesky solve refuses it and the LU solve answers.
    item_factors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    gram = item_factors.T.astype(np.float64) @ item_factors
    items, confidences = np.array([0, 2]), np.array([-30.0, 4.0])
    factors = item_factors[items].astype(np.float64)
    system = gram + (factors.T * (confidences - 1.0)) @ factors + 0.1 * np.eye(2)
    assert np.linalg.eigvalsh(system).min() < 0
    expected = np.linalg.solve(system, factors.T @ confidences)
    np.testing.assert_allclose(fold_in(item_factors, gram, 0.1, items, confidences), expected, rtol=1e-5)


def test_items_without_events_have_no_als_vector(tiny_interactions: Interactions, tiny_features: ItemFeatures) -> None:
    model = Als(TINY).fit(tiny_interactions, tiny_features)
    assert model.items_with_vectors().tolist() == [True] * 8 + [False, False]
