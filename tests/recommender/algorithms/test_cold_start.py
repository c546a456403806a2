"""The cold-start hybrid: ALS order for warm items, a calibrated estimate and exploration for cold ones."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from recommender.algorithms.als import Als, AlsConfig, fold_in_query
from recommender.algorithms.cold_start import ColdStartConfig, ColdStartHybrid, KnnTextMap
from recommender.algorithms.data import PURCHASE, VIEW, History, Interactions, ItemFeatures, Query
from recommender.algorithms.persistence import write_artifact
from recommender.algorithms.registry import load_algorithm
from tests.recommender.algorithms.conftest import COLD_TWIN_OF_3, DAY, GROUP_B, N_ITEMS, NO_TEXT, START

TINY_ALS = AlsConfig(factors=4, regularization=0.1, alpha=2.0, iterations=10)
TINY = ColdStartConfig(als=TINY_ALS, min_events_to_fit_map=1, ridge_regularization=0.01, text_map="ridge")
COLD_TWIN_OF_7 = N_ITEMS  # an eleventh item: no events, its text is almost item 7's
AFTER = START + 30 * DAY


def query_of(items: list[int], event_type: int = VIEW) -> Query:
    return Query(history=History.of_items(items, event_type=event_type, ts=AFTER), now=AFTER)


def hybrid(interactions: Interactions, features: ItemFeatures, **overrides: object) -> ColdStartHybrid:
    return ColdStartHybrid(dataclasses.replace(TINY, **overrides)).fit(interactions, features)  # type: ignore[arg-type]


def with_twin_of_7(interactions: Interactions, features: ItemFeatures) -> tuple[Interactions, ItemFeatures]:
    """The checkerboard with one more cold item, the text twin of item 7 (category 1)."""
    assert features.text_embeddings is not None
    twin = features.text_embeddings[7].copy()
    twin[11] = 0.05
    twin /= np.linalg.norm(twin)
    grown = ItemFeatures(
        category=np.r_[features.category, 1],
        created_ts=np.r_[features.created_ts, START],
        text_embeddings=np.vstack([features.text_embeddings, twin]),
    )
    return dataclasses.replace(interactions, n_items=N_ITEMS + 1), grown


def test_a_cold_item_whose_text_twin_the_shopper_bought_ranks_first_among_cold_items(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    interactions, features = with_twin_of_7(tiny_interactions, tiny_features)
    # Popularity counted over all time, so both groups' categories and items are equally
    # popular and the priors cannot tell the twins apart: the shopper's affinity decides.
    model = hybrid(interactions, features, popularity_half_life_days=None)
    warm = np.flatnonzero(model.own_vector_mask())
    assert warm.tolist() == list(range(8))
    for bought, twin in ((3, COLD_TWIN_OF_3), (7, COLD_TWIN_OF_7)):
        ranking = model.recommend(query_of([bought], PURCHASE), 1, exclude=warm)
        assert ranking.items.tolist() == [twin]


def test_a_cold_item_ranks_right_after_its_text_twin(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features)
    query = query_of([0, 1, 2])
    assert model.recommend(query, 2, exclude=np.array([0, 1, 2])).items.tolist() == [3, COLD_TWIN_OF_3]
    # Behaviour cannot tell items 0-3 apart; the twin's nearest items are exactly them.
    assert sorted(model.similar_items(COLD_TWIN_OF_3, 4).items.tolist()) == [0, 1, 2, 3]
    assert model.own_vector_mask().tolist() == [True] * 8 + [False, False]
    assert np.isneginf(model.score(query)[NO_TEXT])


def test_warm_items_score_as_als_scaled_by_the_warm_weight(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features)
    als = Als(TINY_ALS).fit(tiny_interactions, tiny_features)
    warm = model.own_vector_mask()
    for items in ([0, 1, 2], [4, 5, 6], [1, 6]):
        query = query_of(items)
        user = als.query_vector(query)
        assert user is not None
        expected = TINY.warm_weight * als.score(query)[warm] / np.linalg.norm(user)
        np.testing.assert_allclose(model.score(query)[warm], expected, rtol=1e-5)


def test_without_exploration_the_boost_is_zero_and_cold_rows_hold_the_prior_logit(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features, new_item_exposure=0.0)
    assert model.exploration_boost == 0.0
    priors = model.prior_features()
    expected = priors.logit(model.config)[COLD_TWIN_OF_3] + TINY.cold_bias
    assert model.item_vectors()[COLD_TWIN_OF_3, -1] == pytest.approx(expected, rel=1e-6)
    # Warm rows end in 0; the cold row's factors are the projection times projection / warm weight.
    assert model.item_vectors()[:8, -1].tolist() == [0.0] * 8
    assert tiny_features.text_embeddings is not None
    projected = model.project_factors(tiny_features.text_embeddings[[COLD_TWIN_OF_3]])[0]
    np.testing.assert_allclose(
        model.item_vectors()[COLD_TWIN_OF_3, :-1], projected * TINY.projection_weight / TINY.warm_weight, rtol=1e-6
    )


def cold_in_top(model: ColdStartHybrid, interactions: Interactions, k: int) -> list[int]:
    """Per training shopper: cold items in their top k (their own items excluded)."""
    counts = []
    for user in range(interactions.n_users):
        history = interactions.user_history(user)
        query = Query(history=history, now=int(interactions.ts.max()))
        top = model.recommend(query, k, exclude=np.unique(history.item)).items
        counts.append(int((~model.own_vector_mask()[top]).sum()))
    return counts


def test_exploration_gives_cold_items_the_exposure_asked_for(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    # Group A shoppers already have the twin of item 3 first among the group-B items they
    # have not had: a third of a slot (1 cold item of 9, times 3) needs no boost.
    plain = hybrid(tiny_interactions, tiny_features, exposure_list_length=3, new_item_exposure=1.0)
    assert plain.exploration_boost == 0.0
    assert cold_in_top(plain, tiny_interactions, 3) == [1] * 6 + [0] * 6
    # Three times its share (a full slot of 3) puts it in every shopper's top 3.
    boosted = hybrid(tiny_interactions, tiny_features, exposure_list_length=3, new_item_exposure=3.0)
    assert boosted.exploration_boost > 0.0
    assert cold_in_top(boosted, tiny_interactions, 3) == [1] * 12
    # ... and nothing but cold items moves: warm scores are the same.
    warm = plain.own_vector_mask()
    np.testing.assert_array_equal(boosted.score(query_of([4, 5]))[warm], plain.score(query_of([4, 5]))[warm])


def two_category_shop() -> tuple[Interactions, ItemFeatures]:
    """Items 0-3 (category 0) have 4 views each, items 4-5 (category 1) 1 view each;
    items 6 and 7 have no events and the same text, 6 in category 0, 7 in category 1;
    items 8 and 9 have no events and the same text, 8 created at the last event, 9 a year
    before."""
    user = np.r_[np.repeat(np.arange(4), 4), [4, 5]]
    item = np.r_[np.tile(np.arange(4), 4), [4, 5]]
    ts = START + np.arange(len(user)) * DAY
    interactions = Interactions.from_arrays(user=user, item=item, ts=ts, n_items=10)
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((10, 6)).astype(np.float32)
    embeddings[7] = embeddings[6]
    embeddings[9] = embeddings[8]
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    last = int(ts.max())
    created = np.full(10, START)
    created[8], created[9] = last, last - 365 * DAY
    features = ItemFeatures(
        category=np.array([0, 0, 0, 0, 1, 1, 0, 1, 1, 1]), created_ts=created, text_embeddings=embeddings
    )
    return interactions, features


def test_category_popularity_and_newness_priors_separate_cold_twins() -> None:
    interactions, features = two_category_shop()
    config = dataclasses.replace(
        TINY, popularity_half_life_days=None, newness_half_life_days=365.0, new_item_exposure=0.0
    )
    model = ColdStartHybrid(config).fit(interactions, features)
    scores = model.score(query_of([0, 1]))
    # Mean views of a warm item: category 0: 4, category 1: 1, all: 18 / 6 = 3 (floor 0.003).
    expected_category = config.category_popularity_weight * np.log((4 + 0.003) / (1 + 0.003))
    assert scores[6] - scores[7] == pytest.approx(expected_category, rel=1e-4)
    # Same text and category, one created at the last event and one a year (a half-life) before.
    assert scores[8] - scores[9] == pytest.approx(config.newness_weight * (1.0 - 0.5), rel=1e-4)


def test_all_items_created_at_once_carry_no_newness(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features)
    assert model.prior_features().newness.tolist() == [0.0] * N_ITEMS


def test_a_product_added_after_training_gets_a_row_like_a_cold_item(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = hybrid(tiny_interactions, tiny_features)
    embeddings = tiny_features.text_embeddings
    assert embeddings is not None
    row = model.project(
        embeddings[[COLD_TWIN_OF_3]], category=np.array([0]), created_ts=tiny_features.created_ts[[COLD_TWIN_OF_3]]
    )
    np.testing.assert_allclose(row[0], model.item_vectors()[COLD_TWIN_OF_3], rtol=1e-6)
    assert model.project(np.zeros((1, embeddings.shape[1]))).tolist() == [[0.0] * model.item_vectors().shape[1]]
    projected = model.project_factors(embeddings[[4]])[0]
    own = model.fold_in_vectors()[4]
    assert projected @ own / (np.linalg.norm(projected) * np.linalg.norm(own)) > 0.99


def test_the_hybrid_can_reuse_a_fitted_als(tiny_interactions: Interactions, tiny_features: ItemFeatures) -> None:
    als = Als(TINY_ALS).fit(tiny_interactions, tiny_features)
    reused = ColdStartHybrid.from_als(als, tiny_interactions, tiny_features, TINY)
    np.testing.assert_array_equal(reused.item_vectors(), hybrid(tiny_interactions, tiny_features).item_vectors())
    assert reused.config == TINY


def test_an_artifact_of_the_projection_only_hybrid_still_loads_and_scores_as_before(
    tiny_interactions: Interactions, tiny_features: ItemFeatures, tmp_path: Path
) -> None:
    # Written as the earlier version wrote it: ALS-space vectors only, no prior arrays.
    vectors = Als(TINY_ALS).fit(tiny_interactions, tiny_features).item_vectors().copy()
    vectors[COLD_TWIN_OF_3] = vectors[3]
    write_artifact(
        tmp_path,
        kind="cold_start",
        config={"als": TINY_ALS.to_dict(), "match_warm_norms": True},
        arrays={
            "item_vectors": vectors,
            "own_vector": np.array([True] * 8 + [False, False]),
            "map_weights": np.zeros((12, 4), dtype=np.float32),
            "map_bias": np.zeros(4, dtype=np.float32),
        },
        meta={"n_items": N_ITEMS},
    )
    model = load_algorithm(tmp_path)
    assert isinstance(model, ColdStartHybrid)
    query = query_of(list(GROUP_B[:3]))
    # The earlier scoring: folded in over all vectors, score = vectors @ user.
    gram = vectors.astype(np.float64).T @ vectors.astype(np.float64)
    user = fold_in_query(query, vectors, gram, TINY_ALS)
    assert user is not None
    np.testing.assert_array_equal(model.query_vector(query), user)
    np.testing.assert_allclose(model.score(query)[:9], vectors[:9] @ user, rtol=1e-6)
    assert model.item_vectors().shape == (N_ITEMS, 4)
    assert model.project(np.zeros((1, 12))).shape == (1, 4)


# -- the kNN text map -------------------------------------------------------------------


def test_the_knn_map_is_the_similarity_weighted_mean_of_the_nearest_teachers() -> None:
    # Given three teachers on the unit circle and their targets
    teachers = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)
    targets = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0]], dtype=np.float32)
    knn = KnnTextMap(embeddings=teachers, targets=targets, neighbours=2, power=1.0)
    # When an embedding (not unit length: only its direction counts) is read off them
    query = np.array([[3.0, 0.0], [0.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
    predicted = knn.predict(query)
    # Then its two nearest teachers (cos 1 and 0.6) are averaged with weights 1 and 0.6;
    # no text, or no teacher with a positive cosine, gives zeros
    np.testing.assert_allclose(predicted[0], [(1.0 + 0.6 * 2.0) / 1.6, (10.0 + 0.6 * 20.0) / 1.6], rtol=1e-6)
    assert predicted[1:].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # ... and a sharper power leans to the nearest teacher
    sharp = KnnTextMap(embeddings=teachers, targets=targets, neighbours=2, power=3.0).predict(query[:1])
    np.testing.assert_allclose(sharp[0, 0], (1.0 + 0.216 * 2.0) / 1.216, rtol=1e-6)


def knn_hybrid(interactions: Interactions, features: ItemFeatures, **overrides: object) -> ColdStartHybrid:
    return hybrid(interactions, features, **{"text_map": "knn", "knn_neighbours": 1, **overrides})


def test_with_the_knn_map_a_cold_item_borrows_its_text_twins_vector_and_popularity(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    model = knn_hybrid(tiny_interactions, tiny_features, popularity_half_life_days=None)
    # The twin's nearest teacher is item 3: its projection is item 3's own ALS vector
    np.testing.assert_allclose(model.fold_in_vectors()[COLD_TWIN_OF_3], model.fold_in_vectors()[3], rtol=1e-6)
    # ... and item 3's relative popularity less the teachers' mean: items 2, 3, 6, 7 have 6
    # purchases (value 48), items 0, 1, 4, 5 six views (value 6); the mean value is 27
    expected = np.log1p(48 / 27) - (np.log1p(48 / 27) + np.log1p(6 / 27)) / 2
    assert model.prior_features().text_popularity[COLD_TWIN_OF_3] == pytest.approx(expected, rel=1e-5)
    query = query_of([0, 1, 2])
    assert model.recommend(query, 2, exclude=np.array([0, 1, 2])).items.tolist() == [3, COLD_TWIN_OF_3]
    assert np.isneginf(model.score(query)[NO_TEXT])


def test_the_knn_map_caps_its_teachers_at_those_with_most_events(
    tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> None:
    # Item 3 gets two more events than any other: with one teacher allowed, it is the one
    extra = Interactions.from_arrays(
        user=np.array([0, 1]), item=np.array([3, 3]), ts=np.array([START + 40 * DAY] * 2), n_items=N_ITEMS
    )
    grown = dataclasses.replace(
        tiny_interactions,
        **{
            name: np.r_[getattr(tiny_interactions, name), getattr(extra, name)]
            for name in ("user", "item", "event_type", "weight", "ts", "session")
        },
    )
    model = knn_hybrid(grown, tiny_features, knn_max_teachers=2, knn_neighbours=2)
    assert tiny_features.text_embeddings is not None
    assert len(model._knn.embeddings) == 2
    # Items 0-7 had 6 events each, item 3 eight: it is kept, with item 0 (lowest index of the rest)
    np.testing.assert_allclose(model._knn.embeddings[1], tiny_features.text_embeddings[3], rtol=1e-6)
    np.testing.assert_allclose(model._knn.embeddings[0], tiny_features.text_embeddings[0], rtol=1e-6)


def test_a_knn_hybrid_saves_loads_and_projects_new_products_as_it_scores(
    tiny_interactions: Interactions, tiny_features: ItemFeatures, tmp_path: Path
) -> None:
    model = knn_hybrid(tiny_interactions, tiny_features)
    model.save(tmp_path)
    loaded = load_algorithm(tmp_path)
    assert isinstance(loaded, ColdStartHybrid)
    assert loaded.config.text_map == "knn"
    query = query_of(list(GROUP_B[:2]))
    np.testing.assert_array_equal(loaded.score(query), model.score(query))
    assert tiny_features.text_embeddings is not None
    row = loaded.project(
        tiny_features.text_embeddings[[COLD_TWIN_OF_3]],
        category=np.array([0]),
        created_ts=tiny_features.created_ts[[COLD_TWIN_OF_3]],
    )
    np.testing.assert_allclose(row[0], model.item_vectors()[COLD_TWIN_OF_3], rtol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [{"text_map": "mlp"}, {"knn_neighbours": 0}, {"knn_power": 0.0}, {"knn_max_teachers": 1}],
)
def test_a_bad_text_map_setting_is_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"text_map|knn_"):
        dataclasses.replace(ColdStartConfig(), **overrides)  # type: ignore[arg-type]


def test_an_artifact_saved_before_the_knn_map_existed_loads_with_its_ridge_maps(
    tiny_interactions: Interactions, tiny_features: ItemFeatures, tmp_path: Path
) -> None:
    # Given a ridge hybrid saved as the previous version saved it: no text_map in its config
    model = hybrid(tiny_interactions, tiny_features)
    config = model.config.to_dict()
    del config["text_map"], config["knn_neighbours"], config["knn_power"], config["knn_max_teachers"]
    write_artifact(tmp_path, kind="cold_start", config=config, arrays=model._arrays(), meta={"n_items": N_ITEMS})
    # When it is loaded (the missing text_map reads as today's default, knn)
    loaded = load_algorithm(tmp_path)
    # Then it knows it holds ridge maps, and scores and projects as before
    assert isinstance(loaded, ColdStartHybrid)
    assert loaded.config.text_map == "ridge"
    query = query_of([0, 1, 2])
    np.testing.assert_array_equal(loaded.score(query), model.score(query))
    assert tiny_features.text_embeddings is not None
    np.testing.assert_array_equal(
        loaded.project_factors(tiny_features.text_embeddings), model.project_factors(tiny_features.text_embeddings)
    )
