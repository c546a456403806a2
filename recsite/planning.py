"""The sample-size estimate of the experiment wizard: how many shoppers an experiment
needs, and the smallest lift it can find in the time planned.

It lives in recsite because it joins campaigns (the experiment's variants and split)
and analytics (``analytics.statistics.power``), and only recsite may import analytics.
The wizard (campaigns/views.py) asks for it with htmx as its fields change; on its own
the same URL is a small page with a form, for use without JavaScript.

The power functions assume an equal split between the variants; with an unequal split
every variant needs that many shoppers, so the total is set by the smallest variant
(a conservative estimate). Held-out shoppers are not part of any comparison.
"""

import math
from dataclasses import dataclass
from typing import Any

from django.http import HttpResponse, QueryDict
from django.views.decorators.http import require_GET

from analytics.statistics.power import (
    minimum_detectable_effect,
    minimum_detectable_effect_for_mean,
    sample_size_per_variant,
    sample_size_per_variant_for_mean,
)
from campaigns.forms import METRIC_LABELS, TYPICAL_BASELINE, ExperimentPlanForm, allocations_of, variant_rows
from campaigns.models import Experiment
from catalog.access import access_shop, console_view
from catalog.console import HtmxHttpRequest, render_screen
from catalog.models import Membership

ALPHA = 0.05
POWER = 0.8
DEFAULT_EFFECT_PERCENT = 10.0
DEFAULT_WEEKS = 2


@dataclass(frozen=True)
class Share:
    name: str
    percent: float  # of all shoppers on the placement


@dataclass(frozen=True)
class ExperimentPlan:
    metric: str  # its label
    baseline: str  # the baseline used, in words
    effect: float  # the relative lift to find (0.1 = 10%)
    shares: list[Share]  # the holdout (if any), then the variants
    units_per_variant: int
    shoppers_total: int  # on the placement, so that the smallest variant gets units_per_variant
    weeks: int
    weekly_units: int | None
    weeks_needed: float | None
    detectable_effect: float | None  # the smallest lift found in ``weeks`` (None: none at all)

    @property
    def effect_percent(self) -> float:
        return self.effect * 100

    @property
    def detectable_percent(self) -> float | None:
        return None if self.detectable_effect is None else self.detectable_effect * 100


def experiment_plan(data: dict[str, Any], variants: list[tuple[str, int]]) -> ExperimentPlan | str:
    """The estimate for the cleaned plan ``data`` and the variants' (name, share of the
    non-held-out shoppers in percent); a sentence saying what is missing otherwise."""
    if sum(share for _, share in variants) != 100:
        return f"The variants' shares add up to {sum(s for _, s in variants)}%; make them 100% for an estimate."
    metric = data["primary_metric"]
    holdout = data["holdout_percent"] or 0
    effect = (data["minimum_effect"] or DEFAULT_EFFECT_PERCENT) / 100
    weeks = data["weeks"] or DEFAULT_WEEKS
    count = len(variants)
    rest = (100 - holdout) / 100
    shares = ([Share("holdout", float(holdout))] if holdout else []) + [Share(n, s * rest) for n, s in variants]
    smallest = min(share for _, share in variants) / 100 * rest
    try:
        if metric == Experiment.Metric.REVENUE_PER_UNIT:
            mean, sd = data["baseline_mean"], data["baseline_sd"]
            if mean is None or sd is None:
                return "Enter the revenue per shopper and its standard deviation for an estimate."
            baseline = f"{mean:,.2f} per shopper, standard deviation {sd:,.2f}"
            n = sample_size_per_variant_for_mean(mean, sd, effect, ALPHA, POWER, count)

            def detectable(units: int) -> float | None:
                return minimum_detectable_effect_for_mean(mean, sd, units, ALPHA, POWER, count)

        else:
            typical = data["baseline_rate"] is None
            rate = (TYPICAL_BASELINE[metric] if typical else data["baseline_rate"]) / 100
            baseline = f"{rate * 100:.4g}%" + (", a typical rate (enter yours)" if typical else "")
            n = sample_size_per_variant(rate, effect, ALPHA, POWER, count)

            def detectable(units: int) -> float | None:
                return minimum_detectable_effect(rate, units, ALPHA, POWER, count)

    except ValueError as error:
        return f"No estimate: {error}."
    total = math.ceil(n / smallest)
    weekly = data["weekly_units"]
    in_weeks = math.floor(weekly * weeks * smallest) if weekly else 0
    return ExperimentPlan(
        metric=METRIC_LABELS[metric],
        baseline=baseline,
        effect=effect,
        shares=shares,
        units_per_variant=n,
        shoppers_total=total,
        weeks=weeks,
        weekly_units=weekly,
        weeks_needed=total / weekly if weekly else None,
        detectable_effect=detectable(in_weeks) if in_weeks >= 1 else None,
    )


def _variants(query: QueryDict, count: int | None) -> list[tuple[str, int]] | None:
    """The wizard's variants (names and shares), or an equal split of ``count`` named
    A, B, C... when the request is not from the wizard. None: a share is not valid."""
    if "variants-TOTAL_FORMS" in query:
        shares = allocations_of(query)
        if shares is None:
            return None
        names = [row["name"] or f"variant {i + 1}" for i, row in enumerate(variant_rows(query))]
        return list(zip(names, shares, strict=True))
    count = count or 2
    base, left = divmod(100, count)
    return [(chr(ord("A") + i), base + (1 if i < left else 0)) for i in range(count)]


@console_view
@require_GET
def experiment_estimate(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    membership = access_shop(request.user, shop_slug, Membership.Role.VIEWER)
    defaults = {name: f.initial for name, f in ExperimentPlanForm.base_fields.items() if f.initial is not None}
    form = ExperimentPlanForm(request.GET if request.GET else defaults)
    plan: ExperimentPlan | str = "Correct the values above for an estimate."
    if form.is_valid():
        variants = _variants(request.GET, form.cleaned_data["variants"])
        plan = (
            experiment_plan(form.cleaned_data, variants)
            if variants
            else "Give every variant a share from 1 to 100% for an estimate."
        )
    return render_screen(
        request,
        "console/experiments/estimate.html",
        {
            "form": form,
            "plan": plan if isinstance(plan, ExperimentPlan) else None,
            "problem": plan if isinstance(plan, str) else "",
            "alpha": ALPHA,
            "power": POWER,
        },
        membership=membership,
        partial="estimate",
    )
