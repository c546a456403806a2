"""The contract every algorithm keeps (see recommender/algorithms/base.py), on the checkerboard."""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender.algorithms.base import Algorithm, VectorAlgorithm
from recommender.algorithms.data import History, Interactions, ItemFeatures, Query
from recommender.algorithms.registry import ALGORITHMS, load_algorithm, new_algorithm
from tests.recommender.algorithms.conftest import GROUP_A, N_ITEMS, START

AFTER_TRAINING = START + 30 * 86_400
TINY_ALS = {"factors": 4, "regularization": 0.1, "iterations": 10}


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    # Serves a shopper from the events in the query (fold-in); trending does not.
    personal: bool = True
    # similar_items of a group-A item starts with another group-A item.
    similar_within_group: bool = True


SPECS = [
    Spec("trending", "trending", personal=False),
    Spec("also_viewed", "cooccurrence", {"min_sessions": 1}),
    Spec("bought_together", "cooccurrence", {"relation": "bought_together", "min_sessions": 1}),
    Spec("item_knn", "item_knn"),
    Spec("als", "als", TINY_ALS),
    Spec("text_similarity", "text_similarity"),
    Spec(
        "cold_start",
        "cold_start",
        {"als": TINY_ALS, "min_events_to_fit_map": 1, "ridge_regularization": 0.01, "text_map": "ridge"},
    ),
    Spec(
        "cold_start, knn text map",
        "cold_start",
        {"als": TINY_ALS, "min_events_to_fit_map": 1, "text_map": "knn", "knn_neighbours": 2},
    ),
    Spec(
        "sasrec",
        "sasrec",
        {
            "dimensions": 16,
            "heads": 1,
            "layers": 1,
            "max_length": 8,
            "dropout": 0.0,
            "sequence_by": "user",
            "epochs": 60,
            "batch_size": 4,
            "learning_rate": 0.01,
        },
        similar_within_group=False,
    ),
]


def test_every_algorithm_kind_is_under_contract() -> None:
    assert {spec.kind for spec in SPECS} == set(ALGORITHMS)


def query_of(items: list[int]) -> Query:
    return Query(history=History.of_items(items, ts=AFTER_TRAINING), now=AFTER_TRAINING)


QUERIES = {
    "history A": query_of([0, 1, 2]),
    "history B": query_of([4, 5, 6]),
    "context": Query(context_items=np.array([5]), now=AFTER_TRAINING),
    "category": Query(category=1, now=AFTER_TRAINING),
    "empty": Query(),
}


@pytest.fixture(scope="module", params=SPECS, ids=[spec.name for spec in SPECS])
def fitted(
    request: pytest.FixtureRequest, tiny_interactions: Interactions, tiny_features: ItemFeatures
) -> tuple[Spec, Algorithm[Any]]:
    spec: Spec = request.param
    return spec, new_algorithm(spec.kind, spec.config).fit(tiny_interactions, tiny_features)


class TestAlgorithmContract:
    def test_scores_are_float32_over_every_item(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        _, model = fitted
        for query in QUERIES.values():
            scores = model.score(query)
            assert scores.dtype == np.float32
            assert scores.shape == (N_ITEMS,)
            assert not np.isnan(scores).any()

    def test_a_new_shopper_is_offered_the_withheld_item_first(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        spec, model = fitted
        if not spec.personal:
            pytest.skip("not a personal algorithm")
        for history, withheld in (([0, 1, 2], 3), ([4, 5, 6], 7)):
            ranking = model.recommend(query_of(history), 1, exclude=np.array(history))
            assert ranking.items.tolist() == [withheld]

    def test_an_empty_query_gets_no_personal_opinion(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        spec, model = fitted
        ranking = model.recommend(QUERIES["empty"], 5)
        if spec.personal:
            assert np.isneginf(model.score(QUERIES["empty"])).all()
            assert len(ranking) == 0
        else:
            assert len(ranking) == 5

    def test_recommend_honours_k_and_exclude_and_ranks_best_first(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        _, model = fitted
        for query in QUERIES.values():
            ranking = model.recommend(query, 3, exclude=np.array([3, 7]))
            assert len(ranking) <= 3
            assert not set(ranking.items.tolist()) & {3, 7}
            assert np.all(np.diff(ranking.scores) <= 0)
            scores = model.score(query)
            np.testing.assert_array_equal(ranking.scores, scores[ranking.items])

    def test_similar_items_never_include_the_item(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        spec, model = fitted
        # Item 2 is viewed and bought in every group-A session.
        ranking = model.similar_items(2, 3)
        assert 2 not in ranking.items.tolist()
        assert 1 <= len(ranking) <= 3
        assert np.all(np.diff(ranking.scores) <= 0)
        if spec.similar_within_group:
            assert ranking.items[0] in GROUP_A

    def test_save_and_load_give_identical_results(self, fitted: tuple[Spec, Algorithm[Any]], tmp_path: Path) -> None:
        _, model = fitted
        model.save(tmp_path / "version")
        loaded = load_algorithm(tmp_path / "version")
        assert type(loaded) is type(model)
        assert loaded.config == model.config
        assert loaded.n_items == model.n_items
        for query in QUERIES.values():
            np.testing.assert_array_equal(loaded.score(query), model.score(query))
        for item in range(N_ITEMS):
            np.testing.assert_array_equal(loaded.similar_items(item, 5).items, model.similar_items(item, 5).items)

    def test_saved_arrays_load_without_pickle(self, fitted: tuple[Spec, Algorithm[Any]], tmp_path: Path) -> None:
        _, model = fitted
        model.save(tmp_path / "version")
        with np.load(tmp_path / "version" / "arrays.npz", allow_pickle=False) as arrays:
            assert all(arrays[name].dtype != object for name in arrays.files)
        description = json.loads((tmp_path / "version" / "model.json").read_text())
        assert description["kind"] == model.kind

    def test_fitting_twice_gives_identical_scores(
        self, fitted: tuple[Spec, Algorithm[Any]], tiny_interactions: Interactions, tiny_features: ItemFeatures
    ) -> None:
        spec, model = fitted
        again = new_algorithm(spec.kind, spec.config).fit(tiny_interactions, tiny_features)
        for query in QUERIES.values():
            np.testing.assert_array_equal(again.score(query), model.score(query))

    def test_items_the_model_does_not_know_are_ignored(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        _, model = fitted
        with_unknown = Query(
            history=History.of_items([0, 1, 2, N_ITEMS + 5], ts=AFTER_TRAINING),
            context_items=np.array([N_ITEMS + 7]),
            now=AFTER_TRAINING,
        )
        np.testing.assert_array_equal(model.score(with_unknown), model.score(QUERIES["history A"]))

    def test_configuration_round_trips_through_json(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        _, model = fitted
        stored = json.loads(json.dumps(model.config.to_dict()))
        assert type(model.config).from_dict(stored) == model.config
        with pytest.raises(ValueError, match="unknown"):
            type(model.config).from_dict({**stored, "no_such_setting": 1})

    def test_vector_scores_are_item_vectors_times_query_vector(self, fitted: tuple[Spec, Algorithm[Any]]) -> None:
        _, model = fitted
        if not isinstance(model, VectorAlgorithm):
            pytest.skip("not a vector algorithm")
        query = QUERIES["history A"]
        vector = model.query_vector(query)
        assert vector is not None and vector.dtype == np.float32
        expected = model.item_vectors() @ vector
        known = model.items_with_vectors()
        np.testing.assert_allclose(model.score(query)[known], expected[known], rtol=1e-6)
        assert np.isneginf(model.score(query)[~known]).all()
