"""``make bench-serve``: the recommendation API under load, next to a trivial endpoint.

    python -m recommender.bench.serve [--products 100000] [--events 1000000]
                                      [--big-products 1000000] [--big-events 1000000] [--skip-big]

In one run, all on 127.0.0.1, bounded in time, cleaning up after itself:

1. A fresh Postgres database (``recsite_bench_serve``), migrated; Redis database 12 as
   the cache (shopper histories, throttle counters), flushed.
2. A synthetic shop (catalog.demo's generator): 100k products through the product
   import, a text embedding per product (a unit vector near its category's: the real
   encoder would take an hour on two cores, see bench-train), 1M events through the
   event import. Every model kind is trained by the training service, in this process.
   200 live promotions (pins, boosts, buries, excludes, restricts; SKU, category,
   brand, tag, attribute and newness targets) and 20 seasonal boosts are created
   through the campaigns services. Placement ``home`` serves the default home
   strategy with promotions; ``home-plain`` the same strategy with promotions off.
3. The serving state is built once here, so the approximate indexes are built, tuned
   (recall@20 against exact search) and cached for the web workers.
4. gunicorn (sync workers, a count chosen for 2 cores) serves recsite with the trivial
   endpoint of recommender.bench.serve_urls added. wrk, 16 connections, drives in
   interleaved rounds: (a) the trivial endpoint (same key authentication, origin check
   and throttles, a fixed 10-item list); (b) GET /api/v1/recommendations on
   ``home-plain`` for a known shopper drawn per request from 2,000 (fold-in on); (c) the
   same on ``home`` (rules on). The rules' cost is the difference of the median
   serving latency that the served-list log recorded for (c) and (b), requests of the
   same run; wrk's medians are shown too.
5. The same at 1M products (1M events; trending and ALS, the models the home
   strategy's trending and personal sources read; the personal retrieval is the
   approximate index): trivial vs personalised. The recall@20 targets are measured
   on the folded-in queries of load shoppers, against exact search, for every
   approximate index of the shop (the target is the lowest).

Prints a table, then one line per target (``target <name>: <measured> (goal <goal>)
met|missed``), and writes the same to bench-results/serve.txt. The machine is shared:
the load average is printed, and both endpoints are measured side by side in the same
rounds.
"""

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from recsite.bench.gunicorn import cpu_seconds, gunicorn_server

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "recsite_bench_serve")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
PORT = int(os.environ.get("BENCH_PORT", "8766"))
# Sync workers, one per core, measured on this 2-core machine: recommendations 940
# req/s with 2 workers vs 870 with 3 (p99 36 vs 43 ms; CPU 1.7 vs 1.9 ms a request: a
# third worker only adds context switches), the trivial endpoint 2,410 vs 2,570 req/s.
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", "2"))
ROUND_SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
WRK_CONNECTIONS = 16
WRK_THREADS = 2
LOAD_SHOPPERS = 2000
PROMOTIONS = 200
SEASONAL_BOOSTS = 20
RESULTS = ROOT / "bench-results" / "serve.txt"
GOAL_RATIO = 0.60
GOAL_P99_MS = 25.0
GOAL_RECALL = 0.95
GOAL_RULES_MS = 1.0
SASREC_STEPS = 100


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)
    table: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"  {name}: {value}", flush=True)

    def target(self, name: str, measured: float, goal: float, met: bool, unit: str, fmt: str = ".2f") -> None:
        comparison = ">=" if name.startswith(("throughput", "ann_recall")) else "<="
        line = (
            f"target {name}: {measured:{fmt}}{unit} (goal {comparison} {goal:{fmt}}{unit}) {'met' if met else 'missed'}"
        )
        self.targets.append(line)
        print(line, flush=True)

    def text(self) -> str:
        width = max((len(name) for name, _ in self.rows), default=10)
        lines = ["recsite bench-serve", *self.notes, ""]
        lines += [f"{name:<{width}}  {value}" for name, value in self.rows]
        return "\n".join([*lines, "", *self.table, "", *self.targets, ""])


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- set-up --------------------------------------------------------------------------------------


def _admin_connect() -> Any:
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)


