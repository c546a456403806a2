"""URLs of the serving benchmark: every route of recsite, plus a trivial endpoint.

``GET /api/v1/bench/trivial`` authenticates the key, checks its origin and throttles
exactly as ``GET /api/v1/recommendations`` does (the same DRF classes, the same
middleware), then returns a fixed list of 10 items. It is the reference the
recommendations endpoint's throughput is compared with; it exists only under
``recommender.bench.serve_settings``.
"""

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api_auth import ApiKeyAuthentication, HasApiKey, request_shop
from recsite.api import ApiThrottle
from recsite.urls import handler404, handler500  # noqa: F401
from recsite.urls import urlpatterns as site_urlpatterns

FIXED_ITEMS = [
    {
        "sku": f"FIXED-{n}",
        "title": f"Fixed product {n}",
        "url": f"https://shop.example/p/FIXED-{n}",
        "image_url": f"https://shop.example/img/FIXED-{n}.jpg",
        "price": "19.99",
        "score": round(1.0 - n / 20, 3),
        "reasons": [],
    }
    for n in range(1, 11)
]


class TrivialApi(APIView):
    """The fixed 10-item list, behind the same authentication, permission and throttles."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasApiKey]
    throttle_classes = [ApiThrottle]

    def get(self, request: Request) -> Response:
        shop = request_shop(request)
        body: dict[str, Any] = {"request_id": "fixed", "placement": "trivial", "variant": None, "shop": shop.slug}
        body["items"] = FIXED_ITEMS
        return Response(body)


urlpatterns = [
    path("api/v1/bench/trivial", TrivialApi.as_view(), name="bench-trivial"),
    *site_urlpatterns,
]
