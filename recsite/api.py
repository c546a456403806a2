"""Plumbing shared by every endpoint of the public API, wired in through settings.py:
the one error shape, the strict JSON parser, the fast renderer, throttles, CORS (the
middleware that keeps the pages' cookies and policy off the API: recsite.middleware)."""

import logging
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from rest_framework import exceptions, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle

from catalog.api_keys import any_key_allows_origin
from catalog.json_input import JsonInputError, parse_json
from catalog.redis_cache import cache_get, cache_value, redis_client

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


# --- Errors -----------------------------------------------------------------


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details if details is not None else {}}}


_STATUS_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "throttled",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every API error as ``{"error": {"code", "message", "details"}}``."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handler answers in the same shape
    headers: dict[str, str] = {}
    wait = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if wait is not None:
        headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        headers["WWW-Authenticate"] = "Bearer"
        exc.status_code = status.HTTP_401_UNAUTHORIZED
    if isinstance(exc, exceptions.ValidationError):
        code, message, details = "invalid", "The request is not valid; see details.", exc.detail
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        if code in ("error", "parse_error", "permission_denied", "not_authenticated", "authentication_failed"):
            code = _STATUS_CODES.get(exc.status_code, str(code))
        message, details = str(detail), {}
    return Response(error_body(str(code), message, details), status=exc.status_code, headers=headers)


def json_error_response(status_code: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status_code)


# --- Parsing and rendering ------------------------------------------------------


class StrictJSONParser(BaseParser):
    """JSON with a size cap (413), strict UTF-8, and no silent loss of duplicate keys or NaN.

    The cap is ``view.max_body_bytes`` or API_MAX_BODY_BYTES (64 KB).
    """

    media_type = "application/json"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        context = parser_context or {}
        limit = getattr(context.get("view"), "max_body_bytes", settings.API_MAX_BODY_BYTES)
        request = context.get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes.")
        try:
            return parse_json(data)
        except JsonInputError as error:
            raise exceptions.ParseError(error.message, code=error.code) from None


class PlainTextJSONParser(StrictJSONParser):
    """JSON sent as text/plain: what ``navigator.sendBeacon`` sends without a CORS preflight."""

    media_type = "text/plain"


def _orjson_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


class FastJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None) -> bytes:
        if data is None:
            return b""
        return orjson.dumps(data, default=_orjson_default)


def dumps(data: Any) -> bytes:
    return orjson.dumps(data, default=_orjson_default)


# --- Client address and throttling ------------------------------------------------


def client_ip(request: HttpRequest | Request) -> str:
    """The client's address, trusting exactly TRUSTED_PROXY_COUNT proxies in front.

    Each trusted proxy appends the address it saw to X-Forwarded-For, so the client is
    the N-th entry from the right; whatever a client forges sits further left and is
    ignored. With no trusted proxy only REMOTE_ADDR counts.
    """
    meta = request.META
    remote = meta.get("REMOTE_ADDR", "") or "unknown"
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if len(forwarded) < proxies:
        return remote
    return forwarded[-proxies]


def _count_hits(cache_keys: list[str], window_s: int, reads: list[str]) -> tuple[list[int], dict[str, Any]]:
    """Add one to the counter of each key's window, and read the cache keys ``reads``:
    the new counts, and each read key's value (None when absent). Atomic across processes.

    On Redis it is one round trip for everything (per counter SET NX with expiry, then
    INCR; a GET per read; pipelined) instead of the three per counter that Django's
    cache API needs (EXISTS, INCR, and ADD for a new window) and one per read."""
    backend = caches["default"]
    client = redis_client(backend)
    if client is not None:
        pipe = client.pipeline(transaction=False)
        for cache_key in cache_keys:
            key = backend.make_and_validate_key(cache_key)
            pipe.set(key, 0, ex=window_s * 2, nx=True)
            pipe.incr(key)
        for cache_key in reads:
            pipe.get(backend.make_and_validate_key(cache_key))
        replies = pipe.execute()
        counted = 2 * len(cache_keys)
        values = {key: cache_value(raw) for key, raw in zip(reads, replies[counted:], strict=True)}
        return [int(count) for count in replies[1:counted:2]], values
    return [_count_hit_in(backend, cache_key, window_s) for cache_key in cache_keys], {
        key: cache_get(key) for key in reads
    }


