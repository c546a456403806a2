"""Management API of campaigns (secret key): placements, strategies, promotions, seasonal
boosts and suggestions, experiments. Every change goes through campaigns.services, so it
is validated, audited (actor: the API key) and reaches serving within about a second.

Objects are looked up through selectors that take the key's shop: another shop's object
is a 404, indistinguishable from one that does not exist.
"""

import zoneinfo
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.module_loading import import_string
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import selectors, services
from campaigns.models import (
    HOLDOUT,
    Experiment,
    Placement,
    PlacementKind,
    Promotion,
    SeasonalBoost,
    SeasonalSuggestion,
    Strategy,
)
from campaigns.services import CampaignsConflict, VariantSpec
from campaigns.strategy import SOURCES
from catalog.api_auth import SecretKeyOnly, request_key
from catalog.audit import Actor
from catalog.models import Shop

# --- plumbing ------------------------------------------------------------------------------


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object's current state does not allow this."


@contextmanager
def service_errors() -> Iterator[None]:
    """Service errors as API errors: validation -> 400 with field details, conflict -> 409."""
    try:
        yield
    except DjangoValidationError as error:
        details = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
        raise exceptions.ValidationError(details) from None
    except CampaignsConflict as error:
        raise Conflict(error.message, code=error.code) from None


class CampaignsPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class ShopDateTimeField(serializers.DateTimeField):
    """A datetime in the shop's time zone: input without an offset is local time of the
    shop; output carries the shop's offset. Stored in UTC. A local time the clocks skip
    or repeat (daylight saving) is refused: send an offset to say which instant."""

    default_error_messages = {
        "skipped": 'Invalid datetime for the timezone "{timezone}": the clocks skip it; give an offset.',
        "repeated": 'Invalid datetime for the timezone "{timezone}": it happens twice; give an offset.',
    }

    def default_timezone(self) -> tzinfo:
        shop = self.context.get("shop")
        return zoneinfo.ZoneInfo(shop.timezone) if shop is not None else timezone.get_current_timezone()

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_aware(value):
            return super().enforce_timezone(value)
        zone = self.default_timezone()
        aware = value.replace(tzinfo=zone)
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
            self.fail("skipped", timezone=zone)
        if aware.utcoffset() != value.replace(tzinfo=zone, fold=1).utcoffset():
            self.fail("repeated", timezone=zone)
        return aware


class ManagementApi(APIView):
    permission_classes = [SecretKeyOnly]
    pagination_class = CampaignsPagination  # used by list views (and by the schema to show the envelope)

    @property
    def shop(self) -> Shop:
        return request_key(self.request).shop

    @property
    def actor(self) -> Actor:
        return Actor.for_key(request_key(self.request))

    def valid(self, serializer_class: type[serializers.Serializer], *, partial: bool = False) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data, partial=partial, context={"shop": self.shop})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def out(self, serializer_class: type[serializers.Serializer], instance: Any, **kwargs: Any) -> Response:
        return Response(serializer_class(instance, context={"shop": self.shop}).data, **kwargs)

    def page(self, serializer_class: type[serializers.Serializer], queryset: Any) -> Response:
        paginator = self.pagination_class()
        rows: list[Any] | None = paginator.paginate_queryset(queryset, self.request, view=self)
        return paginator.get_paginated_response(serializer_class(rows, many=True, context={"shop": self.shop}).data)


def _not_found(kind: str, key: object) -> exceptions.NotFound:
    return exceptions.NotFound(f"No {kind} {key!r}.")


def _strategy_of(shop: Shop, strategy_id: int | None, field: str) -> Strategy | None:
    if strategy_id is None:
        return None
    strategy = selectors.strategy_by_id(shop, strategy_id)
    if strategy is None:
        raise exceptions.ValidationError({field: [f"no strategy with id {strategy_id}"]})
    return strategy


def _placement_of(shop: Shop, slug: str, field: str) -> Placement:
    placement = selectors.placement_by_slug(shop, slug)
    if placement is None:
        raise exceptions.ValidationError({field: [f"no placement {slug!r}"]})
    return placement


