"""The configuration each model kind trains with."""

import pytest

from recommender.kinds import UnknownKind, kind_config, kind_spec, kinds_for_shop
from tests.factories import ShopFactory

WEIGHTS = {"view": 1.0, "click": 3.0, "add_to_cart": 5.0, "purchase": 20.0, "impression": 0.0}


@pytest.fixture
def tuned_shop(db):
    return ShopFactory(event_weights=WEIGHTS, decay_half_life_days=30.0)


def test_the_shops_weights_half_life_and_the_training_threads_apply_under_the_runs_overrides(tuned_shop, settings):
    settings.TRAINING_THREADS = 3

    config = kind_config(kind_spec("cold_start"), tuned_shop, {"ridge_regularization": 2.0, "als": {"factors": 8}})

    assert (config.ridge_regularization, config.als.factors, config.als.iterations) == (2.0, 8, 15)
    assert (config.als.event_weights, config.als.half_life_days, config.als.num_threads) == (WEIGHTS, 30.0, 3)


def test_co_occurrence_kinds_differ_by_relation_and_trending_keeps_its_own_half_life(tuned_shop):
    assert kind_config(kind_spec("bought_together"), tuned_shop).relation == "bought_together"
    assert kind_config(kind_spec("also_viewed"), tuned_shop).relation == "also_viewed"
    trending = kind_config(kind_spec("trending"), tuned_shop)
    assert (trending.event_weights, trending.half_life_days) == (WEIGHTS, 3.0)


def test_unknown_kinds_and_settings_are_refused(tuned_shop):
    with pytest.raises(UnknownKind, match="unknown model kind 'nope'"):
        kind_spec("nope")
    with pytest.raises(ValueError, match="unknown TrendingConfig settings: speed"):
        kind_config(kind_spec("trending"), tuned_shop, {"speed": 1})


def test_kinds_that_need_text_embeddings_are_left_out_without_them():
    assert "text_similarity" in kinds_for_shop(has_text_embeddings=True)
    assert set(kinds_for_shop(has_text_embeddings=True)) - set(kinds_for_shop(has_text_embeddings=False)) == {
        "text_similarity",
        "cold_start",
    }
