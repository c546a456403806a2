"""ALS fold-in and the cold-start hybrid built on it."""

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.als import Als, AlsConfig
from recommender.algorithms.cold_start import ColdStartConfig, ColdStartHybrid
from recommender.algorithms.data import History, Interactions, ItemFeatures, Query
from tests.recommender.algorithms.conftest import COLD_TWIN_OF_3, N_ITEMS, NO_TEXT, START

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


def test_items_without_events_have_no_als_vector(tiny_interactions: Interactions, tiny_features: ItemFeatures) -> None:
    model = Als(TINY).fit(tiny_interactions, tiny_features)
    assert model.items_with_vectors().tolist() == [True] * 8 + [False, False]


def hybrid(interactions: Interactions, features: ItemFeatures) -> ColdStartHybrid:
    config = ColdStartConfig(als=TINY, min_events_to_fit_map=1, ridge_regularization=0.01)
    return ColdStartHybrid(config).fit(interactions, features)


def test_a_cold_item_ranks_right_after_its_text_twin(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features)
    query = Query(history=History.of_items([0, 1, 2], ts=START), now=START)
    assert model.recommend(query, 2, exclude=np.array([0, 1, 2])).items.tolist() == [3, COLD_TWIN_OF_3]
    # Behaviour cannot tell items 0-3 apart; the twin's nearest items are exactly them.
    assert sorted(model.similar_items(COLD_TWIN_OF_3, 4).items.tolist()) == [0, 1, 2, 3]
    assert model.own_vector_mask().tolist() == [True] * 8 + [False, False]
    assert np.isneginf(model.score(query)[NO_TEXT])


def test_a_product_added_after_training_is_projected_next_to_its_twin(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features)
    assert tiny_features.text_embeddings is not None
    projected = model.project(tiny_features.text_embeddings[[4]])[0]
    own = model.item_vectors()[4]
    assert projected @ own / (np.linalg.norm(projected) * np.linalg.norm(own)) > 0.99


def test_the_hybrid_can_reuse_a_fitted_als(tiny_interactions: Interactions, tiny_features: ItemFeatures) -> None:
    als = Als(TINY).fit(tiny_interactions, tiny_features)
    config = ColdStartConfig(als=TINY, min_events_to_fit_map=1, ridge_regularization=0.01)
    reused = ColdStartHybrid.from_als(als, tiny_interactions, tiny_features, config)
    np.testing.assert_array_equal(reused.item_vectors(), hybrid(tiny_interactions, tiny_features).item_vectors())
    assert reused.config == config
