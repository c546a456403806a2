"""The management API (/api/v1/placements, strategies, promotions, seasonal-boosts,
seasonal-suggestions, experiments): CRUD, validation in the common error shape, secret
keys only, other shops' objects invisible, one audit row per change."""

from datetime import UTC, date, datetime

import pytest

from campaigns import services
from campaigns.models import Experiment, Placement, Promotion, SeasonalBoost, SeasonalSuggestion, Strategy
from catalog.models import AuditEntry, Category
from tests.campaigns.conftest import ACTOR
from tests.factories import (
    PlacementFactory,
    PromotionFactory,
    SeasonalBoostFactory,
    ShopFactory,
    StrategyFactory,
)

CONFIG = {"sources": {"personal": 1.0, "trending": 0.5}, "size": 8}
CANONICAL_CONFIG = {
    "sources": {"personal": 1.0, "trending": 0.5},
    "filters": {"in_stock": True, "exclude_purchased": False, "price_min": None, "price_max": None, "categories": []},
    "diversity": {"max_per_category": None, "mmr_lambda": 0.0},
    "size": 8,
}


@pytest.fixture
def client(api, secret_key):
    return api(secret_key)


def key_label(raw_key: str) -> str:
    return f"key:{raw_key.split('_')[1]}"


def audit(shop, **filters):
    return list(AuditEntry.objects.filter(shop=shop, **filters).order_by("id"))


# --- strategies ------------------------------------------------------------------------------


def test_strategy_crud_with_one_audit_row_per_change(client, shop, secret_key):
    # Create
    created = client.post("/api/v1/strategies", {"name": "Mine", "config": CONFIG}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["name"], body["config"]) == ("Mine", CANONICAL_CONFIG)
    url = f"/api/v1/strategies/{body['id']}"
    # Read and list
    assert client.get(url).json()["config"] == CANONICAL_CONFIG
    listed = client.get("/api/v1/strategies").json()
    assert (listed["count"], [s["name"] for s in listed["results"]]) == (1, ["Mine"])
    # Partial update
    patched = client.patch(url, {"config": {**CONFIG, "size": 4}}, format="json")
    assert (patched.status_code, patched.json()["config"]["size"], patched.json()["name"]) == (200, 4, "Mine")
    # Full update
    put = client.put(url, {"name": "Renamed", "config": CONFIG}, format="json")
    assert (put.status_code, put.json()["name"], put.json()["config"]["size"]) == (200, "Renamed", 8)
    # Delete
    assert client.delete(url).status_code == 204
    assert client.get(url).status_code == 404
    rows = audit(shop, object_type="strategy")
    assert [(r.action, r.object_id, r.actor_label) for r in rows] == [
        ("create", str(body["id"]), key_label(secret_key)),
        ("update", str(body["id"]), key_label(secret_key)),
        ("update", str(body["id"]), key_label(secret_key)),
        ("delete", str(body["id"]), key_label(secret_key)),
    ]
    assert (rows[1].before["config"]["size"], rows[1].after["config"]["size"]) == (8, 4)
    assert rows[0].actor_key_id is not None


def test_invalid_strategy_is_a_400_in_the_common_error_shape(client, shop):
    response = client.post(
        "/api/v1/strategies",
        {"name": "Bad", "config": {"sources": {"personal": -1}, "diversity": {"mmr_lambda": 2}}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "The request is not valid; see details.",
            "details": {
                "config": [
                    "sources.personal: weight must be a number above 0 and at most 100",
                    "diversity.mmr_lambda: must be a number from 0 (off) to 1",
                ]
            },
        }
    }
    assert Strategy.objects.filter(shop=shop).count() == 0
    assert audit(shop, object_type="strategy") == []


def test_missing_fields_are_reported_per_field(client):
    response = client.post("/api/v1/strategies", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "name": ["This field is required."],
        "config": ["This field is required."],
    }


