"""GET /api/v1/recommendations: the public contract (ARCHITECTURE.md, v1).

Given a shop with its default placements, a trained trending model and 40 products,
the endpoint answers the contract's fields, validates its parameters with clear 400s,
answers 404 for an unknown placement, keeps explanations to secret keys, and echoes
CORS only for the key's allowed origins.
"""

import os
import time
import uuid

import pytest
import redis
import yaml

from campaigns.services import placements_create_defaults
from tests.factories import ShopFactory, make_key
from tests.recommender.serving.fixtures import SYSTEM, train
from tests.recommender.shop_data import build_shop_history

URL = "/api/v1/recommendations"
ITEM_FIELDS = {"sku", "title", "url", "image_url", "price", "score", "reasons"}


@pytest.fixture
def shop(db):
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending"])
    placements_create_defaults(shop=shop, actor=SYSTEM)
    return shop


@pytest.fixture
def sk(shop):
    return make_key(shop, "secret")


@pytest.fixture
def pk(shop):
    return make_key(shop, "publishable", allowed_origins=["https://shop.example"])


def test_the_response_has_the_contract_fields(api, sk):
    response = api(sk).get(URL, {"placement": "home", "shopper": "s-1"})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"request_id", "placement", "variant", "items"}
    assert uuid.UUID(body["request_id"])
    assert (body["placement"], body["variant"]) == ("home", None)
    assert len(body["items"]) == 12  # the home strategy's size
    for item in body["items"]:
        assert set(item) == ITEM_FIELDS
        assert item["price"] == "0.00"
        assert isinstance(item["score"], float) and isinstance(item["reasons"], list)
    assert len({item["sku"] for item in body["items"]}) == 12


def test_every_request_gets_its_own_request_id(api, sk):
    first = api(sk).get(URL, {"placement": "home"}).json()
    second = api(sk).get(URL, {"placement": "home"}).json()

    assert first["request_id"] != second["request_id"]
    assert first["items"] == second["items"]


@pytest.mark.parametrize(("limit", "count"), [("1", 1), ("7", 7), ("50", 40)])
def test_limit_sets_the_size_up_to_what_the_shop_has(api, sk, limit, count):
    response = api(sk).get(URL, {"placement": "home", "limit": limit})

    assert response.status_code == 200
    assert len(response.json()["items"]) == count


@pytest.mark.parametrize("limit", ["0", "51", "-1", "ten", "", "2.5", "\u00b2", "\u0663"])
def test_a_limit_out_of_bounds_is_a_clear_400(api, sk, limit):
    response = api(sk).get(URL, {"placement": "home", "limit": limit})

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "The request is not valid; see details.",
            "details": {"limit": ["must be a whole number from 1 to 50"]},
        }
    }


def test_placement_is_required(api, sk):
    response = api(sk).get(URL, {"shopper": "s-1"})

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"placement": ["is required: the slug of one of your placements"]}


def test_bad_shopper_and_items_are_named(api, sk):
    response = api(sk).get(URL, {"placement": "home", "shopper": "x" * 300, "item": ["ok", "bad\x00sku"]})

    assert response.status_code == 400
    assert response.json()["error"]["details"] == {
        "shopper": ["must be at most 256 characters, got 300"],
        "item": ["'bad\\x00sku' must not contain control characters, NUL or lone surrogates"],
    }


def test_an_unknown_placement_is_a_404_in_the_error_shape(api, sk):
    response = api(sk).get(URL, {"placement": "nowhere"})

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "unknown_placement", "message": "No placement 'nowhere' in this shop.", "details": {}}
    }


def test_unknown_shoppers_and_items_still_get_a_full_list(api, sk):
    response = api(sk).get(URL, {"placement": "product", "shopper": "who?", "item": ["NO-SUCH-SKU"]})

    assert response.status_code == 200
    assert len(response.json()["items"]) == 8  # the product strategy's size


def test_context_items_are_not_recommended(api, sk):
    anonymous = api(sk).get(URL, {"placement": "category", "limit": "40"}).json()["items"]
    top = anonymous[0]["sku"]

    response = api(sk).get(URL, {"placement": "category", "item": top, "limit": "40"})

    assert top not in [item["sku"] for item in response.json()["items"]]


