"""The benchmark protocol shared by ``quality`` and ``tune_blend``.

Global temporal split at the 80% point of event time: the test period is what comes
after it. The validation split repeats the same cut inside the training period, so
anything tuned on it never sees the test period.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.algorithms.base import Algorithm
from recommender.algorithms.data import Interactions, ItemFeatures
from recommender.algorithms.evaluation import (
    EvaluationCase,
    EvaluationReport,
    Scorer,
    TemporalSplit,
    build_test_cases,
    evaluate,
    item_popularity,
    temporal_split,
)
from recommender.algorithms.sources import new_source

TRAIN_FRACTION = 0.8


@dataclass(frozen=True, eq=False)
class Holdout:
    """A split with its test cases and what the metrics need to know about training."""

    split: TemporalSplit
    cases: list[EvaluationCase]
    popularity: np.ndarray
    cold_items: np.ndarray

    @property
    def train(self) -> Interactions:
        return self.split.train

    def evaluate(self, scorer: Scorer) -> EvaluationReport:
        return evaluate(
            scorer,
            self.cases,
            n_items=self.train.n_items,
            popularity=self.popularity,
            cold_items=self.cold_items,
        )


def holdout(interactions: Interactions, train_fraction: float = TRAIN_FRACTION) -> Holdout:
    split = temporal_split(interactions, train_fraction=train_fraction)
    trained = np.bincount(split.train.item, minlength=interactions.n_items) > 0
    return Holdout(
        split=split,
        cases=build_test_cases(split),
        popularity=item_popularity(split.train),
        cold_items=np.flatnonzero(~trained),
    )


def evaluation_holdout(interactions: Interactions) -> Holdout:
    """Train before the 80% point of all event time, test after."""
    return holdout(interactions)


def validation_holdout(interactions: Interactions) -> Holdout:
    """The same cut inside the evaluation holdout's training period."""
    return holdout(evaluation_holdout(interactions).train)


# Cuts of the training period that tuning averages over: more validation shoppers and
# periods than one cut, so weights chosen there are less an accident of one period.
VALIDATION_FRACTIONS = (0.7, 0.8, 0.9)


def validation_holdouts(
    interactions: Interactions, fractions: Iterable[float] = VALIDATION_FRACTIONS
) -> dict[float, Holdout]:
    """Holdouts cut at each fraction of the evaluation holdout's training events (0.8 is
    :func:`validation_holdout`); all of them end before the test period starts."""
    train = evaluation_holdout(interactions).train
    return {fraction: holdout(train, train_fraction=fraction) for fraction in fractions}


def fit_sources(
    names: Iterable[str], train: Interactions, features: ItemFeatures
) -> tuple[dict[str, Algorithm[Any]], dict[str, float]]:
    """Each named blend source fitted with the product defaults, and its fit seconds."""
    fitted, seconds = {}, {}
    for name in names:
        started = time.perf_counter()
        fitted[name] = new_source(name).fit(train, features)
        seconds[name] = time.perf_counter() - started
    return fitted, seconds