def _recreate_database() -> None:
    with _admin_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')


def _drop_database() -> None:
    from django.db import connections

    connections.close_all()
    with _admin_connect() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')


def _run(command: list[str], env: dict[str, str], timeout: int = 900) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


@dataclass
class BenchShop:
    shop: Any
    secret_key: str
    shoppers_file: Path
    catalog: Any  # catalog.demo.SyntheticCatalog


def _embeddings_copy(shop: Any, seed: int = 7) -> None:
    """A unit vector near its category's for every product (as recommender.bench.synthetic)."""
    import numpy as np
    from django.db import connection, transaction

    from catalog import embedding
    from catalog.models import Product, ProductEmbedding

    rng = np.random.default_rng(seed)
    rows = list(Product.objects.filter(shop=shop).order_by("id").values_list("id", "category_id"))
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    raw = np.array([r[1] or 0 for r in rows], dtype=np.int64)
    _, category = np.unique(raw, return_inverse=True)
    centres = rng.standard_normal((int(category.max()) + 1, embedding.DIMENSIONS)).astype(np.float32)
    written = (datetime.now(UTC) - timedelta(days=1)).isoformat()  # before training: not "fresh"
    table = ProductEmbedding._meta.db_table
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(
            f"COPY {table} (product_id, shop_id, model_name, text_hash, vector, updated_at) FROM STDIN"
        ) as copy,
    ):
        for start in range(0, len(ids), 10_000):
            part = slice(start, start + 10_000)
            vectors = centres[category[part]] + 0.7 * rng.standard_normal(
                (len(ids[part]), embedding.DIMENSIONS), dtype=np.float32
            )
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            for product_id, vector in zip(ids[part].tolist(), vectors, strict=True):
                copy.write_row(
                    (
                        product_id,
                        shop.pk,
                        embedding.MODEL_NAME,
                        f"{product_id:064x}",
                        embedding.vector_to_bytes(vector),
                        written,
                    )
                )


