"""``make bench-ingest``: how fast events get in, and that none are lost or doubled.

In one run, all on 127.0.0.1, bounded in time, cleaning up after itself:

1. a fresh Postgres database (BENCH_DATABASE, default recsite_bench), migrated, with a
   shop and a synthetic catalog of 10,000 products;
2. gunicorn serving recsite on it (Redis cache for throttles, throttle limits raised),
   driven by wrk: POST /api/v1/events, batches of 100 unique events, 16 connections,
   20 seconds. Then the rows in the database are counted against the 200 responses
   (x 100), part of the batches are sent again (they must make no row), and the same
   rows are copied with a raw psycopg COPY into an identical table, for reference;
3. import_events of a generated CSV file of 1,000,000 events; right after it, the
   rows it stored are copied with a raw psycopg COPY (binary) into an identical table,
   in one stream and then in two parallel streams (the import writes in two): what
   the database alone can take on this machine at this moment, side by side. Then the
   same file again (all duplicates) and a JSON lines file of 200,000 events. CPU
   seconds of this process and of the Postgres backends are measured for each, so the
   figures can be read apart from the load other processes put on the machine.

BENCH_PARTS=import runs only part 3 (and the set-up); BENCH_IMPORT_EVENTS sets its size.

Prints a table and one line per target; writes the same to bench-results/ingest.txt.
The machine's load average is printed first: other processes on a shared machine
take CPU from the database and the web workers.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recsite.bench.gunicorn import cpu_seconds, gunicorn_server

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PG_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")
BENCH_DATABASE = os.environ.get("BENCH_DATABASE", "recsite_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
PORT = int(os.environ.get("BENCH_PORT", "8765"))
# gunicorn's rule of thumb, 2 x cores + 1: sync workers wait on Postgres and Redis a
# good part of each request.
GUNICORN_WORKERS = int(os.environ.get("BENCH_GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1) + 1)))
WRK_SECONDS = int(os.environ.get("BENCH_SECONDS", "20"))
WRK_CONNECTIONS = 16
WRK_THREADS = 2
BATCH = 100
PRODUCTS = 10_000
SHOPPERS = 20_000
IMPORT_EVENTS = int(os.environ.get("BENCH_IMPORT_EVENTS", "1000000"))
JSONL_EVENTS = 200_000
REPLAYED_REQUESTS = 50
PARTS = set(os.environ.get("BENCH_PARTS", "api,import").split(","))
GOAL_API = 10_000
GOAL_IMPORT = 100_000
RESULTS = ROOT / "bench-results" / "ingest.txt"


@dataclass
class Report:
    rows: list[tuple[str, str]] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, name: str, value: str) -> None:
        self.rows.append((name, value))
        print(f"  {name}: {value}", flush=True)

    def target(self, name: str, measured: float, goal: float, met: bool, unit: str = "") -> None:
        self.targets.append(
            f"target {name}: {measured:,.0f}{unit} (goal {goal:,.0f}{unit}) {'met' if met else 'missed'}"
        )

    def text(self) -> str:
        width = max(len(name) for name, _ in self.rows)
        lines = ["recsite bench-ingest", *self.notes, ""]
        lines += [f"{name:<{width}}  {value}" for name, value in self.rows]
        return "\n".join([*lines, "", *self.targets, ""])


def main() -> int:
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="recsite-bench-ingest-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings",
        "DATABASE_URL": f"{PG_SERVER}/{BENCH_DATABASE}",
        "REDIS_URL": REDIS_URL,
        "RECSITE_VAR_DIR": str(work / "var"),
        "API_THROTTLE_KEY_PER_MINUTE": "1000000000",
        "API_THROTTLE_IP_PER_MINUTE": "1000000000",
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "0",
    }
    os.environ.update(env)
    report = Report()
    report.notes.append(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report.notes.append(f"machine: {os.cpu_count()} CPUs; Postgres {PG_SERVER}/{BENCH_DATABASE}; Redis {REDIS_URL}")
    print(report.notes[0], flush=True)
    try:
        _recreate_database()
        _run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
        import django

        django.setup()
        shop, secret_key = _create_shop(work)
        if "api" in PARTS:
            _api_run(report, shop, secret_key, work, env)
            _raw_copy(report, shop)
        if "import" in PARTS:
            _import_runs(report, shop, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        _drop_database()
    text = report.text()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text)
    return 0


# --- set-up ------------------------------------------------------------------------------


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


def _run(command: list[str], env: dict[str, str], timeout: int = 600) -> str:
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _create_shop(work: Path) -> tuple[Any, str]:
    from catalog import demo
    from catalog.audit import Actor
    from catalog.importing import import_products
    from recsite.onboarding import shop_create

    created = shop_create(name="Bench shop", slug="bench", actor=Actor.system("bench-ingest"))
    catalog = demo.synthetic_catalog(PRODUCTS, seed=11)
    products = demo.write_csv(catalog.products, work / "products.csv")
    import_products(shop=created.shop, path=products)
    (work / "skus.txt").write_text("\n".join(catalog.products.column("sku").to_pylist()) + "\n")
    return created.shop, created.secret_key


# --- the API under wrk ---------------------------------------------------------------------


def _wrk(run: str, seconds: int, secret_key: str, work: Path) -> dict[str, int]:
    script = (Path(__file__).with_name("ingest.lua")).read_text()
    script = (
        script.replace("@RUN@", run)
        .replace("@KEY@", secret_key)
        .replace("@SKUS@", str(work / "skus.txt"))
        .replace("@SHOPPERS@", str(SHOPPERS))
    )
    path = work / f"{run}.lua"
    path.write_text(script)
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "30s",
        "-s",
        str(path),
        f"http://127.0.0.1:{PORT}/api/v1/events",
    ]
    started = time.perf_counter()
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 90).stdout
    elapsed = time.perf_counter() - started
    counts = {"seconds_x1000": int(elapsed * 1000)}
    for line in output.splitlines():
        if line.startswith("BENCH "):
            counts.update({k: int(v) for k, v in (part.split("=") for part in line.split()[1:])})
        elif "Requests/sec" in line:
            counts["wrk_rps_x100"] = int(float(line.split()[-1]) * 100)
        elif line.strip().startswith("Latency") and "latency_ms" not in counts:
            counts["latency_avg_us"] = _micros(line.split()[1])
        elif line.strip().startswith("99%"):
            counts["latency_p99_us"] = _micros(line.split()[1])
    if "ok" not in counts:
        raise RuntimeError(f"wrk gave no result:\n{output}")
    return counts


def _micros(text: str) -> int:
    for unit, factor in (("us", 1), ("ms", 1000), ("s", 1_000_000)):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return 0


def _postgres_pids() -> list[int]:
    """The backends connected to the bench database, and the shared WAL writer."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s OR backend_type = 'walwriter'", [BENCH_DATABASE]
        ).fetchall()
    return [pid for (pid,) in rows]


