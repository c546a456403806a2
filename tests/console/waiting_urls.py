"""A URL configuration for the pages' waiting regions, to check that they switch on by
themselves once their URL names exist. Nothing waits any more: analytics' results and
promote (analytics/urls.py) and serving's strategy-preview and promotion-preview
(recommender/preview_views.py, tested in tests/console/test_preview_pages.py) are real
console URLs, so this is the real console plus whatever ``later`` lists."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from recsite import console_urls


def waiting(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("")


later: list[Any] = []
urlpatterns = [
    path("console/", include(([*console_urls.urlpatterns, path("<slug:shop_slug>/", include(later))], "console"))),
]
