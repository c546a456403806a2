"""Trending: decay, event-type weights, categories."""

import numpy as np
import pytest

from recommender.algorithms.data import PURCHASE, VIEW, Interactions, ItemFeatures, Query
from recommender.algorithms.trending import Trending, TrendingConfig

DAY = 86_400
NOW = 1_700_000_000


def old_many_versus_new_few() -> Interactions:
    """Item 0: three views 10 days before the last event; item 1: one view at the end."""
    return Interactions.from_arrays(
        user=np.array([0, 1, 2, 3]),
        item=np.array([0, 0, 0, 1]),
        ts=np.array([NOW - 10 * DAY] * 3 + [NOW]),
        n_items=3,
    )


def test_a_short_half_life_favours_the_recent_item_a_long_one_the_frequent_item() -> None:
    events = old_many_versus_new_few()
    features = ItemFeatures.empty(3)
    short = Trending(TrendingConfig(half_life_days=2.0)).fit(events, features)
    long = Trending(TrendingConfig(half_life_days=100.0)).fit(events, features)
    # 3 * 0.5^(10/2) = 0.09375 < 1; 3 * 0.5^(10/100) = 2.799 > 1.
    np.testing.assert_allclose(short.scores()[:2], [3 * 0.5**5, 1.0], rtol=1e-6)
    np.testing.assert_allclose(long.scores()[:2], [3 * 0.5**0.1, 1.0], rtol=1e-6)
    assert short.top(2).items.tolist() == [1, 0]
    assert long.top(2).items.tolist() == [0, 1]


def test_items_without_events_have_no_opinion() -> None:
    model = Trending().fit(old_many_versus_new_few(), ItemFeatures.empty(3))
    assert np.isneginf(model.scores()[2])
    assert model.top(5).items.tolist() == [1, 0]


def test_a_purchase_outweighs_a_view_by_the_configured_weights() -> None:
    events = Interactions.from_arrays(
        user=np.array([0, 1]), item=np.array([0, 1]), ts=np.array([NOW, NOW]), event_type=np.array([VIEW, PURCHASE])
    )
    weights = {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0, "impression": 0.0}
    model = Trending(TrendingConfig(event_weights=weights)).fit(events, ItemFeatures.empty(2))
    np.testing.assert_allclose(model.scores(), [1.0, 8.0])


def test_per_category_trending_keeps_only_that_category() -> None:
    events = Interactions.from_arrays(user=np.zeros(4), item=np.array([0, 1, 1, 2]), ts=np.full(4, NOW), n_items=4)
    features = ItemFeatures(category=np.array([5, 6, 5, 5]), created_ts=np.zeros(4))
    model = Trending().fit(events, features)
    assert model.top(3).items.tolist() == [1, 0, 2]
    assert model.top(3, category=5).items.tolist() == [0, 2]
    assert model.recommend(Query(category=6), 3).items.tolist() == [1]
    # Similar items of item 0 are the trending items of its category, itself excluded.
    assert model.similar_items(0, 3).items.tolist() == [2]


def test_the_reference_time_is_the_last_event() -> None:
    assert Trending().fit(old_many_versus_new_few(), ItemFeatures.empty(3)).reference_ts == NOW


def test_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TrendingConfig(half_life_days=0)
