"""Variance reduction with pre-experiment behaviour (CUPED; Deng, Xu, Kohavi & Walker, 2013).

A unit's metric before the experiment (revenue last month) predicts part of its metric
during it. Subtracting that predictable part leaves the treatment effect unchanged in
expectation, because randomisation makes the pre-period independent of the variant, and
shrinks the variance by about ``rho²``, the squared correlation of the two periods.
"""

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from analytics.statistics.comparisons import Comparison, welch_t_test
from analytics.statistics.intervals import as_values


@dataclass(frozen=True, eq=False)
class CupedAdjustment:
    """Adjusted per-unit values ``y - theta * (x - pre_mean)`` and how much variance went."""

    adjusted: np.ndarray
    theta: float
    pre_mean: float
    variance_reduction: float  # 1 - var(adjusted) / var(metric); ~ rho²


@dataclass(frozen=True)
class CupedComparison:
    """Welch's test on CUPED-adjusted values, with the pooled ``theta`` used and
    ``variance_reduction = 1 - se²(adjusted difference) / se²(raw difference)``."""

    comparison: Comparison
    theta: float
    variance_reduction: float


def cuped(metric: ArrayLike, pre_metric: ArrayLike, theta: float | None = None) -> CupedAdjustment:
    """Adjust per-unit values ``y`` with the same units' pre-period values ``x``::

        theta = cov(y, x) / var(x),   y' = y - theta * (x - mean(x))

    ``theta`` is estimated from these values unless given (give the pooled one when
    adjusting arms separately). Units without a pre-period (new visitors) should carry
    x = 0 rather than be dropped: dropping them would select on the pre-period.
    With a constant pre-period there is nothing to learn: theta 0, values unchanged.
    """
    values = as_values(metric)
    pre_values = as_values(pre_metric)
    if values.shape != pre_values.shape:
        raise ValueError(f"need one pre-period value per unit, got {pre_values.size} for {values.size} units")
    if values.size == 0:
        return CupedAdjustment(adjusted=values.copy(), theta=0.0, pre_mean=0.0, variance_reduction=0.0)
    pre_mean = float(pre_values.mean())
    if theta is None:
        theta = _theta(values, pre_values)
    adjusted = values - theta * (pre_values - pre_mean)
    metric_variance = float(values.var())
    reduction = 1 - float(adjusted.var()) / metric_variance if metric_variance > 0 else 0.0
    return CupedAdjustment(adjusted=adjusted, theta=theta, pre_mean=pre_mean, variance_reduction=reduction)


def cuped_comparison(
    control: tuple[ArrayLike, ArrayLike], treatment: tuple[ArrayLike, ArrayLike], confidence: float = 0.95
) -> CupedComparison:
    """Compare ``(metric, pre_metric)`` per-unit values of two arms after CUPED.

    ``theta`` is estimated once on both arms pooled, and both are centred on the pooled
    pre-period mean, so the adjusted difference is ``(y2 - y1) - theta * (x2 - x1)`` (means).
    Welch's t-test on the adjusted values gives the interval and p-value; the extra
    uncertainty from estimating ``theta`` is ignored, which is negligible at experiment
    sizes. Assumes the pre-period is from before assignment (a pre-period the treatment
    could influence biases the result).
    """
    control_metric, control_pre = as_values(control[0]), as_values(control[1])
    treatment_metric, treatment_pre = as_values(treatment[0]), as_values(treatment[1])
    if control_metric.shape != control_pre.shape or treatment_metric.shape != treatment_pre.shape:
        raise ValueError("need one pre-period value per unit in each arm")
    pooled = cuped(np.concatenate([control_metric, treatment_metric]), np.concatenate([control_pre, treatment_pre]))
    adjusted_control = pooled.adjusted[: control_metric.size]
    adjusted_treatment = pooled.adjusted[control_metric.size :]
    adjusted = welch_t_test(adjusted_control, adjusted_treatment, confidence)
    raw_variance = _difference_variance(control_metric, treatment_metric)
    adjusted_variance = _difference_variance(adjusted_control, adjusted_treatment)
    reduction = 1 - adjusted_variance / raw_variance if raw_variance > 0 else 0.0
    # Report the arms' own means: the adjusted means are shifted by theta * (x_arm - x_pooled).
    control_mean = float(control_metric.mean()) if control_metric.size else 0.0
    comparison = replace(
        adjusted,
        method="CUPED + Welch t-test",
        control_estimate=control_mean,
        treatment_estimate=float(treatment_metric.mean()) if treatment_metric.size else 0.0,
        relative_lift=adjusted.difference.estimate / control_mean if control_mean != 0 else None,
    )
    return CupedComparison(comparison=comparison, theta=pooled.theta, variance_reduction=reduction)


def _theta(values: np.ndarray, pre_values: np.ndarray) -> float:
    pre_variance = float(pre_values.var())
    if pre_variance == 0:
        return 0.0
    covariance = float(np.mean((values - values.mean()) * (pre_values - pre_values.mean())))
    return covariance / pre_variance


def _difference_variance(control: np.ndarray, treatment: np.ndarray) -> float:
    if control.size < 2 or treatment.size < 2:
        return 0.0
    return float(control.var(ddof=1)) / control.size + float(treatment.var(ddof=1)) / treatment.size
