"""gunicorn for the load benchmarks (``make bench-ingest``, ``make bench-serve``).

``gunicorn_server`` starts recsite under gunicorn (sync workers) on 127.0.0.1 in a
process group of its own, waits until ``/healthz`` answers, and stops the whole group
when the block ends (TERM, then KILL). ``cpu_seconds`` adds up the CPU time of
processes, to report CPU per request next to the load tool's figures.
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn_server(
    *,
    port: int,
    workers: int,
    env: dict[str, str],
    log_path: Path,
    backlog: int,
    request_timeout_s: int,
    start_timeout_s: int = 120,
) -> Iterator[subprocess.Popen[bytes]]:
    """The running server (its master process); ``log_path`` gets its output."""
    log = open(log_path, "ab")  # noqa: SIM115
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "recsite.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--backlog",
        str(backlog),
        "--timeout",
        str(request_timeout_s),
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        _wait_until_up(server, port, log_path, start_timeout_s)
        yield server
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


def _wait_until_up(server: subprocess.Popen[bytes], port: int, log_path: Path, timeout_s: int) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer within {timeout_s} s")


def cpu_seconds(pids: list[int], *, with_children: bool = True) -> float:
    """User + system CPU seconds of these processes (and their descendants) so far;
    processes that are gone count 0."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            for proc in [process, *(process.children(recursive=True) if with_children else [])]:
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total
