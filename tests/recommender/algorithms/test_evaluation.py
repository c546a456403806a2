"""Offline evaluation: metrics against hand-computed values, split and test cases."""

import math

import numpy as np
import pytest

from recommender.algorithms.data import IMPRESSION, PURCHASE, VIEW, History, Interactions
from recommender.algorithms.evaluation import (
    EvaluationCase,
    build_test_cases,
    catalog_coverage,
    evaluate,
    hit_rate_among,
    hit_rate_at_k,
    hold_out_items,
    item_popularity,
    ndcg_at_k,
    ndcg_per_case,
    novelty,
    random_hit_rate,
    recall_at_k,
    reciprocal_rank,
    temporal_split,
    without_items,
)

RANKED = np.array([5, 3, 9, 1])
RELEVANT = np.array([3, 1])


def test_ndcg_counts_hits_by_rank_over_the_ideal() -> None:
    # Top 3 holds item 3 at rank 2; the ideal has both relevant items at ranks 1 and 2.
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(RANKED, RELEVANT, 3) == pytest.approx(expected, rel=1e-12)
    assert ndcg_at_k(np.array([3, 1, 5]), RELEVANT, 3) == pytest.approx(1.0, rel=1e-12)
    assert ndcg_at_k(RANKED, np.array([7]), 3) == 0.0


def test_recall_is_the_share_of_relevant_items_in_the_top_k() -> None:
    assert recall_at_k(RANKED, RELEVANT, 2) == 0.5
    assert recall_at_k(RANKED, RELEVANT, 4) == 1.0


def test_hit_rate_is_one_when_any_relevant_item_is_in_the_top_k() -> None:
    assert hit_rate_at_k(RANKED, RELEVANT, 1) == 0.0
    assert hit_rate_at_k(RANKED, RELEVANT, 2) == 1.0


def test_reciprocal_rank_of_the_first_relevant_item() -> None:
    assert reciprocal_rank(RANKED, RELEVANT) == 0.5
    assert reciprocal_rank(RANKED, np.array([7])) == 0.0


def test_coverage_is_the_share_of_the_catalog_recommended_at_all() -> None:
    assert catalog_coverage([np.array([0, 1]), np.array([1, 2])], 10) == pytest.approx(0.3, rel=1e-12)


def test_novelty_is_the_mean_self_information_per_list() -> None:
    popularity = np.array([0.5, 0.25, 0.125])
    # List 1: (1 + 2) / 2 bits; list 2: 3 bits; mean of the lists.
    assert novelty([np.array([0, 1]), np.array([2])], popularity) == pytest.approx(2.25, rel=1e-12)


def test_item_popularity_is_the_share_of_shoppers_with_floor_one() -> None:
    train = Interactions.from_arrays(
        user=np.array([0, 0, 1, 2, 3]), item=np.array([0, 0, 0, 1, 1]), ts=np.zeros(5), n_items=3
    )
    np.testing.assert_allclose(item_popularity(train), [0.5, 0.5, 0.25])


def test_temporal_split_cuts_at_the_fraction_of_event_time() -> None:
    events = Interactions.from_arrays(user=np.zeros(5), item=np.arange(5), ts=np.array([10, 20, 30, 40, 50]))
    split = temporal_split(events, train_fraction=0.8)
    assert split.cutoff_ts == 42
    assert split.train.ts.tolist() == [10, 20, 30, 40]
    assert split.test.ts.tolist() == [50]


def test_test_cases_are_shoppers_with_history_and_new_relevant_items() -> None:
    events = Interactions.from_arrays(
        user=np.array([0, 0, 2, 0, 0, 0, 1, 2]),
        item=np.array([1, 2, 4, 2, 3, 5, 6, 4]),
        ts=np.array([1, 2, 3, 10, 11, 12, 13, 14]),
        event_type=np.array([VIEW, PURCHASE, VIEW, VIEW, VIEW, IMPRESSION, VIEW, VIEW]),
        n_items=7,
    )
    cases = build_test_cases(temporal_split(events, cutoff_ts=10))
    # Shopper 1 has no history; shopper 2 only repeats an item; impressions are not relevant.
    assert [case.user for case in cases] == [0]
    assert cases[0].relevant.tolist() == [3]
    assert cases[0].history.item.tolist() == [1, 2]
    assert cases[0].seen.tolist() == [1, 2]
    assert cases[0].now == 10


