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
is shown too, against the popularity of the item's category. The hybrid's weights were
fitted on the validation split (recommender.bench.tune_cold_start), whose reading of the
same target (other withheld items, seeds 1-5) is printed next to the test one; so is
the hybrid without its exploration boost, and its NDCG@10 over all test shoppers.

Items are created as the demo loader creates them (all at once, so no newness signal);
one extra row shows the hybrid with the movies' release dates as creation times.

Validation against test: the default blend and the baselines are also measured on the
validation split, and both ratios are printed (a margin that holds on validation and
test is not an accident of the test period).
"""

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.algorithms.blend import default_blend
from recommender.algorithms.cold_start import ColdStartConfig, ColdStartHybrid
from recommender.algorithms.data import Interactions, ItemFeatures
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
from recommender.bench.tune_cold_start import cold_start_reading

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
    """HR@10 on the withheld items, in the full ranking and ranking only them; the
    hybrid's NDCG@10 over all test shoppers, with and without exploration; the
    validation reading (NDCG@10, HR@10, random HR@10) per exploration level."""

    full_ranking: dict[str, float]
    among_withheld: dict[str, float]
    cases: int
    withheld_items: int
    ndcg: dict[str, float]
    validation: dict[float, tuple[float, float, float]]


@dataclass(frozen=True)
class ValidationResult:
    """The default blend and the baselines on the validation split."""

    blend_ndcg: float
    best_baseline: str
    best_baseline_ndcg: float


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


def baselines(train: Interactions, lam: float) -> dict[str, Any]:
    return {
        "most popular (all time)": lambda: fit_most_popular(train),
        "most popular (last 30 days)": lambda: fit_most_popular(train, last_days=30),
        "implicit ALS (defaults)": lambda: fit_implicit_als_defaults(train, seed=SEED),
        f"EASE (lambda {lam:g}, chosen on validation)": lambda: fit_ease(train, regularization=lam),
    }


def main_table(data: MovieLens, holdout: Holdout, lam: float) -> list[Row]:
    rows = []
    sources, fit_seconds = fit_sources(SOURCES, holdout.train, data.features)
    for name, source in sources.items():
        progress(f"evaluating {name}")
        rows.append(Row(name, "algorithm", holdout.evaluate(algorithm_scorer(source)), fit_seconds[name]))
    variants = {
        "cold_start, no exploration": (data.features, dataclasses.replace(ColdStartConfig(), new_item_exposure=0.0)),
        "cold_start, release dates as created_ts": (release_dated(data), ColdStartConfig()),
    }
    for name, (features, cold_config) in variants.items():
        progress(f"evaluating {name}")
        model, seconds = timed(lambda: ColdStartHybrid(cold_config).fit(holdout.train, features))  # noqa: B023
        rows.append(Row(name, "algorithm", holdout.evaluate(algorithm_scorer(model)), seconds))
    config = default_blend()
    blend_fit = sum(fit_seconds[name] for name, weight in config.weights.items() if weight > 0)
    rows.append(Row("default blend", "blend", holdout.evaluate(blend_scorer(sources, config)), blend_fit))
    progress("evaluating baselines")
    for name, fit in baselines(holdout.train, lam).items():
        scorer, seconds = timed(fit)
        rows.append(Row(name, "baseline", holdout.evaluate(scorer), seconds))
    return rows


def release_dated(data: MovieLens) -> ItemFeatures:
    """The items with the movies' release dates as creation times."""
    return dataclasses.replace(data.features, created_ts=data.release_ts)


