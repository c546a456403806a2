"""A product created through PUT /api/v1/products is recommended within 2 s (p95):
in the similar-items list of its nearest neighbour and in the new arrivals.

End to end, in real processes: a web server (gunicorn, its serving refresher thread
polling as in production) and a Celery worker consuming the embedding queue (the
packaged sentence-transformer), both on the test database. The broker is Redis when
TEST_REDIS_URL is set, else the file-system broker (tests.recommender.workers)."""

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest

from catalog import embedding
from catalog.audit import Actor
from catalog.models import Product, ProductEmbedding
from catalog.services import events_ingest, products_upsert
from catalog.tasks import products_embed_now
from recsite.onboarding import shop_create
from tests.recommender.serving.fixtures import placement, train
from tests.recommender.workers import REPO, wait_until, worker_environment

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GOAL_P95_S = 2.0
SOURCE_TOP = 3  # a new product is this close to the top of its twin's similar items, and of the new arrivals
EXISTING = [
    ("MUG-1", "Blue ceramic coffee mug", "Kitchen > Mugs"),
    ("KNIFE-1", "Stainless steel chef knife", "Kitchen > Knives"),
    ("PAN-1", "Cast iron frying pan", "Kitchen > Pans"),
    ("LAMP-1", "Brass reading lamp with linen shade", "Home > Lighting"),
    ("DUVET-1", "Organic cotton duvet cover", "Home > Bedding"),
    ("BOOT-1", "Waterproof leather hiking boots", "Fashion > Shoes"),
    ("JACKET-1", "Packable down rain jacket", "Fashion > Outerwear"),
    ("TENT-1", "Two-person backpacking tent", "Outdoor > Camping"),
    ("HELMET-1", "Road bike helmet with MIPS", "Outdoor > Cycling"),
    ("EARBUDS-1", "Wireless noise-cancelling earbuds", "Electronics > Audio"),
    ("CHARGER-1", "65 W USB-C laptop charger", "Electronics > Accessories"),
    ("SHEARS-1", "Bypass pruning shears for roses", "Garden > Tools"),
]
# Each new product is a close variant of one existing product: its nearest neighbour.
NEW = [
    ("MUG-2", "Blue ceramic coffee mug, large", "MUG-1"),
    ("KNIFE-2", "Stainless steel chef knife 8 inch", "KNIFE-1"),
    ("PAN-2", "Cast iron frying pan, 30 cm", "PAN-1"),
    ("LAMP-2", "Brass reading lamp with cotton shade", "LAMP-1"),
    ("DUVET-2", "Organic cotton duvet cover, king size", "DUVET-1"),
    ("BOOT-2", "Waterproof leather hiking boots for women", "BOOT-1"),
    ("JACKET-2", "Packable down rain jacket with hood", "JACKET-1"),
    ("TENT-2", "Three-person backpacking tent", "TENT-1"),
    ("HELMET-2", "Road bike helmet with MIPS, matte black", "HELMET-1"),
    ("EARBUDS-2", "Wireless noise-cancelling earbuds, white", "EARBUDS-1"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Child:
    """A subprocess with its output in a log file; ``stop`` ends it and its children."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                children = psutil.Process(self.process.pid).children(recursive=True)
                self.process.terminate()
                try:
                    self.process.wait(20)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
                for child in children:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        child.kill()
        self._log.close()


def _request(port: int, method: str, path: str, key: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _listed(port: int, key: str, placement_slug: str, sku: str, source: str, item: str | None = None) -> bool:
    """Whether ``sku`` is among the first SOURCE_TOP items of the placement's list and
    was proposed there by ``source`` (explain=1 names the sources), not merely filled
    in by a fallback: on a catalog this small the fallbacks list every product."""
    query = {"placement": placement_slug, "explain": "1", **({"item": item} if item else {})}
    body = _request(port, "GET", "/api/v1/recommendations?" + urllib.parse.urlencode(query), key)
    return any(i["sku"] == sku and source in i["sources"] for i in body["items"][:SOURCE_TOP])


def _setup_shop(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str]:
    created = shop_create(name="New products", slug="new-products", actor=Actor.system("tests"))
    shop = created.shop
    # Set-up products are embedded here, synchronously; only the new ones go through the queue.
    monkeypatch.setattr("catalog.services.products_embed_enqueue", lambda **kwargs: None)
    products_upsert(
        shop=shop,
        records=[{"sku": sku, "title": title, "category": category} for sku, title, category in EXISTING],
    )
    monkeypatch.undo()
    products_embed_now(
        shop_id=shop.pk, product_ids=list(Product.objects.filter(shop=shop).values_list("pk", flat=True))
    )
    now = time.time()
    events_ingest(
        shop=shop,
        records=[
            {"event_id": f"v{n}-{sku}", "type": "view", "shopper": f"s{n}", "sku": sku, "ts": now - 3600 + n}
            for n in range(3)
            for sku, _, _ in EXISTING
        ],
    )
    train(shop, ["trending", "text_similarity"])
    placement(shop, "similar-only", {"sources": {"similar": 1.0}, "size": 10})
    placement(shop, "new-only", {"sources": {"new_arrivals": 1.0}, "size": 10})
    return shop, created.secret_key


def test_new_products_are_recommended_within_two_seconds(tmp_path, artifact_dir, monkeypatch):
    shop, key = _setup_shop(monkeypatch)
    env = worker_environment(tmp_path, artifact_dir)
    env.update(API_THROTTLE_KEY_PER_MINUTE="1000000", API_THROTTLE_IP_PER_MINUTE="1000000")
    port = _free_port()
    worker = Child(
        "worker",
        [sys.executable, "-m", "celery", "-A", "recsite", "worker", "--queues", "embedding,default",
         "--concurrency", "1", "--pool", "prefork", "--without-gossip", "--without-mingle",
         "--without-heartbeat", "--loglevel", "INFO"],
        env,
        tmp_path,
    )  # fmt: skip
    web = Child(
        "web",
        [str(Path(sys.executable).parent / "gunicorn"), "recsite.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", "1", "--worker-class", "gthread", "--threads", "4", "--timeout", "120"],
        env,
        tmp_path,
    )  # fmt: skip
    timings = []
    try:
        wait_until(lambda: " ready." in worker.log() or not worker.alive(), timeout=120, what="the worker ready")
        assert worker.alive(), worker.log()[-3000:]

        def web_up() -> bool:
            with contextlib.suppress(OSError):
                return _request(port, "GET", "/healthz", key) == {"ok": True}
            return False

        wait_until(web_up, timeout=60, interval=0.2, what="the web server up")
        assert not _listed(port, key, "similar-only", "MUG-2", "similar", item="MUG-1")  # builds the serving state
        # "With a worker running": its pool process loads the sentence-transformer when it
        # starts, after the worker says it is ready; one product embedded shows it is warm.
        _request(port, "PUT", "/api/v1/products", key, {"products": [{"sku": "WARM-1", "title": "Warm-up product"}]})
        wait_until(
            lambda: ProductEmbedding.objects.filter(shop=shop, product__sku="WARM-1").exists(),
            timeout=180,
            interval=0.2,
            what="the worker to embed its first product",
        )

        for sku, title, twin in NEW:
            category = next(c for s, _, c in EXISTING if s == twin)
            answer = _request(
                port, "PUT", "/api/v1/products", key, {"products": [{"sku": sku, "title": title, "category": category}]}
            )
            assert answer["created"] == 1
            committed = time.monotonic()
            seen: dict[str, float] = {}
            while len(seen) < 2 and time.monotonic() - committed < 15:
                if "new" not in seen and _listed(port, key, "new-only", sku, "new_arrivals"):
                    seen["new"] = time.monotonic() - committed
                if "similar" not in seen and _listed(port, key, "similar-only", sku, "similar", item=twin):
                    seen["similar"] = time.monotonic() - committed
                time.sleep(0.02)
            timings.append((sku, seen.get("new", float("inf")), seen.get("similar", float("inf"))))
    finally:
        web.stop()
        worker.stop()

    print("new product -> new arrivals / similar items of its twin (s):", timings)
    visible = [max(new, similar) for _, new, similar in timings]
    assert np.percentile(visible, 95) <= GOAL_P95_S, timings
    # The twin is indeed among each new product's nearest neighbours by text embedding.
    vectors = {
        sku: embedding.vector_from_bytes(bytes(vector))
        for sku, vector in ProductEmbedding.objects.filter(shop=shop).values_list("product__sku", "vector")
    }
    for sku, _, twin in NEW:
        others = sorted((s for s in vectors if s != sku), key=lambda s: -float(vectors[s] @ vectors[sku]))
        assert twin in others[:3], (sku, others[:3])
