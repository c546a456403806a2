"""``make bench-console``: response time of every console page on the demo shop.

In one run, on this machine:

1. a database of the bench's own (BENCH_VAR_DIR, default var/bench-console: SQLite, as
   ``make run`` uses; or BENCH_DATABASE_URL, e.g. a Postgres database), migrated;
2. the demo shop as ``make run`` builds it: ``manage.py load_demo`` (MovieLens 100K,
   product embeddings computed inline), every model trained (``manage.py train``;
   BENCH_KINDS=als,item_knn,... trains only those), the
   analytics rollups brought up to date, and one of each merchandising object (a
   published pin promotion, a seasonal boost, a running experiment, an upload), so that
   every detail page has something to show. A built shop is reused by later runs (it
   says so); BENCH_REBUILD=1 builds it again;
3. every console page that answers GET with HTML, requested through Django's test client
   as the demo admin (second factor verified), once to warm up and BENCH_RUNS times
   (default 10) timed, then once more counting its SQL queries.

Prints a table (status, queries, median and p95 ms per page) and one line per target:
each page's median against the goal of 300 ms, then the slowest page. Writes the same
to bench-results/console-<database kind>.txt.
"""

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
VAR_DIR = Path(os.environ.get("BENCH_VAR_DIR", str(ROOT / "var" / "bench-console")))
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{VAR_DIR / 'recsite.sqlite3'}")
RUNS = int(os.environ.get("BENCH_RUNS", "10"))
REBUILD = os.environ.get("BENCH_REBUILD", "") not in ("", "0")
# Model kinds to train (comma-separated); blank: every kind the demo shop can train.
KINDS = [kind for kind in os.environ.get("BENCH_KINDS", "").split(",") if kind.strip()]
SHOP = "demo"
GOAL_MS = 300.0
RESULTS = ROOT / "bench-results" / f"console-{DATABASE_URL.split(':', 1)[0]}.txt"
READY = VAR_DIR / "demo-ready"  # written once the demo shop is built and trained


@dataclass
class PageResult:
    name: str
    url: str
    status: int
    queries: int
    times_ms: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class Report:
    notes: list[str] = field(default_factory=list)
    pages: list[PageResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(text, flush=True)

    def text(self) -> str:
        header = ("page", "status", "queries", "median ms", "p95 ms", "url")
        rows = [
            (p.name, str(p.status), str(p.queries), f"{p.median:.1f}", f"{p.p95:.1f}", p.url)
            for p in sorted(self.pages, key=lambda p: -p.median)
        ]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        lines = ["recsite bench-console", *self.notes, ""]
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0]), *(row[i].rjust(widths[i]) for i in range(1, 5)), row[5]]
            lines.append("  ".join(cells))
        lines += [f"skipped {line}" for line in self.skipped]
        lines.append("")
        for page in sorted(self.pages, key=lambda p: p.name):
            lines.append(target_line(f"console-page-{page.name.split()[0]}", page.median, ok=page.status == 200))
        if self.pages:
            slowest = max(self.pages, key=lambda p: p.median)
            lines.append(
                target_line(
                    f"console-pages (slowest of {len(self.pages)}: {slowest.name})",
                    slowest.median,
                    ok=all(p.status == 200 for p in self.pages),
                )
            )
        return "\n".join(lines) + "\n"


def target_line(name: str, median_ms: float, *, ok: bool) -> str:
    met = ok and median_ms <= GOAL_MS
    return f"target {name}: {median_ms:.0f} ms (goal ≤ {GOAL_MS:.0f} ms) {'met' if met else 'missed'}"


def _environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "recsite.settings",
        "RECSITE_VAR_DIR": str(VAR_DIR),
        "DATABASE_URL": DATABASE_URL,
        "DJANGO_DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        # Embeddings of the loaded products run inline, as a worker would run them.
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }


def _manage(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - started


def build_demo(env: dict[str, str], report: Report) -> None:
    """Migrate, load the demo shop and train it (each through its management command)."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    if READY.exists() and not REBUILD:
        report.note(f"demo shop: reused from {READY.read_text().strip()} (BENCH_REBUILD=1 builds it again)")
        return
    READY.unlink(missing_ok=True)
    if DATABASE_URL.startswith("sqlite:///"):
        Path(DATABASE_URL.removeprefix("sqlite:///")).unlink(missing_ok=True)
    else:
        _recreate_postgres(DATABASE_URL)
    seconds = _manage(env, "migrate", "--noinput", "-v0")
    seconds_load = _manage(env, "load_demo", "--reset")
    kinds = [arg for kind in KINDS for arg in ("--kind", kind.strip())]
    seconds_train = _manage(env, "train", "--shop", SHOP, *kinds)
    READY.write_text(f"a build of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    report.note(
        f"demo shop: built (migrate {seconds:.0f} s, load_demo {seconds_load:.0f} s, train {seconds_train:.0f} s)"
    )


def _recreate_postgres(url: str) -> None:
    """Drop and create the bench's Postgres database (named by the URL's path)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(("postgresql", parts.netloc, "/postgres", "", ""))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def merchandising(shop: Any) -> dict[str, Any]:
    """One of each object the detail pages show, made through the services (idempotent:
    a later run finds them by name). Answers the URL parameters of the console pages."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db.models import Count

    from analytics.rollups import rollups_run
    from campaigns import services
    from campaigns.models import Experiment, Placement, Promotion, SeasonalBoost, SeasonalSuggestion
    from catalog.audit import Actor
    from catalog.models import ApiKey, Event, Membership, Product, UploadJob
    from catalog.uploads import upload_job_create, upload_job_process

    actor = Actor.system("bench-console")
    admin = Membership.objects.filter(shop=shop, role=Membership.Role.ADMIN).select_related("user").first()
    assert admin is not None, "load_demo makes the demo login an admin"
    # The most viewed product: the fullest product page.
    top = Event.objects.filter(shop=shop).values("sku").order_by().annotate(n=Count("id")).order_by("-n").first()
    product = Product.objects.get(shop=shop, sku=top["sku"]) if top else Product.objects.filter(shop=shop).first()
    assert product is not None, "the demo shop has products"
    placement = Placement.objects.filter(shop=shop).order_by("pk").first()
    assert placement is not None, "shop_create makes the default placements"

    promotion = Promotion.objects.filter(shop=shop, name="Bench pin").first()
    if promotion is None:
        promotion = services.promotion_create(
            shop=shop,
            actor=actor,
            fields={"name": "Bench pin", "target": {"skus": [product.sku]}, "action": "pin", "slot": 1},
        )
        services.promotion_publish(promotion=promotion, actor=actor)
    boost = SeasonalBoost.objects.filter(shop=shop, name="Bench season").first() or services.seasonal_boost_create(
        shop=shop,
        actor=actor,
        fields={
            "name": "Bench season",
            "categories": [product.category.path] if product.category else [],
            "tags": [] if product.category else ["Drama"],
            "factor": 1.5,
            "recurrence": "yearly",
            "yearly_from": "11-20",
            "yearly_until": "12-24",
        },
    )
    experiment = Experiment.objects.filter(shop=shop, name="Bench experiment").first()
    if experiment is None:
        experiment = services.experiment_create(
            shop=shop,
            actor=actor,
            fields={"name": "Bench experiment", "placement": placement, "primary_metric": "ctr"},
            variants=[services.VariantSpec("control", 50, is_control=True), services.VariantSpec("treatment", 50)],
        )
        experiment = services.experiment_start(experiment=experiment, actor=actor)
    services.seasonal_suggestions_update(shop=shop, today=date_today(shop))
    suggestion = SeasonalSuggestion.objects.filter(shop=shop).first()
    job = UploadJob.objects.filter(shop=shop).first()
    if job is None:
        csv = f"sku,title\n{product.sku},{product.title}\n".encode()
        upload = SimpleUploadedFile("products.csv", csv, content_type="text/csv")
        job = upload_job_create(shop=shop, kind=UploadJob.Kind.PRODUCTS, upload=upload, user=admin.user)
        upload_job_process(job_id=job.pk)
    rollups_run(shop.pk, budget_s=600.0)
    values = {
        "shop_slug": shop.slug,
        "sku": product.sku,
        "placement_slug": placement.slug,
        "strategy_id": placement.default_strategy_id,
        "promotion_id": promotion.pk,
        "boost_id": boost.pk,
        "experiment_id": experiment.pk,
        "key_id": ApiKey.objects.filter(shop=shop).values_list("pk", flat=True).first(),
        "membership_id": admin.pk,
        "job_id": job.pk,
    }
    if suggestion is not None:
        values["suggestion_id"] = suggestion.pk
    return values


def date_today(shop: Any) -> Any:
    import zoneinfo

    from django.utils import timezone

    return timezone.now().astimezone(zoneinfo.ZoneInfo(shop.timezone)).date()


def console_pages() -> dict[str, set[str]]:
    """Every named URL of the console namespace with the parameters its path takes, from
    Django's own reverse index of the namespace."""
    from django.urls import get_resolver

    _, console = get_resolver().namespace_dict["console"]
    return {
        name: set(console.reverse_dict.getlist(name)[0][0][0][1])
        for name in console.reverse_dict
        if isinstance(name, str)
    }


