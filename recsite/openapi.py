"""How the schema (drf-spectacular) describes the API's key authentication.

Without these extensions drf-spectacular warns that it cannot resolve the
authenticators, and ``manage.py check --deploy --fail-level WARNING`` fails. Both
names the bearer key ``ApiKey`` as SPECTACULAR_SETTINGS does; the beacon route's key in
the body gets a scheme of its own.
"""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "catalog.api_auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "pk_... or sk_..."}


class BodyKeyScheme(OpenApiAuthenticationExtension):
    target_class = "catalog.api_auth.BodyKeyAuthentication"
    name = "BodyKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        # OpenAPI has no scheme for a key in the body; never describe it as a query parameter.
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "pk_...: as the bearer token, or as `key` in a text/plain JSON body (sendBeacon).",
        }
