"""The queries an approximate index is tuned on: real shoppers' latest events, folded in
by the model as serving folds them, topped up with sample histories."""

import numpy as np

from catalog.selectors import SHOPPER_HISTORY_LENGTH
from recommender.algorithms.als import Als, AlsConfig
from recommender.algorithms.data import CLICK, IMPRESSION, VIEW, Interactions, ItemFeatures, Query
from recommender.serving.bundle import shopper_histories, tuning_queries


def _interactions(events: list[tuple[int, int, int, int]], n_users: int, n_items: int) -> Interactions:
    """From (user, item, event type, ts) rows, in any order."""
    user, item, event_type, ts = (np.array(column) for column in zip(*events, strict=True))
    return Interactions(
        user=user,
        item=item,
        event_type=event_type,
        weight=np.ones(len(events)),
        ts=ts,
        session=np.zeros(len(events)),
        n_users=n_users,
        n_items=n_items,
    )


def test_a_shoppers_history_is_a_latest_part_of_their_events_in_time_order_without_impressions():
    events = [(0, 5, VIEW, 30), (0, 6, IMPRESSION, 40), (0, 7, CLICK, 10), (0, 8, VIEW, 20), (1, 9, VIEW, 5)]
    interactions = _interactions(events, n_users=3, n_items=10)  # user 2 has no events

    histories = shopper_histories(interactions, 10, np.random.default_rng(1))

    assert len(histories) == 2
    by_latest_item = {int(h.item[-1]): h for h in histories}
    assert set(by_latest_item) == {5, 9}  # each ends with its shopper's latest counted event
    zero = by_latest_item[5]
    assert zero.item.tolist() == [7, 8, 5][-len(zero) :]  # oldest first, the impression left out
    assert zero.ts.tolist() == [10, 20, 30][-len(zero) :]
    assert by_latest_item[9].item.tolist() == [9]


def test_histories_come_from_the_latest_events_serving_reads_and_from_distinct_shoppers():
    rng = np.random.default_rng(0)
    events = [(u, int(rng.integers(0, 50)), VIEW, t) for u in range(40) for t in range(SHOPPER_HISTORY_LENGTH + 30)]
    interactions = _interactions(events, n_users=40, n_items=50)

    histories = shopper_histories(interactions, 25, np.random.default_rng(2))

    assert len(histories) == 25
    assert all(1 <= len(h) <= SHOPPER_HISTORY_LENGTH for h in histories)
    assert all(h.ts[-1] == SHOPPER_HISTORY_LENGTH + 29 and h.ts[0] >= 30 for h in histories)
    assert all(np.all(np.diff(h.ts) > 0) for h in histories)
    assert len({len(h) for h in histories}) > 5  # cut to lengths drawn from 1 to all


def _shop(n_users: int, n_items: int = 300, seed: int = 0) -> tuple[Als, Interactions]:
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, 10, n_users)  # each shopper keeps to one block of 30 items
    events = [(u, int(taste[u] * 30 + rng.integers(0, 30)), VIEW, int(t)) for u in range(n_users) for t in range(20)]
    interactions = _interactions(events, n_users=n_users, n_items=n_items)
    model = Als(AlsConfig(factors=8, iterations=3)).fit(interactions, ItemFeatures.empty(n_items))
    return model, interactions


def test_the_tuning_queries_are_the_drawn_shoppers_folded_in_histories():
    model, interactions = _shop(n_users=120)
    rows = np.flatnonzero(model.items_with_vectors())
    vectors = model.item_vectors()[rows]

    queries = tuning_queries(model, rows, vectors, interactions, count=50)

    expected = [
        model.query_vector(Query(history=h))
        for h in shopper_histories(interactions, 50, np.random.default_rng(0))  # the same draw
    ]
    assert queries.shape == (50, vectors.shape[1])
    np.testing.assert_allclose(queries, np.array(expected, dtype=np.float32), rtol=1e-6)


def test_too_few_shoppers_are_topped_up_with_sample_histories():
    model, interactions = _shop(n_users=12)
    rows = np.flatnonzero(model.items_with_vectors())
    vectors = model.item_vectors()[rows]

    queries = tuning_queries(model, rows, vectors, interactions, count=40)
    without_shoppers = tuning_queries(model, rows, vectors, None, count=40)

    assert queries.shape == without_shoppers.shape == (40, vectors.shape[1])
    real = [model.query_vector(Query(history=h)) for h in shopper_histories(interactions, 40, np.random.default_rng(0))]
    np.testing.assert_allclose(queries[:12], np.array(real, dtype=np.float32), rtol=1e-6)
    assert np.isfinite(queries).all() and np.all(np.linalg.norm(queries, axis=1) > 0)
