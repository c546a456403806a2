"""Public API of the recommender: GET /api/v1/recommendations (ARCHITECTURE.md, v1).

The view validates the query, calls ``recommendations_serve`` and renders plain dicts
(no serializer on the way out: the response is built once, rendered by orjson).

``explain=1`` is for secret keys only: a publishable key asking for it gets 403
``secret_key_required`` (not a silently different response), since explanations name
promotions and scores a shop keeps to itself.
"""

import time
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns.assignment import UnknownPlacement
from campaigns.strategy import MAX_SIZE
from catalog.api_auth import ApiKeyAuthentication, HasApiKey, request_key
from catalog.selectors import shopper_history_key
from catalog.validation import MAX_ID_LENGTH, MAX_SHOPPER_LENGTH, InvalidValue, clean_id
from recommender.serving.service import RecommendationRequest, Recommendations, recommendations_serve

MAX_CONTEXT_ITEMS = 50
_TRUE = {"1", "true", "yes"}
_FALSE = {"0", "false", "no", ""}


def parse_request(query: Any, *, secret_key: bool) -> RecommendationRequest:
    """The request from the query string, or a 400 naming every bad parameter (403 for
    explain with a publishable key)."""
    problems: dict[str, list[str]] = {}
    placement = query.get("placement")
    if placement is None or not placement.strip():
        problems["placement"] = ["is required: the slug of one of your placements"]
    elif len(placement) > 64:
        problems["placement"] = ["must be at most 64 characters"]
    shopper = None
    try:
        shopper = requested_shopper(query)
    except InvalidValue as invalid:
        problems["shopper"] = [invalid.reason]
    items: list[str] = []
    raw_items = query.getlist("item")
    if len(raw_items) > MAX_CONTEXT_ITEMS:
        problems["item"] = [f"at most {MAX_CONTEXT_ITEMS} context items, got {len(raw_items)}"]
    else:
        for raw in raw_items:
            try:
                items.append(clean_id(raw, MAX_ID_LENGTH))
            except InvalidValue as invalid:
                problems.setdefault("item", []).append(f"{raw[:40]!r} {invalid.reason}")
    limit = None
    raw_limit = query.get("limit")
    if raw_limit is not None:
        digits = raw_limit.strip()
        # isdecimal() and ASCII only: "²" is a digit to isdigit() but not a number to int().
        if not (digits.isascii() and digits.isdecimal()) or not 1 <= int(digits) <= MAX_SIZE:
            problems["limit"] = [f"must be a whole number from 1 to {MAX_SIZE}"]
        else:
            limit = int(digits)
    explain = (query.get("explain") or "").strip().lower()
    if explain not in _TRUE | _FALSE:
        problems["explain"] = ["must be 1 or 0"]
    if problems:
        raise exceptions.ValidationError(problems)
    if explain in _TRUE and not secret_key:
        raise exceptions.PermissionDenied(
            "explain=1 needs a secret key (sk_...): explanations are for your server, not the browser.",
            code="secret_key_required",
        )
    return RecommendationRequest(
        placement_slug=placement.strip(),  # type: ignore[union-attr]
        shopper_id=shopper,
        context_skus=tuple(dict.fromkeys(items)),
        limit=limit,
        explain=explain in _TRUE,
    )


def requested_shopper(query: Any) -> str | None:
    """The query's shopper id, None when absent or blank. Raises InvalidValue."""
    shopper = query.get("shopper")
    return clean_id(shopper, MAX_SHOPPER_LENGTH) if shopper is not None and shopper.strip() else None


def response_body(served: Recommendations, *, explain: bool) -> dict[str, Any]:
    snapshot = served.snapshot
    items = []
    for item in served.items:
        i = item.index
        body: dict[str, Any] = {
            "sku": snapshot.skus[i],
            "title": snapshot.titles[i],
            "url": snapshot.urls[i],
            "image_url": snapshot.image_urls[i],
            "price": f"{snapshot.prices[i]:.2f}",
            "score": round(item.score, 4),
            "reasons": item.reasons,
        }
        if explain:
            body["reasons"] = [*item.reasons, *item.rule_reasons]
            body["sources"] = item.sources
            body["promotion_ids"] = item.promotion_ids
            body["seasonal_boost_ids"] = item.seasonal_boost_ids
            body["pinned_slot"] = item.pinned_slot
            body["buried"] = item.buried
            body["fallback"] = item.fallback
        items.append(body)
    response: dict[str, Any] = {
        "request_id": str(served.request_id),
        "placement": served.placement,
        "variant": served.variant,
        "items": items,
    }
    if explain:
        resolution = served.resolution
        response["explain"] = {
            "strategy_id": resolution.strategy_id,
            "strategy": resolution.strategy.to_dict(),
            "promotions_apply": resolution.promotions_apply,
            "experiment_id": resolution.experiment_id,
            "model_versions": served.model_versions,
            "live_rules": served.result.live_rules,
            "removed": [{"sku": snapshot.skus[c.index], "reasons": c.reasons} for c in served.result.removed],
            "notes": served.result.notes,
        }
    return response