def test_explain_adds_provenance_for_a_secret_key(api, sk):
    response = api(sk).get(URL, {"placement": "home", "explain": "1"})

    assert response.status_code == 200
    body = response.json()
    assert set(body["explain"]) == {
        "strategy_id",
        "strategy",
        "promotions_apply",
        "experiment_id",
        "model_versions",
        "live_rules",
        "removed",
        "notes",
    }
    assert set(body["explain"]["model_versions"]) == {"trending"}
    first = body["items"][0]
    assert set(first) == ITEM_FIELDS | {
        "sources",
        "promotion_ids",
        "seasonal_boost_ids",
        "pinned_slot",
        "buried",
        "fallback",
    }
    assert set(first["sources"]) <= {"personal", "trending", "session", "new_arrivals"}
    assert "trending" in first["sources"]


def test_explain_is_refused_to_a_publishable_key(api, pk):
    response = api(pk).get(URL, {"placement": "home", "explain": "1"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "secret_key_required"
    assert api(pk).get(URL, {"placement": "home", "explain": "0"}).status_code == 200


def test_a_publishable_key_from_its_origin_gets_the_origin_echoed_without_credentials(api, pk):
    response = api(pk).get(URL, {"placement": "home"}, HTTP_ORIGIN="https://shop.example")

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Access-Control-Allow-Credentials" not in response
    assert "Origin" in response["Vary"]


def test_a_publishable_key_from_another_origin_is_refused_without_cors(api, pk):
    response = api(pk).get(URL, {"placement": "home"}, HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Credentials" not in response


def test_a_key_is_required(api):
    response = api(None).get(URL, {"placement": "home"})

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_another_shops_placement_is_not_found(api, sk, db):
    other = ShopFactory()
    placements_create_defaults(shop=other, actor=SYSTEM)
    from tests.recommender.serving.fixtures import placement

    placement(other, "only-there", {"sources": {"trending": 1.0}})

    assert api(sk).get(URL, {"placement": "only-there"}).status_code == 404


def test_the_schema_documents_the_endpoint(api, db):
    schema = yaml.safe_load(api(None).get("/api/v1/schema").content)

    operation = schema["paths"]["/api/v1/recommendations"]["get"]
    assert operation["operationId"] == "recommendations_get"
    assert {p["name"]: p.get("required", False) for p in operation["parameters"]} == {
        "placement": True,
        "shopper": False,
        "item": False,
        "limit": False,
        "explain": False,
    }
    item = schema["components"]["schemas"]["RecommendedItem"]
    assert set(item["required"]) == {"sku", "title", "url", "image_url", "price", "score", "reasons"}


@pytest.mark.skipif(not os.environ.get("TEST_REDIS_URL"), reason="needs TEST_REDIS_URL=redis://...")
def test_with_redis_a_personal_request_reads_the_shoppers_history_in_the_throttles_round_trip(
    api, sk, settings, monkeypatch
):
    # Given the cache in Redis (production), and the shopper's history cached by a first request
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["TEST_REDIS_URL"],
            "KEY_PREFIX": f"test-prefetch-{os.getpid()}-{time.time_ns()}",
        }
    }
    client = api(sk)
    first = client.get(URL, {"placement": "home", "shopper": "s-1"})
    round_trips = []
    single, pipelined = redis.Redis.execute_command, redis.client.Pipeline.execute

    def command(self, *args, **options):
        round_trips.append(args[0])
        return single(self, *args, **options)

    def pipeline(self, *args, **options):
        round_trips.append(f"pipeline of {len(self.command_stack)}")
        return pipelined(self, *args, **options)

    monkeypatch.setattr(redis.Redis, "execute_command", command)
    monkeypatch.setattr(redis.client.Pipeline, "execute", pipeline)
    # When the shopper asks again
    second = client.get(URL, {"placement": "home", "shopper": "s-1"})
    # Then one round trip counts the throttles' two windows (SET NX + INCR each) and
    # reads the history, and the list is the one the history gives
    assert round_trips == ["pipeline of 5"]
    assert second.status_code == 200
    assert [i["sku"] for i in second.json()["items"]] == [i["sku"] for i in first.json()["items"]]
