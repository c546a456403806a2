"""The server-side Python example of the docs (static/recsite/examples/recsite_client.py),
run against a live server as a shop's backend would run it."""

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.conf import settings

from catalog.models import Event, Product
from tests.factories import ShopFactory, make_key

pytestmark = pytest.mark.timeout(60)

EXAMPLE = Path(settings.BASE_DIR) / "static/recsite/examples/recsite_client.py"


@pytest.fixture
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("recsite_client", EXAMPLE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Embedding requests the upsert queues (recorded here instead of going to a broker)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr("catalog.services.products_embed_enqueue", lambda **kwargs: calls.append(kwargs))
    return calls


def test_the_example_upserts_products_and_sends_events_with_a_secret_key(
    example: ModuleType, live_server: Any, embedded: list[dict[str, Any]]
) -> None:
    shop = ShopFactory()
    client = example.RecsiteClient(live_server.url, make_key(shop, "secret"))

    products = client.upsert_products(
        [
            {
                "sku": "MUG-1",
                "title": "Blue mug",
                "price": "12.50",
                "category": "Kitchen > Mugs",
                "url": "https://shop.example/p/MUG-1",
            },
            {"sku": "BAD-1"},  # a new product needs a title
        ]
    )
    event = client.event("purchase", shopper="customer-42", sku="MUG-1", price="12.50", quantity=2)
    first = client.send_events([event])
    again = client.send_events([event])  # the same event_id: counted once

    assert (products["created"], products["updated"], products["unchanged"]) == (1, 0, 0)
    assert [(r["index"], r["sku"], r["field"]) for r in products["rejected"]] == [(1, "BAD-1", "title")]
    assert (first["accepted"], first["duplicates"], first["rejected"]) == (1, 0, [])
    assert (again["accepted"], again["duplicates"]) == (0, 1)
    stored = Event.objects.get(shop=shop)
    assert (stored.event_id, stored.type, stored.sku, stored.quantity, str(stored.price)) == (
        event["event_id"],
        "purchase",
        "MUG-1",
        2,
        "12.50",
    )
    assert Product.objects.get(shop=shop, sku="MUG-1").category.path == "Kitchen > Mugs"
    assert len(embedded) == 1


def test_the_example_splits_large_batches_and_keeps_indexes(
    example: ModuleType, live_server: Any, embedded: list[dict[str, Any]]
) -> None:
    shop = ShopFactory()
    client = example.RecsiteClient(live_server.url, make_key(shop, "secret"))
    events = [client.event("view", shopper=f"s-{n}", sku="ANY", event_id=f"e-{n}") for n in range(230)]
    events[150]["type"] = "teleport"

    result = client.send_events(events)

    assert (result["accepted"], result["duplicates"]) == (229, 0)
    assert [(r["index"], r["event_id"], r["field"]) for r in result["rejected"]] == [(150, "e-150", "type")]
    assert Event.objects.filter(shop=shop).count() == 229


def test_api_errors_arrive_with_the_apis_code_and_message(example: ModuleType, live_server: Any) -> None:
    client = example.RecsiteClient(live_server.url, "sk_0123456789ab_not-a-real-key")
    with pytest.raises(example.RecsiteError) as error:
        client.send_events([client.event("view", shopper="s", sku="A")])
    assert (error.value.status, error.value.code) == (401, "unauthenticated")
    assert error.value.message == "Unknown, malformed or revoked API key."


def test_the_example_refuses_a_publishable_key(example: ModuleType) -> None:
    with pytest.raises(ValueError, match="secret key"):
        example.RecsiteClient("http://127.0.0.1:8000", "pk_abc_def")


def test_the_example_reads_recommendations_with_explanations(
    example: ModuleType, live_server: Any, embedded: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from catalog.audit import Actor
    from recsite.onboarding import shop_create

    created = shop_create(name="Example", slug="example", actor=Actor.system("tests"))

    exit_code = example.main(["--api", live_server.url, "--key", created.secret_key, "--placement", "home"])

    out = capsys.readouterr().out
    assert exit_code == 0, out
    assert "products: {'created': 2, 'updated': 0, 'unchanged': 0, 'rejected': []}" in out
    assert "recommendations for home (request " in out
    recs = example.RecsiteClient(live_server.url, created.secret_key).recommendations("home", explain=True)
    assert set(recs) >= {"request_id", "placement", "variant", "items"}
    assert recs["placement"] == "home"
