"""Experiment statistics, in plain numpy/scipy (no Django): the numbers behind the
experiment screens.

- intervals: :func:`proportion_interval` (Wilson), :func:`mean_interval` (Student t)
- comparisons: :func:`two_proportion_test`, :func:`welch_t_test`, :func:`bootstrap_difference`
- :func:`srm_check`: sample-ratio mismatch (chi-square)
- planning: :func:`sample_size_per_variant`, :func:`minimum_detectable_effect` and their
  ``*_for_mean`` versions
- peeking-safe: :func:`msprt`, :func:`msprt_proportions` (always-valid p-values)
- variance reduction: :func:`cuped`, :func:`cuped_comparison`
- :func:`per_unit_csv`: the raw per-unit export
- :func:`analyse_experiment`: all of the above for one experiment
"""

from analytics.statistics.comparisons import Comparison, bootstrap_difference, two_proportion_test, welch_t_test
from analytics.statistics.cuped import CupedAdjustment, CupedComparison, cuped, cuped_comparison
from analytics.statistics.experiment import (
    ExperimentAnalysis,
    MetricComparison,
    MetricEstimate,
    PerUnitMetric,
    ProportionMetric,
    VariantData,
    VariantResult,
    analyse_experiment,
)
from analytics.statistics.export import per_unit_csv
from analytics.statistics.intervals import Interval, critical_z, mean_interval, proportion_interval
from analytics.statistics.power import (
    minimum_detectable_effect,
    minimum_detectable_effect_for_mean,
    sample_size_per_variant,
    sample_size_per_variant_for_mean,
)
from analytics.statistics.sequential import AlwaysValid, msprt, msprt_proportions
from analytics.statistics.srm import SRM_THRESHOLD, SrmResult, srm_check

__all__ = [
    "SRM_THRESHOLD",
    "AlwaysValid",
    "Comparison",
    "CupedAdjustment",
    "CupedComparison",
    "ExperimentAnalysis",
    "Interval",
    "MetricComparison",
    "MetricEstimate",
    "PerUnitMetric",
    "ProportionMetric",
    "SrmResult",
    "VariantData",
    "VariantResult",
    "analyse_experiment",
    "bootstrap_difference",
    "critical_z",
    "cuped",
    "cuped_comparison",
    "mean_interval",
    "minimum_detectable_effect",
    "minimum_detectable_effect_for_mean",
    "msprt",
    "msprt_proportions",
    "per_unit_csv",
    "proportion_interval",
    "sample_size_per_variant",
    "sample_size_per_variant_for_mean",
    "srm_check",
    "two_proportion_test",
    "welch_t_test",
]