_ITEM = inline_serializer(
    "RecommendedItem",
    {
        "sku": serializers.CharField(),
        "title": serializers.CharField(),
        "url": serializers.CharField(),
        "image_url": serializers.CharField(),
        "price": serializers.CharField(help_text="Decimal as text, two places, in the shop's currency."),
        "score": serializers.FloatField(help_text="Blended score (higher is better); comparable within a list."),
        "reasons": serializers.ListField(child=serializers.CharField()),
        "sources": serializers.DictField(
            child=serializers.FloatField(), required=False, help_text="explain=1: raw score of each source."
        ),
        "promotion_ids": serializers.ListField(child=serializers.IntegerField(), required=False),
        "seasonal_boost_ids": serializers.ListField(child=serializers.IntegerField(), required=False),
        "pinned_slot": serializers.IntegerField(required=False, allow_null=True),
        "buried": serializers.BooleanField(required=False),
        "fallback": serializers.CharField(required=False, allow_null=True),
    },
    many=True,
)


class RecommendationsApi(APIView):
    """GET /api/v1/recommendations: the list for one placement, shopper and page."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]

    def prefetch_cache_keys(self, request: Request) -> list[str]:
        """Read in the API throttle's Redis round trip (recsite.api.ApiThrottle): the
        history of the shopper named, which a personal list reads (one round trip
        instead of two; a list that does not read it costs one GET in that trip)."""
        try:
            shopper = requested_shopper(request.query_params)
        except InvalidValue:
            return []  # get() answers 400
        return [shopper_history_key(request_key(request).shop, shopper)] if shopper else []

    @extend_schema(
        operation_id="recommendations_get",
        summary="Get recommendations",
        description=(
            "The list for one placement. With `shopper`, it is personalised from what the shopper did, "
            "including events sent a moment ago; `item` (repeatable) names the products on the page "
            "(the product viewed, the cart). Unknown shoppers and SKUs still get recommendations. "
            "Keep `request_id` and send it with the clicks and purchases of the list's items. "
            "`explain=1` (secret keys only; 403 with a publishable key) adds each item's source "
            "scores, the rules that moved it, and an `explain` block."
        ),
        parameters=[
            OpenApiParameter("placement", OpenApiTypes.STR, required=True, description="Slug of the placement."),
            OpenApiParameter("shopper", OpenApiTypes.STR, description="Your id for the shopper."),
            OpenApiParameter("item", OpenApiTypes.STR, many=True, description="Context SKU (repeat for several)."),
            OpenApiParameter("limit", OpenApiTypes.INT, description="1-50; default: the placement's strategy size."),
            OpenApiParameter("explain", OpenApiTypes.INT, enum=[0, 1], description="1: explanations (secret key)."),
        ],
        responses={
            200: inline_serializer(
                "Recommendations",
                {
                    "request_id": serializers.UUIDField(),
                    "placement": serializers.CharField(),
                    "variant": serializers.CharField(allow_null=True, help_text="Experiment variant, if enrolled."),
                    "items": _ITEM,
                    "explain": serializers.DictField(required=False),
                },
            )
        },
        examples=[
            OpenApiExample(
                "Product page",
                response_only=True,
                value={
                    "request_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "placement": "product",
                    "variant": None,
                    "items": [
                        {
                            "sku": "SKU-12",
                            "title": "Espresso cup set",
                            "url": "https://shop.example/p/SKU-12",
                            "image_url": "https://shop.example/img/SKU-12.jpg",
                            "price": "24.90",
                            "score": 1.62,
                            "reasons": ["Similar to what you are looking at", "Often bought together"],
                        }
                    ],
                },
            )
        ],
    )
    def get(self, request: Request) -> Response:
        started = time.perf_counter()
        key = request_key(request)
        parsed = parse_request(request.query_params, secret_key=key.is_secret)
        try:
            served = recommendations_serve(
                shop=key.shop, request=parsed, started=started, prefetched=getattr(request, "prefetched", {})
            )
        except UnknownPlacement:
            raise exceptions.NotFound(
                f"No placement {parsed.placement_slug!r} in this shop.", code="unknown_placement"
            ) from None
        return Response(response_body(served, explain=parsed.explain))
