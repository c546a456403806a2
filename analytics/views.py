"""Console pages of analytics: the analytics page, an experiment's results (the region of
the campaigns experiment page, and a page of its own without htmx), the per-unit CSV and
"promote winner" resting on the SRM verdict.

Each view: one access function, one selector or service, one screen. Everything shown
comes from rollups and per-unit tables (analytics.kpis, analytics.experiments), never
from the raw event log.
"""

import zoneinfo
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from analytics.apis import csv_response
from analytics.charts import IntervalRow, interval_chart, series_charts
from analytics.experiments import METRIC_ORDER, ExperimentResults, experiment_results, per_unit_csv_lines
from analytics.forms import AnalyticsFilterForm
from analytics.selectors import analytics_report
from campaigns import selectors as campaigns_selectors
from campaigns import services as campaigns_services
from campaigns.access import access_experiment
from campaigns.models import Experiment
from campaigns.services import CampaignsConflict
from catalog.access import access_shop, console_view, role_at_least
from catalog.audit import Actor
from catalog.console import HtmxHttpRequest, render_screen
from catalog.models import Membership, Shop
from catalog.views import _confirm as confirm_dialog

VIEWER = Membership.Role.VIEWER
MERCHANDISER = Membership.Role.MERCHANDISER


# --- the analytics page -----------------------------------------------------------------------


@console_view
@require_GET
def analytics_page(request: HtmxHttpRequest, shop_slug: str) -> HttpResponse:
    """KPIs by placement, variant, promotion and model version for a date range, with
    charts, the promoted items and offline metrics of model versions beside online ones."""
    membership = access_shop(request.user, shop_slug, VIEWER)
    shop = membership.shop
    placements = list(campaigns_selectors.placements_for_shop(shop).values_list("slug", flat=True))
    promotions = list(campaigns_selectors.promotions_for_shop(shop).values_list("pk", "name"))
    form = AnalyticsFilterForm(request.GET or None, placements=placements, promotions=promotions)
    metrics_filter = form.metrics_filter(shop)
    report = analytics_report(shop, metrics_filter)
    return render_screen(
        request,
        "console/analytics/analytics.html",
        {
            "form": form,
            "report": report,
            "charts": series_charts(report.series, metrics_filter.granularity, zoneinfo.ZoneInfo(shop.timezone)),
            "filtered": bool(metrics_filter.placement or metrics_filter.variant or metrics_filter.promotion_id),
        },
        membership=membership,
        partial="report",
    )


# --- experiment results -------------------------------------------------------------------------


@console_view
@require_GET
def experiment_results_view(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    """The results of one version (``?version=``, default the current one). For htmx the
    fragment that fills the experiment page's results region; otherwise a page of its own."""
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, VIEWER)
    results = experiment_results(experiment, version_param(request, experiment))
    return render_screen(
        request,
        "console/analytics/experiment_results.html",
        results_context(membership, experiment, results),
        membership=membership,
        partial="results",
    )


