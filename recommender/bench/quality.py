"""Offline quality on MovieLens 100K: every algorithm, the default blend, and baselines.

``python -m recommender.bench.quality`` (``make bench-quality``) prints one table and
one line per target, and writes the same text to ``bench-results/quality.txt``.

Protocol (recommender.bench.protocol): ratings >= 4 are purchases, others views; a
global temporal split at the 80% point of event time; shoppers without training
history are left out; every row is ranked over the whole catalog minus the shopper's
training items by the same evaluation code. The default blend's weights come from
``default_blend.json`` (tuned on a validation split inside the training period by
``recommender.bench.tune_blend``), EASE's regularisation is chosen on that validation
split too; nothing is tuned on the test period.

Cold start: 10% of the items (seeded) are withheld from training entirely. For the
shoppers with a withheld item in their test period, HR@10 of a withheld item (the
evaluation's cold-item HR@10) through the text-embedding hybrid, against a random order
and popularity (which can never rank an item without events); the target is on the full
ranking, the personalised list. Ranking only the withheld items (a "new arrivals" slot)
is shown too, against the popularity of the item's category.
"""

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.algorithms.blend import default_blend
from recommender.algorithms.evaluation import (
    EvaluationReport,
    TemporalSplit,
    algorithm_scorer,
    blend_scorer,
    build_test_cases,
    hit_rate_among,
    hold_out_items,
    item_popularity,
    random_hit_rate,
    without_items,
)
from recommender.algorithms.sources import SOURCES, new_source
from recommender.bench.baselines import (
    fit_category_popularity,
    fit_ease,
    fit_implicit_als_defaults,
    fit_most_popular,
)
from recommender.bench.movielens import MovieLens, load_movielens
from recommender.bench.protocol import Holdout, evaluation_holdout, fit_sources, validation_holdout

SEED = 0
COLD_ITEM_FRACTION = 0.1
EASE_REGULARISATIONS = (50.0, 100.0, 200.0, 500.0, 1000.0)
BLEND_GOAL = 1.10
COLD_START_GOAL = 3.0
RESULTS_FILE = Path(__file__).resolve().parents[2] / "bench-results" / "quality.txt"


@dataclass(frozen=True)
class Row:
    name: str
    group: str  # algorithm, blend or baseline
    report: EvaluationReport
    fit_seconds: float


@dataclass(frozen=True)
class ColdStartResult:
    """HR@10 on the withheld items, in the full ranking and ranking only them."""

    full_ranking: dict[str, float]
    among_withheld: dict[str, float]
    cases: int
    withheld_items: int


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fit: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fit()
    return result, time.perf_counter() - started


def ease_regularisation(data: MovieLens) -> float:
    """EASE's lambda with the best NDCG@10 on the validation split."""
    validation = validation_holdout(data.interactions)
    scores = {
        value: validation.evaluate(fit_ease(validation.train, regularization=value)).ndcg_at_10
        for value in EASE_REGULARISATIONS
    }
    return max(EASE_REGULARISATIONS, key=lambda value: scores[value])


def main_table(data: MovieLens, holdout: Holdout) -> list[Row]:
    rows = []
    sources, fit_seconds = fit_sources(SOURCES, holdout.train, data.features)
    for name, source in sources.items():
        progress(f"evaluating {name}")
        rows.append(Row(name, "algorithm", holdout.evaluate(algorithm_scorer(source)), fit_seconds[name]))
    config = default_blend()
    blend_fit = sum(fit_seconds[name] for name, weight in config.weights.items() if weight > 0)
    rows.append(Row("default blend", "blend", holdout.evaluate(blend_scorer(sources, config)), blend_fit))
    progress("evaluating baselines")
    train = holdout.train
    lam = ease_regularisation(data)
    baselines = {
        "most popular (all time)": lambda: fit_most_popular(train),
        "most popular (last 30 days)": lambda: fit_most_popular(train, last_days=30),
        "implicit ALS (defaults)": lambda: fit_implicit_als_defaults(train, seed=SEED),
        f"EASE (lambda {lam:g}, chosen on validation)": lambda: fit_ease(train, regularization=lam),
    }
    for name, fit in baselines.items():
        scorer, seconds = timed(fit)
        rows.append(Row(name, "baseline", holdout.evaluate(scorer), seconds))
    return rows


