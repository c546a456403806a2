"""A URL configuration with the names the merchandising pages wait for (serving's
previews, analytics' results), to check that their regions switch on by themselves."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import include, path

from recsite import console_urls


def waiting(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    return HttpResponse("")


later = [
    path("strategies/preview/", waiting, name="strategy-preview"),
    path("promotions/preview/", waiting, name="promotion-preview"),
    path("experiments/<int:experiment_id>/results/", waiting, name="experiment-results"),
]
urlpatterns = [
    path("console/", include(([*console_urls.urlpatterns, path("<slug:shop_slug>/", include(later))], "console"))),
]
