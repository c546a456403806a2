"""One call that analyses an experiment: what the Django layer stores and renders."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from analytics.statistics.comparisons import Comparison, bootstrap_difference, two_proportion_test, welch_t_test
from analytics.statistics.cuped import CupedComparison, cuped_comparison
from analytics.statistics.intervals import Interval, as_values, mean_interval, proportion_interval
from analytics.statistics.sequential import AlwaysValid, msprt
from analytics.statistics.srm import SRM_THRESHOLD, SrmResult, srm_check

# Without a configured tau², the mSPRT mixes over effects of about this size relative to the
# control (see ``analyse_experiment``).
DEFAULT_EXPECTED_RELATIVE_EFFECT = 0.1


@dataclass(frozen=True)
class ProportionMetric:
    """A rate over units: how many of the variant's units succeeded (converted, clicked)."""

    name: str
    successes: int


@dataclass(frozen=True, eq=False)
class PerUnitMetric:
    """One value per unit (revenue per unit, clicks per unit), in any order, optionally with
    the same units' pre-experiment values (same order) for CUPED."""

    name: str
    values: np.ndarray
    pre_values: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", as_values(self.values))
        if self.pre_values is not None:
            pre_values = as_values(self.pre_values)
            if pre_values.shape != self.values.shape:
                raise ValueError(f"metric {self.name!r}: need one pre-period value per unit")
            object.__setattr__(self, "pre_values", pre_values)


@dataclass(frozen=True, eq=False)
class VariantData:
    """One arm of an experiment as the analysis needs it.

    ``units`` are the distinct units (visitors) analysed in this arm, the denominators of
    every metric; ``exposures`` is how many times the arm was shown to them (reported only).
    ``expected_share`` is the designed fraction of units (shares are normalised together).
    """

    name: str
    expected_share: float
    units: int
    exposures: int
    metrics: tuple[ProportionMetric | PerUnitMetric, ...] = ()


@dataclass(frozen=True)
class MetricEstimate:
    metric: str
    kind: Literal["proportion", "mean"]
    estimate: Interval


