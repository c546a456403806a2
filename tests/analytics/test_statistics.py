"""Experiment statistics on small inputs: hand-computed values and scipy's own implementations."""

import csv
import io
import math

import numpy as np
import pytest
from scipy import stats

from analytics.statistics import (
    bootstrap_difference,
    cuped,
    cuped_comparison,
    mean_interval,
    minimum_detectable_effect,
    minimum_detectable_effect_for_mean,
    msprt,
    msprt_proportions,
    per_unit_csv,
    proportion_interval,
    sample_size_per_variant,
    sample_size_per_variant_for_mean,
    srm_check,
    two_proportion_test,
    welch_t_test,
)

Z_975 = 1.959963984540054


# --- Wilson interval -------------------------------------------------------------------------


def test_wilson_interval_of_7_in_20_matches_the_hand_computation():
    # centre = (0.35 + z²/40) / (1 + z²/20) = 0.374168, half = z/(1 + z²/20) * sqrt(0.35*0.65/20 + z²/1600) = 0.192977
    interval = proportion_interval(7, 20)
    assert interval.estimate == 0.35
    assert interval.low == pytest.approx(0.181192, abs=1e-6)
    assert interval.high == pytest.approx(0.567146, abs=1e-6)
    assert not interval.degenerate


@pytest.mark.parametrize(
    ("successes", "trials"),
    [(0, 1), (1, 1), (0, 20), (20, 20), (7, 20), (3, 7), (500, 10_000), (9_999, 10_000), (42, 1_000)],
)
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(successes, trials, confidence):
    expected = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    interval = proportion_interval(successes, trials, confidence)
    assert interval.low == pytest.approx(expected.low, abs=1e-12)
    assert interval.high == pytest.approx(expected.high, abs=1e-12)
    assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0


def test_wilson_interval_without_trials_is_the_whole_range_and_says_so():
    interval = proportion_interval(0, 0)
    assert (interval.estimate, interval.low, interval.high, interval.degenerate) == (0.0, 0.0, 1.0, True)


@pytest.mark.parametrize(("successes", "trials"), [(5, 4), (-1, 4), (0, -1)])
def test_impossible_counts_are_refused(successes, trials):
    with pytest.raises(ValueError, match="successes <= trials"):
        proportion_interval(successes, trials)


# --- Mean interval ---------------------------------------------------------------------------


def test_mean_interval_is_the_student_t_interval():
    # mean 5, s = sqrt(32/7), se = s / sqrt(8) = 0.755929, t(7, 0.975) = 2.364624 -> 5 ± 1.787488
    values = [2, 4, 4, 4, 5, 5, 7, 9]
    interval = mean_interval(values)
    assert interval.estimate == 5.0
    assert interval.low == pytest.approx(3.212512, abs=1e-6)
    assert interval.high == pytest.approx(6.787488, abs=1e-6)
    expected = stats.ttest_1samp(values, 0).confidence_interval()
    assert (interval.low, interval.high) == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_mean_interval_of_fewer_than_two_values_is_a_flagged_point():
    one = mean_interval([4.5])
    none = mean_interval([])
    assert (one.estimate, one.low, one.high, one.degenerate) == (4.5, 4.5, 4.5, True)
    assert (none.estimate, none.low, none.high, none.degenerate) == (0.0, 0.0, 0.0, True)


def test_per_unit_values_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        mean_interval([1.0, math.nan])


# --- Two-proportion test ---------------------------------------------------------------------


def test_two_proportion_test_matches_the_hand_computation():
    # pooled p = 230/2000 = 0.115, se = sqrt(0.115 * 0.885 * 2/1000) = 0.0142671, z = 0.03 / se = 2.102741
    result = two_proportion_test(control=(100, 1000), treatment=(130, 1000))
    assert (result.control_estimate, result.treatment_estimate) == (0.1, 0.13)
    assert result.difference.estimate == pytest.approx(0.03, abs=1e-15)
    assert result.relative_lift == pytest.approx(0.3, abs=1e-12)
    assert result.statistic == pytest.approx(2.102741, abs=1e-6)
    assert result.p_value == pytest.approx(0.0354885, abs=1e-7)
    # The pooled z-test is the chi-square test of the 2x2 table without continuity correction.
    table = stats.chi2_contingency([[100, 900], [130, 870]], correction=False)
    assert result.p_value == pytest.approx(table.pvalue, rel=1e-12)
    assert result.statistic**2 == pytest.approx(table.statistic, rel=1e-12)
    assert (result.degenerate, result.note) == (False, "")


