"""Sample-ratio mismatch: are the units split between variants as the design says?"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Flag at p < 0.0005: strict, because the check runs on every analysis of every experiment
# and a false alarm blocks promotion; a real assignment or logging bug gives far smaller p.
SRM_THRESHOLD = 0.0005


@dataclass(frozen=True)
class SrmResult:
    """Pearson's chi-square goodness-of-fit of observed unit counts to the designed shares."""

    chi2: float
    degrees_of_freedom: int
    p_value: float
    flagged: bool
    threshold: float
    observed: tuple[int, ...]
    expected: tuple[float, ...]


def srm_check(
    observed_counts: Sequence[int], expected_shares: Sequence[float], threshold: float = SRM_THRESHOLD
) -> SrmResult:
    """Chi-square test of the observed units per variant against the designed split.

    ``expected_i = N * share_i`` with ``N = sum(observed)`` and shares normalised to sum to
    1; ``chi2 = sum((O_i - E_i)² / E_i)`` on ``k - 1`` degrees of freedom; flagged when
    ``p < threshold``. A flag means the data lost or gained units unevenly (assignment bug,
    a variant that fails to log its exposures, bots filtered unevenly): every comparison of
    the experiment is then suspect, whatever its p-value says.

    Assumes each unit is counted once, in one variant. With no units at all there is
    nothing to check: chi2 0, p 1, not flagged.
    """
    if len(observed_counts) != len(expected_shares) or len(observed_counts) < 2:
        raise ValueError("need one expected share per variant and at least two variants")
    if any(count < 0 for count in observed_counts):
        raise ValueError("observed counts cannot be negative")
    if any(not share > 0 for share in expected_shares) or not math.isfinite(sum(expected_shares)):
        raise ValueError("expected shares must be positive and finite")
    observed = np.asarray(observed_counts, dtype=np.float64)
    shares = np.asarray(expected_shares, dtype=np.float64)
    shares = shares / shares.sum()
    total = observed.sum()
    expected = total * shares
    degrees_of_freedom = len(observed) - 1
    if total == 0:
        chi2, p_value = 0.0, 1.0
    else:
        chi2 = float(np.sum((observed - expected) ** 2 / expected))
        p_value = float(stats.chi2.sf(chi2, degrees_of_freedom))
    return SrmResult(
        chi2=chi2,
        degrees_of_freedom=degrees_of_freedom,
        p_value=p_value,
        flagged=p_value < threshold,
        threshold=threshold,
        observed=tuple(int(count) for count in observed_counts),
        expected=tuple(float(value) for value in expected),
    )