def test_strategy_in_use_answers_409(client, shop, placements):
    response = client.delete(f"/api/v1/strategies/{placements['home'].default_strategy_id}")
    assert response.status_code == 409
    assert response.json()["error"] == {
        "code": "in_use",
        "message": "the strategy is the default of placement(s) home",
        "details": {},
    }


# --- placements -----------------------------------------------------------------------------------


def test_placement_crud(client, shop, placements):
    strategy = StrategyFactory(shop=shop)
    created = client.post(
        "/api/v1/placements",
        {"slug": "footer", "name": "Footer", "kind": "email", "default_strategy": strategy.pk},
        format="json",
    )
    assert created.status_code == 201
    assert created.json() | {"id": 0, "created_at": "", "updated_at": ""} == {
        "id": 0,
        "slug": "footer",
        "name": "Footer",
        "kind": "email",
        "default_strategy": strategy.pk,
        "promotions_enabled": True,
        "model_version_id": None,
        "created_at": "",
        "updated_at": "",
    }
    assert [p["slug"] for p in client.get("/api/v1/placements").json()["results"]] == [
        "cart",
        "category",
        "footer",
        "home",
        "product",
    ]
    assert (
        client.patch("/api/v1/placements/footer", {"promotions_enabled": False}, format="json").json()[
            "promotions_enabled"
        ]
        is False
    )
    assert client.get("/api/v1/placements/footer").json()["promotions_enabled"] is False
    assert client.delete("/api/v1/placements/footer").status_code == 204
    assert not Placement.objects.filter(shop=shop, slug="footer").exists()
    assert [r.action for r in audit(shop, object_type="placement", object_repr="footer")] == [
        "create",
        "update",
        "delete",
    ]


def test_duplicate_slug_and_foreign_strategy_are_field_errors(client, shop, placements):
    foreign = StrategyFactory()
    response = client.post(
        "/api/v1/placements",
        {"slug": "home", "name": "Home again", "kind": "home", "default_strategy": foreign.pk},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"default_strategy": [f"no strategy with id {foreign.pk}"]}
    response = client.post(
        "/api/v1/placements",
        {
            "slug": "home",
            "name": "Home again",
            "kind": "home",
            "default_strategy": placements["home"].default_strategy_id,
        },
        format="json",
    )
    assert response.json()["error"]["details"] == {"slug": ["a placement with this slug already exists"]}


# --- promotions -------------------------------------------------------------------------------------


PROMOTION = {
    "name": "Winter sale",
    "target": {"categories": ["Winter"], "brands": ["Acme"]},
    "action": "pin",
    "slot": 1,
    # Without an offset: local time of the shop (Europe/Berlin, UTC+1 in winter)
    "starts_at": "2030-11-27T09:00:00",
    "ends_at": "2030-12-25T00:00:00+01:00",
}