def _products_copy(shop: Any, products: Any) -> None:
    """The 1M-product catalog straight into the table with COPY (the upsert path, 500 a
    transaction with validation, would take most of the bench's time budget)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    from django.db import connection, transaction
    from django.db.models import F

    from catalog.models import Product, Shop
    from catalog.services import categories_ensure

    paths = sorted(set(products.column("category").to_pylist()))
    category_ids = {path: category.pk for path, category in categories_ensure(shop, paths).items()}
    now = datetime.now(UTC)
    n = products.num_rows
    tags = pc.binary_join_element_wise('["', pc.replace_substring(products.column("tags"), "|", '","'), '"]', "")
    created = pa.array([(now - timedelta(seconds=n - i)).isoformat() for i in range(n)])
    table = pa.table(
        {
            "shop_id": pa.array([shop.pk] * n, pa.int64()),
            "sku": products.column("sku"),
            "title": products.column("title"),
            "description": products.column("description"),
            "category_id": pa.array([category_ids[p] for p in products.column("category").to_pylist()], pa.int64()),
            "brand": products.column("brand"),
            "price": products.column("price"),
            "url": products.column("url"),
            "image_url": products.column("image_url"),
            "tags": tags,
            "attributes": products.column("attributes"),
            "in_stock": pa.array([True] * n),
            "active": pa.array([True] * n),
            "created_at": created,
            "updated_at": created,
        }
    )
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    columns = ", ".join(table.column_names)
    with transaction.atomic(), connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {Product._meta.db_table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
            data = buffer.getvalue()
            chunk = 8 << 20
            for start in range(0, len(data), chunk):
                copy.write(data[start : start + chunk])
        Shop.objects.filter(pk=shop.pk).update(catalog_version=F("catalog_version") + 1)
        cursor.execute(f"ANALYZE {Product._meta.db_table}")


def _shop_setup(
    work: Path, *, slug: str, products: int, events: int, seed: int, bulk_products: bool, report: Report
) -> BenchShop:
    from catalog import demo
    from catalog.audit import Actor
    from catalog.importing import import_events, import_products
    from recsite.onboarding import shop_create

    actor = Actor.system("bench-serve")
    created = shop_create(name=f"Bench {slug}", slug=slug, actor=actor)
    shop = created.shop
    started = time.monotonic()
    catalog = demo.synthetic_catalog(products, seed=seed)
    if bulk_products:
        _products_copy(shop, catalog.products)
        how = "COPY"
    else:
        import_products(shop=shop, path=demo.write_csv(catalog.products, work / f"{slug}-products.csv"))
        how = "import_products"
    report.row(f"{slug}: products", f"{products:,} via {how} in {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    table = demo.synthetic_events(catalog, events, seed=seed, days=90)
    result = import_events(shop=shop, path=demo.write_csv(table, work / f"{slug}-events.csv"))
    report.row(f"{slug}: events", f"{result.accepted:,} via import_events in {time.monotonic() - started:.0f} s")
    shoppers = work / f"{slug}-shoppers.txt"
    shoppers.write_text("".join(f"syn-shopper-{n}\n" for n in range(LOAD_SHOPPERS)))
    del table
    return BenchShop(shop=shop, secret_key=created.secret_key, shoppers_file=shoppers, catalog=catalog)


def _train(shop: Any, kinds: list[str], report: Report, config: dict[str, dict[str, Any]] | None = None) -> None:
    from catalog.audit import Actor
    from recommender import training
    from recommender.models import ModelVersion, TrainingRun

    for kind in kinds:
        started = time.monotonic()
        (requested,) = training.training_run_request(
            shop=shop, kinds=[kind], actor=Actor.system("bench-serve"), config=(config or {}).get(kind), enqueue=False
        )
        run = training.training_run_execute(run_id=requested.run.pk)
        if run is None or run.status != TrainingRun.Status.SUCCEEDED:
            raise RuntimeError(f"training {kind} failed: {run and run.error}")
        version = ModelVersion.objects.get(training_run=run)
        report.row(
            f"{shop.slug}: trained {kind}",
            f"{time.monotonic() - started:.0f} s, ndcg@10 {version.metrics.get('ndcg_at_10', 0):.4f}",
        )


def _plain_placement(shop: Any) -> None:
    """``home-plain``: the home placement's strategy with promotions off."""
    from campaigns.models import Placement
    from campaigns.services import placement_create
    from catalog.audit import Actor

    home = Placement.objects.get(shop=shop, slug="home")
    placement_create(
        shop=shop,
        actor=Actor.system("bench-serve"),
        fields={
            "slug": "home-plain",
            "name": "Home without promotions",
            "kind": "home",
            "default_strategy": home.default_strategy,
            "promotions_enabled": False,
        },
    )


