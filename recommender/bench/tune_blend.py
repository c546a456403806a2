"""Tune the default blend's weights on the validation split (never on the test period).

``python -m recommender.bench.tune_blend`` fits every blend source on the validation
split's training events (the first 80% of the first 80% of MovieLens 100K's event
time), then searches the weights by coordinate ascent over a coarse grid, for each
normalisation, maximising validation NDCG@10. ``--write`` stores the result as the
product default (recommender/algorithms/default_blend.json).
"""

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recommender.algorithms.base import Algorithm
from recommender.algorithms.blend import DEFAULT_BLEND_FILE, BlendConfig, Normalisation, blend, candidates
from recommender.algorithms.evaluation import EvaluationCase
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.sources import SOURCES
from recommender.bench.movielens import load_movielens
from recommender.bench.protocol import Holdout, fit_sources, validation_holdout

# Coarse on purpose: about a hundred validation shoppers cannot tell finer steps apart.
WEIGHT_GRID = (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)
CANDIDATES_PER_SOURCE = 100
PASSES = 3
ANCHOR = "trending"  # its weight stays 1: only the ratios between weights matter


def validation_ndcg(
    holdout: Holdout, proposals: list[dict[str, Ranking]], weights: Mapping[str, float], normalisation: Normalisation
) -> float:
    """NDCG@10 of the blend over precomputed candidates (one dict per case)."""
    n_items = holdout.train.n_items
    by_user = {case.user: proposed for case, proposed in zip(holdout.cases, proposals, strict=True)}

    def score(case: EvaluationCase) -> np.ndarray:
        return blend(by_user[case.user], weights, normalisation=normalisation).as_scores(n_items)

    return holdout.evaluate(score).ndcg_at_10


def coordinate_ascent(
    holdout: Holdout, proposals: list[dict[str, Ranking]], names: Sequence[str], normalisation: Normalisation
) -> tuple[dict[str, float], float]:
    """Start from the anchor alone; per pass, set each other source's weight to the grid
    value that scores best (ties keep the current value). Deterministic."""
    weights = {name: (1.0 if name == ANCHOR else 0.0) for name in names}
    best = validation_ndcg(holdout, proposals, weights, normalisation)
    for _ in range(PASSES):
        improved = False
        for name in names:
            if name == ANCHOR:
                continue
            for value in WEIGHT_GRID:
                trial = {**weights, name: value}
                measured = validation_ndcg(holdout, proposals, trial, normalisation)
                if measured > best + 1e-9:
                    weights, best, improved = trial, measured, True
        if not improved:
            break
    return weights, best


def tune(holdout: Holdout, sources: Mapping[str, Algorithm[Any]]) -> tuple[BlendConfig, dict[str, float]]:
    """The best blend on the validation holdout and, per normalisation, its NDCG@10."""
    proposals = [
        candidates(sources, case.query(), per_source=CANDIDATES_PER_SOURCE, exclude=case.seen) for case in holdout.cases
    ]
    results: dict[str, tuple[dict[str, float], float]] = {}
    normalisations: tuple[Normalisation, ...] = ("minmax", "reciprocal_rank")
    for normalisation in normalisations:
        results[normalisation] = coordinate_ascent(holdout, proposals, list(sources), normalisation)
    chosen: Normalisation = max(normalisations, key=lambda normalisation: results[normalisation][1])
    weights, ndcg = results[chosen]
    config = BlendConfig(
        weights={name: weight for name, weight in weights.items() if weight > 0},
        normalisation=chosen,
        candidates_per_source=CANDIDATES_PER_SOURCE,
        notes=(
            "Tuned by `python -m recommender.bench.tune_blend` on the MovieLens 100K validation split "
            f"(inside the training period of the quality benchmark): validation NDCG@10 {ndcg:.4f}."
        ),
    )
    return config, {normalisation: result[1] for normalisation, result in results.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"write the result to {DEFAULT_BLEND_FILE}")
    arguments = parser.parse_args(argv)
    data = load_movielens()
    holdout = validation_holdout(data.interactions)
    sources, _ = fit_sources(SOURCES, holdout.train, data.features)
    config, by_normalisation = tune(holdout, sources)
    for normalisation, ndcg in by_normalisation.items():
        print(f"validation NDCG@10 with {normalisation}: {ndcg:.4f}")
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    print(text, end="")
    if arguments.write:
        DEFAULT_BLEND_FILE.write_text(text)
        print(f"written to {DEFAULT_BLEND_FILE}")


if __name__ == "__main__":
    main()