def test_two_proportion_interval_is_newcombes_hybrid_score_interval():
    result = two_proportion_test(control=(100, 1000), treatment=(130, 1000))
    # Rebuilt from scipy's Wilson intervals: d ± sqrt of the summed squared Wilson distances.
    control = stats.binomtest(100, 1000).proportion_ci(method="wilson")
    treatment = stats.binomtest(130, 1000).proportion_ci(method="wilson")
    low = 0.03 - math.hypot(0.13 - treatment.low, control.high - 0.1)
    high = 0.03 + math.hypot(treatment.high - 0.13, 0.1 - control.low)
    assert result.difference.low == pytest.approx(low, abs=1e-12)
    assert result.difference.high == pytest.approx(high, abs=1e-12)
    assert (result.difference.low, result.difference.high) == pytest.approx((0.002002, 0.058070), abs=1e-6)


def test_swapping_the_groups_negates_the_difference_and_keeps_the_p_value():
    forward = two_proportion_test((100, 1000), (130, 1000))
    backward = two_proportion_test((130, 1000), (100, 1000))
    assert backward.difference.estimate == pytest.approx(-forward.difference.estimate)
    assert backward.difference.low == pytest.approx(-forward.difference.high)
    assert backward.p_value == pytest.approx(forward.p_value)


@pytest.mark.parametrize(
    ("control", "treatment", "note"),
    [
        ((0, 1000), (0, 1000), "no variation: every trial failed or every trial succeeded"),
        ((500, 500), (700, 700), "no variation: every trial failed or every trial succeeded"),
        ((0, 0), (5, 10), "a group has no trials"),
        ((0, 0), (0, 0), "a group has no trials"),
    ],
)
def test_degenerate_counts_give_p_one_finite_intervals_and_a_flag(control, treatment, note):
    result = two_proportion_test(control, treatment)
    assert (result.p_value, result.statistic, result.degenerate, result.note) == (1.0, 0.0, True, note)
    values = [result.difference.estimate, result.difference.low, result.difference.high]
    assert all(math.isfinite(value) for value in values)
    assert -1.0 <= result.difference.low <= result.difference.high <= 1.0


def test_no_control_successes_still_tests_but_has_no_relative_lift():
    result = two_proportion_test((0, 1000), (12, 1000))
    assert result.relative_lift is None
    assert not result.degenerate
    assert result.p_value < 0.001
    assert result.difference.low > 0


# --- Welch's t-test --------------------------------------------------------------------------


def test_welch_matches_the_hand_computation():
    # m1 = 2.5, s1² = 5/3; m2 = 6, s2² = 10; se² = 5/12 + 2 = 29/12;
    # t = 3.5 / sqrt(29/12) = 2.251436; df = (29/12)² / ((5/12)²/3 + 2²/4) = 5.520788
    result = welch_t_test([1, 2, 3, 4], [2, 4, 6, 8, 10])
    assert result.difference.estimate == 3.5
    assert result.relative_lift == pytest.approx(1.4)
    assert result.statistic == pytest.approx(2.251436, abs=1e-6)
    assert result.degrees_of_freedom == pytest.approx(5.520788, abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    control = rng.exponential(3.0, size=50 + 10 * seed)
    treatment = rng.exponential(3.6, size=80)
    result = welch_t_test(control, treatment, confidence=0.9)
    expected = stats.ttest_ind(treatment, control, equal_var=False)
    expected_interval = expected.confidence_interval(confidence_level=0.9)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-10)
    assert result.degrees_of_freedom == pytest.approx(expected.df, rel=1e-12)
    assert result.difference.low == pytest.approx(expected_interval.low, rel=1e-10)
    assert result.difference.high == pytest.approx(expected_interval.high, rel=1e-10)


@pytest.mark.parametrize(
    ("control", "treatment", "note"),
    [
        ([1.0], [2.0, 3.0], "a group has fewer than two units"),
        ([], [], "a group has fewer than two units"),
        ([5.0, 5.0, 5.0], [7.0, 7.0], "no variation within either group"),
    ],
)
def test_welch_degenerate_inputs_are_flagged(control, treatment, note):
    result = welch_t_test(control, treatment)
    assert (result.p_value, result.statistic, result.degenerate, result.note) == (1.0, 0.0, True, note)
    assert result.difference.low == result.difference.high == result.difference.estimate


# --- Bootstrap -------------------------------------------------------------------------------


