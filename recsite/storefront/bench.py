"""``make bench-widget``: the widget's size, and the time from page load to a rendered
list on the demo storefront.

In one run, on this machine:

1. ``static/recsite/widget.js`` compressed as it is served (gzip level 9, as
   WhiteNoise compresses static files);
2. the demo shop as ``make run`` builds it, in a folder of the bench's own
   (BENCH_VAR_DIR, default var/bench-widget; SQLite): ``manage.py migrate`` and
   ``manage.py load_demo --train`` (MovieLens 100K, the quick models trained). A
   built shop is reused by later runs (it says so); BENCH_REBUILD=1 builds it again;
3. the API (``gunicorn recsite.wsgi --preload``, 2 workers) and the storefront (``gunicorn
   recsite.storefront.wsgi``) on free ports, as ``make run`` starts them, with a
   publishable key that allows the storefront's origin;
4. headless Chromium (Debian's) loads the home, a category and a product page, each
   in a fresh browser context (an empty cache: a shopper's first visit), twice to warm
   up and BENCH_LOADS times (default 7) timed. Measured per load: the time from
   navigation start to the widget's ``recsite:rendered`` event (the list is in the
   page), the widget's own request-to-drawn time, and, side by side, the same page
   with widget.js blocked (its ``load`` event: what the page costs without
   recommendations) and the same list requested straight from Python (the API's own
   share of the widget's request, without the browser's CORS preflight).

Prints a table and one line per target, and writes them to bench-results/widget.txt.
"""

import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
WIDGET = ROOT / "static" / "recsite" / "widget.js"
CHROMIUM = Path("/usr/bin/chromium")
VAR_DIR = Path(os.environ.get("BENCH_VAR_DIR", str(ROOT / "var" / "bench-widget")))
DATABASE_URL = f"sqlite:///{VAR_DIR / 'recsite.sqlite3'}"
LOADS = int(os.environ.get("BENCH_LOADS", "7"))
WARMUP_LOADS = 2
WARMUP_TIMEOUT_S = 180
LOAD_TIMEOUT_S = 60
REBUILD = os.environ.get("BENCH_REBUILD", "") not in ("", "0")
READY = VAR_DIR / "demo-ready"
RESULTS = ROOT / "bench-results" / "widget.txt"
SIZE_GOAL_BYTES = 8192
RENDER_GOAL_MS = 1000.0

# Records the widget's rendered lists (an init script: exempt from the page's CSP).
RECORDER = """
window.__rendered = [];
addEventListener("recsite:rendered", (e) => window.__rendered.push(
  {placement: e.detail.placement, at: e.detail.at, ms: e.detail.ms, items: e.detail.items}));
"""


@dataclass
class PageTimes:
    name: str
    path: str
    placement: str
    render_ms: list[float] = field(default_factory=list)  # navigation start -> list drawn
    request_ms: list[float] = field(default_factory=list)  # the widget's request -> list drawn
    items: list[int] = field(default_factory=list)
    without_widget_ms: list[float] = field(default_factory=list)  # load event, widget.js blocked
    api_alone_ms: list[float] = field(default_factory=list)  # the same list requested from Python
    request_urls: list[str] = field(default_factory=list)  # what the widget requested


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))] if ordered else float("nan")


def target_line(name: str, measured: str, goal: str, met: bool) -> str:
    return f"target {name}: {measured} (goal {goal}) {'met' if met else 'missed'}"


