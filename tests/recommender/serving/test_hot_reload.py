"""Hot reload: a version activated or rolled back is served within seconds, by the
background refresher, while requests keep coming, and no request fails.

Real threads and the real refresher thread, on a database that commits (the
refresher reads with its own connection)."""

import threading
import time

import pytest
from django.db import connection

from recommender.models import ActiveModel, ServedList
from recommender.registry import model_rollback, model_version_activate
from recommender.serving.log import served_log
from recommender.serving.state import registry
from tests.factories import ShopFactory
from tests.recommender.serving.fixtures import SYSTEM, placement, serve, train
from tests.recommender.shop_data import build_shop_history

pytestmark = pytest.mark.django_db(transaction=True)

SWAP_WITHIN_S = 5.0
CLIENTS = 4


def test_versions_swap_under_concurrent_requests_without_a_failure(settings):
    settings.SERVING_BACKGROUND_THREADS = True
    settings.SERVING_REFRESH_S = 0.2
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending", "als"])
    placement(shop, "home", {"sources": {"personal": 1.0, "trending": 1.0}, "size": 10})
    first = ActiveModel.objects.get(shop=shop, kind="trending").version_id
    serve(shop, "home")  # builds the state and starts the refresher

    served_versions: list[tuple[float, int]] = []
    failures: list[BaseException] = []
    short: list[int] = []
    stop = threading.Event()

    def client(n: int) -> None:
        try:
            while not stop.is_set():
                served = serve(shop, "home", shopper_id=f"s-{n}")
                served_versions.append((time.monotonic(), served.model_versions["trending"]))
                if len(served.items) != 10:
                    short.append(len(served.items))
        except BaseException as error:  # any failure of a request fails the test
            failures.append(error)
        finally:
            connection.close()  # this thread's own connection (the shopper history read)

    def wait_for(version_id: int, since: float) -> float:
        deadline = since + SWAP_WITHIN_S
        while time.monotonic() < deadline:
            if any(at > since and v == version_id for at, v in served_versions[-CLIENTS * 4 :]):
                return time.monotonic() - since
            time.sleep(0.02)
        since_then = [v for at, v in served_versions if at > since]
        raise AssertionError(
            f"version {version_id} not served within {SWAP_WITHIN_S} s: {len(since_then)} requests since, "
            f"serving {sorted(set(since_then))}; failures {failures[:3]}"
        )

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        (second,) = train(shop, ["trending"], {"half_life_days": 0.01})
        started = time.monotonic()
        model_version_activate(version=second, actor=SYSTEM)
        to_second = wait_for(second.pk, started)
        started = time.monotonic()
        model_rollback(shop=shop, kind="trending", actor=SYSTEM)
        back_to_first = wait_for(first, started)
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        registry.stop()
        served_log.stop()  # the flusher wrote in the background; the rest is written now

    assert failures == []
    assert short == []
    # Every list served during the swaps is in the log, once.
    assert ServedList.objects.filter(shop=shop).count() == len(served_versions) + 1
    assert to_second < SWAP_WITHIN_S and back_to_first < SWAP_WITHIN_S
    # Once swapped, every later request serves the new version: no request sees a mix.
    assert {v for at, v in served_versions if at > started + back_to_first + 0.3} == {first}
    assert len(served_versions) > 50
