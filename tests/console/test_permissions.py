"""The permission matrix: every console URL, every method it accepts, as each kind of visitor.

Visitors: anonymous, viewer, merchandiser, admin (with a verified second factor) of the
shop, and an outsider (admin of another shop). Adding a console URL without adding it
here fails ``test_matrix_covers_every_console_url``.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.console.conftest import console_routes, console_url

VISITORS = ("anonymous", "viewer", "merchandiser", "admin", "outsider")
RANK = {"viewer": 0, "merchandiser": 1, "admin": 2}


@dataclass(frozen=True)
class Needs:
    """A shop page: who may use it and what they get. Below the role: 403; another shop's
    member: 404 (no existence leak); anonymous: redirect to sign-in."""

    role: str
    ok: int
    data: dict[str, Any] = field(default_factory=dict)

    def expected(self, visitor: str) -> int:
        if visitor == "anonymous":
            return 302
        if visitor == "outsider":
            return 404
        return self.ok if RANK[visitor] >= RANK[self.role] else 403


@dataclass(frozen=True)
class Fixed:
    """A page outside any shop: the status for each visitor."""

    statuses: dict[str, int]
    data: dict[str, Any] = field(default_factory=dict)

    def expected(self, visitor: str) -> int:
        return self.statuses[visitor]


def everyone(status: int, anonymous: int) -> dict[str, int]:
    return {v: anonymous if v == "anonymous" else status for v in VISITORS}


SETTINGS_FORM = {
    "name": "Renamed",
    "timezone": "Europe/Berlin",
    "currency": "EUR",
    "decay_half_life_days": "7",
    "attribution_window_hours": "24",
    "retrain_every_hours": "12",
    "weight_view": "1",
    "weight_click": "2",
    "weight_add_to_cart": "4",
    "weight_purchase": "8",
    "weight_impression": "0",
}

STRATEGY_FORM = {"name": "Fresh mix", "source_personal": "1", "source_trending": "0.5", "mmr_lambda": "0", "size": "8"}
PROMOTION_FORM = {
    "name": "Lamps up",
    "skus": "SKU-1",
    "action": "boost",
    "factor": "1.5",
    "scope": "all",
    "priority": "0",
}
BOOST_FORM = {
    "name": "Gifts",
    "recurrence": "yearly",
    "yearly_from": "11-20",
    "yearly_until": "12-24",
    "tags": "gift",
    "factor": "1.5",
    "ramp_up_days": "0",
    "ramp_down_days": "0",
    "active": "on",
}
# Values in braces come from the world (tests/console/conftest.py).
EXPERIMENT_FORM = {
    "name": "Bigger mix",
    "placement": "{placement_slug}",
    "primary_metric": "conversion_rate",
    "holdout_percent": "0",
    "variants-TOTAL_FORMS": "2",
    "variants-INITIAL_FORMS": "2",
    "variants-0-name": "control",
    "variants-0-allocation": "50",
    "variants-0-promotions_on": "on",
    "variants-1-name": "treatment",
    "variants-1-allocation": "50",
    "variants-1-strategy": "{strategy_id}",
}

MATRIX: dict[str, dict[str, Needs | Fixed]] = {
    "home": {"GET": Fixed(everyone(302, anonymous=302))},  # one shop each: straight to its dashboard
    "login": {
        "GET": Fixed(everyone(302, anonymous=200)),
        "POST": Fixed(everyone(302, anonymous=200), data={"username": "nobody", "password": "wrong"}),
    },
    "logout": {"POST": Fixed(everyone(302, anonymous=302))},
    "two-factor": {
        "GET": Fixed(everyone(200, anonymous=302)),
        "POST": Fixed(everyone(400, anonymous=302), data={"token": "abcdef"}),
    },
    "dashboard": {"GET": Needs("viewer", 200)},
    "widget": {"GET": Needs("viewer", 200)},
    "products": {"GET": Needs("viewer", 200)},
    "product": {"GET": Needs("viewer", 200)},
    "data": {"GET": Needs("viewer", 200)},
    "rejections": {"GET": Needs("viewer", 200)},
    "uploads": {"GET": Needs("viewer", 200), "POST": Needs("merchandiser", 302, data={"kind": "products"})},
    "upload": {"GET": Needs("viewer", 200)},
    "api-keys": {
        "GET": Needs("admin", 200),
        "POST": Needs("admin", 200, data={"name": "Server 2", "kind": "secret", "allowed_origins": ""}),
    },
    "api-key-revoke": {"POST": Needs("admin", 200)},  # without "confirmed": the confirm dialog
    "api-key-origins": {
        "GET": Needs("admin", 200),
        "POST": Needs("admin", 302, data={"allowed_origins": "https://shop.example"}),
    },
    "shoppers": {"GET": Needs("viewer", 200), "POST": Needs("viewer", 200, data={"shopper_id": "s-1"})},
    "shopper-erase": {"POST": Needs("admin", 200, data={"shopper_id": "s-1"})},  # the confirm dialog
    "audit": {"GET": Needs("viewer", 200)},
    "members": {
        "GET": Needs("admin", 200),
        "POST": Needs("admin", 302, data={"username": "newcomer", "role": "viewer"}),
    },
    "member-role": {"POST": Needs("admin", 302, data={"role": "viewer"})},
    "member-remove": {"POST": Needs("admin", 200)},  # the confirm dialog
    "settings": {"GET": Needs("admin", 200), "POST": Needs("admin", 302, data=SETTINGS_FORM)},
    # Merchandising (campaigns/urls.py; the estimate lives in recsite/planning.py).
    "placements": {
        "GET": Needs("viewer", 200),
        "POST": Needs("merchandiser", 302, data={"name": "Cart", "slug": "cart-2", "kind": "cart", "strategy": ""}),
    },
    "placements-defaults": {"POST": Needs("merchandiser", 302)},
    "placement": {
        "GET": Needs("viewer", 200),
        "POST": Needs("merchandiser", 302, data={"name": "Product page", "default_strategy": "{strategy_id}"}),
    },
    "strategy-new": {"GET": Needs("merchandiser", 200), "POST": Needs("merchandiser", 302, data=STRATEGY_FORM)},
    "strategy": {"GET": Needs("viewer", 200), "POST": Needs("merchandiser", 302, data=STRATEGY_FORM)},
    "strategy-delete": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    "promotions": {"GET": Needs("viewer", 200)},
    "promotion-new": {"GET": Needs("merchandiser", 200), "POST": Needs("merchandiser", 302, data=PROMOTION_FORM)},
    "promotion-matches": {"GET": Needs("viewer", 200)},
    "promotion": {"GET": Needs("viewer", 200), "POST": Needs("merchandiser", 302, data=PROMOTION_FORM)},
    "promotion-publish": {"POST": Needs("merchandiser", 302)},
    "promotion-pause": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    "promotion-delete": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    "calendar": {"GET": Needs("viewer", 200)},
    "seasonal": {"GET": Needs("viewer", 200)},
    "seasonal-new": {"GET": Needs("merchandiser", 200), "POST": Needs("merchandiser", 302, data=BOOST_FORM)},
    "seasonal-measure": {"POST": Needs("merchandiser", 302)},
    "seasonal-boost": {"GET": Needs("viewer", 200), "POST": Needs("merchandiser", 302, data=BOOST_FORM)},
    "seasonal-boost-delete": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    "seasonal-suggestion-accept": {"POST": Needs("merchandiser", 302)},
    "seasonal-suggestion-dismiss": {"POST": Needs("merchandiser", 302)},
    "experiments": {"GET": Needs("viewer", 200)},
    "experiment-new": {"GET": Needs("merchandiser", 200), "POST": Needs("merchandiser", 302, data=EXPERIMENT_FORM)},
    "experiment-estimate": {"GET": Needs("viewer", 200)},
    "experiment": {"GET": Needs("viewer", 200)},
    "experiment-edit": {"GET": Needs("merchandiser", 200), "POST": Needs("merchandiser", 302, data=EXPERIMENT_FORM)},
    "experiment-schedule": {"POST": Needs("merchandiser", 200, data={"starts_at": "2099-01-05T09:00"})},  # dialog
    "experiment-start": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    "experiment-stop": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    "experiment-delete": {"POST": Needs("merchandiser", 200)},  # the confirm dialog
    # Analytics (analytics/urls.py).
    "analytics": {"GET": Needs("viewer", 200)},
    "experiment-results": {"GET": Needs("viewer", 200)},
    "experiment-results-csv": {"GET": Needs("viewer", 200)},
    "experiment-promote": {"POST": Needs("merchandiser", 302, data={"variant": "treatment"})},  # a draft: refused
    # Models (recommender/console_urls.py). The matrix shop has no trained version: activating
    # an unknown version is a 404 for an admin, rolling back without a previous version an error message.
    "models": {"GET": Needs("viewer", 200)},
    "model-train": {"POST": Needs("merchandiser", 302, data={"kind": "als"})},
    "model-training": {"GET": Needs("viewer", 302)},  # not htmx: back to the page
    "model-activate": {"POST": Needs("admin", 404, data={"version": "999999999"})},
    "model-rollback": {"POST": Needs("admin", 302, data={"kind": "als"})},
    "model-learning": {
        "GET": Needs("merchandiser", 200),
        "POST": Needs("merchandiser", 302, data={**SETTINGS_FORM, "weight_view": "0.5"}),
    },
    # Recommendations in the console (recommender/preview_views.py).
    "preview": {"GET": Needs("viewer", 200), "POST": Needs("viewer", 200, data={"placement": "{placement_slug}"})},
    "preview-products": {"GET": Needs("viewer", 200)},
    "strategy-preview": {"GET": Needs("viewer", 200)},
    "promotion-preview": {"GET": Needs("viewer", 200)},
    "product-recommendations": {"GET": Needs("viewer", 200)},
    "shopper-recommendations": {"POST": Needs("viewer", 200, data={"shopper_id": "s-1"})},
}


def test_matrix_covers_every_console_url() -> None:
    assert set(console_routes()) == set(MATRIX)


CASES = [(name, method, visitor) for name, methods in MATRIX.items() for method in methods for visitor in VISITORS]


@pytest.mark.parametrize(("name", "method", "visitor"), CASES, ids=[f"{n}-{m}-{v}" for n, m, v in CASES])
def test_permission_matrix(world: dict[str, Any], name: str, method: str, visitor: str) -> None:
    rule = MATRIX[name][method]
    client = world["clients"][visitor]
    url = console_url(name, world["kwargs"])
    data = {key: value.format(**world["kwargs"]) for key, value in rule.data.items()}
    if name == "uploads" and method == "POST":
        data["file"] = SimpleUploadedFile("products.csv", b"sku,title\nA-1,Lamp\n", content_type="text/csv")

    response = client.get(url) if method == "GET" else client.post(url, data)

    assert response.status_code == rule.expected(visitor), response.content[:500]
    if visitor == "anonymous" and isinstance(rule, Needs):
        assert response["Location"].startswith(reverse("console:login") + "?next=")


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_methods_not_in_the_matrix_are_refused(world: dict[str, Any], name: str) -> None:
    client = world["clients"]["admin"]
    url = console_url(name, world["kwargs"])
    for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - set(MATRIX[name]):
        response = getattr(client, method.lower())(url)
        assert response.status_code == 405, f"{method} {url}"
