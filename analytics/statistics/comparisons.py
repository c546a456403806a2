"""Treatment versus control: two-proportion z-test, Welch's t-test and a bootstrap.

Every comparison is ``treatment - control`` and returns a :class:`Comparison`. When the data
cannot support a test (an empty group, no variation at all) the comparison is flagged
``degenerate`` with a ``note`` saying why, its p-value is 1.0 and its statistic 0.0 rather
than NaN, so callers can store and render it without special cases.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from analytics.statistics.intervals import Interval, as_values, proportion_interval

# Bootstrap resamples are drawn in blocks of at most this many indices (about 32 MB of int64).
_BOOTSTRAP_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Comparison:
    """The difference ``treatment - control`` of one metric, with its test.

    ``difference`` holds the absolute difference and its confidence interval;
    ``relative_lift`` is ``difference / control_estimate`` (None when the control is 0).
    ``statistic`` is z or t (``degrees_of_freedom`` is None for z-type statistics).
    """

    method: str
    control_estimate: float
    treatment_estimate: float
    difference: Interval
    relative_lift: float | None
    statistic: float
    p_value: float
    degrees_of_freedom: float | None = None
    degenerate: bool = False
    note: str = ""


def two_proportion_test(control: tuple[int, int], treatment: tuple[int, int], confidence: float = 0.95) -> Comparison:
    """Compare two binomial rates, each given as ``(successes, trials)``.

    Test: the pooled two-proportion z-test (equivalent to the chi-square test of the 2x2
    table without continuity correction)::

        p = (x1 + x2) / (n1 + n2),   z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2))

    with two-sided p-value ``2 * (1 - Phi(|z|))``. Interval: Newcombe's hybrid score
    interval (method 10, 1998), built from the two Wilson intervals ``[l, u]``::

        low  = d - sqrt((p2 - l2)² + (u1 - p1)²),   high = d + sqrt((u2 - p2)² + (p1 - l1)²)

    which, unlike the Wald interval, stays sensible at zero counts. The z-test and the
    interval are different approximations, so at the margin one can exclude 0 while the
    other does not. Assumes independent units, each counted once in ``trials``.

    Degenerate (p = 1.0, z = 0.0, flagged): a group with no trials, or a pooled rate of
    exactly 0 or 1 (no variation to test). The interval is still computed and finite.
    """
    control_successes, control_trials = control
    treatment_successes, treatment_trials = treatment
    control_interval = proportion_interval(control_successes, control_trials, confidence)
    treatment_interval = proportion_interval(treatment_successes, treatment_trials, confidence)
    control_rate, treatment_rate = control_interval.estimate, treatment_interval.estimate
    difference = treatment_rate - control_rate
    low = difference - math.hypot(treatment_rate - treatment_interval.low, control_interval.high - control_rate)
    high = difference + math.hypot(treatment_interval.high - treatment_rate, control_rate - control_interval.low)
    relative_lift = difference / control_rate if control_rate > 0 else None

    note = ""
    if control_trials == 0 or treatment_trials == 0:
        note = "a group has no trials"
    else:
        pooled = (control_successes + treatment_successes) / (control_trials + treatment_trials)
        if pooled in (0.0, 1.0):
            note = "no variation: every trial failed or every trial succeeded"
    if note:
        z, p_value = 0.0, 1.0
    else:
        standard_error = math.sqrt(pooled * (1 - pooled) * (1 / control_trials + 1 / treatment_trials))
        z = difference / standard_error
        p_value = float(2 * stats.norm.sf(abs(z)))
    return Comparison(
        method="two-proportion z-test, Newcombe interval",
        control_estimate=control_rate,
        treatment_estimate=treatment_rate,
        difference=Interval(
            estimate=difference,
            low=max(-1.0, low),
            high=min(1.0, high),
            confidence=confidence,
            degenerate=control_interval.degenerate or treatment_interval.degenerate,
        ),
        relative_lift=relative_lift,
        statistic=z,
        p_value=p_value,
        degenerate=bool(note),
        note=note,
    )


def welch_t_test(control_values: ArrayLike, treatment_values: ArrayLike, confidence: float = 0.95) -> Comparison:
    """Welch's unequal-variance t-test of the difference of two means of per-unit values.

    ``se² = s1²/n1 + s2²/n2``, ``t = (m2 - m1) / se`` and the Welch-Satterthwaite degrees
    of freedom ``df = se⁴ / ((s1²/n1)² / (n1-1) + (s2²/n2)² / (n2-1))``; interval
    ``(m2 - m1) ± t_df * se``. Assumes independent units and a near-normal mean (central
    limit theorem): fine for rates and counts per unit at experiment sizes; for revenue
    with a few huge orders compare with :func:`bootstrap_difference`.

    Degenerate (p = 1.0, t = 0.0, point interval at the difference, flagged): fewer than
    two values in a group, or no variation within either group.
    """
    control = as_values(control_values)
    treatment = as_values(treatment_values)
    control_mean = float(control.mean()) if control.size else 0.0
    treatment_mean = float(treatment.mean()) if treatment.size else 0.0
    difference = treatment_mean - control_mean
    relative_lift = difference / control_mean if control_mean != 0 else None

    note = ""
    if control.size < 2 or treatment.size < 2:
        note = "a group has fewer than two units"
    else:
        control_term = float(control.var(ddof=1)) / control.size
        treatment_term = float(treatment.var(ddof=1)) / treatment.size
        variance = control_term + treatment_term
        if variance == 0:
            note = "no variation within either group"
    if note:
        return Comparison(
            method="Welch t-test",
            control_estimate=control_mean,
            treatment_estimate=treatment_mean,
            difference=Interval(difference, difference, difference, confidence, degenerate=True),
            relative_lift=relative_lift,
            statistic=0.0,
            p_value=1.0,
            degenerate=True,
            note=note,
        )
    standard_error = math.sqrt(variance)
    degrees_of_freedom = variance**2 / (control_term**2 / (control.size - 1) + treatment_term**2 / (treatment.size - 1))
    t = difference / standard_error
    half = float(stats.t.ppf(0.5 + confidence / 2, degrees_of_freedom)) * standard_error
    return Comparison(
        method="Welch t-test",
        control_estimate=control_mean,
        treatment_estimate=treatment_mean,
        difference=Interval(difference, difference - half, difference + half, confidence),
        relative_lift=relative_lift,
        statistic=t,
        p_value=float(2 * stats.t.sf(abs(t), degrees_of_freedom)),
        degrees_of_freedom=degrees_of_freedom,
    )


def bootstrap_difference(
    control_values: ArrayLike,
    treatment_values: ArrayLike,
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Comparison:
    """The difference of means with a percentile bootstrap interval, for heavy-tailed values.

    Each resample draws ``n`` units with replacement from each group independently and
    records ``mean(treatment*) - mean(control*)``. The interval is the ``(1-c)/2`` and
    ``(1+c)/2`` quantiles of those differences. The p-value inverts the percentile interval:
    ``min(1, 2 * min(P*(d* <= 0), P*(d* >= 0)))``, the smallest level whose interval just
    excludes 0. ``statistic`` is the difference over the bootstrap standard error.

    Assumes independent units; makes no normality assumption, but still needs enough units
    that the resamples see the tail (a group whose revenue is one order is not rescued).
    Same ``seed``, same data -> same result. Degenerate as in :func:`welch_t_test` for
    groups with fewer than two units.
    """
    if resamples < 100:
        raise ValueError(f"need at least 100 resamples, got {resamples}")
    control = as_values(control_values)
    treatment = as_values(treatment_values)
    if control.size < 2 or treatment.size < 2:
        return replace(welch_t_test(control, treatment, confidence), method="bootstrap percentile")
    rng = np.random.default_rng(seed)
    differences = _bootstrap_means(treatment, resamples, rng) - _bootstrap_means(control, resamples, rng)
    difference = float(treatment.mean() - control.mean())
    low, high = np.quantile(differences, [0.5 - confidence / 2, 0.5 + confidence / 2])
    at_or_below = float(np.mean(differences <= 0))
    at_or_above = float(np.mean(differences >= 0))
    spread = float(differences.std(ddof=1))
    control_mean = float(control.mean())
    return Comparison(
        method="bootstrap percentile",
        control_estimate=control_mean,
        treatment_estimate=float(treatment.mean()),
        difference=Interval(difference, float(low), float(high), confidence),
        relative_lift=difference / control_mean if control_mean != 0 else None,
        statistic=difference / spread if spread > 0 else 0.0,
        p_value=min(1.0, 2 * min(at_or_below, at_or_above)),
        degenerate=spread == 0,
        note="no variation across resamples" if spread == 0 else "",
    )


def _bootstrap_means(values: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``resamples`` with-replacement resamples of ``values``, drawn in blocks."""
    means = np.empty(resamples)
    rows_per_block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // values.size)
    for start in range(0, resamples, rows_per_block):
        rows = min(rows_per_block, resamples - start)
        indices = rng.integers(0, values.size, size=(rows, values.size))
        means[start : start + rows] = values[indices].mean(axis=1)
    return means
