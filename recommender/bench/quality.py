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

Cold start: 10% of the items are withheld from training entirely, five times with
different seeds (0-4) on the test split. For the shoppers with a withheld item in their
test period, HR@10 of a withheld item (the evaluation's cold-item HR@10) through the
text-embedding hybrid, ranked over the whole catalog (the personalised list, no sampled
negatives), against a random order of the catalog and popularity (which can never rank
an item without events, "popularity of nothing"); the target is on that full ranking,
pooled over the seeds (mean HR over mean random HR), with the per-seed spread. Ranking
only the withheld items (a "new arrivals" slot) is shown too, against the popularity of
the item's category. The hybrid's text map and weights were chosen on validation cuts
inside the training period (recommender.bench.tune_cold_start), whose reading of the
same target (other withheld items, seeds 1-5) is printed next to the test one. How many
slots cold items get is the product's ``new_item_exposure`` (1: a new product is shown
as often as an average one); the benchmark prints the trade-off of other levels
(NDCG@10 over all test shoppers against cold HR@10) instead of tuning it to the target.

Items are created as the demo loader creates them (all at once, so no newness signal);
one extra row shows the hybrid with the movies' release dates as creation times.

Validation against test: the default blend and the baselines are also measured on the
three validation cuts (70%, 80% and 90% of the training period), and the margin is
printed per cut with its mean and spread, next to the test margin with a 90% bootstrap
interval over the test shoppers (paired: the same resampled shoppers for the blend and
the best baseline). A margin that holds on every cut is not an accident of one period.
"""

import dataclasses
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender.algorithms.als import Als
from recommender.algorithms.blend import default_blend
from recommender.algorithms.cold_start import ColdStartConfig, ColdStartHybrid
from recommender.algorithms.data import Interactions, ItemFeatures
from recommender.algorithms.evaluation import (
    EvaluationReport,
    Scorer,
    algorithm_scorer,
    blend_scorer,
    hit_rate_among,
    item_popularity,
    ndcg_per_case,
    random_hit_rate,
)
from recommender.algorithms.sources import SOURCES, new_source
from recommender.bench.baselines import (
    fit_category_popularity,
    fit_ease,
    fit_implicit_als_defaults,
    fit_most_popular,
)
from recommender.bench.movielens import MovieLens, load_movielens
from recommender.bench.protocol import (
    VALIDATION_FRACTIONS,
    Holdout,
    evaluation_holdout,
    fit_sources,
    validation_holdout,
    validation_holdouts,
)
from recommender.bench.tune_cold_start import cold_start_reading, withheld_split

SEED = 0
COLD_SEEDS = (0, 1, 2, 3, 4)  # the tuner withholds with seeds 1-5 on the validation split, never this one
COLD_ITEM_FRACTION = 0.1
EXPOSURE_LEVELS = (0.0, 1.0, 2.0, 3.0)
EASE_REGULARISATIONS = (50.0, 100.0, 200.0, 500.0, 1000.0)
BOOTSTRAP_SAMPLES = 2000
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
class ColdSeed:
    """One withheld-items run on the test split: HR@10 of a withheld item per scorer in
    the full ranking and ranking only the withheld items, NDCG@10 and cold HR@10 of the
    hybrid per exposure level, and how many shoppers had a withheld item."""

    seed: int
    full_ranking: dict[str, float]
    among_withheld: dict[str, float]
    by_exposure: dict[float, tuple[float, float]]
    cases: int


@dataclass(frozen=True)
class ColdStartResult:
    """The withheld-items runs, and the validation reading (NDCG@10, HR@10, random HR@10)
    per exploration level."""

    seeds: list[ColdSeed]
    withheld_items: int
    validation: dict[float, tuple[float, float, float]]

    def mean(self, table: str, name: str) -> float:
        return float(np.mean([getattr(run, table)[name] for run in self.seeds]))

    def ratios(self, name: str, table: str = "full_ranking") -> np.ndarray:
        """Per seed: ``name``'s HR@10 over random's."""
        return np.array([getattr(run, table)[name] / getattr(run, table)["random"] for run in self.seeds])


@dataclass(frozen=True)
class Margin:
    """The default blend against the best baseline on one holdout."""

    label: str
    blend_ndcg: float
    best_baseline: str
    best_baseline_ndcg: float

    @property
    def ratio(self) -> float:
        return self.blend_ndcg / self.best_baseline_ndcg


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


def main_table(data: MovieLens, holdout: Holdout, lam: float) -> tuple[list[Row], dict[str, Scorer]]:
    """The table's rows, and the scorers of the default blend and the best baseline."""
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
    scorers = {"default blend": blend_scorer(sources, config)}
    rows.append(Row("default blend", "blend", holdout.evaluate(scorers["default blend"]), blend_fit))
    progress("evaluating baselines")
    best_ndcg = -1.0
    for name, fit in baselines(holdout.train, lam).items():
        scorer, seconds = timed(fit)
        row = Row(name, "baseline", holdout.evaluate(scorer), seconds)
        rows.append(row)
        if row.report.ndcg_at_10 > best_ndcg:
            best_ndcg, scorers["best baseline"] = row.report.ndcg_at_10, scorer
    return rows, scorers


