"""The analytics API (secret key): GET /api/v1/metrics and GET
/api/v1/experiments/{id}/results (and its CSV), their errors, and the OpenAPI schema."""

import zoneinfo
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from analytics.buckets import day_start, local_date
from campaigns.models import Experiment
from tests.analytics.helpers import catch_up, event, serve, split_experiment
from tests.factories import PlacementFactory, ProductFactory, PromotionFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(shop: Any) -> Experiment:
    started = timezone.now() - timedelta(days=1, hours=2)
    return split_experiment(shop, PlacementFactory(shop=shop, slug="pdp"), started=started)


@pytest.fixture
def traffic(shop: Any, experiment: Experiment) -> dict[str, Any]:
    """Yesterday (local): a home list with a promoted item clicked and bought, and one pdp
    list per variant of the experiment."""
    zone = zoneinfo.ZoneInfo(shop.timezone)
    yesterday = local_date(timezone.now(), zone) - timedelta(days=1)
    at = max(day_start(yesterday, zone) + timedelta(hours=12), experiment.started_at + timedelta(minutes=1))
    PlacementFactory(shop=shop, slug="home")
    product = ProductFactory(shop=shop, price=Decimal("10.00"))
    promotion = PromotionFactory(shop=shop, name="Lamps up")
    one, two, three = (ShopperFactory(shop=shop) for _ in range(3))
    home = serve(shop, [product], at, placement="home", shopper=one, promotions={product.pk: [promotion.pk]})
    event(shop, "impression", one, product, at + timedelta(seconds=1), served=home)
    event(shop, "click", one, product, at + timedelta(seconds=2), served=home)
    event(shop, "purchase", one, product, at + timedelta(minutes=2), price="12.00", quantity=2)
    for shopper, variant in ((two, "control"), (three, "b")):
        served = serve(
            shop,
            [product],
            at,
            placement="pdp",
            shopper=shopper,
            unit_id=str(shopper.pk),
            experiment=(experiment.pk, 1, variant),
        )
        event(shop, "impression", shopper, product, at + timedelta(seconds=1), served=served)
    catch_up(shop.pk)
    return {"day": yesterday, "promotion": promotion, "product": product}


def test_metrics_need_a_secret_key(api: Any, publishable_key: str, db: Any) -> None:
    assert api(None).get("/api/v1/metrics").status_code == 401
    assert api(publishable_key).get("/api/v1/metrics", HTTP_ORIGIN="https://shop.example").status_code == 403


def test_metrics_give_totals_and_a_point_per_day(api: Any, secret_key: str, traffic: dict[str, Any]) -> None:
    day = traffic["day"].isoformat()

    body = api(secret_key).get("/api/v1/metrics", {"from": day, "to": day}).json()

    totals = body["totals"]
    assert (totals["requests"], totals["impressions"], totals["clicks"], totals["purchases"]) == (3, 3, 1, 1)
    assert (totals["revenue"], totals["revenue_per_mille"], totals["ctr"]) == ("24.00", "8000.00", 1 / 3)
    assert (totals["distinct_items"], totals["catalog_size"], totals["coverage"]) == (1, 1, 1.0)
    assert [(point["requests"], point["clicks"]) for point in body["series"]] == [(3, 1)]
    assert (body["granularity"], body["timezone"]) == ("day", "Europe/Berlin")


def test_metrics_group_and_filter_by_placement_variant_and_promotion(
    api: Any, secret_key: str, traffic: dict[str, Any], experiment: Experiment
) -> None:
    client, day = api(secret_key), traffic["day"].isoformat()
    promotion = traffic["promotion"].pk

    by_placement = client.get("/api/v1/metrics", {"from": day, "to": day, "group_by": "placement"}).json()
    by_variant = client.get("/api/v1/metrics", {"from": day, "to": day, "group_by": "variant"}).json()
    pdp = client.get("/api/v1/metrics", {"from": day, "to": day, "placement": "pdp"}).json()
    b_only = client.get("/api/v1/metrics", {"from": day, "to": day, "variant": "b"}).json()
    promoted = client.get("/api/v1/metrics", {"from": day, "to": day, "promotion": promotion}).json()

    assert [(g["label"], g["kpis"]["requests"]) for g in by_placement["groups"]] == [("home", 1), ("pdp", 2)]
    assert [g["key"] for g in by_variant["groups"]] == [
        ["pdp", experiment.pk, 1, "b"],
        ["pdp", experiment.pk, 1, "control"],
    ]
    assert (pdp["totals"]["requests"], pdp["filters"]["placement"]) == (2, "pdp")
    assert b_only["totals"]["requests"] == 1
    assert (promoted["totals"]["item_slots"], promoted["totals"]["clicks"], promoted["totals"]["coverage"]) == (
        1,
        1,
        None,
    )
    assert [(i["title"], i["served"], i["clicks"]) for i in promoted["promoted_items"]] == [
        (traffic["product"].title, 1, 1)
    ]


