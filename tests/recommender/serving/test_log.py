"""The served-list log: every served list becomes one ServedList row, written in a batch
after the response, with exactly what was served and why."""

import hashlib
import hmac
import threading
import time
import uuid

import pytest
from django.db import OperationalError
from django.utils import timezone

from campaigns.services import experiment_create, experiment_start
from catalog.models import Shopper
from catalog.services import shopper_key_hash
from recommender.models import ModelVersion, ServedList
from recommender.serving.log import FLUSH_INTERVAL_S, ServedRecord, served_log
from tests.factories import ShopFactory, make_key
from tests.recommender.serving.fixtures import SYSTEM, placement, train
from tests.recommender.shop_data import build_shop_history

URL = "/api/v1/recommendations"


@pytest.fixture
def shop(db):
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending"])
    placement(shop, "home", {"sources": {"trending": 1.0}, "size": 3})
    return shop


def test_served_lists_are_written_after_the_response_in_one_batch(api, shop):
    client = api(make_key(shop, "secret"))
    known = Shopper.objects.create(shop=shop, key_hash=shopper_key_hash(shop, "s-1"))
    first = client.get(URL, {"placement": "home", "shopper": "s-1", "item": ["P0001", "UNKNOWN"]}).json()
    second = client.get(URL, {"placement": "home"}).json()
    assert ServedList.objects.count() == 0  # nothing written on the request path
    assert served_log.pending() == 2

    assert served_log.flush() == 2
    assert served_log.pending() == 0

    trending = ModelVersion.objects.get(shop=shop, kind="trending")
    row = ServedList.objects.get(request_id=uuid.UUID(first["request_id"]))
    assert (row.shop_id, row.placement_slug, row.experiment_id, row.experiment_version, row.variant) == (
        shop.pk,
        "home",
        None,
        None,
        "",
    )
    assert row.shopper == known
    assert row.unit_hash == hmac.new(shop.shopper_secret.encode(), b"unit\x00s-1", hashlib.sha256).hexdigest()
    assert row.unit_hash != row.shopper.key_hash
    assert row.session == ""
    assert row.context_skus == ["P0001", "UNKNOWN"]
    assert row.model_versions == {"trending": trending.pk}
    assert row.latency_ms > 0
    assert abs((timezone.now() - row.served_at).total_seconds()) < 60
    assert [(i["sku"], i["position"]) for i in row.items] == [
        (item["sku"], n) for n, item in enumerate(first["items"], 1)
    ]
    for logged, served in zip(row.items, first["items"], strict=True):
        assert set(logged) == {
            "product_id",
            "sku",
            "position",
            "score",
            "sources",
            "promotion_ids",
            "seasonal_boost_ids",
            "reasons",
        }
        assert logged["product_id"] == shop.products.get(sku=served["sku"]).pk
        assert logged["score"] == pytest.approx(served["score"], abs=1e-4)
        assert set(logged["sources"]) == {"trending"}
        assert logged["promotion_ids"] == [] and logged["reasons"] == served["reasons"]
    anonymous = ServedList.objects.get(request_id=uuid.UUID(second["request_id"]))
    assert (anonymous.shopper, anonymous.unit_hash, anonymous.context_skus) == (None, "", [])


