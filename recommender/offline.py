"""Offline evaluation of one model kind on a shop's temporal hold-out.

The protocol and the metrics are recommender.algorithms.evaluation's: train on the
events before the cutoff (``TRAINING_TRAIN_FRACTION`` of event time), test on the
shoppers' new items after it, full ranking over all items minus what the shopper
already had; NDCG@10, Recall@20, HR@10, MRR, coverage, novelty, and HR@10 on items not
seen in training. This module adds what a shop-sized run needs: the test shoppers are a
seeded sample of at most ``TRAINING_EVAL_MAX_CASES`` (ranking 100k items costs
milliseconds per shopper), and the result is a JSON-ready dict.

Every training run calls :func:`evaluate_holdout`; ``manage.py evaluate`` runs it alone.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from threadpoolctl import threadpool_limits

from recommender.algorithms.base import Algorithm, AlgorithmConfig, VectorAlgorithm
from recommender.algorithms.data import Interactions, ItemFeatures
from recommender.algorithms.evaluation import (
    RELEVANT_EVENT_TYPES,
    EvaluationCase,
    Scorer,
    TemporalSplit,
    algorithm_scorer,
    build_test_cases,
    evaluate,
    item_popularity,
    temporal_split,
)

SAMPLE_SEED = 0
# Test shoppers scored with one matrix product (vector models): 64 x 100k float32 = 25 MB.
SCORING_BATCH = 64


@dataclass(frozen=True)
class HoldoutResult:
    metrics: dict[str, Any]  # EvaluationReport fields plus the protocol's parameters
    fit_seconds: float


@contextmanager
def single_threaded_scoring() -> Iterator[None]:
    """One BLAS and one torch thread while test shoppers are scored one at a time: their
    matrix-vector products are too small to share, and threads spinning for work made
    scoring four times slower on a busy two-core machine (11 ms vs 2.4 ms per shopper
    for ALS over 100k items)."""
    torch = sys.modules.get("torch")  # only if a model already uses it: never import it here
    threads = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(threads)


class BatchedVectorScorer:
    """``model.score(case.query())`` for the cases of an evaluation, computed SCORING_BATCH
    cases at a time with one matrix product instead of one matrix-vector product each.

    Scoring one shopper reads every item vector (154 MB for 100k text embeddings); a
    batch reads them once. Applies exactly VectorAlgorithm.score's rule: the dot product
    with the query vector, ``-inf`` for items without a vector and for a query without
    one. Only for models that do not override ``score`` (see :func:`scorer_for`).
    """

    def __init__(self, model: VectorAlgorithm[Any], cases: list[EvaluationCase]) -> None:
        self._model = model
        self._cases = cases
        self._position = {id(case): index for index, case in enumerate(cases)}
        self._start = 0
        self._block = np.zeros((0, model.n_items), dtype=np.float32)

    def __call__(self, case: EvaluationCase) -> np.ndarray:
        index = self._position[id(case)]
        if not self._start <= index < self._start + len(self._block):
            self._score_batch(index)
        return self._block[index - self._start]

    def _score_batch(self, start: int) -> None:
        items = self._model.item_vectors()
        vectors = [self._model.query_vector(case.query()) for case in self._cases[start : start + SCORING_BATCH]]
        queries = np.zeros((len(vectors), items.shape[1]), dtype=np.float32)
        for row, vector in enumerate(vectors):
            if vector is not None:
                queries[row] = vector
        block = queries @ items.T
        block[:, ~self._model.items_with_vectors()] = -np.inf
        for row, vector in enumerate(vectors):
            if vector is None:
                block[row] = -np.inf
        self._start, self._block = start, block


def scorer_for(model: Algorithm[Any], cases: list[EvaluationCase]) -> Scorer:
    """The batched scorer for vector models that score as VectorAlgorithm does, else the
    algorithm's own ``score`` one case at a time."""
    if isinstance(model, VectorAlgorithm) and type(model).score is VectorAlgorithm.score:
        return BatchedVectorScorer(model, cases)
    return algorithm_scorer(model)


def sample_test_users(split: TemporalSplit, max_users: int, seed: int = SAMPLE_SEED) -> np.ndarray:
    """Users with training history and a relevant test event (sorted), at most ``max_users``
    of them, chosen with a fixed seed so reruns on the same data evaluate the same shoppers."""
    # Marks per user index, not np.unique: linear in the events (millions at shop scale).
    relevant = split.test.user[np.isin(split.test.event_type, RELEVANT_EVENT_TYPES)]
    n_users = split.train.n_users
    tested = np.bincount(relevant, minlength=n_users) > 0
    trained = np.bincount(split.train.user, minlength=n_users) > 0
    users = np.flatnonzero(tested & trained)
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, size=max_users, replace=False))
    return users


def evaluate_holdout(
    algorithm_class: type[Algorithm[Any]],
    config: AlgorithmConfig,
    interactions: Interactions,
    features: ItemFeatures,
    *,
    train_fraction: float | None = None,
    max_cases: int | None = None,
) -> HoldoutResult:
    """Fit a fresh model of ``algorithm_class`` on the events before the cutoff and
    evaluate it on the test shoppers. Deterministic for the same data and settings."""
    import time

    train_fraction = settings.TRAINING_TRAIN_FRACTION if train_fraction is None else train_fraction
    max_cases = settings.TRAINING_EVAL_MAX_CASES if max_cases is None else max_cases
    split = temporal_split(interactions, train_fraction=train_fraction)
    started = time.monotonic()
    model = algorithm_class(config).fit(split.train, features)
    fit_seconds = time.monotonic() - started
    users = sample_test_users(split, max_cases)
    # build_test_cases scans the test events once per shopper: hand it only the sample's.
    in_sample = np.zeros(interactions.n_users, dtype=bool)
    in_sample[users] = True
    sampled = TemporalSplit(
        train=split.train.select(in_sample[split.train.user]),
        test=split.test.select(in_sample[split.test.user]),
        cutoff_ts=split.cutoff_ts,
    )
    cases = build_test_cases(sampled)
    trained = np.bincount(split.train.item, minlength=interactions.n_items) > 0
    with single_threaded_scoring():
        report = evaluate(
            scorer_for(model, cases),
            cases,
            n_items=interactions.n_items,
            popularity=item_popularity(split.train),
            cold_items=np.flatnonzero(~trained),
        )
    metrics: dict[str, Any] = report.to_dict()
    metrics.update(
        cutoff_ts=split.cutoff_ts,
        train_fraction=train_fraction,
        train_events=len(split.train),
        test_events=len(split.test),
        max_cases=max_cases,
    )
    return HoldoutResult(metrics=metrics, fit_seconds=fit_seconds)
