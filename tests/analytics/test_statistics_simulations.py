"""Seeded simulations: the tests hold their error rates, CUPED narrows, mSPRT survives peeking."""

import numpy as np
import pytest
from scipy import stats

from analytics.statistics import (
    cuped_comparison,
    msprt_proportions,
    sample_size_per_variant,
    two_proportion_test,
    welch_t_test,
)

EXPERIMENTS = 1_000
# 5% of 1,000 is 50 with a standard deviation of 6.9: 33..69 is about ±2.5 standard deviations.
FALSE_POSITIVES = range(33, 70)


def _calibration(p_values: np.ndarray) -> tuple[int, float]:
    return int(np.sum(p_values < 0.05)), float(stats.kstest(p_values, "uniform").pvalue)


def test_a_a_two_proportion_tests_reject_five_percent_with_uniform_p_values():
    # Given 1,000 A/A experiments with a 5% conversion rate and 4,000 units per arm
    rng = np.random.default_rng(2024)
    conversions = rng.binomial(4_000, 0.05, size=(EXPERIMENTS, 2))
    # When each is tested
    p_values = np.array(
        [
            two_proportion_test((int(control), 4_000), (int(treatment), 4_000)).p_value
            for control, treatment in conversions
        ]
    )
    # Then about 5% are "significant" and the p-values are uniform
    false_positives, ks_p_value = _calibration(p_values)
    print(f"two-proportion A/A: {false_positives} of {EXPERIMENTS} below 0.05, KS p = {ks_p_value:.3f}")
    assert false_positives in FALSE_POSITIVES
    assert ks_p_value > 0.01


def test_a_a_welch_tests_on_revenue_reject_five_percent_with_uniform_p_values():
    # Given 1,000 A/A experiments on revenue per unit: 5% of units buy, baskets lognormal (mean ~ 54)
    rng = np.random.default_rng(2025)
    units = 4_000
    p_values = np.empty(EXPERIMENTS)
    for experiment in range(EXPERIMENTS):
        bought = rng.random((2, units)) < 0.05
        revenue = np.zeros((2, units))
        revenue[bought] = rng.lognormal(3.5, 1.0, size=int(bought.sum()))
        # When each is tested
        p_values[experiment] = welch_t_test(revenue[0], revenue[1]).p_value
    # Then about 5% are "significant" and the p-values are uniform
    false_positives, ks_p_value = _calibration(p_values)
    print(f"Welch A/A: {false_positives} of {EXPERIMENTS} below 0.05, KS p = {ks_p_value:.3f}")
    assert false_positives in FALSE_POSITIVES
    assert ks_p_value > 0.01


def test_the_planned_sample_size_gives_the_planned_power():
    # Given the planned size for a 10% lift on a 10% baseline
    units = sample_size_per_variant(0.10, 0.10)
    rng = np.random.default_rng(7)
    control = rng.binomial(units, 0.10, size=4_000)
    treatment = rng.binomial(units, 0.11, size=4_000)
    # When 4,000 such experiments are tested
    significant = sum(
        two_proportion_test((int(c), units), (int(t), units)).p_value < 0.05
        for c, t in zip(control, treatment, strict=True)
    )
    # Then 80% detect the lift (±0.02 is about ±3 standard deviations of the simulated share)
    assert 0.78 <= significant / 4_000 <= 0.82


def _stream_counts(rng, streams, looks, batch, control_rate, treatment_rate):
    control = rng.binomial(batch, control_rate, size=(streams, looks)).cumsum(axis=1)
    treatment = rng.binomial(batch, treatment_rate, size=(streams, looks)).cumsum(axis=1)
    trials = batch * np.arange(1, looks + 1)
    return control, treatment, trials


