"""Browser fixtures: headless Chromium (Debian's), the recsite API on pytest-django's
live server, pretend shop pages on another loopback origin, and the demo storefront
in its own process on a third.

Origins in these tests:
- the API: ``live_server.url``, http://localhost:<port>;
- host pages: http://127.0.0.1:<port> (the key allows it) and http://localhost:<same
  port> (the same server under an origin the key does not allow);
- the storefront: http://127.0.0.1:<port>, and http://localhost:<same port> likewise.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import connection

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "widget"

# Records every Content-Security-Policy violation of a page (init scripts are exempt
# from the page's CSP). Violations inside the widget's Shadow DOM are composed events
# and reach the document too.
CSP_RECORDER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push({directive: e.violatedDirective, blocked: e.blockedURI,
                               source: e.sourceFile, line: e.lineNumber, sample: e.sample});
});
"""


T = TypeVar("T")


def eventually(
    check: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, pause: Callable[[float], Any] = time.sleep
) -> T:
    """``check()`` once it is truthy, or its last value after ``timeout`` seconds (beacons
    and the server work asynchronously; the assertions that follow are exact)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        pause(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running on this thread, so Django
    # would take every ORM call of the test (fixtures, assertions) for async code. The
    # calls are synchronous in fact; allow them while the browser lives (this module).
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class Tab:
    """A page in a fresh browser context, with what it logged."""

    page: Any
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    artifacts: ClassVar[Path] = ARTIFACTS  # where screenshots go

    def eventually(self, check: Callable[[], T], timeout: float = 10.0) -> T:
        """Like ``eventually``, waiting inside Playwright: its event handlers (requests,
        console) only run while the test is in a Playwright call, never in time.sleep."""
        return eventually(check, timeout, pause=lambda seconds: self.page.wait_for_timeout(seconds * 1000))

    def wait(self, seconds: float) -> None:
        self.page.wait_for_timeout(seconds * 1000)

    def csp_violations(self) -> list[dict[str, Any]]:
        """Violations of the current document (read before navigating away)."""
        return self.page.evaluate("window.__cspViolations")

    def csp_console(self) -> list[str]:
        """CSP refusals Chromium logged, over every document the tab has shown."""
        return [line for line in self.console if "Content Security Policy" in line]

    def screenshot(self, name: str) -> Path:
        self.artifacts.mkdir(parents=True, exist_ok=True)
        path = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


class LiveRequests:
    """How many requests the live server (threads of this process) is serving now,
    counted by Django's request_started and request_finished signals of WSGI handlers
    (the test client's requests are not counted)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()
        request_started.connect(self._started, dispatch_uid="widget-tests-live-requests-started")
        request_finished.connect(self._finished, dispatch_uid="widget-tests-live-requests-finished")

    def _started(self, sender: Any, **kwargs: Any) -> None:
        if isinstance(sender, type) and issubclass(sender, WSGIHandler):
            with self._lock:
                self.count += 1

    def _finished(self, sender: Any, **kwargs: Any) -> None:
        if isinstance(sender, type) and issubclass(sender, WSGIHandler):
            with self._lock:
                self.count -= 1


live_requests = LiveRequests()


@pytest.fixture
def tab(chromium: Any) -> Iterator[Tab]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    # Generous: the machines these run on may be busy (a wait ends as soon as it holds).
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.add_init_script(CSP_RECORDER)
    opened = Tab(page=page)
    page.on("console", lambda message: opened.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    yield opened
    # The test database is emptied right after this (TRUNCATE), and a request the live
    # server is still serving then deadlocks with it: the widget sends its queued events
    # every few seconds, and by sendBeacon when the page goes away. So no request leaves
    # the context any more, and the server finishes those it has, before the flush.
    context.route("**/*", lambda route: route.abort())
    context.close()
    eventually(lambda: live_requests.count == 0, timeout=30.0)


# --- pretend shop pages -------------------------------------------------------------------


@dataclass
class HostPage:
    body: str
    csp: str | None


class HostPages:
    """A shop's pages, on a real loopback origin, with the CSP a test gives them."""

    def __init__(self) -> None:
        self.pages: dict[str, HostPage] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                page = pages.get(self.path.split("?")[0])
                if page is None:
                    self.send_error(404)
                    return
                body = page.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                if page.csp:
                    self.send_header("Content-Security-Policy", page.csp)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.other_origin = f"http://localhost:{self.port}"  # same server, another origin
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, path: str, body: str, csp: str | None = None) -> str:
        self.pages[path] = HostPage(body=body, csp=csp)
        return self.origin + path


@pytest.fixture(scope="session")
def host_server() -> Iterator[HostPages]:
    server = HostPages()
    yield server
    server.server.shutdown()


@pytest.fixture
def host_pages(host_server: HostPages) -> HostPages:
    host_server.pages.clear()
    return host_server


def strict_csp(api_origin: str) -> str:
    """The host policy of the shop-integration issue (script-src 'self' <api>; connect-src
    <api>; img-src https:; no 'unsafe-inline'), with everything else shut."""
    return (
        f"default-src 'none'; script-src 'self' {api_origin}; connect-src {api_origin}; "
        "img-src https:; style-src 'self'; base-uri 'none'; form-action 'none'"
    )


# --- the demo storefront in its own process -------------------------------------------------


def database_url() -> str:
    """The test database, for another process (SQLite: its file; Postgres: test_...)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@dataclass
class StorefrontServer:
    url: str  # the origin the demo key allows
    other_origin_url: str  # the same server under an origin no key allows
    var_dir: Path
    log_path: Path

    def write_keys(self, *, shop: str, publishable_key: str, api_origin: str) -> None:
        keys = {"shop": shop, "publishable_key": publishable_key, "secret_key": "", "api_origin": api_origin}
        (self.var_dir / "demo-keys.json").write_text(json.dumps(keys))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def storefront_server(
    live_server: Any, django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: Any
) -> Iterator[StorefrontServer]:
    """``gunicorn recsite.storefront.wsgi`` (as ``make run`` starts it) on the test database,
    with the live server as its API origin."""
    var_dir = tmp_path_factory.mktemp("storefront-var")
    port = free_port()
    with django_db_blocker.unblock():
        db_url = database_url()
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env.update(
        DATABASE_URL=db_url,
        RECSITE_VAR_DIR=str(var_dir),
        RECSITE_API_ORIGIN=live_server.url,
        PYTHONUNBUFFERED="1",
    )
    log_path = var_dir / "storefront.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "recsite.storefront.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--threads",
                "4",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = StorefrontServer(
        url=f"http://127.0.0.1:{port}",
        other_origin_url=f"http://localhost:{port}",
        var_dir=var_dir,
        log_path=log_path,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the storefront did not start:\n{server.log()}") from None
                time.sleep(0.1)
        # Its first request imports the views and templates: not inside a test's timeouts.
        try:
            urllib.request.urlopen(server.url + "/", timeout=120).read()
        except urllib.error.HTTPError as answer:
            assert answer.code == 503, answer  # the setup page, until a test writes the keys file
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