def test_bootstrap_is_reproducible_with_its_seed_and_centred_on_the_mean_difference():
    rng = np.random.default_rng(3)
    control = rng.lognormal(2.0, 1.0, size=300)
    treatment = rng.lognormal(2.2, 1.0, size=250)
    first = bootstrap_difference(control, treatment, seed=7)
    again = bootstrap_difference(control, treatment, seed=7)
    other = bootstrap_difference(control, treatment, seed=8)
    assert first == again
    assert first.difference.low != other.difference.low
    assert first.difference.estimate == pytest.approx(treatment.mean() - control.mean(), rel=1e-12)


def test_bootstrap_interval_agrees_with_welch_on_well_behaved_data():
    rng = np.random.default_rng(4)
    control = rng.normal(10.0, 2.0, size=2000)
    treatment = rng.normal(10.3, 2.0, size=2000)
    bootstrap = bootstrap_difference(control, treatment, resamples=4000)
    welch = welch_t_test(control, treatment)
    tolerance = 0.05 * welch.difference.width
    assert bootstrap.difference.low == pytest.approx(welch.difference.low, abs=tolerance)
    assert bootstrap.difference.high == pytest.approx(welch.difference.high, abs=tolerance)
    # The p-value inverts the interval: 0 is outside it exactly when p < 0.05.
    assert bootstrap.p_value < 0.05
    assert not bootstrap.difference.contains(0.0)


def test_bootstrap_p_value_is_large_without_an_effect():
    rng = np.random.default_rng(5)
    values = rng.lognormal(2.0, 1.0, size=(2, 500))
    result = bootstrap_difference(values[0], values[1])
    assert result.difference.contains(0.0)
    assert result.p_value > 0.05


def test_bootstrap_of_too_few_units_is_flagged():
    result = bootstrap_difference([1.0], [2.0, 3.0])
    assert (result.method, result.p_value, result.degenerate) == ("bootstrap percentile", 1.0, True)


# --- Sample-ratio mismatch -------------------------------------------------------------------


def test_srm_of_a_five_percent_loss_at_100k_units_is_flagged():
    # 50,000 vs 47,500 against 48,750 each: chi2 = 2 * 1250² / 48750 = 64.102564
    result = srm_check([50_000, 47_500], [0.5, 0.5])
    assert result.chi2 == pytest.approx(64.102564, abs=1e-6)
    assert result.p_value == pytest.approx(stats.chisquare([50_000, 47_500]).pvalue, rel=1e-10)
    assert result.p_value < 1e-14
    assert result.flagged
    assert result.expected == (48_750.0, 48_750.0)


def test_srm_is_strict_so_a_mild_imbalance_is_not_flagged():
    # chi2 = 2 * 350² / 49,650 = 4.934542, p = 0.0263: noteworthy at 0.05, not an SRM.
    result = srm_check([50_000, 49_300], [0.5, 0.5])
    assert result.chi2 == pytest.approx(4.934542, abs=1e-6)
    assert not result.flagged


