"""Developer docs, public at /docs/: the quick start for a shop's developer, the API
reference (the OpenAPI schema of /api/v1/schema in the vendored Swagger UI), and the
server-side Python example.

The code samples are built here, with this server's own origin in them, and rendered
escaped by the templates (they hold markup that must show as text).
"""

import json
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_GET

app_name = "docs"

EXAMPLE_CLIENT = "recsite/examples/recsite_client.py"


def _origin(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _example_source() -> str:
    found = finders.find(EXAMPLE_CLIENT)
    if not found:
        raise Http404("The example client is missing from the static files.")
    return Path(str(found)).read_text()


def _snippets(origin: str) -> dict[str, str]:
    widget_src = f"{origin}{settings.STATIC_URL}recsite/widget.js"
    response = {
        "request_id": "9b2f0c6e4d1a4f0e8c3b5a7d9e1f2a3b",
        "placement": "product",
        "variant": "control",
        "items": [
            {
                "sku": "SKU-7",
                "title": "Blue mug",
                "url": "https://www.my-shop.example/p/SKU-7",
                "image_url": "https://cdn.my-shop.example/SKU-7.jpg",
                "price": 12.5,
                "score": 0.87,
                "reasons": [],
            }
        ],
    }
    events = {
        "events": [
            {
                "event_id": "order-1042-SKU-7",
                "type": "purchase",
                "shopper": "customer-42",
                "sku": "SKU-7",
                "ts": "2026-11-28T09:30:00Z",
                "quantity": 1,
                "price": "12.50",
            }
        ]
    }
    return {
        "createshop": (
            ".venv/bin/python manage.py createshop my-shop --name 'My shop' --currency EUR \\\n"
            "    --origin https://www.my-shop.example"
        ),
        "script": f'<script src="{widget_src}"\n        data-key="pk_..." defer></script>',
        "placements": (
            "<!-- on a product page -->\n"
            '<div data-recsite-placement="product" data-recsite-item="SKU-1"></div>\n\n'
            "<!-- on the home page: a carousel of 12, with a heading -->\n"
            '<div data-recsite-placement="home" data-recsite-layout="carousel"\n'
            '     data-recsite-limit="12" data-recsite-title="Recommended for you"></div>\n\n'
            "<!-- on the cart page: in the context of several products -->\n"
            '<div data-recsite-placement="cart" data-recsite-items=\'["SKU-1", "SKU-9"]\'></div>'
        ),
        "csp": (
            f"Content-Security-Policy: script-src 'self' {origin}; connect-src 'self' {origin}; img-src 'self' https:"
        ),
        "theme": (
            "/* in your stylesheet: custom properties reach into the widget's Shadow DOM */\n"
            ".recommendations {\n"
            "  --recsite-font: Georgia, serif;\n"
            "  --recsite-accent: #b4235a;\n"
            "  --recsite-columns: 5;\n"
            "  --recsite-image-ratio: 1 / 1;\n"
            "}\n"
            "/* finer control through the parts the widget exposes */\n"
            ".recommendations::part(price) { font-size: 1.1em; }"
        ),
        "helpers": (
            "// a product page: the shopper looked at it\n"
            'recsite.track({type: "view", sku: "SKU-1"});\n\n'
            "// the add-to-cart button\n"
            'recsite.addToCart("SKU-1", {price: 12.5, quantity: 1});\n\n'
            "// the order confirmation page: one event per line; the order id makes a reload harmless\n"
            'recsite.purchase([{sku: "SKU-1", price: 12.5, quantity: 2}], {order: "1042"});\n\n'
            "// after the shopper signs in: your own id instead of the anonymous one\n"
            'recsite.identify("customer-42");'
        ),
        "consent_markup": (
            f'<script src="{widget_src}" data-key="pk_..."\n        data-require-consent="true" defer></script>'
        ),
        "consent_js": (
            "// when your consent banner says yes (call it on every page where consent is known)\n"
            "recsite.consent(true);\n"
            "// when the shopper withdraws it: the stored id and unsent events are deleted\n"
            "recsite.consent(false);"
        ),
        "curl_recommendations": (
            f"curl -s '{origin}/api/v1/recommendations?placement=product&item=SKU-1&shopper=customer-42&limit=8' \\\n"
            "     -H 'Authorization: Bearer sk_...'"
        ),
        "response": json.dumps(response, indent=2),
        "curl_events": (
            f"curl -s -X POST '{origin}/api/v1/events' \\\n"
            "     -H 'Authorization: Bearer sk_...' -H 'Content-Type: application/json' \\\n"
            f"     -d '{json.dumps(events, indent=2)}'"
        ),
        "events_answer": json.dumps({"accepted": 1, "duplicates": 0, "rejected": [], "warnings": []}, indent=2),
        "error": json.dumps(
            {"error": {"code": "not_found", "message": "No placement 'pdp' in this shop.", "details": {}}}, indent=2
        ),
        "rendered_listener": (
            'window.addEventListener("recsite:rendered", (event) => {\n'
            "  const {placement, request_id, items} = event.detail;\n"
            "  console.log(placement, request_id, items);\n"
            "});"
        ),
        "run_example": f"python3 recsite_client.py --api {origin} --key sk_...",
    }


@require_GET
def quickstart(request: HttpRequest) -> HttpResponse:
    origin = _origin(request)
    return render(
        request,
        "docs/quickstart.html",
        {
            "origin": origin,
            "snippets": _snippets(origin),
            "example_source": _example_source(),
            "example_url": f"{settings.STATIC_URL}{EXAMPLE_CLIENT}",
            "max_events": settings.API_MAX_EVENTS_PER_REQUEST,
            "max_body_kb": settings.API_MAX_BODY_BYTES // 1024,
        },
    )


# Swagger UI (vendored by drf-spectacular-sidecar, served from our own static files)
# runs under the site's strict policy as it is: its styles come from its stylesheet,
# React sets element styles through the CSSOM (not inline markup, which style-src 'self'
# would refuse), its icons are data: images (allowed site-wide), and it is started by
# static/recsite/docs.js instead of the usual inline script. So this page needs no
# relaxation; tests/widget/test_docs_browser.py expands operations, opens "Try it out"
# and the authorisation dialog, and counts zero CSP violations.
@require_GET
def reference(request: HttpRequest) -> HttpResponse:
    return render(request, "docs/reference.html", {"origin": _origin(request)})


urlpatterns = [
    path("", quickstart, name="quickstart"),
    path("reference/", reference, name="reference"),
]
