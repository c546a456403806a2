"""``make bench-train``: a full retrain of every model kind on a synthetic shop at scale.

    python -m recommender.bench.train [--items 100000] [--events 5000000] [--kind als ...] [--data-dir DIR]

1. The demo's synthetic shop (catalog.demo via recommender.bench.synthetic: 100k
   products, 5M events, of which the 10 % impressions do not count) is drawn once and
   saved as the arrays a training run builds from the database.
2. Each kind is retrained in its own process, as a training run does it after building
   the dataset: fit on everything, evaluate on the temporal hold-out (a second fit on
   the earlier 80 % plus ranking the test shoppers), write the artifact atomically.
   The process's wall and CPU time per stage and its peak resident memory (VmHWM, the
   arrays included) are measured. Before the collaborative model, the issue's yardstick
   is measured side by side in a process of its own: implicit's ALS alone (64 factors,
   15 iterations) on the same shopper x product matrix. The goal of 60 s for the whole
   retrain against "about 20 s" for that fit is checked as written and as the ratio
   (<= 3), which a busy machine moves far less than the seconds.
3. Embedding throughput of catalog.embedding.encode on the shop's product texts,
   items/s: fp32 vs bf16 autocast, 1 vs 2 torch threads.
4. With DATABASE_URL on Postgres: the shop is loaded into a scratch database
   (``<name>_bench_train``, dropped afterwards) and building its dataset from the
   database (binary COPY into numpy) is timed in a process of its own.

Prints a table, then one line per target (``target <name>: <measured> (goal <goal>)
met|missed``), and writes the same to bench-results/train.txt.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench-results" / "train.txt"
GOAL_ALS_S = 60.0
# The 60 s against implicit's "about 20 s here" for the bare fit, as a ratio that a
# busy machine does not move: retrain wall time / bare fit wall time, measured side by side.
GOAL_ALS_VS_REFERENCE = 3.0
GOAL_ALL_KINDS_S = 600.0
GOAL_PEAK_MB = 4096.0
CHILD_TIMEOUT_S = 3600


def _peak_mb() -> float:
    """This process's peak resident memory. VmHWM, not getrusage's maxrss: on Linux
    maxrss carries over an exec, so a child would report the bench parent's peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")
    import django

    django.setup()


# -- children (each in a process of its own, so its peak memory is its own) -------------------


def child_kind(kind: str, data_dir: Path) -> dict[str, Any]:
    _setup_django()
    from django.conf import settings

    from catalog.models import Shop
    from recommender import registry
    from recommender.algorithms.data import Interactions, ItemFeatures
    from recommender.algorithms.vocabulary import Vocabulary
    from recommender.artifacts import artifact_write
    from recommender.kinds import kind_config, kind_spec
    from recommender.offline import evaluate_holdout

    settings.ARTIFACT_DIR = data_dir / "artifacts"
    interactions = Interactions.load(data_dir / "interactions.npz")
    features = ItemFeatures.load(data_dir / "features.npz")
    data_mb = _peak_mb()
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    spec = kind_spec(kind)
    started = time.monotonic()
    config = kind_config(spec, Shop())  # an unsaved shop: the default merchandiser settings
    model = spec.algorithm_class(config).fit(interactions, features)
    fitted = time.monotonic()
    cpu_fitted = _cpu_s()
    holdout = evaluate_holdout(spec.algorithm_class, config, interactions, features)
    evaluated = time.monotonic()
    cpu_evaluated = _cpu_s()

    def write(directory: Path) -> None:
        model.save(directory / registry.MODEL_DIR)
        Vocabulary(str(i + 1) for i in range(interactions.n_items)).save(directory / registry.ITEMS_FILE)

    written = artifact_write(shop_id=1, kind=kind, number=1, write=write)
    saved = time.monotonic()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu_before,
        "fit_cpu_s": cpu_fitted - cpu_before,
        "evaluate_cpu_s": cpu_evaluated - cpu_fitted,
        "kind": kind,
        "fit_s": fitted - started,
        "evaluate_s": evaluated - fitted,
        "evaluate_fit_s": holdout.fit_seconds,
        "save_s": saved - evaluated,
        "total_s": saved - started,
        "peak_mb": _peak_mb(),
        "data_mb": data_mb,
        "artifact_mb": written.size_bytes / 2**20,
        "ndcg_at_10": holdout.metrics["ndcg_at_10"],
        "cases": holdout.metrics["cases"],
    }