def widget_sizes() -> tuple[int, int]:
    raw = WIDGET.read_bytes()
    return len(raw), len(gzip.compress(raw, compresslevel=9, mtime=0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    """The bench's own database, broker and cache; nothing of the caller's servers."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        RECSITE_VAR_DIR=str(VAR_DIR),
        DATABASE_URL=DATABASE_URL,
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def build_demo(env: dict[str, str], notes: list[str]) -> None:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    if READY.exists() and not REBUILD:
        notes.append(f"demo shop: reused from {READY.read_text().strip()} (BENCH_REBUILD=1 builds it again)")
        return
    READY.unlink(missing_ok=True)
    Path(DATABASE_URL.removeprefix("sqlite:///")).unlink(missing_ok=True)
    migrate_s = manage(env, "migrate", "--noinput", "-v0")
    load_s = manage(env, "load_demo", "--reset", "--train")
    READY.write_text(f"a build of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    notes.append(f"demo shop: built (migrate {migrate_s:.0f} s, load_demo with the quick models {load_s:.0f} s)")


def bench_key(storefront_origin: str, api_origin: str) -> dict[str, Any]:
    """A publishable key of the demo shop for this run's storefront origin, written to
    the keys file the storefront reads; and the pages to load (a category, a product)."""
    import django

    os.environ.update(environment())
    os.environ["DJANGO_SETTINGS_MODULE"] = "recsite.settings"
    django.setup()
    from django.db.models import Count

    from catalog.api_keys import api_key_create
    from catalog.audit import Actor
    from catalog.models import ApiKey, Event, Product
    from catalog.selectors import shop_by_slug

    shop = shop_by_slug("demo")
    if shop is None:
        raise SystemExit(f"no demo shop in {DATABASE_URL}; run with BENCH_REBUILD=1")
    actor = Actor.system("bench-widget")
    ApiKey.objects.filter(shop=shop, name="bench-widget").delete()  # the last run's
    key = api_key_create(
        shop=shop, kind=ApiKey.Kind.PUBLISHABLE, name="bench-widget", allowed_origins=[storefront_origin], actor=actor
    )
    keys = {"shop": shop.slug, "publishable_key": key.raw, "secret_key": "", "api_origin": api_origin}
    (VAR_DIR / "demo-keys.json").write_text(json.dumps(keys))
    top = Event.objects.filter(shop=shop).values("sku").order_by().annotate(n=Count("id")).order_by("-n").first()
    if top is None:
        raise SystemExit(f"the demo shop in {DATABASE_URL} has no events; run with BENCH_REBUILD=1")
    product = Product.objects.select_related("category").get(shop=shop, sku=top["sku"])
    assert product.category is not None, "the demo's products have categories"
    return {"product": product.sku, "category": product.category.pk, "key": key.raw}


@contextmanager
def servers(env: dict[str, str], api_port: int, storefront_port: int) -> Iterator[None]:
    log = (VAR_DIR / "bench-servers.log").open("ab")
    commands = [
        ["recsite.wsgi:application", f"127.0.0.1:{api_port}", "--workers", "2", "--preload"],
        ["recsite.storefront.wsgi:application", f"127.0.0.1:{storefront_port}", "--workers", "1", "--threads", "4"],
    ]
    running = [
        subprocess.Popen(
            [PYTHON, "-m", "gunicorn", app, "--bind", bind, *rest],
            cwd=ROOT,
            env={**env, "RECSITE_API_ORIGIN": f"http://127.0.0.1:{api_port}"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for app, bind, *rest in commands
    ]
    try:
        for port in (api_port, storefront_port):
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or any(p.poll() is not None for p in running):
                        raise SystemExit(f"the servers did not start; see {log.name}") from None
                    time.sleep(0.2)
        yield
    finally:
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


def warm_up(storefront: str, api: str, key: str, pages: list[PageTimes]) -> None:
    """Each server's first requests (imports, the shop's serving state and models), with
    patience for a busy machine, before any load is timed."""
    for page_times in pages:
        urllib.request.urlopen(storefront + page_times.path, timeout=WARMUP_TIMEOUT_S).read()
        request = urllib.request.Request(
            f"{api}/api/v1/recommendations?placement={page_times.placement}",
            headers={"Authorization": f"Bearer {key}", "Origin": storefront},
        )
        urllib.request.urlopen(request, timeout=WARMUP_TIMEOUT_S).read()
    urllib.request.urlopen(f"{api}/static/recsite/widget.js", timeout=WARMUP_TIMEOUT_S).read()


def load_once(browser: Any, url: str, page_times: PageTimes, *, record: bool) -> None:
    """One first visit of the page: fresh context, empty cache. Raises when the list is
    not drawn (an error state, or nothing within the timeout)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(LOAD_TIMEOUT_S * 1000)
    try:
        page = context.new_page()
        page.add_init_script(RECORDER)
        page.goto(url)
        page.wait_for_function("(p) => window.__rendered.some(r => r.placement === p)", arg=page_times.placement)
        drawn = next(r for r in page.evaluate("window.__rendered") if r["placement"] == page_times.placement)
        page_times.request_urls += page.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(name => name.includes('/api/v1/recommendations?'))"
        )
        if record:
            page_times.render_ms.append(drawn["at"])
            page_times.request_ms.append(drawn["ms"])
            page_times.items.append(drawn["items"])
    finally:
        context.close()


