"""Offline evaluation on a temporal hold-out, on arrays alone.

Protocol: train on the events before a cutoff, test on the events after it. A test case
is a shopper with training history and at least one item after the cutoff they had not
interacted with before it; the scorer sees only the training history (folded in, as in
serving, with ``now`` = the cutoff) and ranks the whole catalog minus the shopper's
training items. Relevance is binary: the distinct items of the shopper's test events.
Nothing here is random, so results are deterministic (``hold_out_items`` takes a seed).

Run alone: ``python -m recommender.algorithms.evaluation --interactions events.npz
--kind als`` (see ``--help``).
"""

import argparse
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recommender.algorithms.base import Algorithm
from recommender.algorithms.blend import BlendConfig, blend, candidates
from recommender.algorithms.data import (
    ADD_TO_CART,
    CLICK,
    PURCHASE,
    VIEW,
    History,
    Interactions,
    ItemFeatures,
    Query,
)
from recommender.algorithms.ranking import rank_all

RELEVANT_EVENT_TYPES = (VIEW, CLICK, ADD_TO_CART, PURCHASE)

Scorer = Callable[["EvaluationCase"], np.ndarray]


@dataclass(frozen=True, eq=False)
class TemporalSplit:
    train: Interactions
    test: Interactions
    cutoff_ts: int


def cutoff_at_fraction(ts: np.ndarray, train_fraction: float) -> int:
    """The first second at or after the ``train_fraction`` quantile of event times;
    events strictly before it are training."""
    return math.ceil(float(np.quantile(ts, train_fraction)))


def temporal_split(
    interactions: Interactions, *, train_fraction: float = 0.8, cutoff_ts: int | None = None
) -> TemporalSplit:
    """Events before the cutoff (default: the ``train_fraction`` point of event time)
    train, the others test."""
    cutoff = cutoff_at_fraction(interactions.ts, train_fraction) if cutoff_ts is None else int(cutoff_ts)
    before = interactions.ts < cutoff
    return TemporalSplit(train=interactions.select(before), test=interactions.select(~before), cutoff_ts=cutoff)


