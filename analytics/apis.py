"""Analytics API (secret key): experiment results and KPIs. Reads rollups and per-unit
tables only; objects are looked up within the key's shop (another shop's: 404)."""

from collections.abc import Iterator
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.experiments import METRIC_ORDER, ExperimentResults, experiment_results, per_unit_csv_lines
from analytics.kpis import (
    Breakdown,
    Kpis,
    MetricsFilter,
    catalog_size,
    kpi_series,
    kpi_totals,
    kpis_by_model_version,
    kpis_by_placement,
    kpis_by_promotion,
    kpis_by_variant,
    promoted_items,
)
from analytics.models import Period
from analytics.ranges import RangeError, metrics_range, parse_moment
from campaigns import selectors as campaigns_selectors
from campaigns.models import Experiment
from catalog.api_auth import SecretKeyOnly, request_key
from catalog.models import Shop

GROUPS = ("placement", "variant", "promotion", "model_version")


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object's current state does not allow this."


class AnalyticsApi(APIView):
    permission_classes = [SecretKeyOnly]

    @property
    def shop(self) -> Shop:
        return request_key(self.request).shop


# --- output -----------------------------------------------------------------------------------


class KpisSerializer(serializers.Serializer):
    requests = serializers.IntegerField(help_text="Served lists.")
    impressions = serializers.IntegerField(help_text="Attributed impression events.")
    clicks = serializers.IntegerField()
    add_to_carts = serializers.IntegerField()
    purchases = serializers.IntegerField(help_text="Attributed purchases (by request id or within the window).")
    revenue = serializers.DecimalField(
        max_digits=16, decimal_places=2, help_text="Price x quantity of attributed purchases."
    )
    ctr = serializers.FloatField(allow_null=True, help_text="Clicks per impression; null without impressions.")
    add_to_cart_rate = serializers.FloatField(allow_null=True, help_text="Add-to-carts per impression.")
    conversion_rate = serializers.FloatField(allow_null=True, help_text="Attributed purchases per impression.")
    revenue_per_mille = serializers.DecimalField(
        max_digits=16, decimal_places=2, allow_null=True, help_text="Attributed revenue per 1,000 impressions."
    )
    item_slots = serializers.IntegerField(help_text="Items served (one per position of each list).")
    new_item_slots = serializers.IntegerField(help_text="Of which products created in the 30 days before.")
    new_item_share = serializers.FloatField(allow_null=True)
    distinct_items = serializers.IntegerField(
        allow_null=True, help_text="Distinct products served; null for promotions."
    )
    catalog_size = serializers.IntegerField(help_text="Active products now.")
    coverage = serializers.FloatField(allow_null=True, help_text="distinct_items / catalog_size.")


class SeriesPointSerializer(KpisSerializer):
    start = serializers.DateTimeField(help_text="First instant of the hour or day (the shop's local buckets).")


class GroupSerializer(serializers.Serializer):
    key = serializers.ListField(child=serializers.JSONField(), help_text="The group's dimension values.")
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label
    kpis = KpisSerializer()
    offline = serializers.DictField(child=serializers.FloatField(), required=False, help_text="Model versions only.")


class PromotedItemSerializer(serializers.Serializer):
    promotion_id = serializers.IntegerField()
    promotion = serializers.CharField()
    sku = serializers.CharField()
    title = serializers.CharField()
    served = serializers.IntegerField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    purchases = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)


class MetricsOutSerializer(serializers.Serializer):
    granularity = serializers.ChoiceField(choices=Period.values)
    start = serializers.DateTimeField(help_text="First instant covered.")
    end = serializers.DateTimeField(help_text="First instant after the range.")
    timezone = serializers.CharField(help_text="The shop's time zone: buckets are its local hours and days.")
    filters = serializers.DictField(child=serializers.JSONField(allow_null=True))
    totals = KpisSerializer()
    series = SeriesPointSerializer(many=True)
    groups = GroupSerializer(many=True, required=False, help_text="With group_by.")
    promoted_items = PromotedItemSerializer(many=True, required=False, help_text="With a promotion filter.")


