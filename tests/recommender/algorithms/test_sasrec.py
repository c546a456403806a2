"""The session model's training windows and its reading of a query."""

import dataclasses

import numpy as np

from recommender.algorithms.data import IMPRESSION, VIEW, History, Interactions, ItemFeatures, Query
from recommender.algorithms.sasrec import (
    SasRec,
    SasRecConfig,
    _build_network,
    _held_out_windows,
    _length_bucketed_batches,
    _next_item_loss,
    _trimmed,
    training_windows,
)

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


def many_sessions(n_sessions: int, n_items: int = 40) -> Interactions:
    """``n_sessions`` sessions of 3 views each (item s, s + 1, s + 2 modulo n_items), one
    day apart: one training window per session at max_length 2."""
    session = np.repeat(np.arange(n_sessions), 3)
    item = (session + np.tile(np.arange(3), n_sessions)) % n_items
    ts = session * 86_400 + np.tile(np.arange(3), n_sessions) * 60
    return Interactions.from_arrays(user=session, item=item, ts=ts, session=session, n_items=n_items)


def test_early_stopping_holds_out_a_tenth_of_the_windows_at_most() -> None:
    config = SasRecConfig(validation_windows=100)
    rng = np.random.default_rng(0)
    assert len(_held_out_windows(499, config, rng)) == 0  # a tenth would be 49 < 50
    assert len(_held_out_windows(600, config, rng)) == 60
    assert len(_held_out_windows(5000, config, rng)) == 100
    assert len(_held_out_windows(5000, SasRecConfig(validation_windows=0), rng)) == 0


def test_training_stops_after_patience_checks_without_gain() -> None:
    # A learning rate too small to move the held-out loss: the first check is the best,
    # the next ``patience`` checks do not improve on it, and training stops there.
    config = SasRecConfig(
        dimensions=8, heads=1, layers=1, max_length=2, dropout=0.0, epochs=1000, max_steps=500,
        batch_size=16, learning_rate=1e-12, validation_windows=100, validation_every=10, patience=2,
    )  # fmt: skip
    model = SasRec(config).fit(many_sessions(600), ItemFeatures.empty(40))
    assert model.training_steps == 30
    learning = SasRec(dataclasses.replace(config, learning_rate=1e-2, max_steps=40)).fit(
        many_sessions(600), ItemFeatures.empty(40)
    )
    assert learning.training_steps == 40


def test_an_epoch_of_length_bucketed_batches_covers_every_window_once() -> None:
    lengths = np.array([1, 5, 2, 5, 1, 3, 4, 2, 5, 1])
    batches = _length_bucketed_batches(lengths, batch_size=2, batches_per_epoch=5, rng=np.random.default_rng(0))
    assert len(batches) == 5
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    # One group of 50 batches holds all ten windows: sorted by length (1 1 1 2 2 3 4 5 5 5)
    # and cut in pairs, then the batches shuffled.
    assert sorted(sorted(lengths[batch].tolist()) for batch in batches) == [[1, 1], [1, 2], [2, 3], [4, 5], [5, 5]]


def test_trimming_cuts_leading_padding_only() -> None:
    inputs = np.array([[0, 0, 0, 4, 5], [0, 0, 7, 8, 9]])
    targets = np.array([[0, 0, 0, 5, 6], [0, 0, 8, 9, 3]])
    trimmed_inputs, trimmed_targets = _trimmed(inputs, targets, 3)
    assert trimmed_inputs.tolist() == [[0, 4, 5], [7, 8, 9]]
    assert trimmed_targets.tolist() == [[0, 5, 6], [8, 9, 3]]


def test_a_step_gives_gradients_only_to_the_embeddings_of_its_items_and_negatives() -> None:
    # 40 items > 8 negatives: the sampled softmax, whose gradient is sparse.
    config = SasRecConfig(dimensions=8, heads=1, layers=1, max_length=3, negatives=8)
    network = _build_network(config, 40)
    inputs = np.array([[0, 3, 4], [5, 6, 7]])
    targets = np.array([[0, 4, 9], [6, 7, 8]])
    _next_item_loss(network, inputs, targets, config, 40, np.random.default_rng(0)).backward()
    gradient = network.item_embedding.weight.grad
    assert gradient.is_sparse
    rows = gradient.coalesce().indices()[0].unique().tolist()
    negatives = np.random.default_rng(0).integers(1, 41, size=8).tolist()
    # Tokens (item + 1) of the inputs, targets and negatives; never the padding token 0.
    assert rows == sorted({3, 4, 5, 6, 7, 8, 9} | set(negatives))
