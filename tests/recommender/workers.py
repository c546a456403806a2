"""Real Celery worker subprocesses on the test database, for the slow tests.

The workers get the test database through DATABASE_URL (SQLite: the test database
file, see DATABASES TEST NAME in settings; Postgres: the test_ database), their own
var and artifact directories, and a broker: Redis database TEST_REDIS_URL when set (as
in CI; flushed first), else the file-system broker in the var directory. Timings are
short so that recovery from a killed worker happens within seconds.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.db import connection

REPO = Path(settings.BASE_DIR)
# Short, so a killed worker's run comes back within seconds; not so short that a busy
# machine (two cores shared by many processes) delays a heartbeat past it.
LEASE_S = 10
# Bounds of waits on other processes. Generous: on a loaded machine starting one
# Django process can take most of a minute; the tests never wait longer than needed.
PROCESS_TIMEOUT_S = 240.0


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_environment(tmp_path: Path, artifact_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("CELERY_", "TRAINING_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="recsite.settings",
        DATABASE_URL=database_url(),
        RECSITE_VAR_DIR=str(tmp_path / "var"),
        RECSITE_ARTIFACT_DIR=str(artifact_dir),
        PYTHONUNBUFFERED="1",
        TRAINING_LEASE_S=str(LEASE_S),
        TRAINING_REAP_INTERVAL_S="1",
        TRAINING_REQUEUE_AFTER_S="30",
        CELERY_VISIBILITY_TIMEOUT_S="10",
    )
    redis_url = os.environ.get("TEST_REDIS_URL")
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        env["CELERY_BROKER_URL"] = redis_url
    return env


class Worker:
    """One ``celery worker`` (prefork, one pool process) consuming training and default."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, *, beat: bool = False) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "recsite",
            "worker",
            "--queues",
            "training,default",
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
        if beat:
            command += ["--beat", "--schedule", str(log_dir / f"{name}-beat-schedule")]
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = PROCESS_TIMEOUT_S) -> None:
        """Until the pool process is up (it preloads the embedding model first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log() and self.process.poll() is None:
                return
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"worker {self.name} not ready in {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> list[int]:
        """SIGKILL the pool processes and the parent at once, as an OOM killer or a power
        cut would: nothing gets to clean up, acknowledge or requeue."""
        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        killed = []
        for pid in [child.pid for child in children] + [self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        self.process.wait(10)
        self._log.close()
        return killed

    def stop(self) -> None:
        """End the worker (and its pool) if still running; always safe to call."""
        if self.process.poll() is None:
            try:
                children = psutil.Process(self.process.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
            for child in children:
                with contextlib.suppress(psutil.NoSuchProcess):
                    child.kill()
        if not self._log.closed:
            self._log.close()


def manage(env: dict[str, str], *args: str, timeout: float = PROCESS_TIMEOUT_S) -> str:
    """Run ``manage.py <args>`` with the workers' environment; its output (fails on error)."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args, "--skip-checks"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def send_task(env: dict[str, str], name: str, *args: Any, queue: str = "training") -> None:
    """Send one more message for a task, as a redelivery would (``celery call``)."""
    import json

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "recsite",
            "call",
            name,
            "--args",
            json.dumps(list(args)),
            "--queue",
            queue,
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout} s")