def _kpis(kpis: Kpis) -> dict[str, Any]:
    return dict(KpisSerializer(kpis).data)


def _group(breakdown: Breakdown) -> dict[str, Any]:
    body: dict[str, Any] = {"key": list(breakdown.key), "label": breakdown.label, "kpis": _kpis(breakdown.kpis)}
    if "offline" in breakdown.extra:
        body["offline"] = breakdown.extra["offline"]
    return body


# --- GET /metrics -----------------------------------------------------------------------------


class MetricsApi(AnalyticsApi):
    @extend_schema(
        operation_id="metrics",
        summary="KPIs of the recommendations",
        description=(
            "Requests, impressions, CTR, add-to-cart and conversion rates (per impression), attributed "
            "revenue and revenue per 1,000 impressions, catalog coverage and the share of new items, "
            "for a date range in hours or days (the shop's local time), optionally for one placement, "
            "experiment variant or promotion. Read from rollups that are at most about a minute behind. "
            "With a promotion filter every number is about that promotion's items (coverage is not "
            "measured). Unknown placement or promotion: 404."
        ),
        parameters=[
            OpenApiParameter("placement", str, description="Placement slug."),
            OpenApiParameter("variant", str, description="Experiment variant name (traffic of that arm only)."),
            OpenApiParameter("experiment", int, description="Experiment id (traffic of that experiment only)."),
            OpenApiParameter("promotion", int, description="Promotion id."),
            OpenApiParameter(
                "from", str, description="First local date (YYYY-MM-DD) or instant. Default: 30 days / 48 hours back."
            ),
            OpenApiParameter("to", str, description="Last local date (inclusive) or instant. Default: now."),
            OpenApiParameter(
                "granularity", str, enum=list(Period.values), description="hour (at most 31 days) or day (at most 400)."
            ),
            OpenApiParameter("group_by", str, enum=list(GROUPS), description="Add totals per group."),
        ],
        responses={200: MetricsOutSerializer},
    )
    def get(self, request: Request) -> Response:
        shop = self.shop
        params = request.query_params
        errors: dict[str, list[str]] = {}
        granularity = params.get("granularity", Period.DAY)
        moments: dict[str, Any] = {}
        for name in ("from", "to"):
            try:
                moments[name] = parse_moment(params[name], shop, name) if params.get(name) else None
            except RangeError as error:
                errors[name] = [error.message]
        numbers: dict[str, int | None] = {}
        for name in ("experiment", "promotion"):
            value = params.get(name, "")
            numbers[name] = None
            if value:
                if not value.isdigit() or len(value) > 18:
                    errors[name] = ["Enter a whole number."]
                else:
                    numbers[name] = int(value)
        group_by = params.get("group_by", "")
        if group_by and group_by not in GROUPS:
            errors["group_by"] = [f"Choose one of {', '.join(GROUPS)}."]
        if not errors:
            try:
                window = metrics_range(shop, moments["from"], moments["to"], granularity)
            except RangeError as error:
                errors[error.field] = [error.message]
        if errors:
            raise exceptions.ValidationError(errors)
        placement = params.get("placement") or None
        if placement and campaigns_selectors.placement_by_slug(shop, placement) is None:
            raise exceptions.NotFound(f"No placement {placement!r}.")
        promotion_id = numbers["promotion"]
        if promotion_id is not None and campaigns_selectors.promotion_by_id(shop, promotion_id) is None:
            raise exceptions.NotFound(f"No promotion {promotion_id}.")
        metrics_filter = MetricsFilter(
            start=window.start,
            end=window.end,
            granularity=window.granularity,
            placement=placement,
            variant=params.get("variant") or None,
            experiment_id=numbers["experiment"],
            promotion_id=promotion_id,
        )
        size = catalog_size(shop)
        body: dict[str, Any] = {
            "granularity": window.granularity,
            "start": window.start,
            "end": window.end,
            "timezone": shop.timezone,
            "filters": {
                "placement": placement,
                "variant": metrics_filter.variant,
                "experiment": metrics_filter.experiment_id,
                "promotion": promotion_id,
            },
            "totals": _kpis(kpi_totals(shop, metrics_filter, size=size)),
            "series": [
                {"start": point.start, **_kpis(point.kpis)} for point in kpi_series(shop, metrics_filter, size=size)
            ],
        }
        if group_by:
            breakdowns = {
                "placement": lambda: kpis_by_placement(shop, metrics_filter, size=size),
                "variant": lambda: kpis_by_variant(shop, metrics_filter, size=size),
                "promotion": lambda: kpis_by_promotion(shop, metrics_filter),
                "model_version": lambda: kpis_by_model_version(shop, metrics_filter, size=size),
            }[group_by]()
            body["groups"] = [_group(b) for b in breakdowns]
        if promotion_id is not None:
            body["promoted_items"] = PromotedItemSerializer(promoted_items(shop, metrics_filter), many=True).data
        return Response(MetricsOutSerializer(body).data)


