"""Normalised score fusion: exact fused scores."""

import numpy as np
import pytest

from recommender.algorithms.blend import BlendConfig, blend, default_blend, normalise
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.sources import SOURCES


def ranking(items: list[int], scores: list[float]) -> Ranking:
    return Ranking(items=np.array(items, dtype=np.int32), scores=np.array(scores, dtype=np.float32))


def test_minmax_maps_the_best_to_one_and_keeps_the_worst_above_zero() -> None:
    # Floor 0.5 / 3 candidates = 1/6; the middle score is a third of the way up.
    np.testing.assert_allclose(normalise(np.array([4.0, 2.0, 1.0]), "minmax"), [1.0, 1 / 6 + 5 / 6 / 3, 1 / 6])
    np.testing.assert_array_equal(normalise(np.array([3.0, 3.0]), "minmax"), [1.0, 1.0])


def test_reciprocal_rank_depends_on_rank_only() -> None:
    np.testing.assert_allclose(normalise(np.array([9.0, 0.5, 0.1]), "reciprocal_rank"), [1.0, 61 / 62, 61 / 63])


def test_blend_sums_weighted_normalised_scores() -> None:
    result = blend(
        {"a": ranking([1, 2], [10.0, 0.0]), "b": ranking([2, 3], [5.0, 5.0])},
        {"a": 1.0, "b": 0.5},
    )
    # a: item 1 -> 1, item 2 -> floor 0.25. b: both equal -> 1, times 0.5.
    assert result.items.tolist() == [1, 2, 3]
    np.testing.assert_allclose(result.scores, [1.0, 0.75, 0.5])
    np.testing.assert_allclose(result.as_scores(5), [-np.inf, 1.0, 0.75, 0.5, -np.inf])


def test_sources_without_weight_are_ignored_and_ties_go_to_the_lower_item() -> None:
    result = blend(
        {"a": ranking([7, 4], [1.0, 1.0]), "ignored": ranking([1], [100.0])},
        {"a": 2.0},
        k=1,
    )
    assert result.items.tolist() == [4]
    np.testing.assert_allclose(result.scores, [2.0])


def test_non_finite_scores_are_dropped_and_the_rest_normalised_without_them() -> None:
    result = blend({"a": ranking([1, 2, 3], [4.0, np.nan, 2.0]), "b": ranking([2], [np.inf])}, {"a": 1.0, "b": 1.0})

    assert result.items.tolist() == [1, 3]
    np.testing.assert_allclose(result.scores, [1.0, 0.25])


def test_blend_of_nothing_is_empty() -> None:
    result = blend({"a": ranking([], [])}, {"a": 1.0})
    assert len(result) == 0


def test_blend_config_round_trips_and_rejects_negative_weights() -> None:
    config = BlendConfig(
        weights={"trending": 1.0, "als": 0.5}, normalisation="reciprocal_rank", candidates_per_source=50
    )
    assert BlendConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        BlendConfig(weights={"trending": -1.0})


def test_the_default_blend_uses_only_known_sources() -> None:
    config = default_blend()
    assert config.weights
    assert set(config.weights) <= set(SOURCES)
    assert sum(config.weights.values()) > 0