def make_case(user: int, seen: list[int], relevant: list[int]) -> EvaluationCase:
    return EvaluationCase(user=user, history=History.of_items(seen), relevant=np.array(relevant), now=0)


def test_evaluate_ranks_everything_but_the_seen_items() -> None:
    # Scores rank items 0..5 as 5, 4, 3, 2, 1, 0; item 4 is -inf (no opinion).
    scores = np.array([0.0, 1.0, 2.0, 3.0, -np.inf, 5.0], dtype=np.float32)
    cases = [make_case(0, seen=[5], relevant=[3]), make_case(1, seen=[], relevant=[4])]
    report = evaluate(
        lambda case: scores,
        cases,
        n_items=6,
        popularity=np.full(6, 0.5),
        cold_items=np.array([4]),
    )
    # Case 0 ranks 3, 2, 1, 0, 4: item 3 first. Case 1 ranks 5, 3, 2, 1, 0, 4: item 4 sixth.
    assert report.ndcg_at_10 == pytest.approx((1.0 + 1 / math.log2(7)) / 2, rel=1e-12)
    assert report.recall_at_20 == 1.0
    assert report.hit_rate_at_10 == 1.0
    assert report.mrr == pytest.approx((1.0 + 1 / 6) / 2, rel=1e-12)
    assert report.coverage_at_10 == 1.0
    assert report.novelty_at_10 == pytest.approx(1.0, rel=1e-12)
    assert report.cold_hit_rate_at_10 == 1.0
    assert (report.cases, report.cold_cases) == (2, 1)


def test_ndcg_per_case_ranks_each_case_as_evaluate_does() -> None:
    scores = np.array([0.0, 1.0, 2.0, 3.0, -np.inf, 5.0], dtype=np.float32)
    cases = [make_case(0, seen=[5], relevant=[3]), make_case(1, seen=[], relevant=[4])]
    per_case = ndcg_per_case(lambda case: scores, cases)
    # As above: item 3 first for case 0, item 4 sixth for case 1; k=5 cuts case 1's hit.
    np.testing.assert_allclose(per_case, [1.0, 1 / math.log2(7)], rtol=1e-12)
    assert ndcg_per_case(lambda case: scores, cases, k=5).tolist() == [1.0, 0.0]


def test_hit_rate_among_candidates_ranks_only_the_candidates() -> None:
    scores = np.array([9.0, 8.0, 1.0, 2.0, 3.0])
    cases = [make_case(0, seen=[], relevant=[2]), make_case(1, seen=[4], relevant=[3]), make_case(2, [], [0])]
    # Among candidates 2, 3, 4: case 0 gets [4, 3] (miss), case 1 gets [3, 2] (hit); case
    # 2 has no relevant candidate.
    assert hit_rate_among(lambda case: scores, cases, np.array([2, 3, 4]), 2) == (0.5, 2)


def test_random_hit_rate_is_the_hypergeometric_expectation() -> None:
    cases = [make_case(0, seen=[], relevant=[1]), make_case(1, seen=[0, 1, 2], relevant=[4])]
    # Case 0: 1 of 5 candidates, k=2: 1 - C(4,2)/C(5,2) = 0.4. Case 1: 2 candidates left <= k: 1.
    assert random_hit_rate(cases, pool=np.arange(5), targets=np.arange(5), k=2) == pytest.approx(0.7, rel=1e-12)
    # Only item 4 counts: case 0 has no relevant target; case 1 ranks 7 unseen items.
    full = random_hit_rate(cases, pool=np.arange(10), targets=np.array([4]), k=2)
    assert full == pytest.approx(1 - math.comb(6, 2) / math.comb(7, 2), rel=1e-12)


def test_held_out_items_depend_only_on_the_seed() -> None:
    first = hold_out_items(100, 0.1, seed=7)
    assert first.tolist() == hold_out_items(100, 0.1, seed=7).tolist()
    assert len(np.unique(first)) == 10
    assert first.tolist() != hold_out_items(100, 0.1, seed=8).tolist()


def test_without_items_drops_every_event_of_those_items() -> None:
    events = Interactions.from_arrays(user=np.array([0, 1, 2]), item=np.array([0, 1, 0]), ts=np.array([1, 2, 3]))
    assert without_items(events, np.array([0])).item.tolist() == [1]
