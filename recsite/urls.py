from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from analytics.urls import api_urlpatterns as analytics_api
from campaigns.urls import api_urlpatterns as campaigns_api
from catalog.urls import api_urlpatterns as catalog_api
from recommender.urls import api_urlpatterns as recommender_api
from recsite import openapi  # noqa: F401  (registers the schema extensions)
from recsite import views as console_views

handler404 = "recsite.api.api_aware_404"
handler500 = "recsite.api.api_aware_500"


class SchemaView(SpectacularAPIView):
    authentication_classes: list[type] = []
    permission_classes: list[type] = []
    throttle_classes: list[type] = []


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"ok": True})


# The request path first: Django tries the routes in order and each miss costs a match
# and a note of it, so the recommendations and events routes (a shop's every page view)
# come before the merchandising and analytics ones, and the API before the console.
api_v1 = [
    *recommender_api,
    *catalog_api,
    *campaigns_api,
    *analytics_api,
    path("schema", SchemaView.as_view(), name="schema"),
]

urlpatterns = [
    path("api/v1/", include((api_v1, "api"), namespace="api")),
    path("", console_views.root, name="root"),
    path("console/", include("recsite.console_urls")),
    path("docs/", include("recsite.docs", namespace="docs")),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
