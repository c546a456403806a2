"""Planning: units per variant for a given effect, and the effect a given size can detect.

All effects are *relative* to the baseline (0.1 = a 10% lift), the way a shop states them.
Sizes are for equal splits between ``variants`` arms, each compared with the control at a
Bonferroni-corrected level ``alpha / (variants - 1)``, using the same normal approximation
as the tests in :mod:`analytics.statistics.comparisons`.
"""

import math
from collections.abc import Callable

import numpy as np
from scipy import optimize, stats


def sample_size_per_variant(
    baseline_rate: float,
    minimum_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    two_sided: bool = True,
) -> int:
    """Units per variant for the two-proportion z-test to detect a relative lift.

    With ``p1 = baseline_rate``, ``p2 = p1 * (1 + minimum_detectable_effect)``,
    ``p̄ = (p1 + p2) / 2`` and ``q = 1 - p``::

        n = (z_alpha * sqrt(2 p̄ q̄) + z_power * sqrt(p1 q1 + p2 q2))² / (p2 - p1)²

    rounded up (the pooled variance under the null, the unpooled one under the
    alternative; Fleiss, *Statistical Methods for Rates and Proportions*, without continuity
    correction). Baseline 10%, lift 10%, alpha 0.05 two-sided, power 0.8 -> 14,751.
    """
    _check_baseline(baseline_rate)
    _check_lift(baseline_rate, minimum_detectable_effect)
    required = _proportion_units(
        baseline_rate, minimum_detectable_effect, _z_alpha(alpha, variants, two_sided), _z_power(power)
    )
    return math.ceil(required)


def minimum_detectable_effect(
    baseline_rate: float,
    units_per_variant: int,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    two_sided: bool = True,
) -> float | None:
    """The smallest relative lift (upwards) that ``units_per_variant`` detect; the inverse
    of :func:`sample_size_per_variant`, solved numerically.

    Returns the smallest lift ``e`` (to float precision) with
    ``sample_size_per_variant(baseline_rate, e, ...) <= units_per_variant``, or None when
    not even a lift to a rate of 100% would be detected.
    """
    _check_baseline(baseline_rate)
    if units_per_variant < 1:
        raise ValueError(f"need at least one unit per variant, got {units_per_variant}")
    z_alpha, z_power = _z_alpha(alpha, variants, two_sided), _z_power(power)

    def excess_units(effect: float) -> float:
        return _proportion_units(baseline_rate, effect, z_alpha, z_power) - units_per_variant

    largest = (1 - baseline_rate) / baseline_rate * (1 - 1e-12)  # p2 just under 1
    smallest = 1e-9
    if excess_units(largest) > 0:
        return None
    if excess_units(smallest) <= 0:
        return smallest
    effect = optimize.brentq(excess_units, smallest, largest, xtol=1e-15, rtol=4 * np.finfo(float).eps)
    return _nudge_up_until(effect, lambda e: excess_units(e) <= 0)


def sample_size_per_variant_for_mean(
    mean: float,
    standard_deviation: float,
    minimum_detectable_effect: float,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    two_sided: bool = True,
) -> int:
    """Units per variant for Welch's test to detect a relative change of a per-unit mean.

    ``n = 2 (z_alpha + z_power)² sd² / (mean * minimum_detectable_effect)²``, rounded up;
    assumes the same standard deviation in both arms and a near-normal mean (large n).
    Take ``mean`` and ``standard_deviation`` per unit from a pre-period (revenue per
    visitor last month), not from the running experiment.
    """
    _check_mean(mean, standard_deviation)
    if minimum_detectable_effect == 0:
        raise ValueError("the minimum detectable effect cannot be 0")
    z_sum = _z_alpha(alpha, variants, two_sided) + _z_power(power)
    return math.ceil(2 * (z_sum * standard_deviation / (mean * minimum_detectable_effect)) ** 2)


def minimum_detectable_effect_for_mean(
    mean: float,
    standard_deviation: float,
    units_per_variant: int,
    alpha: float = 0.05,
    power: float = 0.8,
    variants: int = 2,
    two_sided: bool = True,
) -> float:
    """The smallest relative change of a mean that ``units_per_variant`` detect:
    ``(z_alpha + z_power) * sd * sqrt(2 / n) / |mean|``, the inverse of
    :func:`sample_size_per_variant_for_mean`."""
    _check_mean(mean, standard_deviation)
    if units_per_variant < 1:
        raise ValueError(f"need at least one unit per variant, got {units_per_variant}")
    z_sum = _z_alpha(alpha, variants, two_sided) + _z_power(power)
    effect = z_sum * standard_deviation * math.sqrt(2 / units_per_variant) / abs(mean)

    def enough_units(e: float) -> bool:
        needed = sample_size_per_variant_for_mean(mean, standard_deviation, e, alpha, power, variants, two_sided)
        return needed <= units_per_variant

    return _nudge_up_until(effect, enough_units)


def _proportion_units(baseline_rate: float, effect: float, z_alpha: float, z_power: float) -> float:
    control = baseline_rate
    treatment = baseline_rate * (1 + effect)
    average = (control + treatment) / 2
    null_spread = math.sqrt(2 * average * (1 - average))
    alternative_spread = math.sqrt(control * (1 - control) + treatment * (1 - treatment))
    return (z_alpha * null_spread + z_power * alternative_spread) ** 2 / (treatment - control) ** 2


def _nudge_up_until(effect: float, condition: Callable[[float], bool]) -> float:
    """The solution of a continuous equation can sit a rounding error on the wrong side of
    an integer sample size; step up by one float at a time until it is on the right one."""
    for _ in range(64):
        if condition(effect):
            return effect
        effect = float(np.nextafter(effect, math.inf))
    raise ArithmeticError("could not round the minimum detectable effect onto the sample size")


def _z_alpha(alpha: float, variants: int, two_sided: bool) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if variants < 2:
        raise ValueError(f"an experiment needs at least two variants, got {variants}")
    per_comparison = alpha / (variants - 1)
    return float(stats.norm.ppf(1 - per_comparison / 2 if two_sided else 1 - per_comparison))


def _z_power(power: float) -> float:
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, got {power}")
    return float(stats.norm.ppf(power))


def _check_baseline(baseline_rate: float) -> None:
    if not 0 < baseline_rate < 1:
        raise ValueError(f"the baseline rate must be between 0 and 1, got {baseline_rate}")


def _check_lift(baseline_rate: float, effect: float) -> None:
    if effect == 0:
        raise ValueError("the minimum detectable effect cannot be 0")
    treatment = baseline_rate * (1 + effect)
    if not 0 < treatment < 1:
        raise ValueError(f"a lift of {effect:.0%} takes the rate to {treatment:.3f}, outside (0, 1)")


def _check_mean(mean: float, standard_deviation: float) -> None:
    if mean == 0 or not math.isfinite(mean):
        raise ValueError(f"the mean must be finite and non-zero (effects are relative to it), got {mean}")
    if not standard_deviation > 0 or not math.isfinite(standard_deviation):
        raise ValueError(f"the standard deviation must be positive and finite, got {standard_deviation}")