# --- GET /experiments/{id}/results --------------------------------------------------------------


class IntervalSerializer(serializers.Serializer):
    estimate = serializers.FloatField()
    low = serializers.FloatField()
    high = serializers.FloatField()
    degenerate = serializers.BooleanField(help_text="The data cannot support an interval yet.")


class MetricEstimateSerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=list(METRIC_ORDER))
    kind = serializers.ChoiceField(choices=["proportion", "mean"])
    estimate = IntervalSerializer()


class VariantResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    is_control = serializers.BooleanField()
    expected_share = serializers.FloatField()
    observed_share = serializers.FloatField()
    units = serializers.IntegerField(help_text="Distinct units (shoppers or sessions) exposed.")
    exposures = serializers.IntegerField(help_text="Served lists.")
    metrics = MetricEstimateSerializer(many=True)


class ComparisonSerializer(serializers.Serializer):
    method = serializers.CharField()
    control_estimate = serializers.FloatField()
    treatment_estimate = serializers.FloatField()
    difference = IntervalSerializer(help_text="treatment - control, with its 95% interval.")
    relative_lift = serializers.FloatField(allow_null=True)
    statistic = serializers.FloatField()
    p_value = serializers.FloatField()
    degenerate = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)


class CupedSerializer(serializers.Serializer):
    comparison = ComparisonSerializer()
    theta = serializers.FloatField()
    variance_reduction = serializers.FloatField()


class AlwaysValidSerializer(serializers.Serializer):
    estimate = serializers.FloatField()
    p_value = serializers.FloatField(help_text="Always-valid (mSPRT): safe to check at any time.")
    interval = IntervalSerializer(help_text="Confidence sequence for the difference.")
    tau_squared = serializers.FloatField()
    looks = serializers.IntegerField()


class MetricComparisonSerializer(serializers.Serializer):
    metric = serializers.CharField()
    variant = serializers.CharField()
    classic = ComparisonSerializer(help_text="Two-proportion z-test (rates) or Welch's t-test (revenue per unit).")
    cuped = CupedSerializer(allow_null=True, help_text="Revenue per unit adjusted with pre-period revenue.")
    always_valid = AlwaysValidSerializer(allow_null=True)


class SrmSerializer(serializers.Serializer):
    chi2 = serializers.FloatField()
    degrees_of_freedom = serializers.IntegerField()
    p_value = serializers.FloatField()
    flagged = serializers.BooleanField(help_text="p < threshold: the split is not as designed; promotion is refused.")
    threshold = serializers.FloatField()
    observed = serializers.ListField(child=serializers.IntegerField())
    expected = serializers.ListField(child=serializers.FloatField())


