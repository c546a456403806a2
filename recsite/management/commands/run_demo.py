"""Run every process of recsite in the foreground: web + API, storefront, worker, beat.

For the demo and local work (``make run``). Output of each process is prefixed with
its name; Ctrl-C (or any process exiting) stops them all.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser


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


def _relay(name: str, process: "subprocess.Popen[bytes]") -> None:
    assert process.stdout is not None
    for line in iter(process.stdout.readline, b""):
        sys.stdout.write(f"{name:>10} | {line.decode(errors='replace')}")
        sys.stdout.flush()
