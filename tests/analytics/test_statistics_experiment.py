"""analyse_experiment: the one call the experiment screens make."""

import dataclasses
import math

import numpy as np
import pytest

from analytics.statistics import (
    PerUnitMetric,
    ProportionMetric,
    VariantData,
    analyse_experiment,
    bootstrap_difference,
    cuped_comparison,
    mean_interval,
    msprt,
    proportion_interval,
    srm_check,
    two_proportion_test,
    welch_t_test,
)


def _variant(rng, name, units, *, share=0.5, conversion=0.05, basket=50.0, lift=1.0, with_pre_period=True):
    """A simulated arm: who converted, revenue per unit and last month's revenue per unit."""
    pre_revenue = rng.gamma(0.5, 40.0, size=units)
    converted = rng.random(units) < conversion
    revenue = np.where(converted, lift * (basket + 0.8 * pre_revenue + rng.normal(0, 5, size=units)), 0.0)
    return VariantData(
        name=name,
        expected_share=share,
        units=units,
        exposures=3 * units,
        metrics=(
            ProportionMetric("conversion", int(converted.sum())),
            PerUnitMetric("revenue", revenue, pre_revenue if with_pre_period else None),
        ),
    )


def _floats(value):
    """Every float inside a result, however deeply nested."""
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _floats(getattr(value, field.name))
    elif isinstance(value, tuple | list):
        for item in value:
            yield from _floats(item)
    elif isinstance(value, float):
        yield value


def test_a_five_percent_loss_of_one_variants_exposures_is_flagged_and_blocks_promotion():
    # Given 100k units split 50/50, where the treatment lost 5% of its exposed units
    rng = np.random.default_rng(1)
    variants = [_variant(rng, "control", 50_000), _variant(rng, "treatment", 47_500, lift=1.1)]
    # When the experiment is analysed
    analysis = analyse_experiment(variants, control="control")
    # Then the SRM check flags it and promotion is refused with the reason
    print(f"SRM p-value for a 5% loss: {analysis.srm.p_value:.3g}")
    assert analysis.srm.flagged
    assert analysis.srm.p_value < 0.0005
    assert analysis.srm.p_value == srm_check([50_000, 47_500], [0.5, 0.5]).p_value
    assert analysis.can_promote is False
    assert analysis.promotion_blocked_reason.startswith("Sample ratio mismatch (chi-square p = 1.2e-15 < 0.0005)")
    assert "units control 50000, treatment 47500; expected control 48750, treatment 48750" in (
        analysis.promotion_blocked_reason
    )
    # The numbers are still shown, just not promotable.
    assert len(analysis.comparisons) == 2


def test_a_fair_split_is_not_flagged_and_may_be_promoted():
    rng = np.random.default_rng(2)
    variants = [_variant(rng, "control", 50_000), _variant(rng, "treatment", 49_870)]
    analysis = analyse_experiment(variants, control="control")
    assert not analysis.srm.flagged
    assert (analysis.can_promote, analysis.promotion_blocked_reason) == (True, "")


def test_the_analysis_is_made_of_the_individual_tests():
    # Given a 50/50 experiment with a conversion rate and revenue per unit with a pre-period
    rng = np.random.default_rng(3)
    control, treatment = _variant(rng, "A", 6_000), _variant(rng, "B", 6_100, conversion=0.06)
    # When it is analysed
    analysis = analyse_experiment([control, treatment], control="A")
    # Then per-variant numbers are the single-group intervals
    a, b = analysis.variants
    assert (a.name, a.is_control, a.units, a.exposures) == ("A", True, 6_000, 18_000)
    assert (b.name, b.is_control, b.expected_share) == ("B", False, 0.5)
    assert b.observed_share == 6_100 / 12_100
    conversion_a, revenue_a = a.metrics
    assert (conversion_a.metric, conversion_a.kind) == ("conversion", "proportion")
    assert conversion_a.estimate == proportion_interval(control.metrics[0].successes, 6_000)
    assert (revenue_a.metric, revenue_a.kind) == ("revenue", "mean")
    assert revenue_a.estimate == mean_interval(control.metrics[1].values)
    # And the comparisons are the two-proportion test, Welch with CUPED, and the mSPRT
    conversion, revenue = analysis.comparisons
    assert (conversion.metric, conversion.variant) == ("conversion", "B")
    assert conversion.classic == two_proportion_test(
        (control.metrics[0].successes, 6_000), (treatment.metrics[0].successes, 6_100)
    )
    assert conversion.cuped is None
    p1, p2 = conversion.classic.control_estimate, conversion.classic.treatment_estimate
    assert conversion.always_valid == msprt(
        p2 - p1, p1 * (1 - p1) / 6_000 + p2 * (1 - p2) / 6_100, tau_squared=(0.1 * p1) ** 2
    )
    control_revenue, treatment_revenue = control.metrics[1], treatment.metrics[1]
    assert revenue.classic == welch_t_test(control_revenue.values, treatment_revenue.values)
    assert revenue.cuped == cuped_comparison(
        (control_revenue.values, control_revenue.pre_values), (treatment_revenue.values, treatment_revenue.pre_values)
    )
    assert revenue.cuped.comparison.difference.width < revenue.classic.difference.width
    assert revenue.bootstrap is None
    assert revenue.always_valid.tau_squared == pytest.approx((0.1 * revenue.classic.control_estimate) ** 2)