def child_reference(data_dir: Path) -> dict[str, Any]:
    """The issue's yardstick, measured side by side: implicit's ALS with its usual
    settings (64 factors, 15 iterations, the training threads) fitting the shop's
    shopper x product matrix (event counts), nothing else: no weighting, no evaluation.
    The collaborative retrain's goal is 3 times this (60 s against about 20 s)."""
    _setup_django()
    import numpy as np
    import scipy.sparse as sp
    from django.conf import settings
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    from recommender.algorithms.data import Interactions

    interactions = Interactions.load(data_dir / "interactions.npz")
    matrix = sp.csr_matrix(
        (np.ones(len(interactions), dtype=np.float32), (interactions.user, interactions.item)),
        shape=(interactions.n_users, interactions.n_items),
    )
    matrix.sum_duplicates()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=64,
            iterations=15,
            dtype=np.float32,
            calculate_training_loss=False,
            num_threads=settings.TRAINING_THREADS,
            random_state=0,
        )
        model.fit(matrix, show_progress=False)
    seconds = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "fit_s": seconds,
        "cpu_s": usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime,
        "nonzeros": int(matrix.nnz),
    }


def _product_texts(data_dir: Path, n: int) -> list[str]:
    import pyarrow.parquet as pq

    from catalog.embedding import product_text

    rows = pq.read_table(data_dir / "products.parquet").slice(0, n).to_pylist()
    return [
        product_text(
            title=row["title"],
            category=row["category"],
            brand=row["brand"],
            tags=row["tags"].split("|") if row["tags"] else [],
            attributes=json.loads(row["attributes"]) if row["attributes"] else {},
            description=row["description"],
        )
        for row in rows
    ]


def child_embedding(data_dir: Path, n_texts: int) -> dict[str, Any]:
    import numpy as np
    import torch

    from catalog import embedding

    texts = _product_texts(data_dir, n_texts)
    embedding.load_model(1)
    embedding.encode(texts[:64])  # warm-up
    rows = []
    reference = None
    for precision in ("fp32", "bf16"):
        for threads in (1, 2):
            torch.set_num_threads(threads)
            context = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
            with context:
                started = time.monotonic()
                vectors = embedding.encode(texts, threads=threads)
                seconds = time.monotonic() - started
            if reference is None:
                reference = vectors
            agreement = float(np.mean(np.sum(vectors * reference, axis=1)))  # mean cosine to fp32
            rows.append(
                {
                    "precision": precision,
                    "threads": threads,
                    "items_per_s": len(texts) / seconds,
                    "cosine_to_fp32": agreement,
                }
            )
    return {"texts": n_texts, "rows": rows, "peak_mb": _peak_mb()}


def child_pg_load(data_dir: Path) -> dict[str, Any]:
    _setup_django()
    import pyarrow.parquet as pq

    from recommender.algorithms.data import Interactions, ItemFeatures
    from recommender.bench.pgload import load_synthetic_shop
    from recommender.bench.synthetic import SyntheticShop

    synthetic = SyntheticShop(
        interactions=Interactions.load(data_dir / "interactions.npz"),
        features=ItemFeatures.load(data_dir / "features.npz"),
        products=pq.read_table(data_dir / "products.parquet"),
    )
    started = time.monotonic()
    load_synthetic_shop(synthetic)
    return {"load_s": time.monotonic() - started}


def child_pg_dataset() -> dict[str, Any]:
    _setup_django()
    from catalog.models import Shop
    from recommender.dataset import dataset_build

    shop = Shop.objects.get(slug="bench-train")
    started = time.monotonic()
    dataset = dataset_build(shop=shop)
    return {
        "dataset_s": time.monotonic() - started,
        "events": dataset.event_count,
        "items": dataset.item_count,
        "peak_mb": _peak_mb(),
    }


# -- the parent -------------------------------------------------------------------------------


