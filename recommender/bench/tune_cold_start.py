"""Fit the cold-start hybrid's conditional logit on the validation split (never the test period).

``python -m recommender.bench.tune_cold_start`` works inside the training period of the
quality benchmark only: the validation split (the first 80% of the first 80% of
MovieLens 100K's event time). For each of ``SEEDS`` it withholds a different 10% of the
items from the validation training events, as the benchmark does with its own seed on
the test split, fits the hybrid without exploration, and collects for every validation
shopper and every candidate item the terms of the logit (module docstring of
recommender.algorithms.cold_start). The weights are the maximum-likelihood conditional
logit over those shoppers (one softmax over the candidates per shopper, the items the
shopper interacted with in the validation period as the outcomes), for each pair of
half-lives in the grid; the pair with the best likelihood wins. Creation times are the
movies' release dates here (MovieLens's stand-in for a product's creation date), so
the newness weight can be learned.

``--maps`` compares instead how text becomes a cold item's ALS vector and popularity
(``ColdStartConfig.text_map``: ridge regression at several regularisations, the kNN
mean over the nearest warm items at several sizes and sharpnesses), each with the
product's exposure, on the three validation cuts of the training period
(recommender.bench.protocol.VALIDATION_FRACTIONS) times ``MAP_SEEDS`` withheld-item
seeds: the pooled HR@10 of a withheld item in the full ranking over random's, and
NDCG@10 over all validation shoppers. The chosen map is the one with the best HR@10
among those whose NDCG@10 is within ``MAP_NDCG_TOLERANCE`` of the best NDCG@10 (a
better cold HR must not be bought with a worse list for everybody).

It then prints, with the benchmark's item mapping (``created="catalog"``, no newness
signal), the validation reading of the cold-start target for several exploration
levels: NDCG@10 of the hybrid over all validation shoppers, and HR@10 of a withheld
item in the full ranking against a random order. The defaults of ColdStartConfig are
set from this output by hand (they are the product's defaults, reviewed like code).
"""

import argparse
import dataclasses
import itertools
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from recommender.algorithms.als import Als
from recommender.algorithms.cold_start import ColdStartConfig, ColdStartHybrid
from recommender.algorithms.data import Interactions, ItemFeatures
from recommender.algorithms.evaluation import (
    EvaluationCase,
    TemporalSplit,
    algorithm_scorer,
    build_test_cases,
    hold_out_items,
    item_popularity,
    random_hit_rate,
    without_items,
)
from recommender.bench.movielens import load_movielens
from recommender.bench.protocol import Holdout, validation_holdout, validation_holdouts

SEEDS = (1, 2, 3, 4, 5)  # the quality benchmark withholds with seed 0, on the test split
WITHHELD_FRACTION = 0.1
POPULARITY_HALF_LIVES: tuple[float | None, ...] = (7.0, 30.0, None)
NEWNESS_HALF_LIVES = (90.0, 180.0, 365.0)
EXPOSURES = (0.0, 0.5, 1.0, 1.5)
L2 = 1e-3
MAP_SEEDS = (1, 2, 3)
MAP_NDCG_TOLERANCE = 0.02
TEXT_MAPS: dict[str, dict[str, object]] = {
    "ridge, lambda 1": {"text_map": "ridge", "ridge_regularization": 1.0},
    "ridge, lambda 10": {"text_map": "ridge", "ridge_regularization": 10.0},
    "ridge, lambda 100": {"text_map": "ridge", "ridge_regularization": 100.0},
    "knn, 10 neighbours, power 3": {"text_map": "knn", "knn_neighbours": 10, "knn_power": 3.0},
    "knn, 30 neighbours, power 3": {"text_map": "knn", "knn_neighbours": 30, "knn_power": 3.0},
    "knn, 30 neighbours, power 1": {"text_map": "knn", "knn_neighbours": 30, "knn_power": 1.0},
    "knn, 50 neighbours, power 1": {"text_map": "knn", "knn_neighbours": 50, "knn_power": 1.0},
}
TERMS = ("warm", "projection", "category_popularity", "text_popularity", "newness", "cold_bias")


@dataclass(frozen=True, eq=False)
class Design:
    """Logit terms of one withheld-items validation run: per shopper, a matrix (candidates
    x terms) and which candidates were interacted with."""

    terms: list[np.ndarray]
    outcomes: list[np.ndarray]


def withheld_split(holdout: Holdout, seed: int) -> tuple[TemporalSplit, list[EvaluationCase], np.ndarray]:
    withheld = hold_out_items(holdout.train.n_items, WITHHELD_FRACTION, seed=seed)
    train = without_items(holdout.train, withheld)
    split = TemporalSplit(train=train, test=holdout.split.test, cutoff_ts=holdout.split.cutoff_ts)
    return split, build_test_cases(split), withheld


