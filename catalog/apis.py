"""Public API of the catalog: events, products, shopper erasure (ARCHITECTURE.md, v1)."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api_auth import (
    ApiKeyAuthentication,
    BodyKeyAuthentication,
    HasApiKey,
    SecretKeyOnly,
    request_key,
    request_shop,
)
from catalog.audit import Actor
from catalog.models import EventType
from catalog.services import (
    RecordRejection,
    events_ingest,
    product_deactivate,
    products_upsert,
    shopper_erase,
)
from catalog.validation import MAX_SHOPPER_LENGTH, InvalidValue, clean_id, describe_json_type


class EmptyBody(exceptions.ParseError):
    default_code = "empty_body"
    default_detail = "Body is empty; send a JSON document."


class InvalidEnvelope(exceptions.ParseError):
    default_code = "invalid_envelope"


class TooManyRecords(exceptions.ParseError):
    default_code = "too_many_records"


def _batch(request: Request, name: str, limit: int) -> list[Any]:
    """The list under ``name`` in the request body, or a clear 400 (nothing is stored)."""
    data = request.data  # parses: 400 for bytes that are not JSON, 413 for too many of them
    if request.stream is None:  # DRF reads a body of no bytes as {}
        raise EmptyBody()
    if not isinstance(data, dict) or getattr(data, "duplicate_keys", None):
        problem = "has repeated keys" if isinstance(data, dict) else f"is {describe_json_type(data)}"
        raise InvalidEnvelope(f'Send a JSON object such as {{"{name}": [...]}}; the body {problem}.')
    items = data.get(name)
    if not isinstance(items, list):
        got = describe_json_type(items) if name in data else "nothing"
        raise InvalidEnvelope(f'"{name}" must be a list, got {got}.')
    if len(items) > limit:
        raise TooManyRecords(f"At most {limit} {name} per request, got {len(items)}; split the batch.")
    return items


def _rejections(rows: list[RecordRejection], id_name: str) -> list[dict[str, Any]]:
    return [{"index": r.index, id_name: r.record_id, "field": r.field, "reason": r.reason} for r in rows]


def _rejection_schema(name: str) -> serializers.Serializer:
    return inline_serializer(
        name,
        {
            "index": serializers.IntegerField(),
            "event_id": serializers.CharField(),
            "field": serializers.CharField(),
            "reason": serializers.CharField(),
        },
        many=True,
    )


class EventInSerializer(serializers.Serializer):
    """Documentation of one event; validation is catalog.validation.validate_event."""

    event_id = serializers.CharField(max_length=128, help_text="Your id for the event; a replay is ignored.")
    type = serializers.ChoiceField(choices=EventType.values)
    shopper = serializers.CharField(max_length=256, help_text="Your id for the shopper (stored only hashed).")
    sku = serializers.CharField(max_length=128)
    ts = serializers.DateTimeField(help_text="ISO 8601 with offset, or Unix seconds; from 2000 to now + 1 h.")
    session = serializers.CharField(required=False, max_length=128)
    request_id = serializers.CharField(required=False, max_length=64, help_text="From the recommendations response.")
    quantity = serializers.IntegerField(required=False, min_value=1, max_value=10_000)
    price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)


class EventsApi(APIView):
    """POST /api/v1/events: a batch of up to 100 events, idempotent by event_id."""

    authentication_classes = [ApiKeyAuthentication, BodyKeyAuthentication]
    permission_classes = [HasApiKey]

    @extend_schema(
        operation_id="events_send",
        summary="Send events",
        description=(
            "Up to 100 events and 64 KB per request. Accepted as application/json or text/plain "
            "(for navigator.sendBeacon, which may carry the publishable key as `key` in the body). "
            "Each event is accepted, counted as a duplicate of an earlier event_id, or rejected with "
            "its reasons; rejected events are kept for inspection. New events for unknown SKUs are "
            "kept (without a product) and listed in `warnings`. A body that is not such a batch "
            "(not JSON, not an object with an `events` list, more than 100 events) is a 400 and "
            "stores nothing; a body over 64 KB is a 413."
        ),
        request=inline_serializer(
            "EventsRequest",
            {"events": EventInSerializer(many=True), "key": serializers.CharField(required=False)},
        ),
        responses={
            200: inline_serializer(
                "EventsResponse",
                {
                    "accepted": serializers.IntegerField(),
                    "duplicates": serializers.IntegerField(),
                    "rejected": _rejection_schema("EventRejection"),
                    "warnings": _rejection_schema("EventWarning"),
                },
            )
        },
        examples=[
            OpenApiExample(
                "One click",
                request_only=True,
                value={
                    "events": [
                        {
                            "event_id": "e-1",
                            "type": "click",
                            "shopper": "s-123",
                            "sku": "SKU-9",
                            "ts": "2026-11-28T09:30:00Z",
                            "request_id": "3f1c...",
                        }
                    ]
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        events = _batch(request, "events", settings.API_MAX_EVENTS_PER_REQUEST)
        result = events_ingest(shop=request_shop(request), records=events)
        return Response(
            {
                "accepted": result.accepted,
                "duplicates": result.duplicates,
                "rejected": _rejections(result.rejected, "event_id"),
                "warnings": _rejections(result.unknown_skus, "event_id"),
            }
        )


class ProductInSerializer(serializers.Serializer):
    """Documentation of one product; validation is catalog.validation.validate_product."""

    sku = serializers.CharField(max_length=128)
    title = serializers.CharField(max_length=500, required=False, help_text="Required for a new product.")
    description = serializers.CharField(required=False, max_length=20_000)
    category = serializers.CharField(required=False, help_text="Path such as 'Home > Kitchen'.")
    brand = serializers.CharField(required=False, max_length=200)
    price = serializers.DecimalField(required=False, max_digits=12, decimal_places=2, min_value=0)
    url = serializers.URLField(required=False)
    image_url = serializers.URLField(required=False)
    tags = serializers.ListField(child=serializers.CharField(max_length=100), required=False)
    attributes = serializers.DictField(required=False)
    in_stock = serializers.BooleanField(required=False)
    active = serializers.BooleanField(required=False)


class ProductsApi(APIView):
    """PUT /api/v1/products: bulk upsert by SKU (fields not sent are left unchanged)."""

    permission_classes = [SecretKeyOnly]
    max_body_bytes = 4 * 1024 * 1024

    @extend_schema(
        operation_id="products_upsert",
        summary="Create or update products",
        description=(
            "Bulk upsert by SKU, up to 500 products and 4 MB a request. Fields you leave out keep their "
            "current value; a new product needs a title. Partial success: valid products are stored, "
            "the others are listed in `rejected` and kept for inspection. New and changed products "
            "become recommendable within seconds (their text is embedded by a background worker)."
        ),
        request=inline_serializer("ProductsRequest", {"products": ProductInSerializer(many=True)}),
        responses={
            200: inline_serializer(
                "ProductsResponse",
                {
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                    "unchanged": serializers.IntegerField(),
                    "rejected": inline_serializer(
                        "ProductRejection",
                        {
                            "index": serializers.IntegerField(),
                            "sku": serializers.CharField(),
                            "field": serializers.CharField(),
                            "reason": serializers.CharField(),
                        },
                        many=True,
                    ),
                },
            )
        },
    )
    def put(self, request: Request) -> Response:
        products = _batch(request, "products", settings.API_MAX_PRODUCTS_PER_REQUEST)
        result = products_upsert(shop=request_shop(request), records=products)
        return Response(
            {
                "created": result.created,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "rejected": _rejections(result.rejected, "sku"),
            }
        )


class ProductDeleteApi(APIView):
    permission_classes = [SecretKeyOnly]

    @extend_schema(
        operation_id="products_deactivate",
        summary="Deactivate a product",
        description=(
            "The product is no longer recommended; its history is kept. Upsert it with active=true to bring it back."
        ),
        request=None,
        responses={
            200: inline_serializer(
                "ProductDeactivated", {"sku": serializers.CharField(), "active": serializers.BooleanField()}
            )
        },
    )
    def delete(self, request: Request, sku: str) -> Response:
        shop = request_shop(request)
        try:
            sku = clean_id(sku)
        except InvalidValue:  # no product can have such a SKU (and NUL never reaches a query)
            raise exceptions.NotFound("No product with this SKU.") from None
        if not product_deactivate(shop=shop, sku=sku):
            raise exceptions.NotFound(f"No product with SKU {sku!r}.")
        return Response({"sku": sku, "active": False})


class ShopperEraseApi(APIView):
    permission_classes = [SecretKeyOnly]

    @extend_schema(
        operation_id="shoppers_erase",
        summary="Erase a shopper",
        description=(
            "Deletes the shopper's events, profile, rejected events naming them and cached "
            "recommendations. Idempotent: erasing an unknown shopper answers found=false."
        ),
        request=None,
        responses={
            200: inline_serializer(
                "ShopperErased",
                {"found": serializers.BooleanField(), "events_deleted": serializers.IntegerField()},
            )
        },
    )
    def delete(self, request: Request, shopper_id: str) -> Response:
        key = request_key(request)
        try:
            shopper_id = clean_id(shopper_id, MAX_SHOPPER_LENGTH)  # as events_ingest cleans it
        except InvalidValue as invalid:
            raise exceptions.ValidationError({"shopper": [invalid.reason]}) from None
        result = shopper_erase(shop=key.shop, external_id=shopper_id, actor=Actor.for_key(key))
        return Response({"found": result.found, "events_deleted": result.events_deleted})