def _campaigns(shop: Any, products: Any, seed: int = 11) -> tuple[int, int]:
    """200 live promotions and 20 seasonal boosts through the services: the mix of
    campaigns.bench.synthetic, with targets in this catalog's words."""
    import numpy as np

    from campaigns.services import promotion_create, promotion_publish, seasonal_boost_create
    from catalog.audit import Actor

    actor = Actor.system("bench-serve")
    rng = np.random.default_rng(seed)
    skus = products.column("sku").to_pylist()
    paths = sorted(set(products.column("category").to_pylist()))
    brands = sorted(set(products.column("brand").to_pylist()))
    tags = sorted({tag for value in products.column("tags").to_pylist()[:5000] for tag in value.split("|")})
    materials = sorted({json.loads(value)["material"] for value in products.column("attributes").to_pylist()[:5000]})
    actions = ["pin"] * 20 + ["boost"] * 100 + ["bury"] * 40 + ["exclude"] * 36 + ["restrict"] * 4
    now = datetime.now(UTC).replace(second=0, microsecond=0)

    def pick(values: list[str], count: int = 1) -> list[str]:
        return [values[int(j)] for j in rng.integers(0, len(values), count)]

    for i in range(PROMOTIONS):
        action = actions[i % len(actions)]
        kind = i % 6
        if action == "restrict":
            target: dict[str, Any] = {"price_max": 1_000_000}  # a live restrict that allows everything
        elif action in ("bury", "exclude"):
            # Named products, as merchandisers bury or exclude them: a category, brand or
            # "new arrivals" target here (every synthetic product is new) would remove most
            # of the catalog and measure lists made of fallbacks.
            target = {"skus": sorted(set(pick(skus, int(rng.integers(1, 30)))))}
        elif kind == 0:
            target = {"skus": sorted(set(pick(skus, int(rng.integers(1, 30)))))}
        elif kind == 1:
            target = {"categories": pick(paths)}
        elif kind == 2:
            target = {"brands": sorted(set(pick(brands, 2)))}
        elif kind == 3:
            target = {"tags": pick(tags), "price_max": float(rng.integers(20, 200))}
        elif kind == 4:
            target = {"categories": [pick(paths)[0].split(" > ")[0]], "attributes": {"material": pick(materials, 2)}}
        else:
            target = {"new_within_days": int(rng.integers(7, 60))}
        fields: dict[str, Any] = {
            "name": f"Promotion {i}",
            "target": target,
            "action": action,
            "priority": int(rng.integers(0, 5)),
            "starts_at": now - timedelta(days=3),
            "ends_at": now + timedelta(days=20),
        }
        if action == "pin":
            fields["slot"] = int(rng.integers(1, 11))
        if action == "boost":
            fields["factor"] = float(rng.choice([1.2, 1.5, 2.0, 3.0]))
        promotion_publish(promotion=promotion_create(shop=shop, actor=actor, fields=fields), actor=actor)
    today = date.today()
    for i in range(SEASONAL_BOOSTS):
        seasonal_boost_create(
            shop=shop,
            actor=actor,
            fields={
                "name": f"Season {i}",
                "categories": [paths[i % len(paths)]] if i % 2 == 0 else [],
                "tags": [tags[i % len(tags)]],
                "factor": 1.5,
                "recurrence": "once",
                "first_day": today - timedelta(days=5 + i),
                "last_day": today + timedelta(days=30),
                "ramp_up_days": 10,
                "ramp_down_days": 5,
            },
        )
    return PROMOTIONS, SEASONAL_BOOSTS


@dataclass(frozen=True)
class ServingRecall:
    """Recall@20 of an index against exact search, on the queries serving really sends."""

    kind: str
    queries: int
    recall_at_20: float
    ann_ms: float
    exact_ms: float


def _serving_recall(shop: Any, state: Any, kind: str, shoppers: list[str]) -> ServingRecall | None:
    """The ``personal`` source's queries for these shoppers (their latest events folded
    into the collaborative model, exactly as a request does), answered by the serving
    index (the top 20 of its candidates_per_source) and by exact search over the same
    vectors. These shoppers' queries were not the ones the index was tuned on."""
    import numpy as np

    from catalog.selectors import shopper_history
    from recommender.algorithms.data import Query
    from recommender.serving.indexes import RECALL_AT, ExactIndex, recall_at
    from recommender.serving.pipeline import BLEND
    from recommender.serving.signals import signals_build

    model = state.models[kind]
    if model.index is None or model.index.kind != "hnsw":
        return None
    rows = np.flatnonzero(model.model.items_with_vectors())
    exact = ExactIndex(model.model.item_vectors()[rows], rows)
    space = state.view_for(None).spaces[kind]
    found, truth = [], []
    ann_s = exact_s = 0.0
    for shopper in shoppers:
        signals = signals_build(state.snapshot, (), shopper_history(shop, shopper), time.time())
        if not signals.has_history:
            continue
        query = Query(history=signals.model_history(space.from_snapshot), now=signals.now)
        vector = model.model.query_vector(query)
        if vector is None or not np.isfinite(vector).all():
            continue
        started = time.perf_counter()
        approximate = model.index.search(vector, BLEND.candidates_per_source)[0][:RECALL_AT]
        ann_s += time.perf_counter() - started
        started = time.perf_counter()
        best = exact.search(vector, RECALL_AT)[0]
        exact_s += time.perf_counter() - started
        found.append(approximate)
        truth.append(best)
    if not found:
        return None
    return ServingRecall(
        kind=kind,
        queries=len(found),
        recall_at_20=recall_at(found, np.array(truth)),
        ann_ms=1000 * ann_s / len(found),
        exact_ms=1000 * exact_s / len(found),
    )


