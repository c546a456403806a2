"""Authentication and permissions of the public API: a shop's key in the Authorization header.

Keys never travel in a URL. The one exception to the header rule is the beacon route
(``POST /api/v1/events``), which may also take a publishable key in its body because
``navigator.sendBeacon`` cannot set headers; that view calls ``authenticate_raw_key``.
"""

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from catalog.api_keys import api_key_verify, origin_allowed
from catalog.models import ApiKey, Shop


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme != self.keyword or not raw_key.strip():
            raise exceptions.AuthenticationFailed("Send the key as 'Authorization: Bearer <key>'.")
        return None, authenticate_raw_key(raw_key.strip())

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def authenticate_raw_key(raw_key: str) -> ApiKey:
    key = api_key_verify(raw_key)
    if key is None:
        raise exceptions.AuthenticationFailed("Unknown, malformed or revoked API key.")
    return key


def request_key(request: Request) -> ApiKey:
    key = request.auth
    if not isinstance(key, ApiKey):
        raise exceptions.NotAuthenticated("An API key is required: 'Authorization: Bearer <key>'.")
    return key


def request_shop(request: Request) -> Shop:
    return request_key(request).shop


class OriginNotAllowed(exceptions.PermissionDenied):
    default_code = "origin_not_allowed"
    default_detail = "This publishable key may not be used from this origin."


class HasApiKey(BasePermission):
    """Any active key of the shop; a publishable key only from its allowed origins."""

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request_key(request)
        if not origin_allowed(key, request.META.get("HTTP_ORIGIN")):
            raise OriginNotAllowed()
        return True


class SecretKeyOnly(BasePermission):
    """Only the shop's secret key (server-side calls: catalog writes, erasure, management)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        key = request_key(request)
        if not key.is_secret:
            raise exceptions.PermissionDenied("This operation needs a secret key (sk_...).", code="secret_key_required")
        return True


class BodyKeyAuthentication(BaseAuthentication):
    """A publishable key in the JSON body (``{"key": "pk_...", ...}``), for the beacon route only."""

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        data = request.data
        raw_key = data.get("key") if isinstance(data, dict) else None
        if raw_key is None:
            return None
        if not isinstance(raw_key, str) or not raw_key.startswith("pk_"):
            raise exceptions.AuthenticationFailed("Only a publishable key (pk_...) may be sent in the body.")
        return None, authenticate_raw_key(raw_key)