@dataclass(frozen=True)
class VariantResult:
    name: str
    is_control: bool
    expected_share: float  # normalised over the variants
    observed_share: float  # of all analysed units; 0.0 when there are none
    units: int
    exposures: int
    metrics: tuple[MetricEstimate, ...]


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one treatment variant against the control, three ways: the classic
    fixed-horizon test, CUPED (per-unit metrics with pre-period values in both arms) and the
    always-valid mSPRT result on the unadjusted difference (None while tau² would be 0,
    i.e. the control is still at 0, or the data have no variation yet); ``bootstrap`` only
    when asked for, for per-unit metrics."""

    metric: str
    variant: str
    classic: Comparison
    cuped: CupedComparison | None
    always_valid: AlwaysValid | None
    bootstrap: Comparison | None


@dataclass(frozen=True)
class ExperimentAnalysis:
    control: str
    confidence: float
    variants: tuple[VariantResult, ...]
    comparisons: tuple[MetricComparison, ...]
    srm: SrmResult
    can_promote: bool
    promotion_blocked_reason: str  # "" when ``can_promote``


def analyse_experiment(
    variants: Sequence[VariantData],
    control: str,
    *,
    confidence: float = 0.95,
    srm_threshold: float = SRM_THRESHOLD,
    msprt_tau_squared: Mapping[str, float] | None = None,
    expected_relative_effect: float = DEFAULT_EXPECTED_RELATIVE_EFFECT,
    previous_always_valid: Mapping[tuple[str, str], AlwaysValid] | None = None,
    bootstrap_resamples: int = 0,
    seed: int = 0,
) -> ExperimentAnalysis:
    """Estimates per variant, comparisons with ``control``, the SRM check and whether a
    winner may be promoted.

    Per variant and metric: a Wilson interval (:class:`ProportionMetric`) or a t interval
    (:class:`PerUnitMetric`). Per treatment variant and metric: the two-proportion z-test or
    Welch's t-test; CUPED where both arms carry pre-period values; the mSPRT always-valid
    p-value and confidence sequence at level ``1 - confidence``; a percentile bootstrap
    when ``bootstrap_resamples > 0`` (seeded with ``seed``). Comparisons are not corrected
    for multiple variants or metrics.

    The SRM check (units per variant against the expected shares) runs every time; while it
    is flagged ``can_promote`` is False and the reason says why, because an uneven loss of
    units biases every comparison. Promotion is also refused before there are any units.

    mSPRT state: tau² must stay fixed across an experiment's analyses. It is taken, in this
    order, from ``msprt_tau_squared[metric]`` (best: set it at setup from the planned
    effect, ``(relative effect * baseline)²``), from the previous result, or at the first
    analysis as ``(expected_relative_effect * control estimate)²``. Pass the last stored
    results as ``previous_always_valid[(variant, metric)]`` so the p-value keeps falling
    monotonically and the confidence sequence keeps narrowing across analyses.
    """
    _check_variants(variants, control)
    srm = srm_check([v.units for v in variants], [v.expected_share for v in variants], srm_threshold)
    total_units = sum(v.units for v in variants)
    share_total = sum(v.expected_share for v in variants)
    control_data = next(v for v in variants if v.name == control)

    variant_results = tuple(
        VariantResult(
            name=variant.name,
            is_control=variant.name == control,
            expected_share=variant.expected_share / share_total,
            observed_share=variant.units / total_units if total_units else 0.0,
            units=variant.units,
            exposures=variant.exposures,
            metrics=tuple(_metric_estimate(metric, variant.units, confidence) for metric in variant.metrics),
        )
        for variant in variants
    )
    comparisons: list[MetricComparison] = []
    for variant in variants:
        if variant.name == control:
            continue
        treatment_metrics = {metric.name: metric for metric in variant.metrics}
        for control_metric in control_data.metrics:
            treatment_metric = treatment_metrics[control_metric.name]
            previous = (previous_always_valid or {}).get((variant.name, control_metric.name))
            tau_squared = (msprt_tau_squared or {}).get(control_metric.name)
            comparisons.append(
                _compare(
                    control_metric,
                    control_data.units,
                    treatment_metric,
                    variant.units,
                    variant_name=variant.name,
                    confidence=confidence,
                    tau_squared=tau_squared,
                    expected_relative_effect=expected_relative_effect,
                    previous=previous,
                    bootstrap_resamples=bootstrap_resamples,
                    seed=seed,
                )
            )

    if srm.flagged:
        observed = ", ".join(f"{v.name} {v.units}" for v in variants)
        expected = ", ".join(f"{v.name} {e:.0f}" for v, e in zip(variants, srm.expected, strict=True))
        reason = (
            f"Sample ratio mismatch (chi-square p = {srm.p_value:.2g} < {srm.threshold}): units {observed}; "
            f"expected {expected}. Find the cause before trusting or promoting any result."
        )
    elif total_units == 0:
        reason = "No units have been analysed yet."
    else:
        reason = ""
    return ExperimentAnalysis(
        control=control,
        confidence=confidence,
        variants=variant_results,
        comparisons=tuple(comparisons),
        srm=srm,
        can_promote=not reason,
        promotion_blocked_reason=reason,
    )


def _metric_estimate(metric: ProportionMetric | PerUnitMetric, units: int, confidence: float) -> MetricEstimate:
    if isinstance(metric, ProportionMetric):
        return MetricEstimate(metric.name, "proportion", proportion_interval(metric.successes, units, confidence))
    return MetricEstimate(metric.name, "mean", mean_interval(metric.values, confidence))


def _compare(
    control_metric: ProportionMetric | PerUnitMetric,
    control_units: int,
    treatment_metric: ProportionMetric | PerUnitMetric,
    treatment_units: int,
    *,
    variant_name: str,
    confidence: float,
    tau_squared: float | None,
    expected_relative_effect: float,
    previous: AlwaysValid | None,
    bootstrap_resamples: int,
    seed: int,
) -> MetricComparison:
    cuped: CupedComparison | None = None
    bootstrap: Comparison | None = None
    if isinstance(control_metric, ProportionMetric) and isinstance(treatment_metric, ProportionMetric):
        classic = two_proportion_test(
            (control_metric.successes, control_units), (treatment_metric.successes, treatment_units), confidence
        )
        p1, p2 = classic.control_estimate, classic.treatment_estimate
        variance = (
            p1 * (1 - p1) / control_units + p2 * (1 - p2) / treatment_units
            if control_units and treatment_units
            else 0.0
        )
    elif isinstance(control_metric, PerUnitMetric) and isinstance(treatment_metric, PerUnitMetric):
        control_values, treatment_values = control_metric.values, treatment_metric.values
        classic = welch_t_test(control_values, treatment_values, confidence)
        variance = (
            float(control_values.var(ddof=1)) / control_values.size
            + float(treatment_values.var(ddof=1)) / treatment_values.size
            if control_values.size > 1 and treatment_values.size > 1
            else 0.0
        )
        if control_metric.pre_values is not None and treatment_metric.pre_values is not None:
            cuped = cuped_comparison(
                (control_values, control_metric.pre_values),
                (treatment_values, treatment_metric.pre_values),
                confidence,
            )
        if bootstrap_resamples > 0:
            bootstrap = bootstrap_difference(
                control_values, treatment_values, resamples=bootstrap_resamples, confidence=confidence, seed=seed
            )
    else:
        raise AssertionError("metric kinds are checked to agree across variants")

    if tau_squared is None:
        tau_squared = (
            previous.tau_squared if previous is not None else (expected_relative_effect * classic.control_estimate) ** 2
        )
    always_valid = None
    if tau_squared > 0 and (variance > 0 or previous is not None):
        always_valid = msprt(
            classic.difference.estimate,
            variance,
            tau_squared=tau_squared,
            alpha=round(1 - confidence, 12),
            previous=previous,
        )
    return MetricComparison(
        metric=control_metric.name,
        variant=variant_name,
        classic=classic,
        cuped=cuped,
        always_valid=always_valid,
        bootstrap=bootstrap,
    )


def _check_variants(variants: Sequence[VariantData], control: str) -> None:
    names = [variant.name for variant in variants]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"need at least two variants with distinct names, got {names}")
    if control not in names:
        raise ValueError(f"the control {control!r} is not one of the variants {names}")
    control_kinds = _metric_kinds(next(v for v in variants if v.name == control))
    for variant in variants:
        if variant.units < 0 or variant.exposures < 0:
            raise ValueError(f"variant {variant.name!r}: units and exposures cannot be negative")
        if _metric_kinds(variant) != control_kinds:
            raise ValueError(f"variant {variant.name!r} has different metrics from the control")
        for metric in variant.metrics:
            if isinstance(metric, ProportionMetric) and not 0 <= metric.successes <= variant.units:
                raise ValueError(
                    f"variant {variant.name!r}, metric {metric.name!r}: "
                    f"{metric.successes} successes among {variant.units} units"
                )
            if isinstance(metric, PerUnitMetric) and metric.values.size != variant.units:
                raise ValueError(
                    f"variant {variant.name!r}, metric {metric.name!r}: "
                    f"{metric.values.size} values for {variant.units} units"
                )


def _metric_kinds(variant: VariantData) -> dict[str, type]:
    kinds = {metric.name: type(metric) for metric in variant.metrics}
    if len(kinds) != len(variant.metrics):
        raise ValueError(f"variant {variant.name!r} names a metric twice")
    return kinds
