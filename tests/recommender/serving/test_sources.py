"""top(): the ranking rule every source's candidates go through."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.serving.sources import top


def test_top_keeps_the_best_score_of_a_repeated_item_and_breaks_ties_by_lower_index():
    ranking = top(np.array([7, 3, 7, 5]), np.array([0.5, 0.9, 0.95, 0.9], dtype=np.float32), 3)
    assert ranking.items.tolist() == [7, 3, 5]
    assert ranking.scores.tolist() == [np.float32(0.95), np.float32(0.9), np.float32(0.9)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=40, unique=True),
    st.data(),
    st.integers(1, 45),
)
def test_top_of_distinct_items_is_the_same_with_the_distinct_shortcut(items, data, k):
    scores = data.draw(st.lists(st.sampled_from([0.1, 0.2, 0.5, 0.9]), min_size=len(items), max_size=len(items)))
    items, scores = np.array(items), np.array(scores, dtype=np.float32)
    general, shortcut = top(items, scores, k), top(items, scores, k, distinct=True)
    assert general.items.tolist() == shortcut.items.tolist()
    assert general.scores.tolist() == shortcut.scores.tolist()
