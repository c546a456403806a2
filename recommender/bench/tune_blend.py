"""Tune the default blend's weights on validation splits (never on the test period).

``python -m recommender.bench.tune_blend`` cuts the quality benchmark's training period
(the first 80% of MovieLens 100K's event time) at 70%, 80% and 90% of its events
(recommender.bench.protocol.VALIDATION_FRACTIONS), fits every blend source on each
cut's training events, then searches the weights by coordinate ascent over a coarse
grid, for each normalisation, maximising the mean validation NDCG@10 over the cuts
(about three times the shoppers of one cut, over three periods, so the weights are less
an accident of one period). ``--write`` stores the result as the product default
(recommender/algorithms/default_blend.json). ``--sources`` limits the search to some
sources (the others get weight 0), e.g. to leave out the session model, whose fit takes
minutes per cut on a busy machine.
"""

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recommender.algorithms.base import Algorithm
from recommender.algorithms.blend import DEFAULT_BLEND_FILE, BlendConfig, Normalisation, blend, candidates
from recommender.algorithms.evaluation import EvaluationCase
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.sources import SOURCES
from recommender.bench.movielens import load_movielens
from recommender.bench.protocol import Holdout, fit_sources, validation_holdouts

# Coarse on purpose: about a hundred validation shoppers cannot tell finer steps apart.
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
CANDIDATES_PER_SOURCE = 100
PASSES = 3
ANCHOR = "trending"  # its weight stays 1: only the ratios between weights matter


@dataclass(frozen=True, eq=False)
class Fold:
    """One validation cut and every case's candidates from every source."""

    holdout: Holdout
    proposals: list[dict[str, Ranking]]


def fold_of(holdout: Holdout, sources: Mapping[str, Algorithm[Any]]) -> Fold:
    proposals = [
        candidates(sources, case.query(), per_source=CANDIDATES_PER_SOURCE, exclude=case.seen) for case in holdout.cases
    ]
    return Fold(holdout=holdout, proposals=proposals)


def validation_ndcg(fold: Fold, weights: Mapping[str, float], normalisation: Normalisation) -> float:
    """NDCG@10 of the blend over one fold's precomputed candidates."""
    n_items = fold.holdout.train.n_items
    by_user = {case.user: proposed for case, proposed in zip(fold.holdout.cases, fold.proposals, strict=True)}

    def score(case: EvaluationCase) -> np.ndarray:
        return blend(by_user[case.user], weights, normalisation=normalisation).as_scores(n_items)

    return fold.holdout.evaluate(score).ndcg_at_10


def mean_ndcg(folds: Sequence[Fold], weights: Mapping[str, float], normalisation: Normalisation) -> float:
    return float(np.mean([validation_ndcg(fold, weights, normalisation) for fold in folds]))


def coordinate_ascent(
    folds: Sequence[Fold], names: Sequence[str], normalisation: Normalisation
) -> tuple[dict[str, float], float]:
    """Start from the anchor alone; per pass, set each other source's weight to the grid
    value that scores best (ties keep the current value). Deterministic."""
    weights = {name: (1.0 if name == ANCHOR else 0.0) for name in names}
    best = mean_ndcg(folds, weights, normalisation)
    for _ in range(PASSES):
        improved = False
        for name in names:
            if name == ANCHOR:
                continue
            for value in WEIGHT_GRID:
                trial = {**weights, name: value}
                measured = mean_ndcg(folds, trial, normalisation)
                if measured > best + 1e-9:
                    weights, best, improved = trial, measured, True
        if not improved:
            break
    return weights, best


def tune(folds: Sequence[Fold], names: Sequence[str]) -> tuple[BlendConfig, dict[str, float]]:
    """The best blend over the validation folds and, per normalisation, its mean NDCG@10."""
    results: dict[str, tuple[dict[str, float], float]] = {}
    normalisations: tuple[Normalisation, ...] = ("minmax", "reciprocal_rank")
    for normalisation in normalisations:
        results[normalisation] = coordinate_ascent(folds, names, normalisation)
    chosen: Normalisation = max(normalisations, key=lambda normalisation: results[normalisation][1])
    weights, ndcg = results[chosen]
    per_fold = ", ".join(
        f"{fold.holdout.split.cutoff_ts}: {validation_ndcg(fold, weights, chosen):.4f}" for fold in folds
    )
    config = BlendConfig(
        weights={name: weight for name, weight in weights.items() if weight > 0},
        normalisation=chosen,
        candidates_per_source=CANDIDATES_PER_SOURCE,
        notes=(
            "Tuned by `python -m recommender.bench.tune_blend` on MovieLens 100K validation cuts inside the "
            f"training period of the quality benchmark, searching {', '.join(names)}: mean validation NDCG@10 "
            f"{ndcg:.4f} over {len(folds)} cuts (cutoff: NDCG@10 {per_fold})."
        ),
    )
    return config, {normalisation: result[1] for normalisation, result in results.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"write the result to {DEFAULT_BLEND_FILE}")
    parser.add_argument(
        "--sources", default=",".join(SOURCES), help="comma-separated blend sources to search (default: all)"
    )
    arguments = parser.parse_args(argv)
    names = [name.strip() for name in arguments.sources.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SOURCES))
    if unknown or ANCHOR not in names:
        parser.error(f"unknown sources {unknown}; known: {', '.join(SOURCES)} ({ANCHOR} is required)")
    data = load_movielens()
    folds = []
    for fraction, holdout in validation_holdouts(data.interactions).items():
        print(f"fitting the sources on the validation cut at {fraction:.0%} of the training period", file=sys.stderr)
        sources, _ = fit_sources(names, holdout.train, data.features)
        folds.append(fold_of(holdout, sources))
    config, by_normalisation = tune(folds, names)
    for normalisation, ndcg in by_normalisation.items():
        print(f"mean validation NDCG@10 with {normalisation}: {ndcg:.4f}")
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    print(text, end="")
    if arguments.write:
        DEFAULT_BLEND_FILE.write_text(text)
        print(f"written to {DEFAULT_BLEND_FILE}")


if __name__ == "__main__":
    main()
