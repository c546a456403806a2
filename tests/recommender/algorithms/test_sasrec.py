"""The session model's training windows and its reading of a query."""

import numpy as np

from recommender.algorithms.data import IMPRESSION, VIEW, History, Interactions, ItemFeatures, Query
from recommender.algorithms.sasrec import SasRec, SasRecConfig, training_windows

WINDOWS = SasRecConfig(max_length=3, sequence_by="user")


def two_shoppers() -> Interactions:
    # Shopper 0: 0, 1, 1, 2 (the repeated 1 collapses); shopper 1: 3, 4, 5, 6, 7.
    return Interactions.from_arrays(
        user=np.array([0, 0, 0, 0, 1, 1, 1, 1, 1]),
        item=np.array([0, 1, 1, 2, 3, 4, 5, 6, 7]),
        ts=np.array([1, 2, 3, 4, 1, 2, 3, 4, 5]),
        n_items=8,
    )


def test_sequences_are_cut_from_their_end_into_left_padded_windows() -> None:
    inputs, targets = training_windows(two_shoppers(), WINDOWS)
    # Tokens are item + 1; 0 pads. Shopper 1's most recent window comes before its older one.
    assert inputs.tolist() == [[0, 1, 2], [5, 6, 7], [0, 0, 4]]
    assert targets.tolist() == [[0, 2, 3], [6, 7, 8], [0, 0, 5]]


def test_only_the_most_recent_windows_are_kept() -> None:
    config = SasRecConfig(max_length=3, sequence_by="user", max_training_windows=2)
    inputs, _ = training_windows(two_shoppers(), config)
    assert inputs.tolist() == [[0, 1, 2], [5, 6, 7]]


def test_a_query_reads_the_last_max_length_counted_items() -> None:
    config = SasRecConfig(dimensions=8, heads=1, layers=1, max_length=3, epochs=1, sequence_by="user")
    model = SasRec(config).fit(two_shoppers(), ItemFeatures.empty(8))
    recent = Query(history=History.of_items([3, 4, 5]))
    longer = Query(history=History.of_items([0, 1, 3, 4, 5]))
    with_impression = Query(
        history=History(
            item=np.array([3, 4, 7, 5]),
            event_type=np.array([VIEW, VIEW, IMPRESSION, VIEW]),
            ts=np.zeros(4),
            weight=np.ones(4),
        )
    )
    np.testing.assert_array_equal(model.score(longer), model.score(recent))
    np.testing.assert_array_equal(model.score(with_impression), model.score(recent))