class ExperimentResultsOutSerializer(serializers.Serializer):
    experiment_id = serializers.IntegerField()
    version = serializers.IntegerField(help_text="The version analysed; versions are never pooled.")
    versions = serializers.ListField(child=serializers.IntegerField())
    primary_metric = serializers.CharField()
    control = serializers.CharField()
    confidence = serializers.FloatField()
    units = serializers.IntegerField()
    mixed_units = serializers.IntegerField(help_text="Units logged in more than one variant: left out.")
    stray_units = serializers.IntegerField(help_text="Units in a variant this version does not have: left out.")
    looks = serializers.IntegerField(help_text="Analyses of distinct data so far.")
    srm = SrmSerializer()
    can_promote = serializers.BooleanField()
    promotion_blocked_reason = serializers.CharField(allow_blank=True)
    variants = VariantResultSerializer(many=True)
    comparisons = MetricComparisonSerializer(many=True)


def results_body(results: ExperimentResults) -> dict[str, Any]:
    analysis = results.analysis
    return {
        "experiment_id": results.experiment_id,
        "version": results.version,
        "versions": list(results.versions),
        "primary_metric": results.primary_metric,
        "control": analysis.control,
        "confidence": analysis.confidence,
        "units": results.units,
        "mixed_units": results.mixed_units,
        "stray_units": results.stray_units,
        "looks": results.looks,
        "srm": analysis.srm,
        "can_promote": analysis.can_promote,
        "promotion_blocked_reason": analysis.promotion_blocked_reason,
        "variants": analysis.variants,
        "comparisons": analysis.comparisons,
    }


def _experiment(shop: Shop, experiment_id: int) -> Experiment:
    experiment = campaigns_selectors.experiment_by_id(shop, experiment_id)
    if experiment is None:
        raise exceptions.NotFound(f"No experiment {experiment_id}.")
    return experiment


def _version(request: Request) -> int | None:
    value = request.query_params.get("version", "")
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise exceptions.ValidationError({"version": ["Enter a version number."]})
    return int(value)


_VERSION = OpenApiParameter("version", int, description="Experiment version (default: the current one).")


class ExperimentResultsApi(AnalyticsApi):
    @extend_schema(
        operation_id="experiments_results",
        summary="Results of an experiment",
        description=(
            "Per variant of one experiment version: units, exposures and each metric with its 95% "
            "interval; per treatment: the difference to the control with interval and p-value "
            "(two-proportion z-test for rates, Welch's t-test for revenue per unit), CUPED-adjusted "
            "revenue, and the always-valid (mSPRT) p-value that is safe to check at any time. The "
            "sample-ratio-mismatch check runs every time; while it is flagged, promote is refused. "
            "409 when the experiment has not started."
        ),
        parameters=[_VERSION],
        responses={200: ExperimentResultsOutSerializer, 409: OpenApiResponse(description="Not started yet.")},
    )
    def get(self, request: Request, experiment_id: int) -> Response:
        experiment = _experiment(self.shop, experiment_id)
        results = experiment_results(experiment, _version(request))
        if results is None:
            raise Conflict("The experiment has not started: there are no results yet.", code="not_started")
        return Response(ExperimentResultsOutSerializer(results_body(results)).data)


class ExperimentResultsCsvApi(AnalyticsApi):
    @extend_schema(
        operation_id="experiments_results_csv",
        summary="Per-unit data of an experiment version (CSV)",
        description=(
            "One row per unit: its hash, variant, first hour, exposures, impressions, clicks, "
            "add-to-carts, purchases, attributed revenue and pre-period revenue (the CUPED covariate)."
        ),
        parameters=[_VERSION],
        responses={(200, "text/csv"): OpenApiTypes.STR, 409: OpenApiResponse(description="Not started yet.")},
    )
    def get(self, request: Request, experiment_id: int) -> StreamingHttpResponse:
        experiment = _experiment(self.shop, experiment_id)
        version = _version(request) or experiment.version
        if not experiment.versions.filter(number=version).exists():
            raise Conflict("The experiment has not started: there are no results yet.", code="not_started")
        return csv_response(per_unit_csv_lines(experiment, version), f"experiment-{experiment.pk}-v{version}-units.csv")


def csv_response(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
