"""Console browser fixtures: Debian's headless Chromium (the ``chromium`` fixture of the
widget tests), the console on pytest-django's live server, a tab that records CSP
violations, console errors and page errors, sign-in through the real forms (password,
then the TOTP code for admin pages), and a real Celery worker for training.

Screenshots go to test-artifacts/console/ (gitignored).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from catalog.models import Membership
from recommender.serving.log import served_log
from recommender.serving.state import registry
from recsite import file_broker
from recsite.celery import app as celery_app
from tests.recommender.workers import Worker, worker_environment
from tests.widget.conftest import Tab, chromium, tab  # noqa: F401 - fixtures of the widget's browser tests

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts" / "console"
PASSWORD = "a long test password"


@dataclass
class ConsoleTab(Tab):
    """A tab on the live server's console; ``base`` is the live server's URL."""

    base: str = ""
    artifacts: ClassVar[Path] = ARTIFACTS
    # Console messages of type "error": failed loads, CSP refusals, uncaught errors.
    console_errors: list[str] = field(default_factory=list)

    def open(self, path: str) -> Any:
        """Navigate to ``path`` on the live server and answer the response."""
        return self.page.goto(self.base + path)

    def htmx_idle(self) -> None:
        """Until htmx has no request in flight (and htmx has loaded). A function, not an
        expression: Playwright evaluates expressions with eval, which the page's CSP refuses."""
        self.page.wait_for_function(
            "() => window.htmx !== undefined && document.querySelectorAll('.htmx-request').length === 0"
        )


@pytest.fixture
def console_tab(tab: Tab, live_server: Any) -> ConsoleTab:  # noqa: F811 - the widget tests' fixture
    """The widget tests' tab (a fresh context recording CSP violations, console lines and
    page errors), on the live server, also keeping the console's error lines apart."""
    # Nothing leaves the machine: images of other origins (the products' image URLs)
    # get a blank answer instead of a failed load in the console.
    tab.page.context.route(
        lambda url: not url.startswith(live_server.url),
        lambda route: route.fulfill(status=204, body=""),
    )
    tab.page.context.set_default_timeout(15_000)
    opened = ConsoleTab(page=tab.page, console=tab.console, errors=tab.errors, base=live_server.url)
    page = tab.page
    page.on(
        "console",
        lambda message: (
            opened.console_errors.append(f"{page.url}: {message.text}") if message.type == "error" else None
        ),
    )
    return opened


@pytest.fixture(autouse=True)
def _serving_per_test(transactional_db: Any, settings: Any, tmp_path: Path) -> Iterator[None]:
    """The live server serves like a web process (the refresher thread on, so it notices a
    published promotion within a second), but no state or thread outlives a test: the
    next test's shop may get the same id, and the database goes away at the end."""
    settings.SERVING_INDEX_DIR = tmp_path / "serving-indexes"
    registry.reset()
    yield
    registry.reset()
    served_log.stop(flush=False)
    served_log.discard()


def make_user(shop: Any, username: str, role: str) -> Any:
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    Membership.objects.create(user=user, shop=shop, role=role)
    return user


def current_token(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def sign_in(browser: ConsoleTab, username: str, password: str = PASSWORD) -> None:
    """Through the sign-in form, as a person would."""
    browser.open("/console/login/")
    browser.page.fill("input[name=username]", username)
    browser.page.fill("input[name=password]", password)
    with browser.page.expect_navigation():
        browser.page.click("button[type=submit]")


def pass_second_factor(browser: ConsoleTab, user: Any) -> None:
    """Enter the code of the user's confirmed TOTP device on the two-factor page (an
    admin page sends an unverified session there), then go on where it leads."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="phone", confirmed=True
    )
    browser.open("/console/account/two-factor/")
    browser.page.fill("input[name=token]", current_token(device))
    with browser.page.expect_navigation():
        browser.page.click("button[type=submit]")


# --- a real training worker ------------------------------------------------------------------


def _publish_to(
    broker_url: str, transport_options: dict[str, Any], transport: str | None = None
) -> tuple[str, dict[str, Any], str | None]:
    """Point this process's Celery app (the live server runs in it) at another broker
    (``transport``: the transport class, as settings.py names it for the file system;
    None: the URL's scheme); answers the previous configuration. The connection and
    producer pools are bound to the old broker and are dropped, as Celery itself does
    after a fork."""
    conf = celery_app.conf
    previous = (conf.broker_url, dict(conf.broker_transport_options or {}), conf.broker_transport)
    conf.broker_url = broker_url
    conf.broker_transport_options = transport_options
    conf.broker_transport = transport
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    return previous


@pytest.fixture
def training_worker(tmp_path: Path, settings: Any) -> Iterator[Worker]:
    """One ``celery worker`` subprocess on the test database (tests/recommender/workers.py),
    with the live server sending its tasks to the same broker: Redis database
    TEST_REDIS_URL when set, else a file-system broker of this test's own."""
    artifact_dir = tmp_path / "artifacts"
    settings.ARTIFACT_DIR = artifact_dir  # the live server loads what the worker writes
    env = worker_environment(tmp_path, artifact_dir)
    if "CELERY_BROKER_URL" in env:
        options: dict[str, Any] = {
            "visibility_timeout": int(env["CELERY_VISIBILITY_TIMEOUT_S"]),
            "polling_interval": 0.05,
        }
        previous = _publish_to(env["CELERY_BROKER_URL"], options)
    else:
        broker = tmp_path / "var" / "broker"  # where the worker's settings.py keeps it
        previous = _publish_to("filesystem://", file_broker.transport_options(broker), file_broker.TRANSPORT)
    worker = Worker("console-browser", env, tmp_path)
    try:
        worker.wait_ready(timeout=180)
        yield worker
    finally:
        worker.stop()
        _publish_to(*previous)