def test_hourly_metrics_have_a_point_per_hour(api: Any, secret_key: str, traffic: dict[str, Any]) -> None:
    day = traffic["day"].isoformat()

    body = api(secret_key).get("/api/v1/metrics", {"from": day, "to": day, "granularity": "hour"}).json()

    assert len(body["series"]) == 24
    assert [p["requests"] for p in body["series"] if p["requests"]] == [3]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"granularity": "week"}, "granularity"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-05-02", "to": "2026-05-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "to"),
        ({"granularity": "hour", "from": "2026-01-01", "to": "2026-03-01"}, "to"),
        ({"group_by": "colour"}, "group_by"),
        ({"experiment": "abc"}, "experiment"),
        ({"promotion": "-1"}, "promotion"),
    ],
)
def test_bad_metrics_parameters_are_400_naming_the_field(
    api: Any, secret_key: str, params: dict[str, str], field: str
) -> None:
    response = api(secret_key).get("/api/v1/metrics", params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["details"]


def test_an_unknown_or_foreign_placement_or_promotion_is_404(
    api: Any, secret_key: str, other_shop: Any, db: Any
) -> None:
    foreign = PromotionFactory(shop=other_shop)
    PlacementFactory(shop=other_shop, slug="theirs")
    client = api(secret_key)

    assert client.get("/api/v1/metrics", {"placement": "nope"}).status_code == 404
    assert client.get("/api/v1/metrics", {"placement": "theirs"}).status_code == 404
    response = client.get("/api/v1/metrics", {"promotion": str(foreign.pk)})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_experiment_results_per_variant_with_intervals_and_the_srm_check(
    api: Any, secret_key: str, traffic: dict[str, Any], experiment: Experiment
) -> None:
    body = api(secret_key).get(f"/api/v1/experiments/{experiment.pk}/results").json()

    assert (body["version"], body["versions"], body["control"], body["units"]) == (1, [1], "control", 2)
    assert [(v["name"], v["units"], v["exposures"], v["expected_share"]) for v in body["variants"]] == [
        ("control", 1, 1, 0.5),
        ("b", 1, 1, 0.5),
    ]
    ctr = next(m for m in body["variants"][0]["metrics"] if m["metric"] == "ctr")
    assert (
        ctr["kind"] == "proportion" and ctr["estimate"]["low"] <= ctr["estimate"]["estimate"] <= ctr["estimate"]["high"]
    )
    assert (body["srm"]["flagged"], body["srm"]["observed"], body["srm"]["threshold"]) == (False, [1, 1], 0.0005)
    assert {(c["metric"], c["variant"]) for c in body["comparisons"]} == {
        ("ctr", "b"),
        ("add_to_cart_rate", "b"),
        ("conversion_rate", "b"),
        ("revenue_per_unit", "b"),
    }


def test_experiment_results_errors(
    api: Any, secret_key: str, other_secret_key: str, experiment: Experiment, shop: Any
) -> None:
    draft = split_experiment(shop, experiment.placement, start=False, name="Later")
    client = api(secret_key)

    assert api(other_secret_key).get(f"/api/v1/experiments/{experiment.pk}/results").status_code == 404
    assert client.get("/api/v1/experiments/999999/results").status_code == 404
    not_started = client.get(f"/api/v1/experiments/{draft.pk}/results")
    assert not_started.status_code == 409 and not_started.json()["error"]["code"] == "not_started"
    bad_version = client.get(f"/api/v1/experiments/{experiment.pk}/results", {"version": "one"})
    assert bad_version.status_code == 400 and "version" in bad_version.json()["error"]["details"]


def test_experiment_units_as_csv(api: Any, secret_key: str, traffic: dict[str, Any], experiment: Experiment) -> None:
    response = api(secret_key).get(f"/api/v1/experiments/{experiment.pk}/results.csv")

    lines = b"".join(response.streaming_content).decode().splitlines()
    assert response.status_code == 200 and response["Content-Type"] == "text/csv; charset=utf-8"
    assert lines[0].startswith("unit,variant,variants_seen,first_hour,exposures")
    assert len(lines) == 3


def test_the_schema_documents_both_endpoints(api: Any, db: Any) -> None:
    schema = api(None).get("/api/v1/schema?format=json").json()

    metrics = schema["paths"]["/api/v1/metrics"]["get"]
    results = schema["paths"]["/api/v1/experiments/{experiment_id}/results"]["get"]
    assert metrics["operationId"] == "metrics"
    assert {p["name"] for p in metrics["parameters"]} >= {
        "placement",
        "variant",
        "promotion",
        "from",
        "to",
        "granularity",
        "group_by",
    }
    assert results["operationId"] == "experiments_results"
    assert "200" in results["responses"] and "409" in results["responses"]
