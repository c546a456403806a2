"""Peeking-safe results: the mixture sequential probability ratio test (mSPRT).

A classic p-value is valid at one pre-planned look; checked after every batch it falls
under 0.05 in far more than 5% of A/A tests. The mSPRT p-value is *always valid*: the
chance that it ever drops to ``alpha``, over any number of looks, is at most ``alpha``
(Johari, Koomen, Pekelis & Walsh, "Peeking at A/B tests", KDD 2017).
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from analytics.statistics.intervals import Interval


@dataclass(frozen=True)
class AlwaysValid:
    """The mSPRT result after the latest look.

    ``p_value`` is the running minimum over all looks (non-increasing as data accrues);
    ``interval`` is the running intersection of the confidence sequence for the difference
    (never widens), at level ``1 - alpha``. ``p_value_path`` holds the running p-value after
    each look of the latest call. Keep ``tau_squared`` fixed for the whole experiment: pass
    the previous result as ``previous`` to continue it.
    """

    estimate: float
    p_value: float
    interval: Interval
    tau_squared: float
    alpha: float
    looks: int
    p_value_path: tuple[float, ...]


def msprt(
    differences: ArrayLike,
    variances: ArrayLike,
    *,
    tau_squared: float,
    alpha: float = 0.05,
    null_difference: float = 0.0,
    previous: AlwaysValid | None = None,
) -> AlwaysValid:
    """Always-valid p-value and confidence sequence for a difference ``treatment - control``.

    ``differences[i]`` is the estimated difference at look ``i`` from all data so far, and
    ``variances[i]`` its variance ``V`` (``s1²/n1 + s2²/n2`` for means, ``p1 q1/n1 + p2 q2/n2``
    for rates). With the normal mixing distribution ``theta ~ N(null, tau²)`` the mixture
    likelihood ratio against ``theta = null`` is::

        Lambda = sqrt(V / (V + tau²)) * exp((d - null)² tau² / (2 V (V + tau²)))

    The always-valid p-value is ``p_n = min(p_{n-1}, 1 / Lambda_n)`` with ``p_0 = 1``, and the
    confidence sequence is ``{theta : Lambda_n(theta) < 1/alpha}``, i.e. ``d ± r`` with::

        r² = V (V + tau²) / tau² * (2 log(1/alpha) + log((V + tau²) / V))

    intersected over looks. ``tau²`` (in squared units of the difference) should be the
    size of effects you expect: about ``(relative effect * baseline)²``; it trades power for
    small effects against power for large ones, never validity.

    Assumptions: independent units and a near-normal difference with ``V`` estimated from
    the data (the large-sample form of Johari et al.); the guarantee is exact for normal data
    with known variance and holds approximately once each arm has a few hundred units.
    Looks whose variance is zero or not finite (no data, no variation) carry no evidence and
    leave the p-value and the interval as they were. Without any informative look the
    interval is a degenerate point at the estimate.
    """
    if not tau_squared > 0 or not math.isfinite(tau_squared):
        raise ValueError(f"tau_squared must be positive and finite, got {tau_squared}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    if previous is not None and (previous.tau_squared != tau_squared or previous.alpha != alpha):
        raise ValueError("continue a sequence with the tau_squared and alpha it started with")
    difference = np.atleast_1d(np.asarray(differences, dtype=np.float64))
    variance = np.atleast_1d(np.asarray(variances, dtype=np.float64))
    if difference.ndim != 1 or difference.shape != variance.shape or difference.size == 0:
        raise ValueError("need one variance per difference, at least one look, as 1-D sequences")

    informative = np.isfinite(variance) & (variance > 0) & np.isfinite(difference)
    safe_variance = np.where(informative, variance, 1.0)
    total = safe_variance + tau_squared
    log_likelihood_ratio = 0.5 * np.log(safe_variance / total) + (
        (difference - null_difference) ** 2 * tau_squared / (2 * safe_variance * total)
    )
    look_p = np.where(informative, np.minimum(1.0, np.exp(-log_likelihood_ratio)), 1.0)
    start_p = previous.p_value if previous is not None else 1.0
    path = np.minimum.accumulate(np.minimum(look_p, start_p))

    radius = np.sqrt(safe_variance * total / tau_squared * (2 * math.log(1 / alpha) + np.log(total / safe_variance)))
    lows = np.where(informative, difference - radius, -np.inf)
    highs = np.where(informative, difference + radius, np.inf)
    low, high = float(lows.max()), float(highs.min())
    if previous is not None and not previous.interval.degenerate:
        low, high = max(low, previous.interval.low), min(high, previous.interval.high)
    estimate = float(difference[-1])
    if not math.isfinite(low) or not math.isfinite(high):
        interval = Interval(estimate, estimate, estimate, 1 - alpha, degenerate=True)
    elif low > high:
        # An empty intersection happens with probability <= alpha under the model; the
        # latest informative look alone is the honest fallback.
        last = int(np.flatnonzero(informative)[-1])
        interval = Interval(estimate, float(lows[last]), float(highs[last]), 1 - alpha)
    else:
        interval = Interval(estimate, low, high, 1 - alpha)
    return AlwaysValid(
        estimate=estimate,
        p_value=float(path[-1]),
        interval=interval,
        tau_squared=tau_squared,
        alpha=alpha,
        looks=(previous.looks if previous is not None else 0) + difference.size,
        p_value_path=tuple(float(p) for p in path),
    )


def msprt_proportions(
    control_successes: ArrayLike,
    control_trials: ArrayLike,
    treatment_successes: ArrayLike,
    treatment_trials: ArrayLike,
    *,
    tau_squared: float,
    alpha: float = 0.05,
    previous: AlwaysValid | None = None,
) -> AlwaysValid:
    """:func:`msprt` for two rates, from cumulative counts at each look.

    ``d = p2 - p1`` and ``V = p1 (1 - p1) / n1 + p2 (1 - p2) / n2`` at every look; looks with
    an empty group, or with every unit a failure (or every one a success), are uninformative.
    """
    x1, n1, x2, n2 = (
        np.atleast_1d(np.asarray(a, dtype=np.float64))
        for a in (control_successes, control_trials, treatment_successes, treatment_trials)
    )
    if np.any(n1 < 0) or np.any(n2 < 0) or np.any(x1 < 0) or np.any(x2 < 0) or np.any(x1 > n1) or np.any(x2 > n2):
        raise ValueError("need 0 <= successes <= trials at every look")
    with np.errstate(divide="ignore", invalid="ignore"):
        p1 = np.where(n1 > 0, x1 / n1, 0.0)
        p2 = np.where(n2 > 0, x2 / n2, 0.0)
        variance = np.where((n1 > 0) & (n2 > 0), p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2, 0.0)
    return msprt(p2 - p1, variance, tau_squared=tau_squared, alpha=alpha, previous=previous)