def test_bootstrap_runs_on_per_unit_metrics_when_asked():
    rng = np.random.default_rng(4)
    control, treatment = _variant(rng, "A", 2_000), _variant(rng, "B", 2_000)
    analysis = analyse_experiment([control, treatment], control="A", bootstrap_resamples=500, seed=9)
    conversion, revenue = analysis.comparisons
    assert conversion.bootstrap is None
    assert revenue.bootstrap == bootstrap_difference(
        control.metrics[1].values, treatment.metrics[1].values, resamples=500, seed=9
    )


def test_always_valid_results_continue_from_the_previous_analysis():
    # Given a first analysis with a configured tau² for conversion
    rng = np.random.default_rng(5)
    first = analyse_experiment(
        [_variant(rng, "A", 3_000), _variant(rng, "B", 3_000, conversion=0.07)],
        control="A",
        msprt_tau_squared={"conversion": 1e-4},
    )
    # When a later analysis with more units is given the stored always-valid results
    stored = {(c.variant, c.metric): c.always_valid for c in first.comparisons}
    second = analyse_experiment(
        [_variant(rng, "A", 9_000), _variant(rng, "B", 9_000, conversion=0.07)],
        control="A",
        msprt_tau_squared={"conversion": 1e-4},
        previous_always_valid=stored,
    )
    # Then each sequence continues: same tau², one more look, p-value not higher, interval not wider
    for before, after in zip(first.comparisons, second.comparisons, strict=True):
        assert after.always_valid.tau_squared == before.always_valid.tau_squared
        assert after.always_valid.looks == 2
        assert after.always_valid.p_value <= before.always_valid.p_value
        assert after.always_valid.interval.low >= before.always_valid.interval.low
        assert after.always_valid.interval.high <= before.always_valid.interval.high
    assert second.comparisons[0].always_valid.tau_squared == 1e-4


def test_three_variants_are_each_compared_with_the_control():
    rng = np.random.default_rng(6)
    variants = [
        _variant(rng, "B", 3_000, share=1 / 3),
        _variant(rng, "A", 3_000, share=1 / 3),
        _variant(rng, "C", 3_000, share=1 / 3),
    ]
    analysis = analyse_experiment(variants, control="A")
    assert [(c.variant, c.metric) for c in analysis.comparisons] == [
        ("B", "conversion"),
        ("B", "revenue"),
        ("C", "conversion"),
        ("C", "revenue"),
    ]
    assert analysis.srm.degrees_of_freedom == 2


def test_an_experiment_without_units_is_not_promotable_and_has_no_nans():
    empty = [
        VariantData("A", 0.5, 0, 0, (ProportionMetric("conversion", 0), PerUnitMetric("revenue", np.zeros(0)))),
        VariantData("B", 0.5, 0, 0, (ProportionMetric("conversion", 0), PerUnitMetric("revenue", np.zeros(0)))),
    ]
    analysis = analyse_experiment(empty, control="A")
    assert (analysis.can_promote, analysis.promotion_blocked_reason) == (False, "No units have been analysed yet.")
    assert all(c.classic.degenerate and c.always_valid is None for c in analysis.comparisons)
    assert all(math.isfinite(value) for value in _floats(analysis))


def test_an_arm_without_pre_period_values_gets_no_cuped():
    rng = np.random.default_rng(7)
    variants = [_variant(rng, "A", 1_000), _variant(rng, "B", 1_000, with_pre_period=False)]
    analysis = analyse_experiment(variants, control="A")
    assert analysis.comparisons[1].cuped is None


@pytest.mark.parametrize(
    ("variants", "control", "message"),
    [
        ([VariantData("A", 0.5, 10, 10), VariantData("B", 0.5, 10, 10)], "C", "control 'C' is not one"),
        ([VariantData("A", 0.5, 10, 10), VariantData("A", 0.5, 10, 10)], "A", "distinct names"),
        (
            [VariantData("A", 0.5, 10, 10, (ProportionMetric("x", 3),)), VariantData("B", 0.5, 10, 10)],
            "A",
            "different metrics",
        ),
        (
            [
                VariantData("A", 0.5, 10, 10, (ProportionMetric("x", 11),)),
                VariantData("B", 0.5, 10, 10, (ProportionMetric("x", 1),)),
            ],
            "A",
            "11 successes among 10 units",
        ),
        (
            [
                VariantData("A", 0.5, 10, 10, (PerUnitMetric("r", np.ones(9)),)),
                VariantData("B", 0.5, 10, 10, (PerUnitMetric("r", np.ones(10)),)),
            ],
            "A",
            "9 values for 10 units",
        ),
    ],
)
def test_inconsistent_input_is_refused(variants, control, message):
    with pytest.raises(ValueError, match=message):
        analyse_experiment(variants, control=control)


def test_pre_period_values_must_match_the_units():
    with pytest.raises(ValueError, match="one pre-period value per unit"):
        PerUnitMetric("revenue", np.ones(3), np.ones(2))