def _run_child(arguments: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "recommender.bench.train", "--child", *arguments],
        cwd=REPO,
        env=env or os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if result.returncode != 0:
        raise RuntimeError(f"child {arguments} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _postgres_dataset(data_dir: Path, database_url: str, log: Any) -> dict[str, Any] | None:
    import dj_database_url
    import psycopg

    base = dj_database_url.parse(database_url)
    bench_name = f"{base['NAME']}_bench_train"
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    bench_url = database_url.rsplit("/", 1)[0] + f"/{bench_name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{bench_name}"')
        connection.execute(f'CREATE DATABASE "{bench_name}"')
    env = {**os.environ, "DATABASE_URL": bench_url}
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--skip-checks", "-v0"],
            cwd=REPO,
            env=env,
            check=True,
            timeout=CHILD_TIMEOUT_S,
        )
        log(f"loading the shop into {bench_name} ...")
        loaded = _run_child(["pg-load", str(data_dir)], env)
        log(f"  loaded in {loaded['load_s']:.0f} s; building the dataset ...")
        return {**_run_child(["pg-dataset"], env), **loaded}
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{bench_name}" WITH (FORCE)')


@contextmanager
def _data_directory(path: str | None) -> Iterator[Path]:
    """``--data-dir`` (kept, so a rerun skips drawing the shop), else a temp directory."""
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        yield Path(tmp)