def version_param(request: HtmxHttpRequest, experiment: Experiment) -> int | None:
    """``?version=`` (None: the current one); a version the experiment never had is a 404."""
    value = request.GET.get("version", "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 9 or not experiment.versions.filter(number=int(value)).exists():
        raise Http404(f"Experiment {experiment.pk} has no version {value!r}.")
    return int(value)


def results_context(
    membership: Membership, experiment: Experiment, results: ExperimentResults | None
) -> dict[str, Any]:
    context: dict[str, Any] = {"experiment": experiment, "results": results}
    if results is None:
        return context
    analysis = results.analysis
    estimates = {
        (variant.name, metric.metric): metric.estimate for variant in analysis.variants for metric in variant.metrics
    }
    context["variant_rows"] = [
        {
            "variant": variant,
            "metrics": [(metric, estimates[(variant.name, metric)]) for metric in METRIC_ORDER],
        }
        for variant in analysis.variants
    ]
    context["metrics"] = METRIC_ORDER
    context["comparisons"] = [
        (metric, [c for c in analysis.comparisons if c.metric == metric])
        for metric in (results.primary_metric, *(m for m in METRIC_ORDER if m != results.primary_metric))
    ]
    context["chart"] = _interval_chart(results)
    current = results.version == experiment.version
    can_edit = role_at_least(membership.role, MERCHANDISER)
    context["promote"] = {
        "shown": can_edit and current and experiment.status in (Experiment.Status.RUNNING, Experiment.Status.STOPPED),
        "allowed": analysis.can_promote,
        "reason": analysis.promotion_blocked_reason,
        "variants": results.design.variant_names,
    }
    return context


def _interval_chart(results: ExperimentResults) -> Any:
    metric = results.primary_metric
    revenue = metric == "revenue_per_unit"
    rows = []
    for comparison in results.comparisons_of(metric):
        name = comparison.variant
        d = comparison.classic.difference
        rows.append(IntervalRow(f"{name}: classic", d.estimate, d.low, d.high, f"p = {comparison.classic.p_value:.4f}"))
        if comparison.cuped is not None:
            c = comparison.cuped.comparison.difference
            rows.append(IntervalRow(f"{name}: CUPED", c.estimate, c.low, c.high))
        if comparison.always_valid is not None and not comparison.always_valid.interval.degenerate:
            a = comparison.always_valid.interval
            rows.append(IntervalRow(f"{name}: always valid", a.estimate, a.low, a.high))
    return interval_chart(
        rows,
        title="Difference to the control, 95% intervals",
        fmt=(lambda v: f"{v:+,.2f}") if revenue else (lambda v: f"{v * 100:+.2f} pp"),
    )


@console_view  # type: ignore[arg-type]  # a streamed response, not an HttpResponse
@require_GET
def experiment_results_csv(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> StreamingHttpResponse:
    """The raw per-unit data of one version as CSV (a header only before it started)."""
    _, experiment = access_experiment(request.user, shop_slug, experiment_id, VIEWER)
    number = version_param(request, experiment) or experiment.version
    return csv_response(per_unit_csv_lines(experiment, number), f"experiment-{experiment.pk}-v{number}-units.csv")


@console_view
@require_POST
def experiment_promote(request: HtmxHttpRequest, shop_slug: str, experiment_id: int) -> HttpResponse:
    """Promote a variant (``variant``) after confirmation. Refused, before even asking,
    while the experiment is not running or stopped, for a variant it does not have, and
    while the sample-ratio check of the current version flags a mismatch (campaigns
    refuses then too: it is given the verdict)."""
    membership, experiment = access_experiment(request.user, shop_slug, experiment_id, MERCHANDISER)
    shop = membership.shop
    variant = request.POST.get("variant", "").strip()
    if experiment.status not in (Experiment.Status.RUNNING, Experiment.Status.STOPPED):
        messages.error(request, f"Not promoted: a {experiment.status} experiment cannot promote a winner.")
        return _go(request, shop, experiment)
    results = experiment_results(experiment)
    if results is None:
        messages.error(request, "Not promoted: the experiment has no results yet.")
        return _go(request, shop, experiment)
    if variant not in results.design.variant_names:
        names = ", ".join(results.design.variant_names)
        messages.error(request, f"Not promoted: choose one of the variants ({names}).")
        return _go(request, shop, experiment)
    srm_ok = not results.analysis.srm.flagged
    if not srm_ok:
        messages.error(request, f"Not promoted: {results.analysis.promotion_blocked_reason}")
        return _go(request, shop, experiment)
    if request.POST.get("confirmed") != "yes":
        return confirm_dialog(
            request,
            membership,
            title=f'Promote "{variant}"?',
            body=(
                f"Its strategy, promotions setting and model version become the default of "
                f"{experiment.placement.slug} for every shopper, and the experiment ends."
            ),
            action=reverse("console:experiment-promote", args=[shop.slug, experiment.pk]),
            confirm_label="Promote winner",
            target="#modal",
            cancel_url=reverse("console:experiment", args=[shop.slug, experiment.pk]),
            hidden={"variant": variant},
        )
    try:
        campaigns_services.experiment_promote_winner(
            experiment=experiment, actor=Actor.for_user(request.user), variant_name=variant, srm_ok=srm_ok
        )
    except CampaignsConflict as error:
        messages.error(request, f"Not promoted: {error.message}.")
    except ValidationError as error:
        messages.error(request, f"Not promoted: {' '.join(error.messages)}")
    else:
        messages.success(request, f'"{variant}" is now the default of {experiment.placement.slug}.')
    return _go(request, shop, experiment)


def _go(request: HtmxHttpRequest, shop: Shop, experiment: Experiment) -> HttpResponse:
    url = reverse("console:experiment", args=[shop.slug, experiment.pk])
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)