def test_promotion_create_read_publish_pause_delete(client, shop, placements):
    created = client.post("/api/v1/promotions", PROMOTION, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (body["status"], body["lifecycle"], body["all_placements"], body["placements"]) == (
        "draft",
        "draft",
        True,
        [],
    )
    assert (body["starts_at"], body["ends_at"]) == ("2030-11-27T09:00:00+01:00", "2030-12-25T00:00:00+01:00")
    stored = Promotion.objects.get(pk=body["id"])
    assert stored.starts_at == datetime(2030, 11, 27, 8, tzinfo=UTC)
    assert stored.target["categories"] == ["Winter"]
    url = f"/api/v1/promotions/{body['id']}"
    published = client.post(f"{url}/publish")
    assert (published.status_code, published.json()["status"], published.json()["lifecycle"]) == (
        200,
        "published",
        "scheduled",
    )
    assert client.post(f"{url}/publish").status_code == 409
    scoped = client.patch(url, {"all_placements": False, "placements": ["cart", "home"]}, format="json")
    assert scoped.json()["placements"] == ["cart", "home"]
    assert client.post(f"{url}/pause").json()["status"] == "paused"
    assert client.get("/api/v1/promotions?status=paused").json()["count"] == 1
    assert client.get("/api/v1/promotions?status=published").json()["count"] == 0
    assert client.delete(url).status_code == 204
    assert [r.action for r in audit(shop, object_type="promotion")] == [
        "create",
        "publish",
        "update",
        "pause",
        "delete",
    ]


def test_promotion_put_replaces_every_field(client, shop):
    promotion_id = client.post("/api/v1/promotions", PROMOTION, format="json").json()["id"]
    response = client.put(
        f"/api/v1/promotions/{promotion_id}",
        {"name": "Boost", "target": {"tags": ["gift"]}, "action": "boost", "factor": 1.5},
        format="json",
    )
    body = response.json()
    assert response.status_code == 200
    assert (body["action"], body["slot"], body["factor"], body["starts_at"], body["ends_at"]) == (
        "boost",
        None,
        1.5,
        None,
        None,
    )
    assert body["target"] == {
        "skus": [],
        "categories": [],
        "brands": [],
        "tags": ["gift"],
        "attributes": {},
        "price_min": None,
        "price_max": None,
        "new_within_days": None,
    }


@pytest.mark.parametrize(
    ("change", "details"),
    [
        ({"slot": None}, {"slot": ["a pin needs a slot from 1 to 50"]}),
        ({"target": {"brands": "Acme"}}, {"target": ["brands: must be a list of non-empty strings"]}),
        ({"placements": ["nowhere"], "all_placements": False}, {"placements": ["no placement 'nowhere'"]}),
        (
            {"starts_at": "2030-03-31T02:30:00"},
            {"starts_at": ['Invalid datetime for the timezone "Europe/Berlin": the clocks skip it; give an offset.']},
        ),
        (
            {"ends_at": "2030-10-27T02:30:00"},
            {"ends_at": ['Invalid datetime for the timezone "Europe/Berlin": it happens twice; give an offset.']},
        ),
        ({"action": "teleport"}, {"action": ['"teleport" is not a valid choice.']}),
        ({"daily_from": "09:00"}, {"daily_until": ["a daily window needs both daily_from and daily_until"]}),
    ],
)
def test_promotion_validation_errors(client, shop, placements, change, details):
    response = client.post("/api/v1/promotions", {**PROMOTION, **change}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert response.json()["error"]["details"] == details
    assert Promotion.objects.filter(shop=shop).count() == 0


# --- seasonal boosts and suggestions -----------------------------------------------------------------


def test_seasonal_boost_crud(client, shop):
    created = client.post(
        "/api/v1/seasonal-boosts",
        {
            "name": "Gifts",
            "tags": ["gift"],
            "factor": 1.5,
            "yearly_from": "11-20",
            "yearly_until": "12-24",
            "ramp_up_days": 7,
        },
        format="json",
    )
    assert created.status_code == 201
    body = created.json()
    assert (body["recurrence"], body["ramp_up_days"], body["active"]) == ("yearly", 7, True)
    url = f"/api/v1/seasonal-boosts/{body['id']}"
    assert client.patch(url, {"active": False}, format="json").json()["active"] is False
    assert client.patch(url, {"factor": 50}, format="json").json()["error"]["details"] == {
        "factor": ["must be above 0 and at most 10"]
    }
    once = client.put(
        url,
        {
            "name": "Gifts 2030",
            "categories": ["Gifts"],
            "factor": 2,
            "recurrence": "once",
            "first_day": "2030-11-20",
            "last_day": "2030-12-24",
        },
        format="json",
    )
    assert (once.status_code, once.json()["yearly_from"], once.json()["last_day"]) == (200, "", "2030-12-24")
    assert client.delete(url).status_code == 204
    assert [r.action for r in audit(shop, object_type="seasonal_boost")] == ["create", "update", "update", "delete"]


def test_seasonal_suggestions_accept_and_dismiss(client, shop):
    category = Category.objects.create(shop=shop, name="Candles", path="Home > Candles")
    suggestion = SeasonalSuggestion.objects.create(
        shop=shop,
        category=category,
        first_day=date(2030, 11, 25),
        last_day=date(2030, 12, 1),
        lift=2.4,
        window_volume=320,
        suggested_factor=1.7,
    )
    other = SeasonalSuggestion.objects.create(
        shop=shop,
        category=category,
        first_day=date(2030, 12, 2),
        last_day=date(2030, 12, 8),
        lift=1.5,
        window_volume=80,
        suggested_factor=1.25,
    )
    listed = client.get("/api/v1/seasonal-suggestions?status=suggested").json()
    assert [(s["category"], s["lift"]) for s in listed["results"]] == [("Home > Candles", 2.4), ("Home > Candles", 1.5)]
    accepted = client.post(f"/api/v1/seasonal-suggestions/{suggestion.pk}/accept", {}, format="json")
    assert accepted.status_code == 201
    assert (accepted.json()["categories"], accepted.json()["factor"], accepted.json()["first_day"]) == (
        ["Home > Candles"],
        1.7,
        "2030-11-25",
    )
    assert client.post(f"/api/v1/seasonal-suggestions/{suggestion.pk}/accept", {}, format="json").status_code == 409
    assert client.post(f"/api/v1/seasonal-suggestions/{other.pk}/dismiss").json()["status"] == "dismissed"
    suggestion.refresh_from_db()
    assert (suggestion.status, suggestion.boost_id) == ("accepted", accepted.json()["id"])
    assert [(r.object_type, r.action) for r in audit(shop, object_type__startswith="seasonal")] == [
        ("seasonal_boost", "create"),
        ("seasonal_suggestion", "accept"),
        ("seasonal_suggestion", "dismiss"),
    ]


# --- experiments ----------------------------------------------------------------------------------


def experiment_body(**overrides):
    return {
        "name": "Trending first",
        "placement": "home",
        "holdout_percent": 10,
        "variants": [
            {"name": "control", "is_control": True, "allocation": 50},
            {"name": "trending", "allocation": 50, "promotions_on": False, "model_version_id": 3},
        ],
        **overrides,
    }


def test_experiment_lifecycle_through_the_api(client, shop, placements, secret_key):
    strategy = StrategyFactory(shop=shop, config={"sources": {"trending": 1.0}})
    body = experiment_body()
    body["variants"][1]["strategy"] = strategy.pk
    created = client.post("/api/v1/experiments", body, format="json")
    assert created.status_code == 201
    experiment = created.json()
    assert (experiment["status"], experiment["version"], experiment["placement"]) == ("draft", 1, "home")
    assert [(v["name"], v["strategy"], v["promotions_on"]) for v in experiment["variants"]] == [
        ("control", None, True),
        ("trending", strategy.pk, False),
    ]
    url = f"/api/v1/experiments/{experiment['id']}"
    started = client.post(f"{url}/start", {}, format="json").json()
    assert (started["status"], [v["number"] for v in started["versions"]]) == ("running", [1])
    # Changing the allocation while running starts version 2
    body["variants"][0]["allocation"], body["variants"][1]["allocation"] = 20, 80
    changed = client.patch(url, {"variants": body["variants"]}, format="json").json()
    assert changed["version"] == 2
    assert [(v["number"], v["ended_at"] is None) for v in changed["versions"]] == [(1, False), (2, True)]
    # A second experiment on the placement cannot start
    second = client.post("/api/v1/experiments", experiment_body(name="Other"), format="json").json()
    refused = client.post(f"/api/v1/experiments/{second['id']}/start", {}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "placement_busy")
    # Promote the winner
    promoted = client.post(f"{url}/promote", {"variant": "trending"}, format="json").json()
    assert (promoted["status"], promoted["winner"]) == ("promoted", "trending")
    home = Placement.objects.get(shop=shop, slug="home")
    assert (home.default_strategy_id, home.promotions_enabled, home.model_version_id) == (strategy.pk, False, 3)
    assert client.delete(url).status_code == 409
    assert client.delete(f"/api/v1/experiments/{second['id']}").status_code == 204
    rows = audit(shop, object_type__in=["experiment", "placement"], actor_label=key_label(secret_key))
    assert [(r.object_type, r.action) for r in rows] == [
        ("experiment", "create"),
        ("experiment", "start"),
        ("experiment", "update"),
        ("experiment", "create"),
        ("experiment", "promote"),
        ("placement", "update"),
        ("experiment", "delete"),
    ]


def test_experiment_schedule_and_stop(client, shop, placements):
    experiment_id = client.post("/api/v1/experiments", experiment_body(), format="json").json()["id"]
    url = f"/api/v1/experiments/{experiment_id}"
    replaced = client.put(
        url,
        experiment_body(
            name="Cart test",
            placement="cart",
            variants=[
                {"name": "a", "is_control": True, "allocation": 34},
                {"name": "b", "allocation": 33},
                {"name": "c", "allocation": 33},
            ],
        ),
        format="json",
    ).json()
    assert (replaced["name"], replaced["placement"], [v["name"] for v in replaced["variants"]]) == (
        "Cart test",
        "cart",
        ["a", "b", "c"],
    )
    listed = client.get("/api/v1/experiments").json()
    assert (listed["count"], listed["results"][0]["id"]) == (1, experiment_id)
    scheduled = client.post(f"{url}/schedule", {"starts_at": "2031-01-05T09:00:00"}, format="json").json()
    assert (scheduled["status"], scheduled["starts_at"]) == ("scheduled", "2031-01-05T09:00:00+01:00")
    assert client.post(f"{url}/stop").json()["status"] == "draft"


def test_experiment_promote_refused_when_the_srm_check_fails(client, shop, placements, settings):
    settings.CAMPAIGNS_SRM_CHECK = "tests.campaigns.test_api.srm_always_fails"
    experiment_id = client.post("/api/v1/experiments", experiment_body(), format="json").json()["id"]
    client.post(f"/api/v1/experiments/{experiment_id}/start", {}, format="json")
    response = client.post(f"/api/v1/experiments/{experiment_id}/promote", {"variant": "trending"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "srm_failed")
    assert Experiment.objects.get(pk=experiment_id).status == "running"


def srm_always_fails(experiment: Experiment) -> bool:
    return False


def test_experiment_validation(client, shop, placements):
    response = client.post(
        "/api/v1/experiments",
        experiment_body(placement="nowhere", variants=[{"name": "a", "is_control": True, "allocation": 100}]),
        format="json",
    )
    assert response.json()["error"]["details"] == {"placement": ["no placement 'nowhere'"]}
    response = client.post(
        "/api/v1/experiments",
        experiment_body(variants=[{"name": "a", "is_control": True, "allocation": 100}]),
        format="json",
    )
    assert response.json()["error"]["details"] == {"variants": ["an experiment needs 2 to 10 variants"]}


# --- keys and tenancy -----------------------------------------------------------------------------------

COLLECTIONS = ["placements", "strategies", "promotions", "seasonal-boosts", "seasonal-suggestions", "experiments"]


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_publishable_key_is_refused(api, publishable_key, collection):
    client = api(publishable_key)
    item = f"/api/v1/{collection}/1" + ("/dismiss" if collection == "seasonal-suggestions" else "")
    for response in (
        client.get(f"/api/v1/{collection}", HTTP_ORIGIN="https://shop.example"),
        client.post(f"/api/v1/{collection}", {}, format="json", HTTP_ORIGIN="https://shop.example"),
        client.delete(item, HTTP_ORIGIN="https://shop.example"),
    ):
        assert response.status_code == 403
        assert response.json()["error"] == {
            "code": "secret_key_required",
            "message": "This operation needs a secret key (sk_...).",
            "details": {},
        }


def test_no_key_is_a_401(api):
    response = api(None).get("/api/v1/promotions")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "unauthenticated")


@pytest.fixture
def foreign(db):
    """Objects of another shop, one of each kind."""
    other = ShopFactory(slug="other-shop")
    placement = PlacementFactory(shop=other, slug="secret-placement")
    return {
        "shop": other,
        "placement": placement,
        "strategy": placement.default_strategy,
        "promotion": PromotionFactory(shop=other, name="Their sale"),
        "boost": SeasonalBoostFactory(shop=other),
        "experiment": Experiment.objects.create(shop=other, placement=placement, name="Their test"),
        "suggestion": SeasonalSuggestion.objects.create(
            shop=other,
            category=Category.objects.create(shop=other, name="X", path="X"),
            first_day=date(2030, 1, 7),
            last_day=date(2030, 1, 13),
            lift=2.0,
            window_volume=100,
            suggested_factor=1.5,
        ),
    }


def test_other_shops_objects_are_not_found_and_not_listed(client, shop, foreign):
    urls = [
        "/api/v1/placements/secret-placement",
        f"/api/v1/strategies/{foreign['strategy'].pk}",
        f"/api/v1/promotions/{foreign['promotion'].pk}",
        f"/api/v1/seasonal-boosts/{foreign['boost'].pk}",
        f"/api/v1/experiments/{foreign['experiment'].pk}",
    ]
    for url in urls:
        for response in (
            client.get(url),
            client.patch(url, {"name": "Mine now"}, format="json"),
            client.put(url, {"name": "Mine now"}, format="json"),
            client.delete(url),
        ):
            assert response.status_code == 404, url
            assert response.json()["error"]["code"] == "not_found"
            assert "Their" not in response.content.decode()
    actions = [
        f"/api/v1/promotions/{foreign['promotion'].pk}/publish",
        f"/api/v1/promotions/{foreign['promotion'].pk}/pause",
        f"/api/v1/experiments/{foreign['experiment'].pk}/start",
        f"/api/v1/experiments/{foreign['experiment'].pk}/stop",
        f"/api/v1/experiments/{foreign['experiment'].pk}/schedule",
        f"/api/v1/experiments/{foreign['experiment'].pk}/promote",
        f"/api/v1/seasonal-suggestions/{foreign['suggestion'].pk}/accept",
        f"/api/v1/seasonal-suggestions/{foreign['suggestion'].pk}/dismiss",
    ]
    for url in actions:
        assert client.post(url, {}, format="json").status_code == 404, url
    for collection in COLLECTIONS:
        assert client.get(f"/api/v1/{collection}").json()["count"] == 0, collection
    # Nothing of theirs changed, nothing audited for them
    assert Promotion.objects.get(pk=foreign["promotion"].pk).status == "draft"
    assert Experiment.objects.get(pk=foreign["experiment"].pk).status == "draft"
    assert SeasonalBoost.objects.filter(shop=foreign["shop"]).count() == 1
    assert AuditEntry.objects.filter(shop=foreign["shop"]).count() == 0


def test_lists_are_paginated_and_capped(client, shop):
    for n in range(3):
        services.strategy_create(shop=shop, actor=ACTOR, fields={"name": f"S{n}", "config": CONFIG})
    page = client.get("/api/v1/strategies?limit=2").json()
    assert (page["count"], [s["name"] for s in page["results"]]) == (3, ["S0", "S1"])
    assert page["next"].endswith("limit=2&offset=2")
    assert client.get("/api/v1/strategies?limit=100000").json()["count"] == 3


def test_schema_documents_the_management_api(api, db):
    response = api(None).get("/api/v1/schema?format=json")
    assert response.status_code == 200
    text = response.content.decode()
    for operation in (
        "placements_list",
        "strategies_create",
        "promotions_partial_update",
        "promotions_publish",
        "seasonal_boosts_delete",
        "experiments_promote",
        "seasonal_suggestions_accept",
    ):
        assert f"operationId: {operation}" in text or f'"operationId": "{operation}"' in text, operation
