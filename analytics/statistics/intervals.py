"""Confidence intervals for one group: a rate (Wilson score) and a mean (Student t)."""

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval ``[low, high]``.

    ``degenerate`` is True when the data cannot support an interval (no trials, fewer than
    two values, zero variance in a comparison); the bounds are then finite placeholders
    that each producing function documents, never NaN.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    degenerate: bool = False

    @property
    def width(self) -> float:
        return self.high - self.low

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def critical_z(confidence: float) -> float:
    """The two-sided standard normal quantile: ``z`` with ``P(|Z| <= z) = confidence``."""
    _check_confidence(confidence)
    return float(stats.norm.ppf(0.5 + confidence / 2))


def proportion_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval for a binomial proportion ``successes / trials``.

    With ``p = x/n`` and ``z`` the two-sided normal quantile::

        centre = (p + z²/2n) / (1 + z²/n)
        half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

    Unlike the Wald interval it stays inside [0, 1] and has close to nominal coverage for
    small ``n`` and rates near 0 or 1. No continuity correction (scipy's ``"wilson"``).
    The estimate is ``p`` itself, not the Wilson centre. With ``trials == 0`` nothing is
    known: estimate 0.0, interval [0, 1], ``degenerate=True``.
    """
    _check_counts(successes, trials)
    if trials == 0:
        return Interval(estimate=0.0, low=0.0, high=1.0, confidence=confidence, degenerate=True)
    z = critical_z(confidence)
    rate = successes / trials
    shrink = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / shrink
    half = z / shrink * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    # The interval always holds p, and at x = 0 or x = n one bound is exactly 0 or 1; clamp
    # away the float noise that would otherwise break both.
    low = min(rate, max(0.0, centre - half))
    high = max(rate, min(1.0, centre + half))
    return Interval(estimate=rate, low=low, high=high, confidence=confidence)


def mean_interval(values: ArrayLike, confidence: float = 0.95) -> Interval:
    """The Student t interval for the mean of independent per-unit values.

    ``mean ± t(n-1) * s / sqrt(n)`` with ``s`` the sample standard deviation (ddof=1).
    Assumes the units are independent; for heavy-tailed values (revenue) the mean's sampling
    distribution is near normal only for large ``n`` (see ``bootstrap_difference``). With fewer
    than two values there is no spread to measure: ``low == high == estimate`` (0.0 for no
    values) and ``degenerate=True``.
    """
    _check_confidence(confidence)
    array = as_values(values)
    if array.size < 2:
        estimate = float(array.mean()) if array.size else 0.0
        return Interval(estimate=estimate, low=estimate, high=estimate, confidence=confidence, degenerate=True)
    mean = float(array.mean())
    standard_error = float(array.std(ddof=1)) / math.sqrt(array.size)
    half = float(stats.t.ppf(0.5 + confidence / 2, array.size - 1)) * standard_error
    return Interval(estimate=mean, low=mean - half, high=mean + half, confidence=confidence)


def as_values(values: ArrayLike) -> np.ndarray:
    """Per-unit values as a 1-D float64 array; ValueError on NaN, infinities or other shapes."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"per-unit values must be one-dimensional, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("per-unit values must be finite (no NaN or infinity)")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _check_counts(successes: int, trials: int) -> None:
    if trials < 0 or successes < 0 or successes > trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes} of {trials}")