def _crud_schema(resource: str, noun: str, out: Any, body: Any) -> dict[str, Any]:
    """extend_schema arguments of the five standard operations of a resource."""
    return {
        "list": extend_schema(
            operation_id=f"{resource}_list",
            summary=f"List {noun}s",
            description="Paginated with `limit` (at most 200, default 50) and `offset`.",
            responses={200: out(many=True)},
        ),
        "create": extend_schema(
            operation_id=f"{resource}_create",
            summary=f"Create a {noun}",
            request=body,
            responses={201: out},
        ),
        "read": extend_schema(operation_id=f"{resource}_read", summary=f"Read a {noun}", responses={200: out}),
        "update": extend_schema(
            operation_id=f"{resource}_update",
            summary=f"Replace a {noun}",
            description="Every field is set: fields left out take their defaults.",
            request=body,
            responses={200: out},
        ),
        "partial_update": extend_schema(
            operation_id=f"{resource}_partial_update",
            summary=f"Change some fields of a {noun}",
            request=body,
            responses={200: out},
        ),
        "delete": extend_schema(
            operation_id=f"{resource}_delete", summary=f"Delete a {noun}", request=None, responses={204: None}
        ),
    }


# --- strategies --------------------------------------------------------------------------------


class _StrategyConfigDoc(serializers.Serializer):
    """Documentation of a strategy config; validation is campaigns.strategy.StrategyConfig."""

    sources = inline_serializer(
        "StrategySources",
        {name: serializers.FloatField(required=False, min_value=0, max_value=100) for name in SOURCES},
        help_text="Source name -> weight (> 0). At least one.",
    )
    filters = inline_serializer(
        "StrategyFilters",
        {
            "in_stock": serializers.BooleanField(default=True),
            "exclude_purchased": serializers.BooleanField(default=False),
            "price_min": serializers.FloatField(allow_null=True, required=False),
            "price_max": serializers.FloatField(allow_null=True, required=False),
            "categories": serializers.ListField(
                child=serializers.CharField(), required=False, help_text="Category paths; descendants included."
            ),
        },
        required=False,
    )
    diversity = inline_serializer(
        "StrategyDiversity",
        {
            "max_per_category": serializers.IntegerField(allow_null=True, min_value=1, max_value=50, required=False),
            "mmr_lambda": serializers.FloatField(min_value=0, max_value=1, default=0.0, help_text="0 = off"),
        },
        required=False,
    )
    size = serializers.IntegerField(min_value=1, max_value=50, default=10)


@extend_schema_field(_StrategyConfigDoc)
class StrategyConfigField(serializers.JSONField):
    pass


class StrategyInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    config = StrategyConfigField()


class StrategyOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    config = StrategyConfigField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


STRATEGY_SCHEMA = _crud_schema("strategies", "strategy", StrategyOutSerializer, StrategyInSerializer)


class StrategiesApi(ManagementApi):
    @STRATEGY_SCHEMA["list"]
    def get(self, request: Request) -> Response:
        return self.page(StrategyOutSerializer, selectors.strategies_for_shop(self.shop))

    @STRATEGY_SCHEMA["create"]
    def post(self, request: Request) -> Response:
        fields = self.valid(StrategyInSerializer)
        with service_errors():
            strategy = services.strategy_create(shop=self.shop, actor=self.actor, fields=fields)
        return self.out(StrategyOutSerializer, strategy, status=201)


class StrategyApi(ManagementApi):
    def _get(self, strategy_id: int) -> Strategy:
        strategy = selectors.strategy_by_id(self.shop, strategy_id)
        if strategy is None:
            raise _not_found("strategy", strategy_id)
        return strategy

    @STRATEGY_SCHEMA["read"]
    def get(self, request: Request, strategy_id: int) -> Response:
        return self.out(StrategyOutSerializer, self._get(strategy_id))

    def _update(self, strategy_id: int, partial: bool) -> Response:
        strategy = self._get(strategy_id)
        fields = self.valid(StrategyInSerializer, partial=partial)
        with service_errors():
            strategy = services.strategy_update(strategy=strategy, actor=self.actor, fields=fields)
        return self.out(StrategyOutSerializer, strategy)

    @STRATEGY_SCHEMA["update"]
    def put(self, request: Request, strategy_id: int) -> Response:
        return self._update(strategy_id, partial=False)

    @STRATEGY_SCHEMA["partial_update"]
    def patch(self, request: Request, strategy_id: int) -> Response:
        return self._update(strategy_id, partial=True)

    @STRATEGY_SCHEMA["delete"]
    def delete(self, request: Request, strategy_id: int) -> Response:
        strategy = self._get(strategy_id)
        with service_errors():
            services.strategy_delete(strategy=strategy, actor=self.actor)
        return Response(status=204)


# --- placements -----------------------------------------------------------------------------------


class PlacementInSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=64, help_text="What the widget sends as `placement`.")
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=PlacementKind.values)
    default_strategy = serializers.IntegerField(help_text="Id of one of your strategies.")
    promotions_enabled = serializers.BooleanField(default=True)
    model_version_id = serializers.IntegerField(
        allow_null=True, default=None, min_value=1, help_text="A model version to serve here; null: the active one."
    )


class PlacementOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=PlacementKind.values)
    default_strategy = serializers.IntegerField(source="default_strategy_id")
    promotions_enabled = serializers.BooleanField()
    model_version_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


PLACEMENT_SCHEMA = _crud_schema("placements", "placement", PlacementOutSerializer, PlacementInSerializer)


def _placement_fields(shop: Shop, data: dict[str, Any]) -> dict[str, Any]:
    if "default_strategy" in data:
        data["default_strategy"] = _strategy_of(shop, data["default_strategy"], "default_strategy")
    return data


class PlacementsApi(ManagementApi):
    @PLACEMENT_SCHEMA["list"]
    def get(self, request: Request) -> Response:
        return self.page(PlacementOutSerializer, selectors.placements_for_shop(self.shop))

    @PLACEMENT_SCHEMA["create"]
    def post(self, request: Request) -> Response:
        fields = _placement_fields(self.shop, self.valid(PlacementInSerializer))
        with service_errors():
            placement = services.placement_create(shop=self.shop, actor=self.actor, fields=fields)
        return self.out(PlacementOutSerializer, placement, status=201)


class PlacementApi(ManagementApi):
    def _get(self, slug: str) -> Placement:
        placement = selectors.placement_by_slug(self.shop, slug)
        if placement is None:
            raise _not_found("placement", slug)
        return placement

    @PLACEMENT_SCHEMA["read"]
    def get(self, request: Request, slug: str) -> Response:
        return self.out(PlacementOutSerializer, self._get(slug))

    def _update(self, slug: str, partial: bool) -> Response:
        placement = self._get(slug)
        fields = _placement_fields(self.shop, self.valid(PlacementInSerializer, partial=partial))
        with service_errors():
            placement = services.placement_update(placement=placement, actor=self.actor, fields=fields)
        return self.out(PlacementOutSerializer, placement)

    @PLACEMENT_SCHEMA["update"]
    def put(self, request: Request, slug: str) -> Response:
        return self._update(slug, partial=False)

    @PLACEMENT_SCHEMA["partial_update"]
    def patch(self, request: Request, slug: str) -> Response:
        return self._update(slug, partial=True)

    @PLACEMENT_SCHEMA["delete"]
    def delete(self, request: Request, slug: str) -> Response:
        placement = self._get(slug)
        with service_errors():
            services.placement_delete(placement=placement, actor=self.actor)
        return Response(status=204)


# --- promotions -----------------------------------------------------------------------------------


class _TargetDoc(serializers.Serializer):
    """Documentation of a target; validation is campaigns.targets.Target."""

    skus = serializers.ListField(child=serializers.CharField(), required=False)
    categories = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Category paths; descendants included."
    )
    brands = serializers.ListField(child=serializers.CharField(), required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    attributes = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Attribute name -> accepted values.",
    )
    price_min = serializers.FloatField(required=False, allow_null=True)
    price_max = serializers.FloatField(required=False, allow_null=True)
    new_within_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=365)


@extend_schema_field(_TargetDoc)
class TargetField(serializers.JSONField):
    pass


PROMOTION_DESCRIPTION = (
    "A target (criteria AND-ed across kinds, any value within a kind), an action (pin to `slot`, "
    "boost by `factor`, bury, exclude, restrict to the target), a scope (all placements or some) and "
    "a schedule in the shop's time zone (start/end, a yearly window MM-DD to MM-DD, weekdays 0=Monday, "
    "daily hours). Datetimes without an offset are read in the shop's time zone; schedules have minute "
    "resolution. Conflicts: higher priority first, then the older promotion; exclude and restrict beat "
    "pins; bury beats boost; a pin beats bury and boost; of two pins for one slot the first takes it "
    "and the other the next free slot. New promotions are drafts: publish them."
)


class PromotionInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    target = TargetField()
    action = serializers.ChoiceField(choices=Promotion.Action.values)
    slot = serializers.IntegerField(allow_null=True, default=None, help_text="Pin only: the 1-based slot.")
    factor = serializers.FloatField(allow_null=True, default=None, help_text="Boost only: the score multiplier.")
    all_placements = serializers.BooleanField(default=True)
    placements = serializers.ListField(
        child=serializers.SlugField(), default=list, help_text="Slugs, when all_placements is false."
    )
    starts_at = ShopDateTimeField(allow_null=True, default=None)
    ends_at = ShopDateTimeField(allow_null=True, default=None, help_text="Exclusive.")
    yearly_from = serializers.CharField(allow_blank=True, default="", max_length=5, help_text="MM-DD")
    yearly_until = serializers.CharField(allow_blank=True, default="", max_length=5, help_text="MM-DD, included")
    weekdays = serializers.ListField(child=serializers.IntegerField(), default=list, help_text="0 = Monday")
    daily_from = serializers.TimeField(allow_null=True, default=None)
    daily_until = serializers.TimeField(allow_null=True, default=None, help_text="Exclusive; before from: overnight")
    priority = serializers.IntegerField(default=0, min_value=-1000, max_value=1000)


class PromotionOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Promotion.Status.values, help_text="Set by publish and pause.")
    lifecycle = serializers.SerializerMethodField(
        help_text="draft, paused, or for a published promotion: scheduled, live or ended (now)."
    )
    target = TargetField()
    action = serializers.ChoiceField(choices=Promotion.Action.values)
    slot = serializers.IntegerField(allow_null=True)
    factor = serializers.FloatField(allow_null=True)
    all_placements = serializers.BooleanField()
    placements = serializers.SerializerMethodField()
    starts_at = ShopDateTimeField(allow_null=True)
    ends_at = ShopDateTimeField(allow_null=True)
    yearly_from = serializers.CharField()
    yearly_until = serializers.CharField()
    weekdays = serializers.ListField(child=serializers.IntegerField())
    daily_from = serializers.TimeField(allow_null=True)
    daily_until = serializers.TimeField(allow_null=True)
    priority = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(serializers.ChoiceField(choices=["draft", "scheduled", "live", "paused", "ended"]))
    def get_lifecycle(self, promotion: Promotion) -> str:
        return promotion.lifecycle(timezone.now())

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_placements(self, promotion: Promotion) -> list[str]:
        return sorted(p.slug for p in promotion.placements.all())


PROMOTION_SCHEMA = _crud_schema("promotions", "promotion", PromotionOutSerializer, PromotionInSerializer)


def _promotion_input(shop: Shop, data: dict[str, Any]) -> tuple[dict[str, Any], list[Placement] | None]:
    slugs = data.pop("placements", None)
    if slugs is None:
        return data, None
    placements, unknown = selectors.placements_by_slugs(shop, slugs)
    if unknown:
        raise exceptions.ValidationError({"placements": [f"no placement {', '.join(map(repr, unknown))}"]})
    return data, placements


