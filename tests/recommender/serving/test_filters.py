"""recommender.serving.filters.contains: membership by binary search in sorted values."""

import numpy as np

from recommender.serving.filters import contains


def test_contains_matches_np_isin_on_sorted_values():
    rng = np.random.default_rng(3)
    for size in (1, 2, 5, 40):
        sorted_values = np.unique(rng.integers(-5, 60, size))
        values = rng.integers(-10, 70, 200)
        assert contains(sorted_values, values).tolist() == np.isin(values, sorted_values).tolist()


def test_contains_handles_values_outside_the_range_and_empty_inputs():
    sorted_values = np.array([3, 7, 9])
    assert contains(sorted_values, np.array([0, 3, 8, 9, 10])).tolist() == [False, True, False, True, False]
    assert contains(np.zeros(0, dtype=np.int64), np.array([1, 2])).tolist() == [False, False]
    assert contains(sorted_values, np.zeros(0, dtype=np.int64)).tolist() == []