def test_msprt_survives_peeking_after_every_batch_of_a_a_streams():
    # Given 200 A/A streams at 5% conversion, looked at after each of 50 batches of 200 units per arm
    rng = np.random.default_rng(31)
    control, treatment, trials = _stream_counts(
        rng, streams=200, looks=50, batch=200, control_rate=0.05, treatment_rate=0.05
    )
    # When the always-valid p-value is checked at every look
    crossed = sum(
        msprt_proportions(control[s], trials, treatment[s], trials, tau_squared=0.005**2).p_value <= 0.05
        for s in range(200)
    )
    # Then at least 95% of streams never cross 0.05 ...
    print(f"mSPRT A/A: {crossed} of 200 streams ever below 0.05")
    assert crossed <= 10
    # ... while peeking at the classic test the same way stops wrongly far more often.
    pooled = (control + treatment) / (2 * trials)
    z = (treatment - control) / trials / np.sqrt(pooled * (1 - pooled) * 2 / trials)
    classic_crossed = int(np.sum(np.any(2 * stats.norm.sf(np.abs(z)) < 0.05, axis=1)))
    assert classic_crossed >= 40


def test_msprt_finds_a_real_effect_and_keeps_its_p_value_falling():
    # Given a stream where the treatment converts at 6% against 5%
    rng = np.random.default_rng(32)
    control, treatment, trials = _stream_counts(
        rng, streams=1, looks=100, batch=500, control_rate=0.05, treatment_rate=0.06
    )
    # When it is followed look by look
    result = msprt_proportions(control[0], trials, treatment[0], trials, tau_squared=0.005**2)
    path = np.array(result.p_value_path)
    # Then the p-value never rises, starts above 0.05 and ends below it, and the sequence covers the truth
    assert np.all(np.diff(path) <= 0)
    assert path[0] > 0.05
    assert result.p_value < 0.05
    assert result.interval.contains(0.01)
    assert result.interval.low > 0


def _correlated_periods(rng, units, rho, effect):
    pre = rng.normal(10.0, 3.0, size=(2, units))
    during = 10.0 + rho * (pre - 10.0) + np.sqrt(1 - rho**2) * rng.normal(0.0, 3.0, size=(2, units))
    during[1] += effect
    return during, pre


def test_cuped_narrows_the_interval_with_a_correlated_pre_period():
    # Given 5,000 units per arm whose pre-period correlates at 0.7 with the metric, true effect 0.2
    rng = np.random.default_rng(41)
    during, pre = _correlated_periods(rng, 5_000, rho=0.7, effect=0.2)
    # When compared classically and with CUPED
    classic = welch_t_test(during[0], during[1])
    adjusted = cuped_comparison((during[0], pre[0]), (during[1], pre[1]))
    # Then CUPED's interval is about sqrt(1 - 0.49) = 0.71 as wide, its estimate within the classic interval
    ratio = adjusted.comparison.difference.width / classic.difference.width
    print(f"CUPED widths: classic {classic.difference.width:.4f}, CUPED {adjusted.comparison.difference.width:.4f}")
    assert ratio == pytest.approx(np.sqrt(1 - 0.7**2), abs=0.03)
    assert adjusted.variance_reduction == pytest.approx(0.49, abs=0.04)
    assert classic.difference.contains(adjusted.comparison.difference.estimate)


def test_cuped_is_unbiased_over_repeated_experiments():
    # Given 300 experiments with a true effect of 0.2 and a correlated pre-period
    rng = np.random.default_rng(42)
    estimates = []
    for _ in range(300):
        during, pre = _correlated_periods(rng, 1_000, rho=0.7, effect=0.2)
        estimates.append(cuped_comparison((during[0], pre[0]), (during[1], pre[1])).comparison.difference.estimate)
    # Then the estimates average to the effect (one CUPED se is ~0.096; the mean of 300 has se ~0.0055)
    assert np.mean(estimates) == pytest.approx(0.2, abs=0.02)


def test_cuped_does_no_harm_without_correlation():
    rng = np.random.default_rng(43)
    during, pre = _correlated_periods(rng, 5_000, rho=0.0, effect=0.2)
    classic = welch_t_test(during[0], during[1])
    adjusted = cuped_comparison((during[0], pre[0]), (during[1], pre[1]))
    assert abs(adjusted.variance_reduction) < 0.01
    assert adjusted.comparison.difference.width == pytest.approx(classic.difference.width, rel=0.01)