RECALL_SHOPPERS = 300  # load shoppers whose folded-in queries measure the index's recall


def _prepare_serving(shop: Any, report: Report, shoppers: Path | None = None) -> dict[str, Any]:
    """Build the serving state here once: the HNSW indexes are built, tuned and cached on
    disk for the web workers. Returns, by kind, the recall of each approximate index on
    the folded-in queries of the first RECALL_SHOPPERS load shoppers (``shoppers``)."""
    from recommender.serving.state import registry

    started = time.monotonic()
    state = registry.state(shop.pk)
    report.row(f"{shop.slug}: serving state built (first time)", f"{time.monotonic() - started:.0f} s")
    found = {}
    sample = shoppers.read_text().split()[:RECALL_SHOPPERS] if shoppers is not None else []
    for kind, model in sorted(state.models.items()):
        index = model.index
        if index is None:
            continue
        if index.kind == "hnsw":
            r = index.report  # type: ignore[attr-defined]
            measured = _serving_recall(shop, state, kind, sample) if sample else None
            if measured is not None:
                found[kind] = measured
                report.row(
                    f"{shop.slug}: {kind} index on serving queries",
                    f"recall@20 {measured.recall_at_20:.3f} vs exact over {measured.queries} load shoppers' "
                    f"folded-in histories; {measured.ann_ms:.2f} ms/query (exact {measured.exact_ms:.2f} ms)",
                )
            report.row(
                f"{shop.slug}: {kind} index",
                f"hnswlib over {r.rows:,} x {r.dimensions}: M {r.m}, ef {r.ef}, recall@20 {r.recall_at_20:.3f} "
                f"vs exact on folded-in queries; {r.ann_ms:.2f} ms/query (exact {r.exact_ms:.2f} ms); "
                f"built in {r.build_s:.0f} s",
            )
        else:
            report.row(f"{shop.slug}: {kind} index", f"exact, {index.size:,} vectors")
    home = state.rules_for("home", datetime.now(UTC))
    if home is not None:
        report.row(
            f"{shop.slug}: rules live on home now", f"{len(home.rules)} (promotions in scope and seasonal boosts)"
        )
    registry.reset()
    return found


# --- gunicorn and wrk ------------------------------------------------------------------------


@dataclass
class WrkRun:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    errors: int
    cpu_s: float  # CPU time of the gunicorn workers during the run

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _wrk(
    server: subprocess.Popen[bytes], path: str, key: str, shoppers: Path | None, seconds: int, work: Path
) -> WrkRun:
    script = (Path(__file__).with_name("serve.lua")).read_text()
    script = script.replace("@KEY@", key).replace("@PATH@", path).replace("@SHOPPERS@", str(shoppers or ""))
    lua = work / "serve-run.lua"
    lua.write_text(script)
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "120s",
        "-s",
        str(lua),
        f"http://127.0.0.1:{PORT}/",
    ]
    cpu = cpu_seconds([server.pid])
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300)
    output = done.stdout
    cpu = cpu_seconds([server.pid]) - cpu
    for line in output.splitlines():
        if line.startswith("BENCH "):
            values = {k: int(v) for k, v in (part.split("=") for part in line.split()[1:])}
            return WrkRun(
                requests=values["requests"],
                seconds=values["duration_us"] / 1e6,
                p50_ms=values["p50_us"] / 1000,
                p99_ms=values["p99_us"] / 1000,
                non2xx=values["non2xx"],
                errors=values["errors"],
                cpu_s=cpu,
            )
    # wrk ended without its summary (it gives none when it is stopped while every
    # connection still waits for a first answer): a run that failed as a whole.
    log(f"wrk gave no result (exit {done.returncode}): {(output + done.stderr).strip()[-500:]}")
    return WrkRun(requests=0, seconds=float(seconds), p50_ms=0.0, p99_ms=0.0, non2xx=0, errors=1, cpu_s=cpu)