def _synthetic_shop_arrays(data_dir: Path, n_items: int, n_events: int) -> tuple[int, int]:
    """Draw the synthetic shop into ``data_dir`` unless the same one is there already;
    (counted events, shoppers)."""
    import pyarrow.parquet as pq

    from recommender.bench.synthetic import demo_synthetic_shop

    meta_path = data_dir / "meta.json"
    wanted = {"items": n_items, "events": n_events}
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {key: meta.get(key) for key in wanted} == wanted:
            return int(meta["counted"]), int(meta["shoppers"])
    shop = demo_synthetic_shop(n_items=n_items, n_events=n_events)
    shop.interactions.save(data_dir / "interactions.npz")
    shop.features.save(data_dir / "features.npz")
    pq.write_table(shop.products, data_dir / "products.parquet")
    counted, shoppers = len(shop.interactions), shop.interactions.n_users
    meta_path.write_text(json.dumps({**wanted, "counted": counted, "shoppers": shoppers}))
    return counted, shoppers


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--kind", action="append", help="only these kinds (default: all)")
    parser.add_argument("--texts", type=int, default=1000, help="texts for the embedding throughput")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--data-dir", help="keep the synthetic shop here and reuse it on the next run")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        mode, *rest = arguments.child
        if mode == "kind":
            result = child_kind(rest[0], Path(rest[1]))
        elif mode == "embedding":
            result = child_embedding(Path(rest[0]), int(rest[1]))
        elif mode == "reference":
            result = child_reference(Path(rest[0]))
        elif mode == "pg-load":
            result = child_pg_load(Path(rest[0]))
        else:
            result = child_pg_dataset()
        print(json.dumps(result))
        return

    _setup_django()
    from recommender.kinds import KINDS

    lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)

    def out(line: str = "") -> None:
        lines.append(line)
        print(line, flush=True)

    kinds = arguments.kind or list(KINDS)
    load_before = os.getloadavg()
    with _data_directory(arguments.data_dir) as data_dir:
        started = time.monotonic()
        n_events, n_users = _synthetic_shop_arrays(data_dir, arguments.items, arguments.events)
        log(f"synthetic shop: {arguments.items} products, {arguments.events} events ({n_events} counted), "
            f"{n_users} shoppers ({time.monotonic() - started:.0f} s)")  # fmt: skip
        results = []
        reference = None
        for kind in kinds:
            if kind == "als":
                log("reference: implicit's ALS alone (64 factors, 15 iterations) ...")
                reference = _run_child(["reference", str(data_dir)])
                log(f"  {reference['fit_s']:.1f} s")
            log(f"retraining {kind} ...")
            results.append(_run_child(["kind", kind, str(data_dir)]))
            log(f"  {results[-1]['total_s']:.1f} s, peak {results[-1]['peak_mb']:.0f} MB")
        embedding = None if arguments.skip_embedding else _run_child(["embedding", str(data_dir), str(arguments.texts)])
        database_url = os.environ.get("DATABASE_URL", "")
        postgres = None
        if database_url.startswith(("postgres://", "postgresql://")) and not arguments.skip_postgres:
            postgres = _postgres_dataset(data_dir, database_url, log)
    load_after = os.getloadavg()

    out(f"# bench-train: {arguments.items} products, {arguments.events} events ({n_events} counted), "
        f"{n_users} shoppers; {os.cpu_count()} CPUs; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after")  # fmt: skip
    out()
    out(f"{'kind':<16} {'fit s':>7} {'eval s':>7} {'(fit)':>7} {'save s':>7} {'total s':>8} {'cpu s':>7} "
        f"{'(fit)':>7} {'(eval)':>7} {'peak MB':>8} {'artifact MB':>11} {'ndcg@10':>8} {'cases':>6}")  # fmt: skip
    for r in results:
        out(
            f"{r['kind']:<16} {r['fit_s']:>7.1f} {r['evaluate_s']:>7.1f} {r['evaluate_fit_s']:>7.1f} "
            f"{r['save_s']:>7.1f} {r['total_s']:>8.1f} {r['cpu_s']:>7.1f} {r['fit_cpu_s']:>7.1f} "
            f"{r['evaluate_cpu_s']:>7.1f} {r['peak_mb']:>8.0f} "
            f"{r['artifact_mb']:>11.1f} {r['ndcg_at_10']:>8.4f} {r['cases']:>6}"
        )
    total = sum(r["total_s"] for r in results)
    peak = max(r["peak_mb"] for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    out(f"{'all kinds':<16} {'':>7} {'':>7} {'':>7} {'':>7} {total:>8.1f} {cpu:>7.1f} {'':>7} {'':>7} {peak:>8.0f}")
    out("(eval s includes (fit): the hold-out model is fitted on the first 80 % of event time;")
    out(" cpu s: user + system time of the retrain, all threads, and of its fit and evaluation;")
    out(" the machine's load inflates wall time, not cpu time)")
    if reference:
        out()
        out(f"reference, side by side: implicit's ALS alone on the same {reference['nonzeros']} shopper x "
            f"product cells, 64 factors, 15 iterations: {reference['fit_s']:.1f} s wall, "
            f"{reference['cpu_s']:.1f} s cpu")  # fmt: skip
    if postgres:
        out()
        out(f"dataset from Postgres (binary COPY -> numpy): {postgres['events']} events, {postgres['items']} items "
            f"in {postgres['dataset_s']:.1f} s, peak {postgres['peak_mb']:.0f} MB "
            f"(loading the shop took {postgres['load_s']:.0f} s)")  # fmt: skip
    if embedding:
        out()
        out(f"embedding throughput (catalog.embedding.encode, {embedding['texts']} product texts):")
        out(f"{'precision':<10} {'threads':>7} {'items/s':>9} {'cosine to fp32':>15}")
        for row in embedding["rows"]:
            out(f"{row['precision']:<10} {row['threads']:>7} {row['items_per_s']:>9.1f} {row['cosine_to_fp32']:>15.6f}")
    out()
    targets = []
    by_kind = {r["kind"]: r for r in results}
    if "als" in by_kind:
        targets.append(("als_retrain", by_kind["als"]["total_s"], GOAL_ALS_S, "s"))
        if reference:
            # The load-independent form of the same goal: 60 s against implicit's 20 s.
            ratio = by_kind["als"]["total_s"] / reference["fit_s"]
            targets.append(("als_retrain_vs_implicit_fit", ratio, GOAL_ALS_VS_REFERENCE, "x"))
    if set(KINDS) <= set(by_kind):
        targets.append(("all_kinds_retrain", total, GOAL_ALL_KINDS_S, "s"))
    targets.append(("peak_memory", peak, GOAL_PEAK_MB, "MB"))
    for name, measured, goal, unit in targets:
        verdict = "met" if measured <= goal else "missed"
        out(f"target {name}: {measured:.1f} {unit} (goal <= {goal:g} {unit}) {verdict}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