def _api_run(report: Report, shop: Any, secret_key: str, work: Path, env: dict[str, str]) -> None:
    from django.db import connection

    with gunicorn_server(
        port=PORT,
        workers=GUNICORN_WORKERS,
        env=env,
        log_path=work / "gunicorn.log",
        backlog=256,
        request_timeout_s=60,
        start_timeout_s=60,
    ) as server:
        _wrk("warm", 3, secret_key, work)
        backends = _postgres_pids()  # gunicorn's connections persist (DB_CONN_MAX_AGE)
        cpu_web = cpu_seconds([server.pid], with_children=True)
        cpu_db = cpu_seconds(backends, with_children=False)
        result = _wrk("main", WRK_SECONDS, secret_key, work)
        cpu_web = cpu_seconds([server.pid], with_children=True) - cpu_web
        cpu_db = cpu_seconds(backends, with_children=False) - cpu_db
        stored = _settled_count(shop, "main-%")
        replay = _replay(shop, secret_key, REPLAYED_REQUESTS)
        stored_after_replay = _count(shop, "main-%")
    seconds = result["seconds_x1000"] / 1000
    sent_events = result["ok"] * BATCH
    rate = stored / seconds
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) - count(DISTINCT event_id) FROM catalog_event WHERE shop_id = %s", [shop.pk])
        doubled = cursor.fetchone()[0]
    lost = max(0, sent_events - stored)
    report.row(
        "API run",
        f"gunicorn {GUNICORN_WORKERS} sync workers, wrk {WRK_THREADS} threads x {WRK_CONNECTIONS} connections, "
        f"{seconds:.1f} s, batches of {BATCH}",
    )
    report.row("API requests answered 200", f"{result['ok']:,} (other statuses: {result['other']:,})")
    report.row("API latency", f"avg {result.get('latency_avg_us', 0) / 1000:.1f} ms")
    report.row("API events acknowledged (200 x 100)", f"{sent_events:,}")
    report.row("API events stored", f"{stored:,}")
    report.row("API events lost (acknowledged, not stored)", f"{lost:,}")
    report.row("API events stored twice", f"{doubled:,}")
    report.row("API events/s", f"{rate:,.0f}")
    cores = os.cpu_count() or 1
    report.row(
        "CPU seconds in the run: gunicorn / Postgres", f"{cpu_web:.1f} / {cpu_db:.1f} (of {cores * seconds:.0f})"
    )
    per_request_ms = 1000 * (cpu_web + cpu_db) / max(1, stored // BATCH)
    report.row(
        "CPU per request of 100 events",
        f"{per_request_ms:.1f} ms: {cores} idle cores would take about "
        f"{cores * 1000 / per_request_ms * BATCH:,.0f} events/s (wrk not counted)",
    )
    report.row(
        f"replay of {replay['requests']} batches",
        f"{replay['accepted']} accepted, {replay['duplicates']:,} duplicates, "
        f"rows before/after {stored:,}/{stored_after_replay:,}",
    )
    report.target("api_events_per_second", rate, GOAL_API, rate >= GOAL_API)
    report.target("api_events_lost", lost, 0, lost == 0)
    report.target(
        "api_events_duplicated",
        doubled + (stored_after_replay - stored),
        0,
        doubled == 0 and stored_after_replay == stored and replay["accepted"] == 0,
    )


def _settled_count(shop: Any, pattern: str) -> int:
    """The count once requests still queued in gunicorn when wrk stopped are done."""
    previous = -1
    for _ in range(60):
        current = _count(shop, pattern)
        if current == previous:
            return current
        previous = current
        time.sleep(1.0)
    return previous


def _count(shop: Any, pattern: str) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM catalog_event WHERE shop_id = %s AND event_id LIKE %s", [shop.pk, pattern])
        return int(cursor.fetchone()[0])


def _replay(shop: Any, secret_key: str, requests: int) -> dict[str, int]:
    """Send stored events of the main run again, 100 a request (same event ids)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT event_id FROM catalog_event WHERE shop_id = %s AND event_id LIKE 'main-%%' ORDER BY id LIMIT %s",
            [shop.pk, requests * BATCH],
        )
        ids = [row[0] for row in cursor.fetchall()]
    totals = {"requests": 0, "accepted": 0, "duplicates": 0}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    for start in range(0, len(ids), BATCH):
        events = [
            {"event_id": event_id, "type": "view", "shopper": "bench-replayer", "sku": "SYN-0000001", "ts": now}
            for event_id in ids[start : start + BATCH]
        ]
        request = urllib.request.Request(
            f"http://127.0.0.1:{PORT}/api/v1/events",
            data=json.dumps({"events": events}).encode(),
            headers={"Authorization": f"Bearer {secret_key}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            body = json.loads(answer.read())
        totals["requests"] += 1
        totals["accepted"] += body["accepted"]
        totals["duplicates"] += body["duplicates"]
    return totals


# --- raw COPY for reference -------------------------------------------------------------------

_COLUMNS = "shop_id, event_id, type, shopper_id, product_id, sku, session, ts, quantity, price, request_id, received_at"


def _raw_copy(report: Report, shop: Any) -> None:
    """The rows the API stored, copied with psycopg COPY into a table like catalog_event
    (same columns, indexes and constraints): what the database alone can take."""
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_event_copy")
        cursor.execute("CREATE TABLE bench_event_copy (LIKE catalog_event INCLUDING ALL)")
        data = bytearray()
        with cursor.copy(
            f"COPY (SELECT {_COLUMNS} FROM catalog_event WHERE shop_id = {int(shop.pk)}) TO STDOUT (FORMAT binary)"
        ) as copy:
            for chunk in copy:
                data += chunk
        cursor.execute("SELECT count(*) FROM catalog_event WHERE shop_id = %s", [shop.pk])
        rows = int(cursor.fetchone()[0])
    raw.commit()
    started = time.perf_counter()
    with raw.cursor() as cursor, cursor.copy(f"COPY bench_event_copy ({_COLUMNS}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(bytes(data))
    raw.commit()
    seconds = time.perf_counter() - started
    report.row("raw psycopg COPY of the API's rows", f"{rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")
    with raw.cursor() as cursor:
        cursor.execute("DROP TABLE bench_event_copy")
    raw.commit()


# --- import_events -------------------------------------------------------------------------------


class _BackendCpu:
    """CPU seconds of the Postgres backends of the bench database (other than its own),
    sampled every 0.1 s while a measured step runs: a backend that ends between two
    samples loses at most its last 0.1 s. Postgres runs on this machine (127.0.0.1)."""

    def __init__(self) -> None:
        import threading

        self._seen: dict[int, float] = {}
        self._start: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _sample(self, admin: Any) -> dict[int, float]:
        import psutil

        found = {}
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [BENCH_DATABASE]
        ).fetchall()
        for (pid,) in rows:
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            found[pid] = times.user + times.system
        return found

    def _poll(self) -> None:
        import psycopg

        with psycopg.connect(f"{PG_SERVER}/{BENCH_DATABASE}", autocommit=True) as admin:
            self._start = self._sample(admin)
            self._ready.set()
            while not self._stop.wait(0.1):
                self._seen.update(self._sample(admin))
            self._seen.update(self._sample(admin))

    def __enter__(self) -> "_BackendCpu":
        import threading

        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def seconds(self) -> float:
        return sum(cpu - self._start.get(pid, 0.0) for pid, cpu in self._seen.items())


@dataclass
class _Measured:
    rows: int
    seconds: float
    python_cpu: float
    postgres_cpu: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def cpu_rate(self, cores: int) -> float:
        """Rows/s if this work had ``cores`` idle cores to itself (CPU-bound, spread evenly)."""
        busy = self.python_cpu + self.postgres_cpu
        return self.rows * cores / busy if busy else 0.0

    def text(self) -> str:
        return (
            f"{self.rows:,} rows in {self.seconds:.1f} s = {self.rate:,.0f} rows/s; CPU s: "
            f"python {self.python_cpu:.1f}, postgres {self.postgres_cpu:.1f}"
        )


def _process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _measure(step: Any) -> tuple[Any, float, float, float]:
    """Run ``step``; its result, wall seconds, this process's CPU seconds, backends' CPU seconds."""
    with _BackendCpu() as backends:
        cpu = _process_cpu()
        started = time.perf_counter()
        result = step()
        seconds = time.perf_counter() - started
        cpu = _process_cpu() - cpu
    return result, seconds, cpu, backends.seconds


def _scalar(conn: Any, sql: str, params: list[Any]) -> int:
    row = conn.execute(sql, params).fetchone()
    return int(row[0])


def _raw_copy_of_import(shop: Any, after_id: int, streams: int) -> _Measured:
    """The rows the import stored (ids above ``after_id``), exported once, then copied
    with a raw psycopg COPY (binary) into a fresh table like catalog_event (same
    columns, indexes, constraints), in ``streams`` parallel connections of a part each."""
    from concurrent.futures import ThreadPoolExecutor

    import psycopg

    dsn = f"{PG_SERVER}/{BENCH_DATABASE}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_event_copy")
        conn.execute("CREATE TABLE bench_event_copy (LIKE catalog_event INCLUDING ALL)")
        parts = []
        for part in range(streams):
            data = bytearray()
            query = (
                f"COPY (SELECT {_COLUMNS} FROM catalog_event WHERE shop_id = {int(shop.pk)} AND id > {int(after_id)}"
                f" AND id % {streams} = {part} ORDER BY id) TO STDOUT (FORMAT binary)"
            )
            with conn.cursor().copy(query) as copy:
                for chunk in copy:
                    data += chunk
            parts.append(bytes(data))
        rows = _scalar(conn, "SELECT count(*) FROM catalog_event WHERE shop_id = %s AND id > %s", [shop.pk, after_id])
    connections = [psycopg.connect(dsn) for _ in range(streams)]

    def copy_part(index: int) -> None:
        sql = f"COPY bench_event_copy ({_COLUMNS}) FROM STDIN (FORMAT binary)"
        with connections[index].cursor() as cursor, cursor.copy(sql) as copy:
            copy.write(parts[index])
        connections[index].commit()

    try:
        with ThreadPoolExecutor(streams) as pool:
            _, seconds, python_cpu, postgres_cpu = _measure(lambda: list(pool.map(copy_part, range(streams))))
    finally:
        for conn in connections:
            conn.close()
    with psycopg.connect(dsn, autocommit=True) as conn:
        copied = _scalar(conn, "SELECT count(*) FROM bench_event_copy", [])
        conn.execute("DROP TABLE bench_event_copy")
    if copied != rows:
        raise RuntimeError(f"raw COPY stored {copied} rows of {rows}")
    return _Measured(int(rows), seconds, python_cpu, postgres_cpu)


def _import_runs(report: Report, shop: Any, work: Path) -> None:
    from django.db import connection

    from catalog import demo
    from catalog.importing import import_events

    cores = os.cpu_count() or 1
    catalog = demo.synthetic_catalog(PRODUCTS, seed=11)
    events = demo.synthetic_events(catalog, IMPORT_EVENTS, seed=12)
    csv_file = demo.write_csv(events, work / "events.csv")
    size_mb = csv_file.stat().st_size / 1e6
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM catalog_event")
        after_id = int(cursor.fetchone()[0])
        cursor.execute("CHECKPOINT")  # each measured step starts with the same WAL state
    load = os.getloadavg()[0]
    first, seconds, python_cpu, postgres_cpu = _measure(lambda: import_events(shop=shop, path=csv_file))
    imported = _Measured(first.rows_read, seconds, python_cpu, postgres_cpu)
    report.row(f"import_events CSV ({size_mb:.0f} MB, load {load:.1f})", imported.text())
    counts = f"{first.accepted:,} / {first.unchanged:,} / {first.rejected}"
    report.row("import_events CSV: stored / duplicates / rejected", counts)
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    load = os.getloadavg()[0]
    raw_one = _raw_copy_of_import(shop, after_id, 1)
    report.row(f"raw COPY of the same rows, 1 stream (load {load:.1f})", raw_one.text())
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    load = os.getloadavg()[0]
    raw_two = _raw_copy_of_import(shop, after_id, 2)
    report.row(f"raw COPY of the same rows, 2 streams (load {load:.1f})", raw_two.text())
    report.row(
        "import_events / raw COPY (events/s)",
        f"{imported.rate / raw_one.rate:.2f} of 1 stream, {imported.rate / raw_two.rate:.2f} of 2 streams",
    )
    report.row(
        f"on {cores} idle cores (from CPU seconds)",
        f"import_events {imported.cpu_rate(cores):,.0f} events/s; raw COPY {raw_one.cpu_rate(1):,.0f} rows/s "
        f"a stream (it uses one core), {raw_two.cpu_rate(cores):,.0f} rows/s in 2 streams",
    )
    again = import_events(shop=shop, path=csv_file)
    report.row(
        "import_events CSV again (idempotent)",
        f"{again.accepted:,} stored, {again.unchanged:,} duplicates in {again.seconds:.1f} s "
        f"= {again.rows_per_second:,.0f} events/s",
    )
    jsonl_file = work / "events.jsonl"
    with jsonl_file.open("w") as out:
        for row in demo.synthetic_events(catalog, JSONL_EVENTS, seed=13).to_pylist():
            record: dict[str, Any] = {k: v for k, v in row.items() if v != ""}
            if "quantity" in record:
                record["quantity"] = int(record["quantity"])
                record["price"] = float(record["price"])
            out.write(json.dumps(record) + "\n")
    lines = import_events(shop=shop, path=jsonl_file)
    report.row(
        "import_events JSON lines",
        f"{lines.rows_read:,} rows, {lines.accepted:,} stored in {lines.seconds:.1f} s "
        f"= {lines.rows_per_second:,.0f} events/s",
    )
    complete = first.accepted == IMPORT_EVENTS and again.accepted == 0 and lines.accepted == JSONL_EVENTS
    report.row("every valid row stored once", "yes" if complete else "NO")
    report.target("import_events_per_second", imported.rate, GOAL_IMPORT, imported.rate >= GOAL_IMPORT and complete)


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