@dataclass
class Scenario:
    name: str
    path: str
    shoppers: Path | None
    runs: list[WrkRun] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return sum(r.requests for r in self.runs) / sum(r.seconds for r in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def failed(self) -> int:
        return sum(r.non2xx + r.errors for r in self.runs)

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * sum(r.cpu_s for r in self.runs) / max(1, sum(r.requests for r in self.runs))


def _warm(server: subprocess.Popen[bytes], scenarios: list[Scenario], key: str, work: Path) -> None:
    """Until every worker has built its serving state: passes over every scenario until
    one, after the first, answers every request of every scenario without an error and
    at a throughput within 20% of the pass before (no worker still building)."""
    deadline = time.monotonic() + 600
    previous: list[WrkRun] = []
    while True:
        runs = [_wrk(server, s.path, key, s.shoppers, 4, work) for s in scenarios]
        log("warm-up pass: " + ", ".join(f"{r.rps:,.0f} req/s p99 {r.p99_ms:.0f} ms" for r in runs))
        steady = bool(previous) and all(
            r.requests >= 50 and r.non2xx == 0 and r.errors == 0 and r.rps >= 0.8 * p.rps
            for r, p in zip(runs, previous, strict=True)
        )
        if steady:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not warm up in 10 minutes: {runs}")
        previous = runs


def _measure(
    env: dict[str, str], work: Path, key: str, scenarios: list[Scenario]
) -> tuple[list[Scenario], datetime, datetime]:
    with gunicorn_server(
        port=PORT,
        workers=GUNICORN_WORKERS,
        env=env,
        log_path=work / "gunicorn.log",
        backlog=512,
        request_timeout_s=900,
    ) as server:
        log(f"warming up {GUNICORN_WORKERS} workers (each builds its serving state) ...")
        _warm(server, scenarios, key, work)
        started = datetime.now(UTC)
        for round_number in range(ROUNDS):
            for scenario in scenarios:
                scenario.runs.append(_wrk(server, scenario.path, key, scenario.shoppers, ROUND_SECONDS, work))
                r = scenario.runs[-1]
                log(f"round {round_number + 1} {scenario.name}: {r.rps:,.0f} req/s, p50 {r.p50_ms:.1f} ms, "
                    f"p99 {r.p99_ms:.1f} ms, {1000 * r.cpu_s / max(1, r.requests):.2f} CPU ms/req")  # fmt: skip
        ended = datetime.now(UTC)
        time.sleep(3)  # the workers' flushers write the last served lists
    return scenarios, started, ended


def _served_latency(shop: Any, slug: str, start: datetime, end: datetime) -> tuple[int, float]:
    """(lists, median serving latency ms) the served-list log recorded for a placement."""
    from recommender.models import ServedList

    values = list(
        ServedList.objects.filter(shop=shop, placement_slug=slug, served_at__gte=start, served_at__lt=end).values_list(
            "latency_ms", flat=True
        )
    )
    return len(values), statistics.median(values) if values else float("nan")


def _scenario_rows(report: Report, scenarios: list[Scenario], reference: Scenario) -> None:
    report.table.append(
        f"{'scenario':<44} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/req':>10} {'failed':>6}"
    )
    for s in scenarios:
        report.table.append(
            f"{s.name:<44} {s.rps:>8,.0f} {s.rps / reference.rps:>6.2f} {s.p50_ms:>7.1f} {s.p99_ms:>7.1f} "
            f"{s.cpu_ms_per_request:>10.2f} {s.failed:>6}"
        )


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--big-products", type=int, default=1_000_000)
    parser.add_argument("--big-events", type=int, default=1_000_000)
    parser.add_argument("--skip-small", action="store_true", help="leave out the 100k-product part")
    parser.add_argument("--skip-big", action="store_true", help="leave out the 1M-product part")
    parser.add_argument(
        "--keep", type=Path, help="development: keep the database and the data in this directory, and reuse them"
    )
    arguments = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    reuse = arguments.keep is not None and (arguments.keep / "var").is_dir()
    work = arguments.keep or Path(tempfile.mkdtemp(prefix="recsite-bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recommender.bench.serve_settings",
        "DATABASE_URL": f"{PG_SERVER}/{BENCH_DATABASE}",
        "REDIS_URL": REDIS_URL,
        "RECSITE_VAR_DIR": str(work / "var"),
        "API_THROTTLE_KEY_PER_MINUTE": "1000000000",
        "API_THROTTLE_IP_PER_MINUTE": "1000000000",
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "0",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    env.pop("CELERY_BROKER_URL", None)  # the file-system broker under var/: upserts queue embedding tasks nobody runs
    os.environ.clear()
    os.environ.update(env)
    report = Report()
    load_before = os.getloadavg()
    report.notes.append(
        f"machine: {os.cpu_count()} CPUs; load average before the run {' '.join(f'{x:.2f}' for x in load_before)}; "
        f"Postgres {PG_SERVER}/{BENCH_DATABASE}; Redis {REDIS_URL}; gunicorn {GUNICORN_WORKERS} sync workers; "
        f"wrk {WRK_THREADS} threads x {WRK_CONNECTIONS} connections, {ROUNDS} interleaved rounds of {ROUND_SECONDS} s"
    )
    print(report.notes[0], flush=True)
    try:
        if not reuse:
            _recreate_database()
        _run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
        _flush_redis()
        import django

        django.setup()
        if not arguments.skip_small:
            _part_100k(arguments, work, env, report)
        if not arguments.skip_big:
            _part_1m(arguments, work, env, report)
    finally:
        if arguments.keep is None:
            shutil.rmtree(work, ignore_errors=True)
            _drop_database()
        _flush_redis()
    load_after = os.getloadavg()
    report.notes.append(f"load average after the run: {' '.join(f'{x:.2f}' for x in load_after)}")
    text = report.text()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)
    return 0


def _keep_key(work: Path, bench: BenchShop) -> None:
    (work / f"{bench.shop.slug}.key").write_text(bench.secret_key)


def _kept_shop(work: Path, slug: str) -> BenchShop | None:
    """The shop of an earlier run kept with --keep (None when there is none)."""
    from catalog.models import Shop

    shop = Shop.objects.filter(slug=slug).first()
    key = work / f"{slug}.key"
    if shop is None or not key.exists():
        return None
    log(f"reusing the kept shop {slug}")
    return BenchShop(shop=shop, secret_key=key.read_text(), shoppers_file=work / f"{slug}-shoppers.txt", catalog=None)


def _part_100k(arguments: argparse.Namespace, work: Path, env: dict[str, str], report: Report) -> None:
    from recommender.kinds import KINDS

    bench = _kept_shop(work, "bench")
    if bench is None:
        log(f"loading the {arguments.products:,}-product shop ...")
        bench = _shop_setup(
            work,
            slug="bench",
            products=arguments.products,
            events=arguments.events,
            seed=7,
            bulk_products=False,
            report=report,
        )
        _embeddings_copy(bench.shop)
        log("training every kind ...")
        # The session model with fewer steps than its default 1000: what serving costs
        # (one forward pass over a session) does not depend on how long it trained.
        _train(bench.shop, list(KINDS), report, {"sasrec": {"max_steps": SASREC_STEPS}})
        _plain_placement(bench.shop)
        promotions, boosts = _campaigns(bench.shop, bench.catalog.products)
        report.row("bench: campaigns", f"{promotions} live promotions, {boosts} seasonal boosts (placement home)")
        _keep_key(work, bench)
    log("building the serving state (indexes) ...")
    indexes = _prepare_serving(bench.shop, report, bench.shoppers_file)
    personal = "/api/v1/recommendations?placement={}&shopper="
    scenarios = [
        Scenario("(a) trivial endpoint, fixed 10 items", "/api/v1/bench/trivial", None),
        Scenario("(b) recommendations, personal, rules off", personal.format("home-plain"), bench.shoppers_file),
        Scenario("(c) recommendations, personal, rules on", personal.format("home"), bench.shoppers_file),
    ]
    log("measuring ...")
    scenarios, started, ended = _measure(env, work, bench.secret_key, scenarios)
    trivial, off, on = scenarios
    report.table.append(f"{arguments.products:,} products, {arguments.events:,} events, lists of 12:")
    _scenario_rows(report, scenarios, trivial)
    lists_off, median_off = _served_latency(bench.shop, "home-plain", started, ended)
    lists_on, median_on = _served_latency(bench.shop, "home", started, ended)
    report.table.append(
        f"served-list log: rules off {lists_off:,} lists, median serving latency {median_off:.3f} ms; "
        f"rules on {lists_on:,} lists, {median_on:.3f} ms"
    )
    report.table.append(
        f"wrk medians: rules off {off.p50_ms:.2f} ms, rules on {on.p50_ms:.2f} ms (16 connections queue on 2 cores)"
    )
    ratio = off.rps / trivial.rps
    report.target("throughput_ratio", ratio, GOAL_RATIO, ratio >= GOAL_RATIO, "")
    report.target("p99_latency", off.p99_ms, GOAL_P99_MS, off.p99_ms <= GOAL_P99_MS, " ms", ".1f")
    failed = sum(s.failed for s in scenarios)
    report.target("failed_requests", failed, 0, failed == 0, "", ".0f")
    _recall_target(report, "ann_recall_at_20", indexes, ("cold_start", "als"))
    cost = median_on - median_off
    report.target("rules_median_cost", cost, GOAL_RULES_MS, cost <= GOAL_RULES_MS, " ms", ".3f")
    report.table.append("")


def _part_1m(arguments: argparse.Namespace, work: Path, env: dict[str, str], report: Report) -> None:
    big = _kept_shop(work, "bench-1m")
    if big is None:
        log(f"loading the {arguments.big_products:,}-product shop ...")
        big = _shop_setup(
            work,
            slug="bench-1m",
            products=arguments.big_products,
            events=arguments.big_events,
            seed=8,
            bulk_products=True,
            report=report,
        )
        log("training trending and ALS ...")
        # Fewer ALS iterations than the default 15: the serving cost does not depend on
        # them. No co-occurrence kinds: the home strategy has no source that reads them.
        _train(big.shop, ["trending", "als"], report, {"als": {"iterations": 5}})
        _plain_placement(big.shop)
        _keep_key(work, big)
    indexes = _prepare_serving(big.shop, report, big.shoppers_file)
    personal = "/api/v1/recommendations?placement=home-plain&shopper="
    scenarios = [
        Scenario("(a) trivial endpoint, fixed 10 items", "/api/v1/bench/trivial", None),
        Scenario("(d) recommendations 1M, personal, rules off", personal, big.shoppers_file),
    ]
    log("measuring the 1M shop ...")
    scenarios, _, _ = _measure(env, work, big.secret_key, scenarios)
    trivial, personal_1m = scenarios
    report.table.append(f"{arguments.big_products:,} products, {arguments.big_events:,} events (approximate index):")
    _scenario_rows(report, scenarios, trivial)
    ratio = personal_1m.rps / trivial.rps
    report.target("throughput_ratio_1m", ratio, GOAL_RATIO, ratio >= GOAL_RATIO, "")
    report.target("p99_latency_1m", personal_1m.p99_ms, GOAL_P99_MS, personal_1m.p99_ms <= GOAL_P99_MS, " ms", ".1f")
    failed = sum(s.failed for s in scenarios)
    report.target("failed_requests_1m", failed, 0, failed == 0, "", ".0f")
    _recall_target(report, "ann_recall_at_20_1m", indexes, ("als",))


def _recall_target(report: Report, name: str, indexes: dict[str, Any], kinds: tuple[str, ...]) -> None:
    """The lowest recall@20 of the shop's approximate indexes on serving queries (the
    table has each); missed, with a note, when the index that serves ``personal`` (the
    first of ``kinds`` loaded) is not one of them."""
    if not any(kind in indexes for kind in kinds):
        report.table.append(f"{name}: no approximate index of {' or '.join(kinds)} to measure")
        report.target(name, 0.0, GOAL_RECALL, False, "", ".3f")
        return
    lowest = min(indexes.values(), key=lambda measured: measured.recall_at_20)
    report.table.append(
        f"{name}: the lowest of {len(indexes)} approximate indexes ({', '.join(sorted(indexes))}) is {lowest.kind}'s"
    )
    recall = lowest.recall_at_20
    report.target(name, recall, GOAL_RECALL, recall >= GOAL_RECALL, "", ".3f")


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