def hold_out_items(n_items: int, fraction: float, seed: int) -> np.ndarray:
    """A seeded random ``fraction`` of the items (sorted int32), e.g. to withhold from
    training entirely and test cold start on."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(n_items, size=round(fraction * n_items), replace=False)
    return np.sort(chosen).astype(np.int32)


def without_items(interactions: Interactions, items: np.ndarray) -> Interactions:
    """The events of all other items (sizes unchanged)."""
    dropped = np.zeros(interactions.n_items, dtype=bool)
    dropped[items] = True
    return interactions.select(~dropped[interactions.item])


@dataclass(frozen=True, eq=False)
class EvaluationCase:
    """One shopper of the test period: training history, items to find, request time."""

    user: int
    history: History
    relevant: np.ndarray
    now: int

    def query(self) -> Query:
        return Query(history=self.history, now=self.now)

    @property
    def seen(self) -> np.ndarray:
        """Distinct items of the training history (excluded from the ranking)."""
        return np.unique(self.history.item)


def build_test_cases(
    split: TemporalSplit, *, relevant_event_types: Sequence[int] = RELEVANT_EVENT_TYPES
) -> list[EvaluationCase]:
    """One case per shopper with training events and >= 1 new relevant item in the test
    period (impressions are not relevant by default), in user order."""
    train = split.train.sorted_by_time()
    order = np.argsort(train.user, kind="stable")  # by user, then time
    train_user = train.user[order]
    test = split.test.select(np.isin(split.test.event_type, relevant_event_types))
    test_order = np.argsort(test.user, kind="stable")
    test_user = test.user[test_order]
    cases = []
    for user in np.unique(test_user):
        start, end = np.searchsorted(train_user, [user, user + 1])
        if start == end:
            continue  # no training history: the personalised metrics exclude this shopper
        mine = order[start:end]
        history = History(
            item=train.item[mine], event_type=train.event_type[mine], ts=train.ts[mine], weight=train.weight[mine]
        )
        test_start, test_end = np.searchsorted(test_user, [user, user + 1])
        relevant = np.setdiff1d(test.item[test_order[test_start:test_end]], history.item)
        if len(relevant):
            cases.append(
                EvaluationCase(user=int(user), history=history, relevant=relevant.astype(np.int32), now=split.cutoff_ts)
            )
    return cases


# -- metrics on one ranked list (binary relevance) --------------------------------------


def ndcg_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """DCG of the top k (gain 1 / log2(rank + 1), rank from 1) over the ideal DCG of
    min(k, |relevant|) hits."""
    hits = np.isin(ranked[:k], relevant)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(k, len(relevant))].sum()
    return float(discounts[: len(hits)][hits].sum() / ideal) if ideal > 0 else 0.0


def recall_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """Share of the relevant items that are in the top k."""
    return float(np.isin(ranked[:k], relevant).sum() / len(relevant)) if len(relevant) else 0.0


def hit_rate_at_k(ranked: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """1 if any relevant item is in the top k, else 0."""
    return float(np.isin(ranked[:k], relevant).any())


def reciprocal_rank(ranked: np.ndarray, relevant: np.ndarray) -> float:
    """1 / rank (from 1) of the first relevant item in the full ranking; 0 if absent."""
    positions = np.flatnonzero(np.isin(ranked, relevant))
    return 1.0 / (positions[0] + 1) if len(positions) else 0.0


def catalog_coverage(lists: Sequence[np.ndarray], n_items: int) -> float:
    """Share of the catalog that appears in at least one list."""
    if not lists:
        return 0.0
    return float(len(np.unique(np.concatenate(lists))) / n_items)


def novelty(lists: Sequence[np.ndarray], popularity: np.ndarray) -> float:
    """Mean self-information ``-log2 popularity[i]`` of the recommended items, averaged per
    list then over lists (higher = less obvious items)."""
    per_list = [float(np.mean(-np.log2(popularity[items]))) for items in lists if len(items)]
    return float(np.mean(per_list)) if per_list else 0.0


def item_popularity(train: Interactions) -> np.ndarray:
    """Share of training shoppers who interacted with each item; an item nobody touched
    counts as touched by one shopper, so its self-information stays finite."""
    shoppers = max(len(np.unique(train.user)), 1)
    pairs = np.unique(train.user.astype(np.int64) * train.n_items + train.item)
    users_per_item = np.bincount(pairs % train.n_items, minlength=train.n_items)
    return np.maximum(users_per_item, 1) / shoppers


# -- evaluating a scorer ----------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationReport:
    ndcg_at_10: float
    recall_at_20: float
    hit_rate_at_10: float
    mrr: float
    coverage_at_10: float
    novelty_at_10: float
    # Among cases whose relevant items include items unseen in training: share with one
    # of those in the top 10 (None when there is no such case).
    cold_hit_rate_at_10: float | None
    cases: int
    cold_cases: int

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def evaluate(
    scorer: Scorer,
    cases: Sequence[EvaluationCase],
    *,
    n_items: int,
    popularity: np.ndarray,
    cold_items: np.ndarray,
) -> EvaluationReport:
    """Rank all items by ``scorer(case)`` (float scores over items; ``-inf`` items come
    last, in index order), minus the case's seen items, and average the metrics."""
    ndcg, recall, hits, rr, cold_hits, top_lists = [], [], [], [], [], []
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold_items] = True
    for case in cases:
        ranked = rank_excluding(scorer(case), case.seen)
        ndcg.append(ndcg_at_k(ranked, case.relevant, 10))
        recall.append(recall_at_k(ranked, case.relevant, 20))
        hits.append(hit_rate_at_k(ranked, case.relevant, 10))
        rr.append(reciprocal_rank(ranked, case.relevant))
        top_lists.append(ranked[:10])
        cold_relevant = case.relevant[is_cold[case.relevant]]
        if len(cold_relevant):
            cold_hits.append(hit_rate_at_k(ranked, cold_relevant, 10))
    return EvaluationReport(
        ndcg_at_10=_mean(ndcg),
        recall_at_20=_mean(recall),
        hit_rate_at_10=_mean(hits),
        mrr=_mean(rr),
        coverage_at_10=catalog_coverage(top_lists, n_items),
        novelty_at_10=novelty(top_lists, popularity),
        cold_hit_rate_at_10=_mean(cold_hits) if cold_hits else None,
        cases=len(cases),
        cold_cases=len(cold_hits),
    )


def ndcg_per_case(scorer: Scorer, cases: Sequence[EvaluationCase], k: int = 10) -> np.ndarray:
    """NDCG@k of each case (float64, in case order), ranked as :func:`evaluate` ranks;
    for paired comparisons of two scorers over the same shoppers (e.g. a bootstrap)."""
    return np.array([ndcg_at_k(rank_excluding(scorer(case), case.seen), case.relevant, k) for case in cases])


