"""Concurrent senders on Postgres: real threads, each with its own database connection."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from catalog.audit import Actor
from catalog.models import Event, Shopper
from catalog.services import events_ingest, shopper_erase, shopper_key_hash
from tests.factories import ProductFactory, ShopFactory, event_payload, make_key

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
SENDERS = 20


def run_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(n)`` in ``count`` threads released together; their results, in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def thread_main(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[n] = work(n)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=thread_main, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_20_concurrent_senders_of_one_event_id_make_exactly_one_row():
    # Given a shop, and 20 senders with the same event (each its own connection)
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-A")
    key = make_key(shop, "secret")

    def send(n: int) -> dict[str, Any]:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        response = client.post("/api/v1/events", {"events": [event_payload(1, shopper=f"s-{n}")]}, format="json")
        assert response.status_code == 200, response.content
        return response.json()

    # When they all send at once
    answers = run_at_once(SENDERS, send)
    # Then exactly one row exists, one sender was told "accepted" and 19 "duplicate"
    assert Event.objects.filter(shop=shop, event_id="e-1").count() == 1
    assert sorted((a["accepted"], a["duplicates"]) for a in answers) == [(0, 1)] * (SENDERS - 1) + [(1, 0)]


def test_concurrent_batches_with_overlapping_ids_in_opposite_orders_neither_deadlock_nor_double():
    # Given 20 senders whose batches share ids, half of them in reverse order, each
    # holding its transaction open a moment after inserting (so they overlap)
    shop = ShopFactory()
    events_ingest(shop=shop, records=[event_payload(1000 + n, shopper=f"s-{n}") for n in range(7)])
    batch = [event_payload(n, shopper=f"s-{n % 7}") for n in range(60)]

    def send(n: int) -> int:
        with transaction.atomic():
            result = events_ingest(shop=shop, records=batch if n % 2 else list(reversed(batch)))
            time.sleep(0.05)
        return result.accepted

    # When they send at once
    accepted = run_at_once(SENDERS, send)
    # Then none deadlocked, every id is stored once and acknowledged as new once; 7 shoppers exist
    assert Event.objects.filter(shop=shop).count() == 60 + 7
    assert sum(accepted) == 60
    assert Shopper.objects.filter(shop=shop).count() == 7


def test_an_erasure_racing_ingestion_leaves_no_event_of_the_erased_shopper():
    # Given a shopper with events, and ingestion of more of their events racing an erasure
    shop = ShopFactory()
    key = make_key(shop, "secret")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    client.post("/api/v1/events", {"events": [event_payload(0, shopper="bob")]}, format="json")

    def act(n: int) -> str:
        if n == 0:
            shopper_erase(shop=shop, external_id="bob", actor=Actor.system("test"))
            return "erased"
        sender = APIClient()
        sender.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        sender.post("/api/v1/events", {"events": [event_payload(n, shopper="bob")]}, format="json")
        return "sent"

    # When both run at once
    run_at_once(10, act)
    # Then every event left belongs to a shopper row that exists (a fresh "bob" after the
    # erasure), and none points to the erased row
    bob_now = Shopper.objects.filter(shop=shop, key_hash=shopper_key_hash(shop, "bob")).first()
    left = Event.objects.filter(shop=shop)
    if bob_now is None:
        assert left.count() == 0
    else:
        assert set(left.values_list("shopper_id", flat=True)) <= {bob_now.pk}
    assert not left.exclude(shopper_id__in=Shopper.objects.values("pk")).exists()
