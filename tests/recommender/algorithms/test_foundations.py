"""Data types, the id vocabulary, ranking helpers and query weighting."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender.algorithms.data import (
    PURCHASE,
    VIEW,
    History,
    Interactions,
    ItemFeatures,
    Query,
    sessions_by_inactivity,
)
from recommender.algorithms.neighbours import NeighbourLists
from recommender.algorithms.ranking import top_k, top_k_per_row
from recommender.algorithms.vocabulary import UNKNOWN, Vocabulary
from recommender.algorithms.weighting import query_item_weights

DAY = 86_400


def test_vocabulary_maps_ids_both_ways_and_survives_a_round_trip(tmp_path: Path) -> None:
    vocabulary = Vocabulary.from_occurrences(["sku-b", "sku-a", "sku-b", "sku-c"])
    assert len(vocabulary) == 3
    assert vocabulary.indices(["sku-a", "nope", "sku-c"]).tolist() == [1, UNKNOWN, 2]
    assert vocabulary.ids([2, 0]) == ["sku-c", "sku-b"]
    vocabulary.save(tmp_path / "items.npz")
    assert Vocabulary.load(tmp_path / "items.npz") == vocabulary
    grown = vocabulary.extended(["sku-a", "sku-d"])
    assert grown.all_ids == ("sku-b", "sku-a", "sku-c", "sku-d")
    with pytest.raises(ValueError):
        Vocabulary(["x", "x"])


def test_sessions_end_after_the_inactivity_gap() -> None:
    user = np.array([0, 0, 0, 1, 0])
    ts = np.array([0, 100, 5000, 50, 5100])
    assert sessions_by_inactivity(user, ts, gap_seconds=1800).tolist() == [0, 0, 1, 2, 1]


def test_interactions_reject_indices_out_of_range() -> None:
    with pytest.raises(ValueError, match="item"):
        Interactions.from_arrays(user=np.array([0]), item=np.array([3]), ts=np.array([0]), n_items=3)


def test_interactions_and_features_round_trip_through_npz(tmp_path: Path) -> None:
    events = Interactions.from_arrays(
        user=np.array([1, 0]), item=np.array([2, 0]), ts=np.array([5, 9]), event_type=np.array([PURCHASE, VIEW])
    )
    events.save(tmp_path / "events.npz")
    loaded = Interactions.load(tmp_path / "events.npz")
    for name in ("user", "item", "event_type", "weight", "ts", "session"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(events, name))
    assert (loaded.n_users, loaded.n_items) == (2, 3)
    features = ItemFeatures(category=np.array([1, -1, 0]), created_ts=np.array([1, 2, 3]), text_embeddings=np.eye(3))
    features.save(tmp_path / "features.npz")
    assert ItemFeatures.load(tmp_path / "features.npz").text_embeddings.tolist() == np.eye(3).tolist()  # type: ignore[union-attr]


def test_top_k_breaks_ties_by_item_index_and_skips_no_opinion() -> None:
    scores = np.array([1.0, 3.0, -np.inf, 3.0, 2.0, np.nan], dtype=np.float32)
    assert top_k(scores, 3).items.tolist() == [1, 3, 4]
    assert top_k(scores, 10, exclude=np.array([3])).items.tolist() == [1, 4, 0]


def test_top_k_per_row_keeps_each_rows_best_entries_best_first() -> None:
    matrix = sp.csr_matrix(np.array([[0.0, 2.0, 5.0, 2.0], [1.0, 0.0, 0.0, 0.0]]))
    kept = top_k_per_row(matrix, 2)
    assert kept.indices.tolist() == [2, 1, 0]
    assert kept.data.tolist() == [5.0, 2.0, 1.0]
    assert kept.indptr.tolist() == [0, 2, 3]


def test_neighbour_lists_aggregate_weighted_scores() -> None:
    lists = NeighbourLists(
        indptr=np.array([0, 2, 2, 3]),
        indices=np.array([1, 2, 1], dtype=np.int32),
        scores=np.array([0.5, 0.25, 1.0], dtype=np.float32),
    )
    scores = lists.aggregate(np.array([0, 2]), np.array([2.0, 1.0], dtype=np.float32))
    assert scores[1] == 2.0  # 2 * 0.5 + 1 * 1.0
    assert scores[2] == 0.5
    assert np.isneginf(scores[0])


def test_query_items_are_weighted_by_type_age_and_context() -> None:
    history = History(
        item=np.array([1, 2, 1]),
        event_type=np.array([VIEW, VIEW, PURCHASE]),
        ts=np.array([1000 - DAY, 1000 - DAY, 1000]),
        weight=np.ones(3),
    )
    items, weights = query_item_weights(
        Query(history=history, context_items=np.array([3, 99]), now=1000),
        n_items=10,
        event_weights={"view": 1.0, "purchase": 8.0},
        half_life_days=1.0,
        context_weight=5.0,
        max_events=2,
    )
    # The last two events only: the old view of 2 (halved) and the purchase of 1; item 99
    # is unknown to a 10-item model.
    assert items.tolist() == [1, 2, 3]
    np.testing.assert_allclose(weights, [8.0, 0.5, 5.0])


def test_algorithms_import_neither_django_nor_torch() -> None:
    code = (
        "import sys, recommender.algorithms.registry, recommender.algorithms.evaluation, recommender.algorithms.blend;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'torch', 'implicit'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[3]
    )
    assert result.stdout.strip() == "[]"
