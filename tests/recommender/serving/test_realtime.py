"""Events accepted by POST /api/v1/events change the shopper's very next response.

Given a shop with trained collaborative (ALS, cold-start) and session (SASRec) models,
a shopper's events are folded into the personal vector, and the events of their live
session feed the session model, on the next request: no retrain, no restart.
"""

from datetime import UTC, datetime, timedelta

import pytest

from tests.factories import ShopFactory, make_key
from tests.recommender.serving.fixtures import placement, train
from tests.recommender.shop_data import build_shop_history

URL = "/api/v1/recommendations"


@pytest.fixture
def shop(db):
    shop = ShopFactory()
    build_shop_history(shop)
    # Light regularisation: on 40 products the default (tuned for real catalogs) learns
    # little beyond popularity, and this test is about serving what the model says.
    train(shop, ["trending", "sasrec"])
    train(shop, ["als"], {"regularization": 0.5, "factors": 8})
    train(shop, ["cold_start"], {"als": {"regularization": 0.5, "factors": 8}})
    placement(shop, "for-you", {"sources": {"personal": 1.0}, "size": 8})
    placement(shop, "this-visit", {"sources": {"session": 1.0}, "size": 8})
    return shop


def _views(category: int, shopper: str, *, minutes_ago: int, session: str = "") -> list[dict]:
    ts = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return [
        {
            "event_id": f"{shopper}-{category}-{p}",
            "type": "view",
            "shopper": shopper,
            "sku": f"P{p:04d}",
            "ts": (ts + timedelta(seconds=p)).isoformat(),
            **({"session": session} if session else {}),
        }
        for p in range(category, 40, 4)
    ]


def _get(client, placement_slug, shopper):
    body = client.get(URL, {"placement": placement_slug, "shopper": shopper, "explain": "1"}).json()
    return body["items"]


def test_events_are_folded_into_the_next_personal_list(api, shop, django_capture_on_commit_callbacks):
    client = api(make_key(shop, "secret"))
    before = _get(client, "for-you", "newcomer")
    assert {item["fallback"] for item in before} == {"trending"}  # nothing known: fallbacks only

    with django_capture_on_commit_callbacks(execute=True):  # ingestion drops the cached history on commit
        posted = client.post("/api/v1/events", {"events": _views(2, "newcomer", minutes_ago=120)}, format="json")
    assert posted.json()["accepted"] == 10

    after = _get(client, "for-you", "newcomer")
    assert all("personal" in item["sources"] and item["fallback"] is None for item in after)
    # The shopper looked at category 2 only; the folded-in vector points there.
    assert [int(item["sku"][1:]) % 4 for item in after] == [2] * 8


def test_the_live_session_feeds_the_session_model(api, shop, django_capture_on_commit_callbacks):
    client = api(make_key(shop, "secret"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/events", {"events": _views(1, "visitor", minutes_ago=600, session="old")}, format="json")
    # An old visit is history, not a live session: the session source has nothing to go on.
    before = _get(client, "this-visit", "visitor")
    assert {item["fallback"] for item in before} == {"trending"}

    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/v1/events", {"events": _views(3, "visitor", minutes_ago=5, session="now")}, format="json")
        client.post("/api/v1/events", {"events": _views(0, "other", minutes_ago=5, session="now")}, format="json")

    visitor = _get(client, "this-visit", "visitor")
    other = _get(client, "this-visit", "other")
    assert all("session" in item["sources"] and item["fallback"] is None for item in visitor + other)
    # Different live sessions, different lists (and the old visit no longer decides).
    assert [item["sku"] for item in visitor] != [item["sku"] for item in other]
    assert [item["sku"] for item in visitor] != [item["sku"] for item in before]
