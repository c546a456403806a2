"""The prefix of a ranked pool that the category cap reads, against its definition."""

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.serving.diversity import prefix_filling


def _walked(items: np.ndarray, category_of: np.ndarray, cap: int | None, size: int) -> int:
    """How many items, in order, until ``size`` have been taken, at most ``cap`` of one
    category (uncategorised items, category 0, never held back)."""
    taken_of: Counter[int] = Counter()
    taken = 0
    for position, index in enumerate(items.tolist(), start=1):
        category = int(category_of[index])
        if cap is None or category == 0 or taken_of[category] < cap:
            taken_of[category] += 1
            taken += 1
            if taken == size:
                return position
    return len(items)


@settings(max_examples=300, deadline=None)
@given(
    categories=st.lists(st.integers(0, 4), min_size=1, max_size=40),
    picks=st.lists(st.integers(0, 39), max_size=60, unique=True),
    cap=st.one_of(st.none(), st.integers(1, 4)),
    size=st.integers(1, 15),
)
def test_the_prefix_is_what_the_cap_walks_through(categories, picks, cap, size):
    category_of = np.array(categories, dtype=np.int64)
    items = np.array([p for p in picks if p < len(categories)], dtype=np.int64)
    assert prefix_filling(items, category_of, cap, size) == _walked(items, category_of, cap, size)


def test_uncategorised_products_are_never_held_back():
    category_of = np.array([0, 7, 7, 7, 0], dtype=np.int64)
    assert prefix_filling(np.arange(5), category_of, 1, 3) == 5
    assert prefix_filling(np.arange(5), category_of, 2, 3) == 3
    assert prefix_filling(np.zeros(0, dtype=np.int64), category_of, 1, 3) == 0