def design(model: ColdStartHybrid, cases: Sequence[EvaluationCase]) -> Design:
    """The logit terms of every candidate item (not seen, with a vector) per case."""
    fold = model.fold_in_vectors()
    warm = model.own_vector_mask()
    candidate = model.items_with_vectors()
    cold = candidate & ~warm
    priors = model.prior_features()
    item_terms = np.zeros((model.n_items, len(TERMS) - 3))
    item_terms[:, 0] = priors.category_popularity
    item_terms[:, 1] = priors.text_popularity
    item_terms[:, 2] = priors.newness
    terms, outcomes = [], []
    for case in cases:
        factors = model.query_factors(case.query())
        if factors is None:
            continue
        available = candidate.copy()
        available[case.seen] = False
        items = np.flatnonzero(available)
        affinity = fold[items] @ factors / np.linalg.norm(factors)
        is_cold = cold[items]
        matrix = np.zeros((len(items), len(TERMS)))
        matrix[:, 0] = np.where(is_cold, 0.0, affinity)
        matrix[:, 1] = np.where(is_cold, affinity, 0.0)
        matrix[:, 2:-1] = item_terms[items] * is_cold[:, None]
        matrix[:, -1] = is_cold
        outcome = np.isin(items, case.relevant)
        if outcome.any():
            terms.append(matrix)
            outcomes.append(outcome)
    return Design(terms=terms, outcomes=outcomes)


def negative_log_likelihood(theta: np.ndarray, designs: Sequence[Design]) -> tuple[float, np.ndarray]:
    """Mean over shoppers of -(mean logit of their items - log sum exp over candidates),
    plus L2; and its gradient."""
    total, gradient, count = 0.0, np.zeros_like(theta), 0
    for data in designs:
        for matrix, outcome in zip(data.terms, data.outcomes, strict=True):
            logits = matrix @ theta
            top = logits.max()
            weights = np.exp(logits - top)
            partition = weights.sum()
            total += np.log(partition) + top - logits[outcome].mean()
            gradient += weights @ matrix / partition - matrix[outcome].mean(axis=0)
            count += 1
    return total / count + L2 * float(theta @ theta), gradient / count + 2 * L2 * theta


def fit_logit(designs: Sequence[Design]) -> tuple[np.ndarray, float]:
    start = np.zeros(len(TERMS))
    start[0] = 1.0
    result = minimize(negative_log_likelihood, start, args=(designs,), jac=True, method="L-BFGS-B")
    return result.x, float(result.fun)


def with_weights(config: ColdStartConfig, theta: np.ndarray) -> ColdStartConfig:
    return dataclasses.replace(
        config,
        warm_weight=round(float(theta[0]), 2),
        projection_weight=round(float(theta[1]), 2),
        category_popularity_weight=round(float(theta[2]), 2),
        text_popularity_weight=round(float(theta[3]), 2),
        newness_weight=round(float(theta[4]), 2),
        cold_bias=round(float(theta[5]), 2),
    )


def fit_weights(holdout: Holdout, features: ItemFeatures) -> tuple[ColdStartConfig, float]:
    """The maximum-likelihood weights and half-lives over the validation seeds."""
    runs = [withheld_split(holdout, seed) for seed in SEEDS]
    best: tuple[float, ColdStartConfig] | None = None
    for popularity_half_life, newness_half_life in itertools.product(POPULARITY_HALF_LIVES, NEWNESS_HALF_LIVES):
        config = ColdStartConfig(
            popularity_half_life_days=popularity_half_life,
            newness_half_life_days=newness_half_life,
            new_item_exposure=0.0,
        )
        designs = [design(ColdStartHybrid(config).fit(split.train, features), cases) for split, cases, _ in runs]
        theta, loss = fit_logit(designs)
        print(
            f"popularity half-life {popularity_half_life}, newness half-life {newness_half_life}: "
            f"loss {loss:.5f}; " + ", ".join(f"{name} {value:.3f}" for name, value in zip(TERMS, theta, strict=True))
        )
        if best is None or loss < best[0]:
            best = (loss, with_weights(config, theta))
    assert best is not None
    return dataclasses.replace(best[1], new_item_exposure=ColdStartConfig().new_item_exposure), best[0]


def cold_start_reading(
    holdout: Holdout,
    features: ItemFeatures,
    config: ColdStartConfig,
    *,
    seeds: Sequence[int] = SEEDS,
    exposures: Sequence[float] = EXPOSURES,
) -> dict[float, tuple[float, float, float]]:
    """Per exposure: mean over seeds of (NDCG@10 over the shoppers, HR@10 of a withheld
    item in the full ranking, its random expectation)."""
    readings: dict[float, list[tuple[float, float, float]]] = {exposure: [] for exposure in exposures}
    for seed in seeds:
        split, cases, withheld = withheld_split(holdout, seed)
        runs = Holdout(split=split, cases=cases, popularity=item_popularity(split.train), cold_items=withheld)
        random = random_hit_rate(cases, pool=np.arange(features.n_items), targets=withheld, k=10)
        als = Als(config.als).fit(split.train, features)
        for exposure in exposures:
            model = ColdStartHybrid.from_als(
                als, split.train, features, dataclasses.replace(config, new_item_exposure=exposure)
            )
            report = runs.evaluate(algorithm_scorer(model))
            readings[exposure].append((report.ndcg_at_10, report.cold_hit_rate_at_10 or 0.0, random))
    return {exposure: tuple(np.mean(values, axis=0)) for exposure, values in readings.items()}  # type: ignore[misc]