def cold_start(data: MovieLens, holdout: Holdout) -> ColdStartResult:
    """Withhold items from training entirely; for the shoppers who have one in their test
    period, does the hybrid put it in their top 10? Measured over the full catalog (the
    personalised list) and over the withheld items only (a "new arrivals" slot)."""
    n_items = data.interactions.n_items
    withheld = hold_out_items(n_items, COLD_ITEM_FRACTION, seed=SEED)
    train = without_items(holdout.train, withheld)
    split = TemporalSplit(train=train, test=holdout.split.test, cutoff_ts=holdout.split.cutoff_ts)
    cases = build_test_cases(split)
    progress("fitting the cold-start hybrid without the withheld items")
    scorers = {
        "hybrid": algorithm_scorer(new_source("cold_start").fit(train, data.features)),
        "text similarity": algorithm_scorer(new_source("text_similarity").fit(train, data.features)),
    }
    full = Holdout(split=split, cases=cases, popularity=item_popularity(train), cold_items=withheld)
    full_ranking = {name: full.evaluate(scorer).cold_hit_rate_at_10 or 0.0 for name, scorer in scorers.items()}
    full_ranking["most popular"] = full.evaluate(fit_most_popular(train)).cold_hit_rate_at_10 or 0.0
    full_ranking["random"] = random_hit_rate(cases, pool=np.arange(n_items), targets=withheld, k=10)
    among = {name: hit_rate_among(scorer, cases, withheld, 10)[0] for name, scorer in scorers.items()}
    among["category popularity"] = hit_rate_among(fit_category_popularity(train, data.features), cases, withheld, 10)[0]
    among["random"] = random_hit_rate(cases, pool=withheld, targets=withheld, k=10)
    return ColdStartResult(
        full_ranking=full_ranking,
        among_withheld=among,
        cases=full.evaluate(scorers["hybrid"]).cold_cases,
        withheld_items=len(withheld),
    )


def format_table(rows: list[Row]) -> list[str]:
    header = (
        f"{'recommender':<42} {'NDCG@10':>8} {'Recall@20':>9} {'HR@10':>6} {'MRR':>6} "
        f"{'Cov@10':>6} {'Novelty':>7} {'ColdHR@10':>9} {'fit s':>6}"
    )
    lines = [header, "-" * len(header)]
    group = rows[0].group if rows else ""
    for row in rows:
        if row.group != group:
            lines.append("-" * len(header))
            group = row.group
        report = row.report
        cold = "-" if report.cold_hit_rate_at_10 is None else f"{report.cold_hit_rate_at_10:.3f}"
        lines.append(
            f"{row.name:<42} {report.ndcg_at_10:>8.4f} {report.recall_at_20:>9.4f} {report.hit_rate_at_10:>6.3f} "
            f"{report.mrr:>6.3f} {report.coverage_at_10:>6.3f} {report.novelty_at_10:>7.2f} {cold:>9} "
            f"{row.fit_seconds:>6.1f}"
        )
    return lines


def target_line(name: str, measured: float, goal: float) -> str:
    return f"target {name}: {measured:.3f} (goal {goal:.2f}) {'met' if measured >= goal else 'missed'}"


def report(holdout: Holdout, rows: list[Row], cold: ColdStartResult) -> str:
    blend_row = next(row for row in rows if row.group == "blend")
    best_baseline = max((row for row in rows if row.group == "baseline"), key=lambda row: row.report.ndcg_at_10)
    config = default_blend()
    lines = [
        "Offline quality on MovieLens 100K (ratings >= 4 as purchases, others as views)",
        f"temporal split at the 80% point of event time (cutoff {holdout.split.cutoff_ts}); "
        f"{len(holdout.train)} training events, {len(holdout.split.test)} test events; "
        f"{len(holdout.cases)} test shoppers with training history; "
        f"{len(holdout.cold_items)} items first seen after the cutoff (ColdHR@10)",
        f"default blend: {config.normalisation} fusion of the top {config.candidates_per_source} of "
        + ", ".join(f"{name} x{weight:g}" for name, weight in config.weights.items())
        + " (weights from default_blend.json, tuned on the validation split)",
        "",
        *format_table(rows),
        "",
        f"cold start: {cold.withheld_items} items ({COLD_ITEM_FRACTION:.0%}, seed {SEED}) withheld from training; "
        f"{cold.cases} test shoppers with a withheld item in their test period; HR@10 of a withheld item",
        "  in the full ranking:       " + _rates(cold.full_ranking),
        "  ranking only the withheld: " + _rates(cold.among_withheld),
        "",
        f"best baseline on NDCG@10: {best_baseline.name} {best_baseline.report.ndcg_at_10:.4f}; "
        f"default blend {blend_row.report.ndcg_at_10:.4f}; cold start targets the full-ranking HR@10 above",
        target_line(
            "blend_ndcg_at_10_vs_best_baseline",
            blend_row.report.ndcg_at_10 / best_baseline.report.ndcg_at_10,
            BLEND_GOAL,
        ),
        target_line(
            "cold_start_hr_at_10_vs_random",
            cold.full_ranking["hybrid"] / cold.full_ranking["random"],
            COLD_START_GOAL,
        ),
    ]
    return "\n".join(lines) + "\n"


def _rates(rates: dict[str, float]) -> str:
    return " | ".join(f"{name} {rate:.3f}" for name, rate in rates.items())


def main() -> None:
    progress("loading MovieLens 100K and embedding its titles")
    data = load_movielens()
    holdout = evaluation_holdout(data.interactions)
    rows = main_table(data, holdout)
    cold = cold_start(data, holdout)
    text = report(holdout, rows, cold)
    print(text, end="")
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(text)
    progress(f"written to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