def admin_client(shop: Any) -> Any:
    """A test client signed in as the demo admin, past the second factor."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from catalog.models import Membership

    membership = Membership.objects.filter(shop=shop, role=Membership.Role.ADMIN).select_related("user").first()
    assert membership is not None
    device, _ = TOTPDevice.objects.get_or_create(
        user=membership.user, name="bench-console", defaults={"confirmed": True}
    )
    # A page that fails answers 500 in the table instead of ending the bench.
    client = Client(raise_request_exception=False)
    client.force_login(membership.user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def time_pages(report: Report) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from catalog.models import Shop

    shop = Shop.objects.get(slug=SHOP)
    values = merchandising(shop)
    if connection.vendor == "postgresql":
        # Fresh planner statistics, as autovacuum keeps them on a production server (the
        # bulk-loaded tables have none yet, and the server here may run without autovacuum).
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        report.note("postgres: ANALYZE run before timing (planner statistics of the loaded tables)")
    client = admin_client(shop)
    for name, params in sorted(console_pages().items()):
        missing = params - set(values)
        if missing:
            report.skipped.append(f"{name}: no value for {', '.join(sorted(missing))}")
            continue
        url = reverse(f"console:{name}", kwargs={key: values[key] for key in params})
        headers: dict[str, str] = {}
        warm = client.get(url)
        if warm.status_code in (301, 302):
            # A region htmx polls (it sends a plain GET to its page): timed as htmx asks it.
            headers = {"HTTP_HX_REQUEST": "true"}
            warm = client.get(url, **headers)
            if warm.status_code in (301, 302):
                report.skipped.append(f"{name}: redirects to {warm['Location']} (not a page)")
                continue
        if warm.status_code == 405:
            continue  # POST only: not a page
        if not warm.get("Content-Type", "").startswith("text/html"):
            report.skipped.append(f"{name}: {warm.get('Content-Type')} (not a page)")
            continue
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            response = client.get(url, **headers)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == warm.status_code, (url, response.status_code)
        with CaptureQueriesContext(connection) as queries:
            client.get(url, **headers)
        label = f"{name} (htmx)" if headers else name
        result = PageResult(label, url, warm.status_code, len(queries), times)
        report.pages.append(result)
        print(f"  {name:<28} {result.median:8.1f} ms  {len(queries):4d} queries", flush=True)


def main() -> int:
    env = _environment()
    report = Report()
    report.note(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    report.note(f"machine: {os.cpu_count()} CPUs; database {DATABASE_URL}; {RUNS} timed runs a page after one warm-up")
    build_demo(env, report)
    os.environ.update(env)
    import django

    django.setup()
    report.note(f"load average before timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    time_pages(report)
    report.note(f"load average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    text = report.text()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print()
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
