"""Run every process of recsite in the foreground: web + API, storefront, worker, beat.

For the demo and local work (``make run``). Output of each process is prefixed with
its name; Ctrl-C (or any process exiting) stops them all.

While they run, this process sees to it that the demo shop (the one in
<VAR_DIR>/demo-keys.json) gets every model kind soon after start rather than at the
schedule's next pass: kinds never trained are requested from the workers at once, and
the text kinds as soon as the worker has embedded every product (see DemoModels).
"""

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from catalog.audit import Actor
from catalog.models import Product, ProductEmbedding
from catalog.selectors import shop_by_slug
from recommender.kinds import kinds_for_shop
from recommender.models import ActiveModel, TrainingRun
from recommender.training import training_run_request
from recsite.storefront.config import StorefrontNotConfigured, load_config

logger = logging.getLogger(__name__)

DEMO_MODELS_POLL_S = 5.0
DEMO_MODELS_GIVE_UP_S = 30 * 60


class DemoModels:
    """Requests, for the workers, each model kind the demo shop has never trained, once
    per start: kinds needing text embeddings only when every active product has one.
    ``poll()`` returns True when nothing is left to request (or there is no demo shop)."""

    def __init__(self, slug: str) -> None:
        self.slug = slug
        self.requested: set[str] = set()

    def poll(self) -> bool:
        shop = shop_by_slug(self.slug)
        if shop is None:
            return True
        embedded = ProductEmbedding.objects.filter(shop=shop).exists() and not (
            Product.objects.filter(shop=shop, active=True, embedding__isnull=True).exists()
        )
        trained = set(ActiveModel.objects.filter(shop=shop).values_list("kind", flat=True))
        tried = set(TrainingRun.objects.filter(shop=shop).values_list("kind", flat=True).distinct())
        wanted = kinds_for_shop(has_text_embeddings=embedded)
        missing = [kind for kind in wanted if kind not in trained | tried | self.requested]
        if missing:
            training_run_request(shop=shop, kinds=missing, actor=Actor.system("run_demo"))
            self.requested.update(missing)
            logger.info("demo shop %r: requested training of %s", self.slug, ", ".join(missing))
        return embedded


class Command(BaseCommand):
    help = "Run web + API, the demo storefront, a Celery worker and beat until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--storefront-port", type=int, default=8001)
        parser.add_argument("--web-workers", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        host, port, storefront_port = options["host"], options["port"], options["storefront_port"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        processes = {
            "web": [
                python,
                "-m",
                "gunicorn",
                "recsite.wsgi:application",
                "--preload",  # the workers share the loaded app's memory (see recsite/wsgi.py)
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(options["web_workers"]),
                "--access-logfile",
                "-",
                "--timeout",
                "60",
            ],
            "storefront": [
                python,
                "-m",
                "gunicorn",
                "recsite.storefront.wsgi:application",
                "--bind",
                f"{host}:{storefront_port}",
                "--workers",
                "1",
            ],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "recsite",
                "worker",
                "--loglevel",
                "INFO",
                "--queues",
                "default,training,embedding",
                "--concurrency",
                "2",
                "--hostname",
                "demo@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "recsite",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
        }
        if not (settings.BASE_DIR / "recsite" / "storefront" / "wsgi.py").exists():
            del processes["storefront"]
        running: dict[str, subprocess.Popen[bytes]] = {}
        for name, command in processes.items():
            running[name] = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            threading.Thread(target=_relay, args=(name, running[name]), daemon=True).start()

        self.stdout.write(self.style.SUCCESS(f"\nrecsite console and API:  http://{host}:{port}/console/"))
        if "storefront" in processes:
            self.stdout.write(self.style.SUCCESS(f"demo storefront:          http://{host}:{storefront_port}/"))
        self.stdout.write(self.style.SUCCESS(f"API reference:            http://{host}:{port}/docs/"))
        self.stdout.write("login: demo / demo-merchandiser     (Ctrl-C stops everything)\n")

        demo_models = self._demo_models()
        next_poll = time.monotonic()
        give_up = next_poll + DEMO_MODELS_GIVE_UP_S
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                exited = [name for name, process in running.items() if process.poll() is not None]
                if exited:
                    self.stderr.write(f"{', '.join(exited)} exited; stopping the others")
                    break
                if demo_models is not None and time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + DEMO_MODELS_POLL_S
                    if self._poll_demo_models(demo_models) or next_poll > give_up:
                        demo_models = None
                time.sleep(0.5)
        finally:
            for process in running.values():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for process in running.values():
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)

    def _demo_models(self) -> DemoModels | None:
        try:
            config = load_config(settings.VAR_DIR, "")
        except StorefrontNotConfigured:
            return None  # no demo shop (load_demo was not run): nothing to look after
        return DemoModels(config.shop_slug)

    def _poll_demo_models(self, demo_models: DemoModels) -> bool:
        try:
            return demo_models.poll()
        except Exception as error:  # the database restarting, a locked SQLite file: try again later
            self.stderr.write(f"demo models: {type(error).__name__}: {error}; trying again")
            return False


def _relay(name: str, process: "subprocess.Popen[bytes]") -> None:
    assert process.stdout is not None
    for line in iter(process.stdout.readline, b""):
        sys.stdout.write(f"{name:>10} | {line.decode(errors='replace')}")
        sys.stdout.flush()
