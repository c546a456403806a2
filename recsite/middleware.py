"""The site's middleware that treats the public API differently from the pages.

The API authenticates by key, never by cookie, and answers data, never a document. So
its requests pass by the console's sessions, login, two-factor and flash messages: an
API request can't be authenticated by a console cookie, and it doesn't pay for them.
Its responses get a fixed Content-Security-Policy that allows nothing, instead of the
pages' policy. (Django's CSRF middleware stays for every path: the API's views are
exempt from it already, and `check --deploy` looks for it by name.)

Each class is the library's own middleware with the API's requests let through, so the
system checks that look for it (admin's, for sessions, login and messages) still find it.
"""

from collections.abc import Callable
from typing import Any

import django_otp.middleware
from csp.middleware import CSPMiddleware
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.http import HttpRequest, HttpResponseBase

from recsite.api import API_PREFIX

# The API answers data, never a document: its responses allow nothing to load or frame them.
API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


class _PagesOnly:
    """Mixin: the middleware runs for the pages; the API's requests go straight on."""

    get_response: Callable[[HttpRequest], Any]

    def __call__(self, request: HttpRequest) -> Any:
        if is_api(request):
            return self.get_response(request)
        return super().__call__(request)  # type: ignore[misc]


class SessionMiddleware(_PagesOnly, sessions.SessionMiddleware):
    pass


class AuthenticationMiddleware(_PagesOnly, auth.AuthenticationMiddleware):
    pass


class OTPMiddleware(_PagesOnly, django_otp.middleware.OTPMiddleware):
    pass


class MessageMiddleware(_PagesOnly, messages.MessageMiddleware):
    pass


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's policy (settings.CONTENT_SECURITY_POLICY, with its nonce) on every
    page; on the API's responses the fixed API_CONTENT_SECURITY_POLICY instead, set
    without building the page policy (django-csp builds it for every response, twice:
    55 us, a sixth of a trivial API request, measured in process)."""

    def process_request(self, request: HttpRequest) -> None:
        if not is_api(request):
            super().process_request(request)

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if not is_api(request):
            return super().process_response(request, response)
        response.headers.setdefault("Content-Security-Policy", API_CONTENT_SECURITY_POLICY)
        return response