@dataclass(frozen=True)
class MapReading:
    """A text map's validation reading, pooled over cuts and seeds."""

    ndcg: float
    hit_rate: float
    random: float
    ratios: tuple[float, ...]  # per cut and seed: HR@10 over random's

    @property
    def ratio(self) -> float:
        return self.hit_rate / self.random


def compare_text_maps(
    interactions: Interactions,
    features: ItemFeatures,
    config: ColdStartConfig,
    maps: dict[str, dict[str, object]] = TEXT_MAPS,
    seeds: Sequence[int] = MAP_SEEDS,
) -> dict[str, MapReading]:
    """Every text map with ``config``'s other settings, on each validation cut times each
    seed (one ALS per cut and seed, shared by the maps)."""
    collected: dict[str, list[tuple[float, float, float]]] = {name: [] for name in maps}
    for fraction, cut in validation_holdouts(interactions).items():
        for seed in seeds:
            print(f"text maps: validation cut at {fraction:.0%}, seed {seed}", file=sys.stderr, flush=True)
            split, cases, withheld = withheld_split(cut, seed)
            runs = Holdout(split=split, cases=cases, popularity=item_popularity(split.train), cold_items=withheld)
            random = random_hit_rate(cases, pool=np.arange(features.n_items), targets=withheld, k=10)
            als = Als(config.als).fit(split.train, features)
            for name, overrides in maps.items():
                model = ColdStartHybrid.from_als(als, split.train, features, dataclasses.replace(config, **overrides))  # type: ignore[arg-type]
                report = runs.evaluate(algorithm_scorer(model))
                collected[name].append((report.ndcg_at_10, report.cold_hit_rate_at_10 or 0.0, random))
    readings = {}
    for name, values in collected.items():
        array = np.array(values)
        readings[name] = MapReading(
            ndcg=float(array[:, 0].mean()),
            hit_rate=float(array[:, 1].mean()),
            random=float(array[:, 2].mean()),
            ratios=tuple(float(ratio) for ratio in array[:, 1] / array[:, 2]),
        )
    return readings


def choose_text_map(readings: dict[str, MapReading], tolerance: float = MAP_NDCG_TOLERANCE) -> str:
    """The best cold HR@10 among the maps whose NDCG@10 is within ``tolerance`` (relative)
    of the best NDCG@10."""
    best_ndcg = max(reading.ndcg for reading in readings.values())
    eligible = [name for name, reading in readings.items() if reading.ndcg >= (1 - tolerance) * best_ndcg]
    return max(eligible, key=lambda name: readings[name].hit_rate)


def catalog_features(features: ItemFeatures, interactions: Interactions) -> ItemFeatures:
    """The benchmark's mapping: every item created at the time of the last event."""
    return dataclasses.replace(features, created_ts=np.full(features.n_items, int(interactions.ts.max())))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--maps", action="store_true", help="compare the text maps instead of fitting the logit")
    arguments = parser.parse_args(argv)
    if arguments.maps:
        data = load_movielens()
        maps = compare_text_maps(data.interactions, data.features, ColdStartConfig())
        print("text maps on the validation cuts x seeds " + ", ".join(map(str, MAP_SEEDS)) + ", product exposure:")
        for name, reading in maps.items():
            ratios = np.array(reading.ratios)
            print(
                f"  {name:<30} NDCG@10 {reading.ndcg:.4f}; withheld HR@10 {reading.hit_rate:.3f} vs random "
                f"{reading.random:.3f} ({reading.ratio:.2f}x; per run {ratios.mean():.2f} +- {ratios.std():.2f})"
            )
        print(f"chosen: {choose_text_map(maps)}")
        return
    data = load_movielens(created="release")
    holdout = validation_holdout(data.interactions)
    config, loss = fit_weights(holdout, data.features)
    print(f"\nchosen (validation loss {loss:.5f}):")
    for name in (
        "popularity_half_life_days",
        "newness_half_life_days",
        "warm_weight",
        "projection_weight",
        "category_popularity_weight",
        "text_popularity_weight",
        "newness_weight",
        "cold_bias",
    ):
        print(f"    {name} = {getattr(config, name)}")
    print("\nvalidation, benchmark mapping (no newness signal), mean over seeds " + ", ".join(map(str, SEEDS)) + ":")
    readings = cold_start_reading(holdout, catalog_features(data.features, data.interactions), config)
    for exposure, (ndcg, hit_rate, random) in readings.items():
        print(
            f"  new_item_exposure {exposure:g}: NDCG@10 {ndcg:.4f}; withheld HR@10 {hit_rate:.3f} "
            f"vs random {random:.3f} ({hit_rate / random:.2f}x)"
        )


if __name__ == "__main__":
    main()