def release_dated(data: MovieLens) -> ItemFeatures:
    """The items with the movies' release dates as creation times."""
    return dataclasses.replace(data.features, created_ts=data.release_ts)


def margin_on(holdout: Holdout, features: ItemFeatures, lam: float, label: str) -> Margin:
    """The default blend and the baselines refitted on ``holdout``'s training events."""
    config = default_blend()
    names = [name for name, weight in config.weights.items() if weight > 0]
    sources, _ = fit_sources(names, holdout.train, features)
    blend_ndcg = holdout.evaluate(blend_scorer(sources, config)).ndcg_at_10
    measured = {name: holdout.evaluate(fit()).ndcg_at_10 for name, fit in baselines(holdout.train, lam).items()}
    best = max(measured, key=lambda name: measured[name])
    return Margin(label=label, blend_ndcg=blend_ndcg, best_baseline=best, best_baseline_ndcg=measured[best])


def validation_margins(data: MovieLens, lam: float) -> list[Margin]:
    """The margin on each validation cut of the training period."""
    holdouts = validation_holdouts(data.interactions, VALIDATION_FRACTIONS)
    return [
        margin_on(holdout, data.features, lam, f"validation cut at {fraction:.0%}")
        for fraction, holdout in holdouts.items()
    ]


def bootstrap_interval(
    blend: np.ndarray, baseline: np.ndarray, *, samples: int = BOOTSTRAP_SAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """5th and 95th percentiles of mean(blend) / mean(baseline) over shoppers resampled
    with replacement (the same shoppers for both: a paired bootstrap)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(blend), size=(samples, len(blend)))
    ratios = blend[picks].mean(axis=1) / np.maximum(baseline[picks].mean(axis=1), 1e-12)
    low, high = np.percentile(ratios, [5, 95])
    return float(low), float(high)


def cold_start(data: MovieLens, holdout: Holdout) -> ColdStartResult:
    """Withhold items from training entirely (one run per seed of ``COLD_SEEDS``); for
    the shoppers who have one in their test period, does the hybrid put it in their top
    10? Measured over the full catalog (the personalised list) and over the withheld
    items only (a "new arrivals" slot); the hybrid at every exposure level too."""
    n_items = data.interactions.n_items
    default = ColdStartConfig()
    runs = []
    for seed in COLD_SEEDS:
        progress(f"cold start: fitting without the items withheld with seed {seed}")
        split, cases, withheld = withheld_split(holdout, seed)
        train = split.train
        full = Holdout(split=split, cases=cases, popularity=item_popularity(train), cold_items=withheld)
        als = Als(default.als).fit(train, data.features)
        hybrids = {
            exposure: ColdStartHybrid.from_als(
                als, train, data.features, dataclasses.replace(default, new_item_exposure=exposure)
            )
            for exposure in sorted({*EXPOSURE_LEVELS, default.new_item_exposure})
        }
        scorers = {
            "hybrid": algorithm_scorer(hybrids[default.new_item_exposure]),
            "hybrid, no exploration": algorithm_scorer(hybrids[0.0]),
            "text similarity": algorithm_scorer(new_source("text_similarity").fit(train, data.features)),
        }
        reports = {exposure: full.evaluate(algorithm_scorer(model)) for exposure, model in hybrids.items()}
        full_ranking = {
            "hybrid": reports[default.new_item_exposure].cold_hit_rate_at_10 or 0.0,
            "hybrid, no exploration": reports[0.0].cold_hit_rate_at_10 or 0.0,
            "text similarity": full.evaluate(scorers["text similarity"]).cold_hit_rate_at_10 or 0.0,
            "most popular": full.evaluate(fit_most_popular(train)).cold_hit_rate_at_10 or 0.0,
            "random": random_hit_rate(cases, pool=np.arange(n_items), targets=withheld, k=10),
        }
        among = {name: hit_rate_among(scorer, cases, withheld, 10)[0] for name, scorer in scorers.items()}
        among["category popularity"] = hit_rate_among(
            fit_category_popularity(train, data.features), cases, withheld, 10
        )[0]
        among["random"] = random_hit_rate(cases, pool=withheld, targets=withheld, k=10)
        runs.append(
            ColdSeed(
                seed=seed,
                full_ranking=full_ranking,
                among_withheld=among,
                by_exposure={
                    exposure: (report.ndcg_at_10, report.cold_hit_rate_at_10 or 0.0)
                    for exposure, report in reports.items()
                },
                cases=reports[0.0].cold_cases,
            )
        )
    progress("the cold-start target on the validation split")
    validation = cold_start_reading(
        validation_holdout(data.interactions),
        data.features,
        default,
        exposures=(0.0, default.new_item_exposure),
    )
    return ColdStartResult(seeds=runs, withheld_items=round(COLD_ITEM_FRACTION * n_items), validation=validation)


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


def cold_lines(cold: ColdStartResult) -> list[str]:
    exposure = ColdStartConfig().new_item_exposure
    runs = cold.seeds
    lines = [
        f"cold start: {cold.withheld_items} items ({COLD_ITEM_FRACTION:.0%}) withheld from training, seeds "
        + ", ".join(str(run.seed) for run in runs)
        + "; test shoppers with a withheld item in their test period: "
        + ", ".join(str(run.cases) for run in runs),
        "  HR@10 of a withheld item, mean over seeds (ratio to random: pooled, per-seed mean +- sd):",
    ]
    for table, title in (
        ("full_ranking", "full ranking of the catalog"),
        ("among_withheld", "ranking only the withheld"),
    ):
        lines.append(f"  {title}:")
        for name in getattr(runs[0], table):
            ratios = cold.ratios(name, table)
            pooled = cold.mean(table, name) / cold.mean(table, "random")
            lines.append(
                f"    {name:<26} {cold.mean(table, name):.3f}  x{pooled:.2f} random"
                + ("" if name == "random" else f" (per seed {ratios.mean():.2f} +- {ratios.std():.2f})")
            )
    lines.append("  exploration level (new_item_exposure) of the hybrid: NDCG@10 over all test shoppers, cold HR@10:")
    random = cold.mean("full_ranking", "random")
    for level in sorted(runs[0].by_exposure):
        ndcg = float(np.mean([run.by_exposure[level][0] for run in runs]))
        hit_rate = float(np.mean([run.by_exposure[level][1] for run in runs]))
        marker = " (default)" if level == exposure else ""
        lines.append(
            f"    {level:g}{marker}: NDCG@10 {ndcg:.4f}, cold HR@10 {hit_rate:.3f} (x{hit_rate / random:.2f} random)"
        )
    validation_ndcg, validation_hit_rate, validation_random = cold.validation[exposure]
    plain_ndcg, plain_hit_rate, _ = cold.validation[0.0]
    lines.append(
        f"  validation (seeds 1-5 withheld on the validation split): new_item_exposure {exposure:g}: "
        f"HR@10 {validation_hit_rate:.3f} vs random {validation_random:.3f} "
        f"({validation_hit_rate / validation_random:.2f}x), NDCG@10 {validation_ndcg:.4f}; "
        f"no exploration: HR@10 {plain_hit_rate:.3f}, NDCG@10 {plain_ndcg:.4f}"
    )
    return lines


def report(
    holdout: Holdout,
    rows: list[Row],
    cold: ColdStartResult,
    margins: list[Margin],
    interval: tuple[float, float],
) -> str:
    blend_row = next(row for row in rows if row.group == "blend")
    best_baseline = max((row for row in rows if row.group == "baseline"), key=lambda row: row.report.ndcg_at_10)
    test_ratio = blend_row.report.ndcg_at_10 / best_baseline.report.ndcg_at_10
    validation_ratios = np.array([margin.ratio for margin in margins])
    config = default_blend()
    cold_ratio = cold.mean("full_ranking", "hybrid") / cold.mean("full_ranking", "random")
    lines = [
        "Offline quality on MovieLens 100K (ratings >= 4 as purchases, others as views)",
        f"temporal split at the 80% point of event time (cutoff {holdout.split.cutoff_ts}); "
        f"{len(holdout.train)} training events, {len(holdout.split.test)} test events; "
        f"{len(holdout.cases)} test shoppers with training history; "
        f"{len(holdout.cold_items)} items first seen after the cutoff (ColdHR@10)",
        f"default blend: {config.normalisation} fusion of the top {config.candidates_per_source} of "
        + ", ".join(f"{name} x{weight:g}" for name, weight in config.weights.items())
        + " (weights from default_blend.json, tuned on the validation cuts)",
        "",
        *format_table(rows),
        "",
        *cold_lines(cold),
        "",
        f"best baseline on NDCG@10: {best_baseline.name} {best_baseline.report.ndcg_at_10:.4f}; "
        f"default blend {blend_row.report.ndcg_at_10:.4f}",
        "blend margin (default blend NDCG@10 over the best baseline's, each holdout refitted):",
        *(
            f"  {margin.label}: {margin.blend_ndcg:.4f} vs {margin.best_baseline} {margin.best_baseline_ndcg:.4f} "
            f"= {margin.ratio:.3f}x"
            for margin in margins
        ),
        f"  validation cuts: mean {validation_ratios.mean():.3f}x +- {validation_ratios.std():.3f} (sd), "
        f"min {validation_ratios.min():.3f}x",
        f"  test: {test_ratio:.3f}x, 90% paired bootstrap interval over the {len(holdout.cases)} test shoppers "
        f"{interval[0]:.3f}x - {interval[1]:.3f}x",
        target_line("blend_ndcg_at_10_vs_best_baseline", test_ratio, BLEND_GOAL),
        target_line("cold_start_hr_at_10_vs_random", cold_ratio, COLD_START_GOAL),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    progress("loading MovieLens 100K and embedding its product texts")
    data = load_movielens()
    holdout = evaluation_holdout(data.interactions)
    lam = ease_regularisation(data)
    rows, scorers = main_table(data, holdout, lam)
    progress("bootstrapping the test margin")
    interval = bootstrap_interval(
        ndcg_per_case(scorers["default blend"], holdout.cases), ndcg_per_case(scorers["best baseline"], holdout.cases)
    )
    cold = cold_start(data, holdout)
    progress("the default blend and the baselines on the validation cuts")
    margins = validation_margins(data, lam)
    text = report(holdout, rows, cold, margins, interval)
    print(text, end="")
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(text)
    progress(f"written to {RESULTS_FILE}")


if __name__ == "__main__":
    main()