class PromotionsApi(ManagementApi):
    @extend_schema(
        operation_id="promotions_list",
        summary="List promotions",
        description="Highest priority first. Paginated with `limit` (at most 200) and `offset`.",
        parameters=[OpenApiParameter("status", str, enum=Promotion.Status.values, required=False)],
        responses={200: PromotionOutSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in Promotion.Status.values:
            raise exceptions.ValidationError({"status": [f"must be one of {', '.join(Promotion.Status.values)}"]})
        return self.page(PromotionOutSerializer, selectors.promotions_for_shop(self.shop, wanted))

    @extend_schema(
        operation_id="promotions_create",
        summary="Create a promotion (as a draft)",
        description=PROMOTION_DESCRIPTION,
        request=PromotionInSerializer,
        responses={201: PromotionOutSerializer},
    )
    def post(self, request: Request) -> Response:
        fields, placements = _promotion_input(self.shop, self.valid(PromotionInSerializer))
        with service_errors():
            promotion = services.promotion_create(
                shop=self.shop, actor=self.actor, fields=fields, placements=placements
            )
        return self.out(PromotionOutSerializer, selectors.promotion_by_id(self.shop, promotion.pk), status=201)


def _promotion(api: ManagementApi, promotion_id: int) -> Promotion:
    promotion = selectors.promotion_by_id(api.shop, promotion_id)
    if promotion is None:
        raise _not_found("promotion", promotion_id)
    return promotion


class PromotionApi(ManagementApi):
    @PROMOTION_SCHEMA["read"]
    def get(self, request: Request, promotion_id: int) -> Response:
        return self.out(PromotionOutSerializer, _promotion(self, promotion_id))

    def _update(self, promotion_id: int, partial: bool) -> Response:
        promotion = _promotion(self, promotion_id)
        fields, placements = _promotion_input(self.shop, self.valid(PromotionInSerializer, partial=partial))
        with service_errors():
            services.promotion_update(promotion=promotion, actor=self.actor, fields=fields, placements=placements)
        return self.out(PromotionOutSerializer, _promotion(self, promotion_id))

    @PROMOTION_SCHEMA["update"]
    def put(self, request: Request, promotion_id: int) -> Response:
        return self._update(promotion_id, partial=False)

    @PROMOTION_SCHEMA["partial_update"]
    def patch(self, request: Request, promotion_id: int) -> Response:
        return self._update(promotion_id, partial=True)

    @PROMOTION_SCHEMA["delete"]
    def delete(self, request: Request, promotion_id: int) -> Response:
        promotion = _promotion(self, promotion_id)
        with service_errors():
            services.promotion_delete(promotion=promotion, actor=self.actor)
        return Response(status=204)


class PromotionPublishApi(ManagementApi):
    @extend_schema(
        operation_id="promotions_publish",
        summary="Publish a promotion",
        description="Draft or paused -> published: live whenever its schedule is active. 409 if it ended.",
        request=None,
        responses={200: PromotionOutSerializer},
    )
    def post(self, request: Request, promotion_id: int) -> Response:
        promotion = _promotion(self, promotion_id)
        with service_errors():
            services.promotion_publish(promotion=promotion, actor=self.actor)
        return self.out(PromotionOutSerializer, _promotion(self, promotion_id))


class PromotionPauseApi(ManagementApi):
    @extend_schema(
        operation_id="promotions_pause",
        summary="Pause a promotion",
        description="Published -> paused: no longer live until published again.",
        request=None,
        responses={200: PromotionOutSerializer},
    )
    def post(self, request: Request, promotion_id: int) -> Response:
        promotion = _promotion(self, promotion_id)
        with service_errors():
            services.promotion_pause(promotion=promotion, actor=self.actor)
        return self.out(PromotionOutSerializer, _promotion(self, promotion_id))


# --- seasonal boosts and suggestions -----------------------------------------------------------------


class SeasonalBoostInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    categories = serializers.ListField(
        child=serializers.CharField(), default=list, help_text="Category paths; descendants included."
    )
    tags = serializers.ListField(child=serializers.CharField(), default=list)
    factor = serializers.FloatField(help_text="Full multiplier, reached after the ramp up (0 < factor <= 10).")
    recurrence = serializers.ChoiceField(choices=SeasonalBoost.Recurrence.values, default="yearly")
    first_day = serializers.DateField(allow_null=True, default=None, help_text="One-off window.")
    last_day = serializers.DateField(allow_null=True, default=None, help_text="One-off window, included.")
    yearly_from = serializers.CharField(allow_blank=True, default="", max_length=5, help_text="Yearly: MM-DD")
    yearly_until = serializers.CharField(allow_blank=True, default="", max_length=5, help_text="MM-DD, included")
    ramp_up_days = serializers.IntegerField(default=0, min_value=0, max_value=90)
    ramp_down_days = serializers.IntegerField(default=0, min_value=0, max_value=90)
    active = serializers.BooleanField(default=True)


class SeasonalBoostOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    categories = serializers.ListField(child=serializers.CharField())
    tags = serializers.ListField(child=serializers.CharField())
    factor = serializers.FloatField()
    recurrence = serializers.CharField()
    first_day = serializers.DateField(allow_null=True)
    last_day = serializers.DateField(allow_null=True)
    yearly_from = serializers.CharField()
    yearly_until = serializers.CharField()
    ramp_up_days = serializers.IntegerField()
    ramp_down_days = serializers.IntegerField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


SEASONAL_SCHEMA = _crud_schema(
    "seasonal_boosts", "seasonal boost", SeasonalBoostOutSerializer, SeasonalBoostInSerializer
)


class SeasonalBoostsApi(ManagementApi):
    @SEASONAL_SCHEMA["list"]
    def get(self, request: Request) -> Response:
        return self.page(SeasonalBoostOutSerializer, selectors.seasonal_boosts_for_shop(self.shop))

    @SEASONAL_SCHEMA["create"]
    def post(self, request: Request) -> Response:
        fields = self.valid(SeasonalBoostInSerializer)
        with service_errors():
            boost = services.seasonal_boost_create(shop=self.shop, actor=self.actor, fields=fields)
        return self.out(SeasonalBoostOutSerializer, boost, status=201)


class SeasonalBoostApi(ManagementApi):
    def _get(self, boost_id: int) -> SeasonalBoost:
        boost = selectors.seasonal_boost_by_id(self.shop, boost_id)
        if boost is None:
            raise _not_found("seasonal boost", boost_id)
        return boost

    @SEASONAL_SCHEMA["read"]
    def get(self, request: Request, boost_id: int) -> Response:
        return self.out(SeasonalBoostOutSerializer, self._get(boost_id))

    def _update(self, boost_id: int, partial: bool) -> Response:
        boost = self._get(boost_id)
        fields = self.valid(SeasonalBoostInSerializer, partial=partial)
        with service_errors():
            boost = services.seasonal_boost_update(boost=boost, actor=self.actor, fields=fields)
        return self.out(SeasonalBoostOutSerializer, boost)

    @SEASONAL_SCHEMA["update"]
    def put(self, request: Request, boost_id: int) -> Response:
        return self._update(boost_id, partial=False)

    @SEASONAL_SCHEMA["partial_update"]
    def patch(self, request: Request, boost_id: int) -> Response:
        return self._update(boost_id, partial=True)

    @SEASONAL_SCHEMA["delete"]
    def delete(self, request: Request, boost_id: int) -> Response:
        boost = self._get(boost_id)
        with service_errors():
            services.seasonal_boost_delete(boost=boost, actor=self.actor)
        return Response(status=204)


class SeasonalSuggestionOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    category = serializers.CharField(source="category.path")
    first_day = serializers.DateField()
    last_day = serializers.DateField()
    lift = serializers.FloatField(help_text="Last year's share of the category in this window / its yearly share.")
    suggested_factor = serializers.FloatField()
    status = serializers.ChoiceField(choices=SeasonalSuggestion.Status.values)
    boost = serializers.IntegerField(source="boost_id", allow_null=True, help_text="The boost created on accept.")


class SeasonalSuggestionsApi(ManagementApi):
    @extend_schema(
        operation_id="seasonal_suggestions_list",
        summary="List seasonal suggestions",
        description="Boosts suggested from last year's seasonal lift per category (refreshed daily).",
        parameters=[OpenApiParameter("status", str, enum=SeasonalSuggestion.Status.values, required=False)],
        responses={200: SeasonalSuggestionOutSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        wanted = request.query_params.get("status")
        if wanted is not None and wanted not in SeasonalSuggestion.Status.values:
            choices = ", ".join(SeasonalSuggestion.Status.values)
            raise exceptions.ValidationError({"status": [f"must be one of {choices}"]})
        return self.page(SeasonalSuggestionOutSerializer, selectors.seasonal_suggestions_for_shop(self.shop, wanted))


def _suggestion(api: ManagementApi, suggestion_id: int) -> SeasonalSuggestion:
    suggestion = selectors.seasonal_suggestion_by_id(api.shop, suggestion_id)
    if suggestion is None:
        raise _not_found("seasonal suggestion", suggestion_id)
    return suggestion


class _AcceptSerializer(serializers.Serializer):
    factor = serializers.FloatField(required=False, help_text="Default: the suggested factor.")


class SeasonalSuggestionAcceptApi(ManagementApi):
    @extend_schema(
        operation_id="seasonal_suggestions_accept",
        summary="Accept a seasonal suggestion",
        description="Creates a one-off seasonal boost of the category over the window.",
        request=_AcceptSerializer,
        responses={201: SeasonalBoostOutSerializer},
    )
    def post(self, request: Request, suggestion_id: int) -> Response:
        suggestion = _suggestion(self, suggestion_id)
        factor = self.valid(_AcceptSerializer).get("factor")
        with service_errors():
            boost = services.seasonal_suggestion_accept(suggestion=suggestion, actor=self.actor, factor=factor)
        return self.out(SeasonalBoostOutSerializer, boost, status=201)


class SeasonalSuggestionDismissApi(ManagementApi):
    @extend_schema(
        operation_id="seasonal_suggestions_dismiss",
        summary="Dismiss a seasonal suggestion",
        request=None,
        responses={200: SeasonalSuggestionOutSerializer},
    )
    def post(self, request: Request, suggestion_id: int) -> Response:
        suggestion = _suggestion(self, suggestion_id)
        with service_errors():
            suggestion = services.seasonal_suggestion_dismiss(suggestion=suggestion, actor=self.actor)
        return self.out(SeasonalSuggestionOutSerializer, suggestion)


# --- experiments ------------------------------------------------------------------------------------


class VariantSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=64)
    is_control = serializers.BooleanField(default=False)
    allocation = serializers.IntegerField(min_value=1, max_value=100, help_text="Percent of non-held-out units.")
    strategy = serializers.IntegerField(allow_null=True, default=None, help_text="Strategy id; null: the default.")
    promotions_on = serializers.BooleanField(default=True, help_text="False: no promotions, no seasonal boosts.")
    model_version_id = serializers.IntegerField(allow_null=True, default=None, min_value=1)


class ExperimentInSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    placement = serializers.SlugField(help_text="Slug of the placement under test.")
    holdout_percent = serializers.IntegerField(default=0, min_value=0, max_value=50)
    primary_metric = serializers.ChoiceField(choices=Experiment.Metric.values, default="conversion_rate")
    variants = VariantSerializer(many=True, help_text="2 to 10; one control; allocations add up to 100.")


class VariantOutSerializer(serializers.Serializer):
    name = serializers.CharField()
    is_control = serializers.BooleanField()
    allocation = serializers.IntegerField()
    strategy = serializers.IntegerField(source="strategy_id", allow_null=True)
    promotions_on = serializers.BooleanField()
    model_version_id = serializers.IntegerField(allow_null=True)


class ExperimentVersionOutSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    allocation = serializers.JSONField()
    started_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)


class ExperimentOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    placement = serializers.CharField(source="placement.slug")
    status = serializers.ChoiceField(choices=Experiment.Status.values)
    version = serializers.IntegerField(help_text="Moves when the allocation of a running experiment changes.")
    holdout_percent = serializers.IntegerField()
    primary_metric = serializers.CharField()
    starts_at = ShopDateTimeField(allow_null=True)
    stops_at = ShopDateTimeField(allow_null=True)
    started_at = ShopDateTimeField(allow_null=True)
    stopped_at = ShopDateTimeField(allow_null=True)
    winner = serializers.CharField()
    variants = VariantOutSerializer(many=True, source="variants.all")
    versions = ExperimentVersionOutSerializer(many=True, source="versions.all")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


EXPERIMENT_SCHEMA = _crud_schema("experiments", "experiment", ExperimentOutSerializer, ExperimentInSerializer)
EXPERIMENT_DESCRIPTION = (
    "An A/B/n test of one placement. Units (shopper, or session when anonymous) are assigned by a hash of "
    "the experiment's salt, its version and the unit id: stable across processes and restarts. "
    f"`holdout_percent` of units are held out and get the placement's default, logged as '{HOLDOUT}'. "
    "Changing the holdout or the variants of a running experiment starts a new version (units are "
    "re-assigned; versions are analysed separately). One running experiment per placement."
)


def _experiment_input(shop: Shop, data: dict[str, Any], raw: Any) -> tuple[dict[str, Any], list[VariantSpec] | None]:
    """Service arguments from validated data. Variants always replace the whole list, so
    even in a PATCH each one is validated as complete (``raw``: the request's list)."""
    if "placement" in data:
        data["placement"] = _placement_of(shop, data["placement"], "placement")
    if data.pop("variants", None) is None:
        return data, None
    checked = VariantSerializer(data=raw, many=True)
    if not checked.is_valid():
        raise exceptions.ValidationError({"variants": checked.errors})
    raw_variants = checked.validated_data
    variants = [
        VariantSpec(
            name=v["name"],
            allocation=v["allocation"],
            is_control=v["is_control"],
            strategy=_strategy_of(shop, v["strategy"], "variants"),
            promotions_on=v["promotions_on"],
            model_version_id=v["model_version_id"],
        )
        for v in raw_variants
    ]
    return data, variants


def _raw_variants(request: Request) -> Any:
    """The request's variants list as sent (the body is an object: validated before this)."""
    return request.data.get("variants") if isinstance(request.data, dict) else None


def _experiment(api: ManagementApi, experiment_id: int) -> Experiment:
    experiment = selectors.experiment_by_id(api.shop, experiment_id)
    if experiment is None:
        raise _not_found("experiment", experiment_id)
    return experiment


class ExperimentsApi(ManagementApi):
    @EXPERIMENT_SCHEMA["list"]
    def get(self, request: Request) -> Response:
        return self.page(ExperimentOutSerializer, selectors.experiments_for_shop(self.shop))

    @extend_schema(
        operation_id="experiments_create",
        summary="Create an experiment (as a draft)",
        description=EXPERIMENT_DESCRIPTION,
        request=ExperimentInSerializer,
        responses={201: ExperimentOutSerializer},
    )
    def post(self, request: Request) -> Response:
        fields, variants = _experiment_input(self.shop, self.valid(ExperimentInSerializer), _raw_variants(self.request))
        with service_errors():
            experiment = services.experiment_create(
                shop=self.shop, actor=self.actor, fields=fields, variants=variants or []
            )
        return self.out(ExperimentOutSerializer, _experiment(self, experiment.pk), status=201)


class ExperimentApi(ManagementApi):
    @EXPERIMENT_SCHEMA["read"]
    def get(self, request: Request, experiment_id: int) -> Response:
        return self.out(ExperimentOutSerializer, _experiment(self, experiment_id))

    def _update(self, experiment_id: int, partial: bool) -> Response:
        experiment = _experiment(self, experiment_id)
        fields, variants = _experiment_input(
            self.shop, self.valid(ExperimentInSerializer, partial=partial), _raw_variants(self.request)
        )
        with service_errors():
            services.experiment_update(experiment=experiment, actor=self.actor, fields=fields, variants=variants)
        return self.out(ExperimentOutSerializer, _experiment(self, experiment_id))

    @EXPERIMENT_SCHEMA["update"]
    def put(self, request: Request, experiment_id: int) -> Response:
        return self._update(experiment_id, partial=False)

    @EXPERIMENT_SCHEMA["partial_update"]
    def patch(self, request: Request, experiment_id: int) -> Response:
        return self._update(experiment_id, partial=True)

    @EXPERIMENT_SCHEMA["delete"]
    def delete(self, request: Request, experiment_id: int) -> Response:
        experiment = _experiment(self, experiment_id)
        with service_errors():
            services.experiment_delete(experiment=experiment, actor=self.actor)
        return Response(status=204)


class _ScheduleSerializer(serializers.Serializer):
    starts_at = ShopDateTimeField()
    stops_at = ShopDateTimeField(allow_null=True, default=None)


class _StartSerializer(serializers.Serializer):
    stops_at = ShopDateTimeField(allow_null=True, default=None)


class _PromoteSerializer(serializers.Serializer):
    variant = serializers.CharField(max_length=64)


class ExperimentScheduleApi(ManagementApi):
    @extend_schema(
        operation_id="experiments_schedule",
        summary="Schedule an experiment",
        description="Draft -> scheduled: it runs from `starts_at` (until `stops_at`, if given).",
        request=_ScheduleSerializer,
        responses={200: ExperimentOutSerializer},
    )
    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = _experiment(self, experiment_id)
        data = self.valid(_ScheduleSerializer)
        with service_errors():
            services.experiment_schedule(experiment=experiment, actor=self.actor, **data)
        return self.out(ExperimentOutSerializer, _experiment(self, experiment_id))


class ExperimentStartApi(ManagementApi):
    @extend_schema(
        operation_id="experiments_start",
        summary="Start an experiment now",
        request=_StartSerializer,
        responses={200: ExperimentOutSerializer},
    )
    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = _experiment(self, experiment_id)
        data = self.valid(_StartSerializer)
        with service_errors():
            services.experiment_start(experiment=experiment, actor=self.actor, stops_at=data["stops_at"])
        return self.out(ExperimentOutSerializer, _experiment(self, experiment_id))


class ExperimentStopApi(ManagementApi):
    @extend_schema(
        operation_id="experiments_stop",
        summary="Stop an experiment",
        description="Running -> stopped. A scheduled experiment that has not started goes back to draft.",
        request=None,
        responses={200: ExperimentOutSerializer},
    )
    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = _experiment(self, experiment_id)
        with service_errors():
            services.experiment_stop(experiment=experiment, actor=self.actor)
        return self.out(ExperimentOutSerializer, _experiment(self, experiment_id))


def srm_ok(experiment: Experiment) -> bool:
    """The analysis verdict for promoting: ``settings.CAMPAIGNS_SRM_CHECK`` (a dotted path
    to ``f(experiment) -> bool`` that recsite wires to analytics) when configured; until
    then there is no check that could object."""
    check_path = getattr(settings, "CAMPAIGNS_SRM_CHECK", "")
    return bool(import_string(check_path)(experiment)) if check_path else True


class ExperimentPromoteApi(ManagementApi):
    @extend_schema(
        operation_id="experiments_promote",
        summary="Promote the winning variant",
        description=(
            "The variant's strategy, promotions setting and model version become the placement's "
            "default, and the experiment ends (status promoted). 409 when the sample ratio check fails."
        ),
        request=_PromoteSerializer,
        responses={200: ExperimentOutSerializer},
    )
    def post(self, request: Request, experiment_id: int) -> Response:
        experiment = _experiment(self, experiment_id)
        variant = self.valid(_PromoteSerializer)["variant"]
        with service_errors():
            services.experiment_promote_winner(
                experiment=experiment, actor=self.actor, variant_name=variant, srm_ok=srm_ok(experiment)
            )
        return self.out(ExperimentOutSerializer, _experiment(self, experiment_id))