def test_erasing_the_shopper_leaves_no_link_in_the_log(api, shop, django_capture_on_commit_callbacks):
    client = api(make_key(shop, "secret"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/api/v1/events",
            {
                "events": [
                    {
                        "event_id": "e1",
                        "type": "view",
                        "shopper": "s-9",
                        "sku": "P0001",
                        "ts": timezone.now().isoformat(),
                    }
                ]
            },
            format="json",
        )
    client.get(URL, {"placement": "home", "shopper": "s-9"})
    served_log.flush()
    assert ServedList.objects.get().shopper is not None

    assert client.delete("/api/v1/shoppers/s-9").json()["found"] is True

    assert ServedList.objects.get().shopper is None


def test_experiment_exposures_are_logged_with_their_variant(api, shop):
    from campaigns.models import Placement
    from campaigns.services import VariantSpec

    home = Placement.objects.get(shop=shop, slug="home")
    experiment = experiment_create(
        shop=shop,
        actor=SYSTEM,
        fields={"name": "Test", "placement": home, "holdout_percent": 0},
        variants=[VariantSpec(name="a", is_control=True, allocation=50), VariantSpec(name="b", allocation=50)],
    )
    experiment_start(experiment=experiment, actor=SYSTEM)
    from recommender.serving.state import registry

    registry.refresh(shop.pk)
    client = api(make_key(shop, "secret"))

    variants = {client.get(URL, {"placement": "home", "shopper": f"s-{n}"}).json()["variant"] for n in range(20)}
    served_log.flush()

    assert variants == {"a", "b"}
    experiment.refresh_from_db()
    rows = ServedList.objects.filter(shop=shop)
    assert {(r.experiment_id, r.experiment_version, r.variant) for r in rows} == {
        (experiment.pk, experiment.version, "a"),
        (experiment.pk, experiment.version, "b"),
    }


def _orphan(shop_id: int) -> ServedRecord:
    """A list served for a shop that is gone by the time the log writes it."""
    return ServedRecord(
        request_id=uuid.uuid4(),
        shop_id=shop_id,
        placement_slug="home",
        experiment_id=None,
        experiment_version=None,
        variant="",
        shopper_key_hash="",
        unit_hash="",
        session="",
        context_skus=[],
        items=[],
        model_versions={},
        latency_ms=1.0,
        served_at=timezone.now(),
    )


@pytest.mark.django_db(transaction=True)  # foreign keys are checked when a transaction commits
def test_a_list_the_database_refuses_is_left_out_without_blocking_the_others(api):
    shop = ShopFactory()
    build_shop_history(shop)
    placement(shop, "home", {"sources": {"new_arrivals": 1.0}, "size": 3})
    client = api(make_key(shop, "secret"))
    gone = ShopFactory()
    gone_id = gone.pk
    gone.delete()
    first = client.get(URL, {"placement": "home"}).json()
    served_log.record(_orphan(gone_id))
    last = client.get(URL, {"placement": "home"}).json()
    rejected_before = served_log.rejected

    assert served_log.flush() == 2

    assert served_log.pending() == 0  # nothing is retried forever
    assert served_log.rejected == rejected_before + 1
    assert {str(r) for r in ServedList.objects.values_list("request_id", flat=True)} == {
        first["request_id"],
        last["request_id"],
    }


def test_a_batch_the_database_cannot_take_now_is_kept_and_written_later(api, shop, monkeypatch):
    client = api(make_key(shop, "secret"))
    client.get(URL, {"placement": "home"})
    client.get(URL, {"placement": "home"})

    def down(batch):
        raise OperationalError("the database is restarting")

    monkeypatch.setattr("recommender.serving.log._write", down)
    with pytest.raises(OperationalError):
        served_log.flush()
    assert served_log.pending() == 2 and ServedList.objects.count() == 0

    monkeypatch.undo()
    assert served_log.flush() == 2
    assert ServedList.objects.count() == 2


@pytest.mark.django_db(transaction=True)  # the flusher thread writes with its own connection
def test_the_flusher_thread_writes_in_the_background_and_stops(api, settings):
    settings.SERVING_BACKGROUND_THREADS = True
    shop = ShopFactory()
    build_shop_history(shop)
    placement(shop, "home", {"sources": {"new_arrivals": 1.0}, "size": 3})
    client = api(make_key(shop, "secret"))

    served = [client.get(URL, {"placement": "home"}).json()["request_id"] for _ in range(5)]
    deadline = time.monotonic() + 10 * FLUSH_INTERVAL_S
    while ServedList.objects.count() < 5 and time.monotonic() < deadline:
        time.sleep(0.05)

    assert {str(r) for r in ServedList.objects.values_list("request_id", flat=True)} == set(served)
    served_log.stop()
    assert not any(t.name == "served-list-flusher" and t.is_alive() for t in threading.enumerate())