def _count_hit_in(backend: Any, cache_key: str, window_s: int) -> int:
    try:
        return int(backend.incr(cache_key))
    except ValueError:
        if backend.add(cache_key, 1, timeout=window_s * 2):
            return 1
        return int(backend.incr(cache_key))


class ApiThrottle(BaseThrottle):
    """Fixed one-minute windows per API key (``API_THROTTLE_KEY_PER_MINUTE``) and per
    client address (``API_THROTTLE_IP_PER_MINUTE``, see ``client_ip``), counted in the
    cache (Redis when REDIS_URL is set), both in one round trip. A request over either
    limit is refused with 429 and Retry-After (the end of the window); it still counts.

    A view with a ``prefetch_cache_keys(request)`` method has those cache keys read in
    the same round trip: their values (None when absent) are in ``request.prefetched``
    (a dict, empty for other views) for the view to use instead of reading them again."""

    window_s = 60
    clock = staticmethod(time.time)  # tests pin it

    def allow_request(self, request: Request, view: Any) -> bool:
        now = self.clock()
        window = int(now // self.window_s)
        self._wait = self.window_s - (now % self.window_s)
        limits = {f"throttle:ip:{client_ip(request)}:{window}": settings.API_THROTTLE_IP_PER_MINUTE}
        key_prefix = getattr(request.auth, "prefix", None)
        if key_prefix is not None:
            limits[f"throttle:key:{key_prefix}:{window}"] = settings.API_THROTTLE_KEY_PER_MINUTE
        prefetch = getattr(view, "prefetch_cache_keys", None)
        counts, prefetched = _count_hits(list(limits), self.window_s, prefetch(request) if prefetch else [])
        request.prefetched = prefetched  # type: ignore[attr-defined]
        return all(count <= limit for count, limit in zip(counts, limits.values(), strict=True))

    def wait(self) -> float:
        return self._wait


# --- CORS ---------------------------------------------------------------------------


class ApiCorsMiddleware:
    """CORS for /api/: the request's Origin is echoed only when a publishable key allows it.

    Preflights carry no key, so they are answered for origins allowed by any active
    key; the real request is then checked against its own key's origins (403 otherwise).
    Credentials are never allowed: the API authenticates by key, not by cookie.
    """

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        origin = request.META.get("HTTP_ORIGIN")
        allowed = bool(origin) and any_key_allows_origin(origin or "")
        if request.method == "OPTIONS" and origin and request.META.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            if not allowed:
                return json_error_response(403, "origin_not_allowed", "No API key allows this origin.")
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response["Access-Control-Max-Age"] = "600"
        else:
            response = self.get_response(request)
        if allowed and origin:
            response["Access-Control-Allow-Origin"] = origin
            response["Access-Control-Expose-Headers"] = "Retry-After"
        response["Vary"] = "Origin" if "Vary" not in response else response["Vary"] + ", Origin"
        return response


# --- Django-level handlers for /api/ (unknown URL, crash) -------------------------------


def api_aware_404(request: HttpRequest, exception: Exception) -> HttpResponse:
    from django.views.defaults import page_not_found

    if request.path.startswith(API_PREFIX):
        return json_error_response(404, "not_found", "No such API route.")
    return page_not_found(request, exception)


def api_aware_500(request: HttpRequest) -> HttpResponse:
    from django.views.defaults import server_error

    if request.path.startswith(API_PREFIX):
        return json_error_response(500, "internal_error", "Something went wrong on our side; it has been logged.")
    return server_error(request)
