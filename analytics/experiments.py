"""Experiment results: the per-unit table of ONE experiment version through
analytics.statistics.

Per unit (a shopper, or a session for anonymous visitors, by the keyed hash serving
logged), from ``ExperimentUnit``: exposures (served lists), and what followed, attributed
to those lists. The metrics, all per unit - each unit counts once, so they are proper
binomials and means:

- ``ctr``: share of units that clicked at least once; ``add_to_cart_rate``: added to the
  cart at least once; ``conversion_rate``: bought at least once (attributed purchases);
- ``revenue_per_unit``: attributed revenue per unit (Welch's t-test), with CUPED on the
  unit's purchase revenue in the ``ANALYTICS_PRE_PERIOD_DAYS`` (28) days before the
  version started (0 for anonymous units), and the always-valid mSPRT result.

Versions are never pooled: a new version re-randomises units. Held-out units (variant
"holdout") are analysed as one more arm, so that the sample-ratio check covers them.
Units whose served lists named more than one variant (impossible with deterministic
assignment; a logging fault if it happens) are counted and left out.

mSPRT state: ``ExperimentLook`` keeps tau² per metric (fixed at the first analysis that
can set it: 10% of the control's value, squared) and the last always-valid result per
arm and metric, passed back into the next analysis. Analysing unchanged data gives the
same result and is not stored as a new look.
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import FloatField
from django.db.models.functions import Cast
from django.utils import timezone

from analytics.models import ExperimentLook, ExperimentUnit
from analytics.statistics import (
    AlwaysValid,
    ExperimentAnalysis,
    Interval,
    PerUnitMetric,
    ProportionMetric,
    VariantData,
    analyse_experiment,
    per_unit_csv,
)
from campaigns.models import HOLDOUT, Experiment, ExperimentVersion

CONFIDENCE = 0.95
PROPORTIONS = (("ctr", "clicks"), ("add_to_cart_rate", "add_to_carts"), ("conversion_rate", "purchases"))
REVENUE = "revenue_per_unit"
METRIC_ORDER = (*(name for name, _ in PROPORTIONS), REVENUE)
METRIC_LABELS = {
    "ctr": "Click-through (share of units that clicked)",
    "add_to_cart_rate": "Add to cart (share of units)",
    "conversion_rate": "Conversion (share of units that bought)",
    REVENUE: "Revenue per unit",
}
PER_UNIT_COLUMNS = (
    "unit",
    "variant",
    "variants_seen",
    "first_hour",
    "exposures",
    "impressions",
    "clicks",
    "add_to_carts",
    "purchases",
    "revenue",
    "pre_revenue",
)


@dataclass(frozen=True)
class Arm:
    name: str
    share: float  # designed fraction of all units of the version
    is_control: bool


@dataclass(frozen=True)
class VersionDesign:
    """One version's split, from campaigns' ExperimentVersion."""

    number: int
    started_at: datetime
    ended_at: datetime | None
    holdout_percent: int
    arms: tuple[Arm, ...]

    @property
    def control(self) -> str:
        return next(arm.name for arm in self.arms if arm.is_control)

    @property
    def variant_names(self) -> list[str]:
        """The arms a winner can be chosen from (not the holdout)."""
        return [arm.name for arm in self.arms if arm.name != HOLDOUT]


def version_design(version: ExperimentVersion) -> VersionDesign:
    allocation = version.allocation or {}
    holdout = int(allocation.get("holdout_percent") or 0)
    variants = allocation.get("variants") or []
    arms = [
        Arm(
            name=str(v["name"]),
            share=(100 - holdout) / 100 * int(v["allocation"]) / 100,
            is_control=bool(v.get("is_control")),
        )
        for v in variants
    ]
    if holdout:
        arms.append(Arm(name=HOLDOUT, share=holdout / 100, is_control=False))
    return VersionDesign(
        number=version.number,
        started_at=version.started_at,
        ended_at=version.ended_at,
        holdout_percent=holdout,
        arms=tuple(arms),
    )


def experiment_designs(experiment: Experiment) -> list[VersionDesign]:
    """The versions that ran or are scheduled, oldest first."""
    return [version_design(v) for v in ExperimentVersion.objects.filter(experiment=experiment).order_by("number")]


@dataclass(frozen=True)
class ExperimentResults:
    experiment_id: int
    version: int
    versions: tuple[int, ...]
    design: VersionDesign
    analysis: ExperimentAnalysis
    primary_metric: str
    mixed_units: int  # seen in more than one variant: left out
    stray_units: int  # in a variant this version does not have: left out
    looks: int  # analyses of distinct data so far (the mSPRT's looks)

    @property
    def units(self) -> int:
        return sum(v.units for v in self.analysis.variants)

    def comparisons_of(self, metric: str) -> list[Any]:
        return [c for c in self.analysis.comparisons if c.metric == metric]


def experiment_results(
    experiment: Experiment, version: int | None = None, *, record: bool = True
) -> ExperimentResults | None:
    """Analyse one version (default: the experiment's current one) from ``ExperimentUnit``.

    None when the version never started (a draft). ``record``: keep the sequential state of
    this look (``ExperimentLook``, row-locked so concurrent analyses chain, not fork).
    """
    designs = {d.number: d for d in experiment_designs(experiment)}
    number = version if version is not None else experiment.version
    design = designs.get(number)
    if design is None:
        return None
    variants, mixed, stray, fingerprint = _variant_data(experiment, design)
    with transaction.atomic():
        look = _locked_look(experiment, number) if record else None
        tau = {k: float(v) for k, v in (look.tau_squared if look else {}).items()}
        previous = _decode_states(look.always_valid) if look else {}
        analysis = analyse_experiment(
            variants,
            design.control,
            confidence=CONFIDENCE,
            msprt_tau_squared=tau or None,
            previous_always_valid=previous or None,
        )
        looks = look.looks if look else 0
        if look is not None and look.fingerprint != fingerprint:
            looks = look.looks + 1
            _store_look(look, analysis, fingerprint, looks)
    return ExperimentResults(
        experiment_id=experiment.pk,
        version=number,
        versions=tuple(sorted(designs)),
        design=design,
        analysis=analysis,
        primary_metric=experiment.primary_metric,
        mixed_units=mixed,
        stray_units=stray,
        looks=looks,
    )


def srm_check_passes(experiment: Experiment) -> bool:
    """``settings.CAMPAIGNS_SRM_CHECK``: False while the sample-ratio check of the current
    version flags a mismatch (promotion is then refused); True when it does not, or when
    the experiment has no version to check yet."""
    results = experiment_results(experiment)
    return results is None or not results.analysis.srm.flagged


def _variant_data(experiment: Experiment, design: VersionDesign) -> tuple[list[VariantData], int, int, str]:
    """One ``VariantData`` per arm of the design, from this version's units only."""
    columns = ("exposures", "clicks", "add_to_carts", "purchases")
    values: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    mixed = stray = 0
    names = {arm.name for arm in design.arms}
    # Money as floats in SQL: the statistics work in floats, and converting tens of
    # thousands of Decimals in Python costs more than the analysis.
    rows = (
        ExperimentUnit.objects.filter(
            shop_id=experiment.shop_id, experiment_id=experiment.pk, experiment_version=design.number
        )
        .annotate(revenue_f=Cast("revenue", FloatField()), pre_revenue_f=Cast("pre_revenue", FloatField()))
        .values_list("variant", "variants_seen", *columns, "revenue_f", "pre_revenue_f")
    )
    for variant, seen, *numbers in rows.iterator(chunk_size=20_000):
        if seen != 1:
            mixed += 1
        elif variant not in names:
            stray += 1
        else:
            values[variant].append(tuple(numbers))
    data = []
    digest = hashlib.sha256(f"{design.number}:{mixed}:{stray}".encode())
    for arm in design.arms:
        table = np.array(values.get(arm.name, []), dtype=np.float64).reshape(-1, len(columns) + 2)
        counts = table[:, : len(columns)].astype(np.int64)
        revenue = np.ascontiguousarray(table[:, len(columns)])
        pre_revenue = np.ascontiguousarray(table[:, len(columns) + 1])
        units = int(counts.shape[0])
        exposures = int(counts[:, 0].sum())
        metrics: list[ProportionMetric | PerUnitMetric] = [
            ProportionMetric(name, int((counts[:, columns.index(column)] > 0).sum())) for name, column in PROPORTIONS
        ]
        metrics.append(PerUnitMetric(REVENUE, revenue, pre_revenue))
        data.append(
            VariantData(
                name=arm.name, expected_share=arm.share, units=units, exposures=exposures, metrics=tuple(metrics)
            )
        )
        digest.update(f"|{arm.name}:{units}:{exposures}:{counts.sum(axis=0).tolist()}".encode())
        digest.update(f":{revenue.sum():.2f}:{pre_revenue.sum():.2f}".encode())
    return data, mixed, stray, digest.hexdigest()


def _locked_look(experiment: Experiment, number: int) -> ExperimentLook:
    look, _ = ExperimentLook.objects.get_or_create(
        experiment_id=experiment.pk, experiment_version=number, defaults={"shop_id": experiment.shop_id}
    )
    return ExperimentLook.objects.select_for_update().get(pk=look.pk)


def _store_look(look: ExperimentLook, analysis: ExperimentAnalysis, fingerprint: str, looks: int) -> None:
    tau = dict(look.tau_squared)
    states = {}
    for comparison in analysis.comparisons:
        if comparison.always_valid is not None:
            tau.setdefault(comparison.metric, comparison.always_valid.tau_squared)
            states[f"{comparison.variant}|{comparison.metric}"] = _encode_state(comparison.always_valid)
    look.tau_squared = tau
    look.always_valid = states
    look.fingerprint = fingerprint
    look.looks = looks
    look.analysed_at = timezone.now()
    look.summary = {
        "srm_flagged": analysis.srm.flagged,
        "srm_p_value": analysis.srm.p_value,
        "can_promote": analysis.can_promote,
        "units": {v.name: v.units for v in analysis.variants},
    }
    look.save()


def _encode_state(state: AlwaysValid) -> dict[str, Any]:
    interval = state.interval
    return {
        "estimate": state.estimate,
        "p_value": state.p_value,
        "interval": [interval.estimate, interval.low, interval.high, interval.confidence, interval.degenerate],
        "tau_squared": state.tau_squared,
        "alpha": state.alpha,
        "looks": state.looks,
    }


def _decode_states(stored: dict[str, Any]) -> dict[tuple[str, str], AlwaysValid]:
    states = {}
    for key, value in stored.items():
        variant, metric = key.split("|", 1)
        estimate, low, high, confidence, degenerate = value["interval"]
        states[(variant, metric)] = AlwaysValid(
            estimate=float(value["estimate"]),
            p_value=float(value["p_value"]),
            interval=Interval(float(estimate), float(low), float(high), float(confidence), bool(degenerate)),
            tau_squared=float(value["tau_squared"]),
            alpha=float(value["alpha"]),
            looks=int(value["looks"]),
            p_value_path=(),
        )
    return states


# --- raw export --------------------------------------------------------------------------------


def per_unit_rows(experiment: Experiment, version: int) -> Iterator[Sequence[object]]:
    """Every unit of one version, in unit order (mixed units included, with their count)."""
    rows = (
        ExperimentUnit.objects.filter(
            shop_id=experiment.shop_id, experiment_id=experiment.pk, experiment_version=version
        )
        .order_by("unit_hash")
        .values_list(
            "unit_hash",
            "variant",
            "variants_seen",
            "first_hour",
            "exposures",
            "impressions",
            "clicks",
            "add_to_carts",
            "purchases",
            "revenue",
            "pre_revenue",
        )
    )
    for row in rows.iterator(chunk_size=5000):
        unit, variant, seen, first_hour, *counts, revenue, pre_revenue = row
        yield (unit, variant, seen, first_hour.isoformat(), *counts, revenue, pre_revenue)


def per_unit_csv_lines(experiment: Experiment, version: int) -> Iterator[str]:
    return per_unit_csv(per_unit_rows(experiment, version), PER_UNIT_COLUMNS)
