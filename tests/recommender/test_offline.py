"""Offline evaluation on the temporal hold-out, as every training run does it."""

import numpy as np
import pytest

from recommender.algorithms.als import Als, AlsConfig
from recommender.algorithms.evaluation import (
    algorithm_scorer,
    build_test_cases,
    evaluate,
    item_popularity,
    temporal_split,
)
from recommender.algorithms.text_similarity import TextSimilarity
from recommender.algorithms.trending import Trending, TrendingConfig
from recommender.bench.synthetic import demo_synthetic_shop
from recommender.offline import BatchedVectorScorer, evaluate_holdout, sample_test_users, scorer_for


@pytest.fixture(scope="module")
def shop():
    return demo_synthetic_shop(n_items=300, n_events=6000, embedding_dimensions=16)


@pytest.mark.parametrize(("model_class", "config"), [(Als, AlsConfig(factors=8)), (TextSimilarity, None)])
def test_batched_scores_are_the_models_own_scores(shop, model_class, config):
    split = temporal_split(shop.interactions, train_fraction=0.8)
    model = model_class(config).fit(split.train, shop.features)
    cases = build_test_cases(split)
    scorer = scorer_for(model, cases)

    assert isinstance(scorer, BatchedVectorScorer) and len(cases) > 64  # more than one batch
    for case in reversed(cases):  # any order
        np.testing.assert_allclose(scorer(case), model.score(case.query()), rtol=1e-5, atol=1e-6)


def test_models_with_their_own_scoring_are_scored_one_case_at_a_time(shop):
    model = Trending(TrendingConfig()).fit(shop.interactions, shop.features)

    assert not isinstance(scorer_for(model, []), BatchedVectorScorer)


def test_the_evaluation_samples_test_shoppers_with_a_fixed_seed(shop):
    split = temporal_split(shop.interactions, train_fraction=0.8)
    every = sample_test_users(split, max_users=10_000)

    sample = sample_test_users(split, max_users=50)

    assert len(sample) == 50 and np.all(np.isin(sample, every))
    assert np.array_equal(sample, sample_test_users(split, max_users=50))
    # Every shopper who makes a test case is a candidate (some candidates had only seen items).
    assert {case.user for case in build_test_cases(split)} <= set(every.tolist())


def test_holdout_metrics_of_a_run_match_scoring_case_by_case(shop, settings):
    settings.TRAINING_EVAL_MAX_CASES = 10_000
    config = AlsConfig(factors=8)

    result = evaluate_holdout(Als, config, shop.interactions, shop.features, train_fraction=0.8)

    split = temporal_split(shop.interactions, train_fraction=0.8)
    model = Als(config).fit(split.train, shop.features)
    trained = np.bincount(split.train.item, minlength=shop.interactions.n_items) > 0
    expected = evaluate(
        algorithm_scorer(model),
        build_test_cases(split),
        n_items=shop.interactions.n_items,
        popularity=item_popularity(split.train),
        cold_items=np.flatnonzero(~trained),
    ).to_dict()
    assert result.metrics["cases"] == expected["cases"] > 0
    for name in ("ndcg_at_10", "recall_at_20", "hit_rate_at_10", "mrr", "coverage_at_10", "novelty_at_10"):
        assert result.metrics[name] == pytest.approx(expected[name], rel=1e-6), name
    assert (result.metrics["train_fraction"], result.metrics["cutoff_ts"]) == (0.8, split.cutoff_ts)
    assert result.metrics["train_events"] + result.metrics["test_events"] == len(shop.interactions)