def validation_reading(data: MovieLens, lam: float) -> ValidationResult:
    """The default blend and the baselines on the validation split (sources refitted there)."""
    validation = validation_holdout(data.interactions)
    config = default_blend()
    names = [name for name, weight in config.weights.items() if weight > 0]
    sources, _ = fit_sources(names, validation.train, data.features)
    blend_ndcg = validation.evaluate(blend_scorer(sources, config)).ndcg_at_10
    measured = {name: validation.evaluate(fit()).ndcg_at_10 for name, fit in baselines(validation.train, lam).items()}
    best = max(measured, key=lambda name: measured[name])
    return ValidationResult(blend_ndcg=blend_ndcg, best_baseline=best, best_baseline_ndcg=measured[best])


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
    no_exploration = dataclasses.replace(ColdStartConfig(), new_item_exposure=0.0)
    scorers = {
        "hybrid": algorithm_scorer(new_source("cold_start").fit(train, data.features)),
        "hybrid, no exploration": algorithm_scorer(ColdStartHybrid(no_exploration).fit(train, data.features)),
        "text similarity": algorithm_scorer(new_source("text_similarity").fit(train, data.features)),
    }
    full = Holdout(split=split, cases=cases, popularity=item_popularity(train), cold_items=withheld)
    reports = {name: full.evaluate(scorer) for name, scorer in scorers.items()}
    full_ranking = {name: report.cold_hit_rate_at_10 or 0.0 for name, report in reports.items()}
    full_ranking["most popular"] = full.evaluate(fit_most_popular(train)).cold_hit_rate_at_10 or 0.0
    full_ranking["random"] = random_hit_rate(cases, pool=np.arange(n_items), targets=withheld, k=10)
    among = {name: hit_rate_among(scorer, cases, withheld, 10)[0] for name, scorer in scorers.items()}
    among["category popularity"] = hit_rate_among(fit_category_popularity(train, data.features), cases, withheld, 10)[0]
    among["random"] = random_hit_rate(cases, pool=withheld, targets=withheld, k=10)
    progress("the cold-start target on the validation split")
    validation = cold_start_reading(
        validation_holdout(data.interactions),
        data.features,
        ColdStartConfig(),
        exposures=(0.0, ColdStartConfig().new_item_exposure),
    )
    return ColdStartResult(
        full_ranking=full_ranking,
        among_withheld=among,
        cases=reports["hybrid"].cold_cases,
        withheld_items=len(withheld),
        ndcg={name: reports[name].ndcg_at_10 for name in ("hybrid", "hybrid, no exploration")},
        validation=validation,
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


def report(holdout: Holdout, rows: list[Row], cold: ColdStartResult, validation: ValidationResult) -> str:
    blend_row = next(row for row in rows if row.group == "blend")
    best_baseline = max((row for row in rows if row.group == "baseline"), key=lambda row: row.report.ndcg_at_10)
    config = default_blend()
    exposure = ColdStartConfig().new_item_exposure
    validation_ndcg, validation_hit_rate, validation_random = cold.validation[exposure]
    plain_ndcg, plain_hit_rate, _ = cold.validation[0.0]
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
        "  NDCG@10 over the test shoppers of this run: "
        + " | ".join(f"{name} {value:.4f}" for name, value in cold.ndcg.items()),
        f"  validation (seeds 1-5 withheld on the validation split): new_item_exposure {exposure:g}: "
        f"HR@10 {validation_hit_rate:.3f} vs random {validation_random:.3f} "
        f"({validation_hit_rate / validation_random:.2f}x), NDCG@10 {validation_ndcg:.4f}; "
        f"no exploration: HR@10 {plain_hit_rate:.3f}, NDCG@10 {plain_ndcg:.4f}",
        "",
        f"best baseline on NDCG@10: {best_baseline.name} {best_baseline.report.ndcg_at_10:.4f}; "
        f"default blend {blend_row.report.ndcg_at_10:.4f}; cold start targets the full-ranking HR@10 above",
        f"default blend, validation vs test: validation NDCG@10 {validation.blend_ndcg:.4f} vs best baseline "
        f"{validation.best_baseline} {validation.best_baseline_ndcg:.4f} "
        f"({validation.blend_ndcg / validation.best_baseline_ndcg:.3f}x); test {blend_row.report.ndcg_at_10:.4f} vs "
        f"{best_baseline.report.ndcg_at_10:.4f} ({blend_row.report.ndcg_at_10 / best_baseline.report.ndcg_at_10:.3f}x)",
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
    lam = ease_regularisation(data)
    rows = main_table(data, holdout, lam)
    cold = cold_start(data, holdout)
    progress("the default blend and the baselines on the validation split")
    validation = validation_reading(data, lam)
    text = report(holdout, rows, cold, validation)
    print(text, end="")
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(text)
    progress(f"written to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