def load_without_widget(browser: Any, url: str, page_times: PageTimes) -> None:
    """The same first visit with widget.js blocked: when the page itself is loaded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(LOAD_TIMEOUT_S * 1000)
    try:
        context.route("**/static/recsite/widget.js", lambda route: route.abort())
        page = context.new_page()
        page.goto(url, wait_until="load")
        page_times.without_widget_ms.append(
            page.evaluate("performance.getEntriesByType('navigation')[0].loadEventStart")
        )
    finally:
        context.close()


def api_alone(key: str, storefront: str, page_times: PageTimes) -> None:
    """The request the widget made on the last load, sent again straight from this
    process (no browser, no preflight) for another first-time shopper (a shopper id the
    API has not seen, as on every first visit): the API's own share of that request."""
    parts = urlsplit(page_times.request_urls[-1])
    query = [(name, f"anon-{uuid.uuid4()}" if name == "shopper" else value) for name, value in parse_qsl(parts.query)]
    request = urllib.request.Request(
        urlunsplit(parts._replace(query=urlencode(query))),
        headers={"Authorization": f"Bearer {key}", "Origin": storefront},
    )
    started = time.perf_counter()
    urllib.request.urlopen(request, timeout=LOAD_TIMEOUT_S).read()
    page_times.api_alone_ms.append((time.perf_counter() - started) * 1000)


def measure(storefront: str, key: str, pages: list[PageTimes]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            for page_times in pages:
                url = storefront + page_times.path
                for _ in range(WARMUP_LOADS):
                    load_once(browser, url, page_times, record=False)
                for _ in range(LOADS):  # interleaved: both see the same moment of a busy machine
                    load_once(browser, url, page_times, record=True)
                    load_without_widget(browser, url, page_times)
                    api_alone(key, storefront, page_times)
        finally:
            browser.close()


def report(notes: list[str], raw: int, gzipped: int, pages: list[PageTimes]) -> str:
    header = (
        "page",
        "loads",
        "items",
        "render median ms",
        "render p90 ms",
        "widget request ms",
        "API alone ms",
        "no-widget load ms",
    )
    rows = [
        (
            p.name,
            str(len(p.render_ms)),
            str(min(p.items, default=0)),
            f"{median(p.render_ms):.0f}",
            f"{p90(p.render_ms):.0f}",
            f"{median(p.request_ms):.0f}",
            f"{median(p.api_alone_ms):.0f}",
            f"{median(p.without_widget_ms):.0f}",
        )
        for p in pages
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["recsite bench-widget", *notes, f"widget.js: {raw} B, {gzipped} B gzipped (level 9)", ""]
    for row in [header, *rows]:
        lines.append("  ".join([row[0].ljust(widths[0]), *(row[i].rjust(widths[i]) for i in range(1, len(row)))]))
    every_load = [ms for p in pages for ms in p.render_ms]
    overall = median(every_load)
    without = median([ms for p in pages for ms in p.without_widget_ms])
    lines += [
        "",
        f"load to rendered list, median of {len(every_load)} loads: {overall:.0f} ms; "
        f"the same pages without the widget load in {without:.0f} ms (ratio {overall / without:.2f})",
        "",
        target_line("widget-gzip-size", f"{gzipped} B", f"≤ {SIZE_GOAL_BYTES} B", gzipped <= SIZE_GOAL_BYTES),
        target_line(
            "widget-load-to-render",
            f"{overall:.0f} ms",
            f"≤ {RENDER_GOAL_MS:.0f} ms median, navigation start to list drawn",
            overall <= RENDER_GOAL_MS and all(p.items and min(p.items) > 0 for p in pages),
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    if not CHROMIUM.exists():
        raise SystemExit("bench-widget needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    raw, gzipped = widget_sizes()
    notes = [f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start"]
    env = environment()
    build_demo(env, notes)
    api_port, storefront_port = free_port(), free_port()
    storefront = f"http://127.0.0.1:{storefront_port}"
    where = bench_key(storefront, f"http://127.0.0.1:{api_port}")
    pages = [
        PageTimes("home", "/", "home"),
        PageTimes("category", f"/category/{where['category']}/", "category"),
        PageTimes("product", f"/product/{where['product']}", "product"),
    ]
    with servers(env, api_port, storefront_port):
        api = f"http://127.0.0.1:{api_port}"
        warm_up(storefront, api, where["key"], pages)
        measure(storefront, where["key"], pages)
    notes.append(f"load average {os.getloadavg()[0]:.2f} at the end")
    text = report(notes, raw, gzipped, pages)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