def test_srm_with_unequal_shares_matches_scipy():
    observed = [2_000, 1_020, 980]
    result = srm_check(observed, [2, 1, 1])  # shares are normalised
    expected = stats.chisquare(observed, f_exp=[2_000, 1_000, 1_000])
    assert result.degrees_of_freedom == 2
    assert result.chi2 == pytest.approx(expected.statistic, rel=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert not result.flagged


def test_srm_without_units_is_not_flagged():
    result = srm_check([0, 0], [0.5, 0.5])
    assert (result.chi2, result.p_value, result.flagged) == (0.0, 1.0, False)


def test_srm_needs_positive_shares_for_each_variant():
    with pytest.raises(ValueError):
        srm_check([10, 10], [1.0, 0.0])
    with pytest.raises(ValueError):
        srm_check([10, 10], [1.0])


# --- Sample size and minimum detectable effect -----------------------------------------------


def _power_of_pooled_z_test(baseline, treatment_rate, units, z_alpha=Z_975):
    """Normal-approximation power, written independently of the module: the chance that
    |z| > z_alpha when the true rates are baseline and treatment_rate (upper tail only)."""
    average = (baseline + treatment_rate) / 2
    null_se = math.sqrt(2 * average * (1 - average) / units)
    true_se = math.sqrt((baseline * (1 - baseline) + treatment_rate * (1 - treatment_rate)) / units)
    return stats.norm.sf((z_alpha * null_se - (treatment_rate - baseline)) / true_se)


def test_sample_size_for_a_ten_percent_lift_on_ten_percent_is_the_textbook_14751():
    # (1.959964 * sqrt(2 * 0.105 * 0.895) + 0.841621 * sqrt(0.09 + 0.0979))² / 0.01² = 14,750.6
    units = sample_size_per_variant(0.10, 0.10)
    assert units == 14_751
    assert _power_of_pooled_z_test(0.10, 0.11, units) >= 0.8
    assert _power_of_pooled_z_test(0.10, 0.11, units - 1) < 0.8


def test_more_variants_split_alpha_between_their_comparisons():
    assert sample_size_per_variant(0.10, 0.10, variants=3) == sample_size_per_variant(0.10, 0.10, alpha=0.025)
    assert sample_size_per_variant(0.10, 0.10, variants=3) > 14_751


@pytest.mark.parametrize("baseline", [0.01, 0.05, 0.3])
@pytest.mark.parametrize("units", [500, 14_751, 250_000])
def test_minimum_detectable_effect_is_the_inverse_of_the_sample_size(baseline, units):
    effect = minimum_detectable_effect(baseline, units)
    assert effect is not None
    assert sample_size_per_variant(baseline, effect) == units
    # Any visibly smaller effect needs more units.
    assert sample_size_per_variant(baseline, effect * (1 - 1e-6)) > units


def test_round_trip_from_an_effect_comes_back_to_it():
    units = sample_size_per_variant(0.04, 0.05)
    assert minimum_detectable_effect(0.04, units) == pytest.approx(0.05, rel=1e-3)
    assert minimum_detectable_effect(0.04, units) <= 0.05


def test_an_effect_beyond_a_rate_of_one_cannot_be_detected():
    assert minimum_detectable_effect(0.5, 3) is None
    with pytest.raises(ValueError, match="outside"):
        sample_size_per_variant(0.5, 1.5)


def test_sample_size_for_a_mean_matches_the_hand_computation():
    # 2 * (1.959964 + 0.841621)² * (100 / (50 * 0.1))² = 2 * 7.848880 * 400 = 6,279.1
    assert sample_size_per_variant_for_mean(50.0, 100.0, 0.1) == 6_280
    effect = minimum_detectable_effect_for_mean(50.0, 100.0, 6_280)
    assert effect == pytest.approx(0.1, rel=1e-4)
    assert sample_size_per_variant_for_mean(50.0, 100.0, effect) == 6_280


# --- mSPRT -----------------------------------------------------------------------------------


def test_msprt_single_look_matches_the_hand_computation():
    # V = 1e-5, tau² = 2.5e-5: Lambda = sqrt(1/3.5) * exp(1e-4 * 2.5e-5 / (2 * 1e-5 * 3.5e-5)) = 19.011558
    # r = sqrt(1e-5 * 3.5e-5 / 2.5e-5 * (2 ln 20 + ln 3.5)) = 0.010070709
    result = msprt(0.01, 1e-5, tau_squared=2.5e-5)
    assert result.p_value == pytest.approx(1 / 19.011558, rel=1e-6)
    assert result.interval.low == pytest.approx(0.01 - 0.010070709, abs=1e-9)
    assert result.interval.high == pytest.approx(0.01 + 0.010070709, abs=1e-9)
    assert (result.looks, result.interval.confidence) == (1, 0.95)
    # Barely significant by the classic test (z = 3.16), not yet by the always-valid one.
    assert result.p_value > 0.05


def test_msprt_continued_look_by_look_equals_one_call_over_all_looks():
    rng = np.random.default_rng(11)
    control = rng.binomial(400, 0.05, size=20).cumsum()
    treatment = rng.binomial(400, 0.065, size=20).cumsum()
    trials = 400 * np.arange(1, 21)
    at_once = msprt_proportions(control, trials, treatment, trials, tau_squared=1e-4)
    previous = None
    for look in range(20):
        previous = msprt_proportions(
            control[look], trials[look], treatment[look], trials[look], tau_squared=1e-4, previous=previous
        )
        if look:
            assert previous.p_value <= at_once.p_value_path[look - 1]
    assert previous.p_value == at_once.p_value
    assert (previous.interval.low, previous.interval.high) == (at_once.interval.low, at_once.interval.high)
    assert previous.looks == 20
    path = np.array(at_once.p_value_path)
    assert np.all(np.diff(path) <= 0)


def test_msprt_skips_looks_without_information():
    result = msprt_proportions([0, 0, 30], [0, 100, 600], [0, 0, 60], [0, 100, 600], tau_squared=1e-3)
    assert result.p_value_path[:2] == (1.0, 1.0)
    assert result.p_value_path[2] < 1.0
    nothing = msprt_proportions([0], [0], [0], [0], tau_squared=1e-3)
    assert (nothing.p_value, nothing.interval.degenerate) == (1.0, True)


def test_msprt_refuses_to_change_tau_mid_experiment():
    first = msprt(0.01, 1e-5, tau_squared=2.5e-5)
    with pytest.raises(ValueError, match="tau_squared"):
        msprt(0.01, 5e-6, tau_squared=1e-4, previous=first)


# --- CUPED -----------------------------------------------------------------------------------


def test_cuped_theta_and_adjusted_values_match_the_hand_computation():
    # mean x = 1.75, mean y = 5, cov = 6/4 = 1.5, var x = 2.75/4 = 0.6875, theta = 24/11
    adjustment = cuped([3, 5, 4, 8], [1, 2, 1, 3])
    assert adjustment.theta == pytest.approx(24 / 11)
    assert adjustment.pre_mean == 1.75
    assert adjustment.adjusted == pytest.approx([4.636364, 4.454545, 5.636364, 5.272727], abs=1e-6)
    assert adjustment.adjusted.mean() == pytest.approx(5.0)
    assert adjustment.variance_reduction == pytest.approx(1 - adjustment.adjusted.var() / np.var([3, 5, 4, 8]))


def test_cuped_removes_all_variance_a_pre_period_explains():
    pre = np.arange(10.0)
    adjustment = cuped(3 * pre + 2, pre)
    assert adjustment.theta == pytest.approx(3.0)
    assert adjustment.variance_reduction == pytest.approx(1.0)
    assert cuped([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]).theta == 0.0


def test_cuped_comparison_adjusts_the_difference_with_the_pooled_theta():
    rng = np.random.default_rng(12)
    control_pre, treatment_pre = rng.normal(5, 1, 400), rng.normal(5, 1, 300)
    control = control_pre + rng.normal(0, 1, 400)
    treatment = treatment_pre + rng.normal(0.3, 1, 300)
    result = cuped_comparison((control, control_pre), (treatment, treatment_pre))
    pooled_y, pooled_x = np.concatenate([control, treatment]), np.concatenate([control_pre, treatment_pre])
    theta = np.cov(pooled_y, pooled_x, ddof=0)[0, 1] / pooled_x.var()
    expected = (treatment.mean() - control.mean()) - theta * (treatment_pre.mean() - control_pre.mean())
    assert result.theta == pytest.approx(theta, rel=1e-12)
    assert result.comparison.difference.estimate == pytest.approx(expected, rel=1e-12)
    assert result.comparison.control_estimate == pytest.approx(control.mean())
    assert result.comparison.method == "CUPED + Welch t-test"


# --- CSV export ------------------------------------------------------------------------------


def test_per_unit_csv_quotes_and_round_trips():
    rows = [
        ("u-1", "control", 1, 19.99, None),
        ('he said "hi", twice', "treatment", 0, 0.1, "line\nbreak"),
        ("=HYPERLINK(1)", "treatment", -2, -3.5, "+1"),
    ]
    lines = list(per_unit_csv(rows, ["unit", "variant", "converted", "revenue", "note"]))
    assert lines[0] == "unit,variant,converted,revenue,note\r\n"
    assert lines[1] == "u-1,control,1,19.99,\r\n"
    assert lines[2] == '"he said ""hi"", twice",treatment,0,0.1,"line\nbreak"\r\n'
    assert lines[3] == "'=HYPERLINK(1),treatment,-2,-3.5,'+1\r\n"
    parsed = list(csv.reader(io.StringIO("".join(lines), newline="")))
    assert parsed[2] == ['he said "hi", twice', "treatment", "0", "0.1", "line\nbreak"]


def test_per_unit_csv_is_lazy_and_checks_row_width():
    def endless():
        number = 0
        while True:
            number += 1
            yield (number, number * 0.5)

    lines = per_unit_csv(endless(), ["unit", "value"])
    assert [next(lines), next(lines), next(lines)] == ["unit,value\r\n", "1,0.5\r\n", "2,1.0\r\n"]
    broken = per_unit_csv([(1, 2), (3,)], ["a", "b"])
    assert next(broken) == "a,b\r\n"
    assert next(broken) == "1,2\r\n"
    with pytest.raises(ValueError, match="row 2 has 1 fields"):
        next(broken)
