"""Co-occurrence and item-kNN neighbour lists on hand-made sessions."""

import math

import numpy as np

from recommender.algorithms.cooccurrence import CoOccurrence, CoOccurrenceConfig
from recommender.algorithms.data import PURCHASE, VIEW, History, Interactions, ItemFeatures, Query
from recommender.algorithms.item_knn import ItemKNN, ItemKNNConfig

NOW = 1_700_000_000


def sessions(*baskets: list[int], event_types: list[list[int]] | None = None) -> Interactions:
    """One session per basket (one shopper each), events a second apart."""
    user, item, ts, kinds = [], [], [], []
    for index, basket in enumerate(baskets):
        user += [index] * len(basket)
        item += basket
        ts += [NOW + index * 10_000 + position for position in range(len(basket))]
        kinds += event_types[index] if event_types else [VIEW] * len(basket)
    return Interactions.from_arrays(
        user=np.array(user),
        item=np.array(item),
        ts=np.array(ts),
        event_type=np.array(kinds),
        session=np.array(user),
        n_items=4,
    )


def fit(events: Interactions, **settings: object) -> CoOccurrence:
    return CoOccurrence(CoOccurrenceConfig(**settings)).fit(events, ItemFeatures.empty(events.n_items))  # type: ignore[arg-type]


def test_also_viewed_scores_are_session_counts_over_the_root_of_both_popularities() -> None:
    model = fit(sessions([0, 1], [0, 1], [0, 2]), min_sessions=1)
    neighbours = model.neighbours(0)
    assert neighbours.items.tolist() == [1, 2]
    np.testing.assert_allclose(neighbours.scores, [2 / math.sqrt(3 * 2), 1 / math.sqrt(3 * 1)], rtol=1e-6)
    assert model.neighbours(2).items.tolist() == [0]
    assert model.neighbours(3).items.tolist() == []


def test_pairs_seen_in_too_few_sessions_are_dropped() -> None:
    model = fit(sessions([0, 1], [0, 1], [0, 2]), min_sessions=2)
    assert model.neighbours(0).items.tolist() == [1]
    assert model.neighbours(2).items.tolist() == []


def test_bought_together_counts_only_purchases() -> None:
    events = sessions([0, 1], [0, 2], event_types=[[VIEW, VIEW], [PURCHASE, PURCHASE]])
    model = fit(events, relation="bought_together", min_sessions=1)
    assert model.neighbours(0).items.tolist() == [2]
    assert model.neighbours(1).items.tolist() == []


def test_only_the_most_recent_items_of_a_long_session_pair_up() -> None:
    model = fit(sessions([0, 1, 2]), min_sessions=1, max_items_per_session=2)
    assert model.neighbours(0).items.tolist() == []
    assert model.neighbours(1).items.tolist() == [2]


def test_a_query_sums_the_lists_of_its_items() -> None:
    model = fit(sessions([0, 1], [0, 1], [0, 2]), min_sessions=1, history_half_life_days=None, context_weight=1.0)
    scores = model.score(Query(history=History.of_items([1], ts=NOW), context_items=np.array([2]), now=NOW))
    # Item 0 is in the lists of both 1 and 2; 1 and 2 never share a session.
    np.testing.assert_allclose(scores[0], 2 / math.sqrt(6) + 1 / math.sqrt(3), rtol=1e-6)
    assert np.isneginf(scores[[1, 2, 3]]).all()


def test_item_knn_leans_towards_what_the_audience_had_recently() -> None:
    day = 86_400
    # Shoppers 0 and 1 had item 0; shopper 0 also had item 1 long ago, shopper 1 item 2 now.
    events = Interactions.from_arrays(
        user=np.array([0, 0, 1, 1]),
        item=np.array([0, 1, 0, 2]),
        ts=np.array([NOW - 40 * day, NOW - 40 * day, NOW, NOW]),
        n_items=3,
    )
    features = ItemFeatures.empty(3)
    exponents = {"user_activity_exponent": 0.5, "source_popularity_exponent": 1.0}
    recent = ItemKNN(ItemKNNConfig(half_life_days=7.0, **exponents)).fit(events, features)
    timeless = ItemKNN(ItemKNNConfig(half_life_days=None, **exponents)).fit(events, features)
    # Each shopper had 2 items (1/sqrt 2); item 0 had 2 shoppers (1/2); a view counts 1.
    assert recent.neighbours(0).items.tolist() == [2, 1]
    np.testing.assert_allclose(
        recent.neighbours(0).scores, [1 / math.sqrt(2) / 2, 0.5 ** (40 / 7) / math.sqrt(2) / 2], rtol=1e-5
    )
    # Without decay both count the same; the tie goes to the lower item.
    assert timeless.neighbours(0).items.tolist() == [1, 2]