def rank_excluding(scores: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """All items but ``excluded`` in ranking order (score descending, index ascending)."""
    ranked = rank_all(np.asarray(scores, dtype=np.float64))
    return ranked[~np.isin(ranked, excluded)]


def hit_rate_among(
    scorer: Scorer, cases: Sequence[EvaluationCase], candidates: np.ndarray, k: int
) -> tuple[float, int]:
    """HR@k when only ``candidates`` are ranked (e.g. the items new to the catalog):
    over cases with a relevant candidate, the share with one in the top k. Returns
    (hit rate, number of such cases)."""
    hits = []
    for case in cases:
        relevant = np.intersect1d(case.relevant, candidates)
        if len(relevant) == 0:
            continue
        pool = np.setdiff1d(candidates, case.seen)
        scores = np.asarray(scorer(case), dtype=np.float64)[pool]
        top = pool[rank_all(scores)[:k]]
        hits.append(float(np.isin(top, relevant).any()))
    return _mean(hits), len(hits)


def random_hit_rate(cases: Sequence[EvaluationCase], *, pool: np.ndarray, targets: np.ndarray, k: int) -> float:
    """The expected HR@k of a uniformly random order of ``pool`` (less each case's seen
    items), where a hit is one of the case's relevant items among ``targets``: per case
    with r such items in a pool of n, ``1 - C(n - r, k) / C(n, k)``. Cases without a
    relevant target are skipped, as in ``evaluate``'s cold HR and ``hit_rate_among``."""
    rates = []
    for case in cases:
        available = np.setdiff1d(pool, case.seen)
        relevant = len(np.intersect1d(np.intersect1d(case.relevant, targets), available))
        if relevant == 0:
            continue
        n = len(available)
        rates.append(1.0 - math.comb(n - relevant, k) / math.comb(n, k) if n > k else 1.0)
    return _mean(rates)


def algorithm_scorer(algorithm: Algorithm[Any]) -> Scorer:
    """Score a case with the algorithm, from the case's training history."""
    return lambda case: algorithm.score(case.query())


def blend_scorer(sources: Mapping[str, Algorithm[Any]], config: BlendConfig) -> Scorer:
    """Score a case with the blend of ``sources`` (fitted) by ``config``, the way serving
    blends: each source's top candidates without the seen items, fused by
    :func:`~recommender.algorithms.blend.blend`; items no source proposed get ``-inf``."""
    weighted = {name: source for name, source in sources.items() if config.weights.get(name, 0.0) > 0}
    missing = {name for name, weight in config.weights.items() if weight > 0} - set(weighted)
    if missing:
        raise ValueError(f"the blend needs sources {sorted(missing)}")
    n_items = next(iter(weighted.values())).n_items

    def score(case: EvaluationCase) -> np.ndarray:
        proposed = candidates(weighted, case.query(), per_source=config.candidates_per_source, exclude=case.seen)
        return blend(proposed, config.weights, normalisation=config.normalisation).as_scores(n_items)

    return score


def fit_and_evaluate(
    algorithm: Algorithm[Any],
    interactions: Interactions,
    features: ItemFeatures,
    *,
    train_fraction: float = 0.8,
) -> EvaluationReport:
    """Fit on the first ``train_fraction`` of event time and evaluate on the rest (the
    self-evaluation of a training run). The algorithm is left fitted on the train part."""
    split = temporal_split(interactions, train_fraction=train_fraction)
    algorithm.fit(split.train, features)
    cases = build_test_cases(split)
    trained = np.bincount(split.train.item, minlength=interactions.n_items) > 0
    return evaluate(
        algorithm_scorer(algorithm),
        cases,
        n_items=interactions.n_items,
        popularity=item_popularity(split.train),
        cold_items=np.flatnonzero(~trained),
    )


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    from recommender.algorithms.registry import ALGORITHMS, new_algorithm

    parser = argparse.ArgumentParser(description="Temporal hold-out evaluation of one algorithm.")
    parser.add_argument("--interactions", required=True, help=".npz written by Interactions.save")
    parser.add_argument("--features", help=".npz written by ItemFeatures.save (default: none)")
    parser.add_argument("--kind", required=True, choices=sorted(ALGORITHMS))
    parser.add_argument("--config", default="{}", help="JSON of configuration overrides")
    parser.add_argument("--train-fraction", type=float, default=0.8)
    arguments = parser.parse_args(argv)
    interactions = Interactions.load(arguments.interactions)
    features = ItemFeatures.load(arguments.features) if arguments.features else ItemFeatures.empty(interactions.n_items)
    algorithm = new_algorithm(arguments.kind, json.loads(arguments.config))
    report = fit_and_evaluate(algorithm, interactions, features, train_fraction=arguments.train_fraction)
    print(json.dumps(report.to_dict(), indent=2))


if __name__ == "__main__":
    main()
