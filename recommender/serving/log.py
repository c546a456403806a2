"""Step 8 of the request path: the served-list log, written without blocking the response.

A request appends one ``ServedRecord`` to an in-memory buffer (a list append under a
lock: microseconds) and returns. A flusher thread per process writes the buffer in
batches every ``FLUSH_INTERVAL_S`` seconds, or sooner once ``FLUSH_BATCH`` records are
waiting: on Postgres with one ``COPY`` per batch, elsewhere with one bulk insert. The
shopper's row id is looked up per batch (one query per shop, by the keyed hash the
request computed), so the request path never touches the database. The buffer is
flushed at process exit (atexit), and ``flush()`` writes it at once (tests, shutdown).

Bounded: beyond ``MAX_BUFFERED`` records (the database is down or far behind) the
oldest are dropped and counted in ``dropped``, logged once per flush. A batch that
cannot be written because of the database (down, restarting: an operational error)
is put back at the head of the buffer and retried on the next flush. A batch the
database refuses for its data (a record whose shop was deleted since it was served)
is written record by record instead: the good ones go in, each refused record is
logged with the reason and counted in ``rejected``, and never blocks the records
behind it. ``stop()`` ends the flusher (writing what is left when asked).
"""

import atexit
import io
import logging
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction

from catalog.models import Shop
from catalog.services import shopper_ids_by_hash
from recommender.models import ServedList

FLUSH_INTERVAL_S = 1.0
FLUSH_BATCH = 1000
MAX_BUFFERED = 100_000

logger = logging.getLogger(__name__)

_COLUMNS = (
    "request_id",
    "shop_id",
    "placement_slug",
    "experiment_id",
    "experiment_version",
    "variant",
    "shopper_id",
    "unit_hash",
    "session",
    "context_skus",
    "items",
    "model_versions",
    "latency_ms",
    "served_at",
)


@dataclass(frozen=True, slots=True)
class ServedRecord:
    """One served list, as the request saw it (``items`` as ServedList.items describes)."""

    request_id: uuid.UUID
    shop_id: int
    placement_slug: str
    experiment_id: int | None
    experiment_version: int | None
    variant: str
    shopper_key_hash: str  # Shopper.key_hash of the shopper named, "" when none
    unit_hash: str
    session: str
    context_skus: list[str]
    items: list[dict[str, Any]]
    model_versions: dict[str, int]
    latency_ms: float
    served_at: datetime


class ServedListLog:
    def __init__(self) -> None:
        self._buffer: list[ServedRecord] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_pid = 0
        self.dropped = 0
        self.rejected = 0
        self.written = 0

    def record(self, record: ServedRecord) -> None:
        """Queue a record (non-blocking). Starts this process's flusher on first use."""
        with self._lock:
            self._buffer.append(record)
            waiting = len(self._buffer)
            if waiting > MAX_BUFFERED:
                excess = waiting - MAX_BUFFERED
                del self._buffer[:excess]
                self.dropped += excess
        if waiting >= FLUSH_BATCH:
            self._wake.set()
        if settings.SERVING_BACKGROUND_THREADS and (self._thread is None or self._thread_pid != os.getpid()):
            self._start()

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Write everything buffered now, in this thread; returns how many were written."""
        with self._write_lock:
            written = 0
            while True:
                with self._lock:
                    batch, self._buffer = self._buffer[:FLUSH_BATCH], self._buffer[FLUSH_BATCH:]
                if not batch:
                    break
                try:
                    stored, rejected = _write_batch(batch)
                except Exception:
                    with self._lock:
                        self._buffer[:0] = batch
                    self.written += written
                    raise
                written += stored
                self.rejected += rejected
            self.written += written
            if self.dropped:
                logger.warning("served-list log: %d records dropped so far (buffer full)", self.dropped)
            return written

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread_pid == os.getpid() and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="served-list-flusher", daemon=True
            )
            self._thread_pid = os.getpid()
            self._thread.start()

    def stop(self, *, flush: bool = True) -> None:
        """End this process's flusher thread and wait for it; then write what is still
        buffered (``flush``) or leave it buffered. Idempotent; a later ``record`` starts
        a new flusher (when SERVING_BACKGROUND_THREADS)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        self._wake.set()
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=30)
        if flush and self.pending():
            self.flush()

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(FLUSH_INTERVAL_S)
            self._wake.clear()
            if stop.is_set():
                break
            try:
                self.flush()
            except Exception:
                logger.exception("served-list log: flush failed; the batch is kept and retried")
            finally:
                connection.close()  # this thread's own connection: never held between flushes

    def discard(self) -> None:
        """Drop everything buffered (tests)."""
        with self._lock:
            self._buffer.clear()


def _shopper_ids(batch: Sequence[ServedRecord]) -> dict[tuple[int, str], int]:
    wanted: dict[int, set[str]] = {}
    for record in batch:
        if record.shopper_key_hash:
            wanted.setdefault(record.shop_id, set()).add(record.shopper_key_hash)
    found: dict[tuple[int, str], int] = {}
    for shop_id, hashes in wanted.items():
        for key_hash, shopper_id in shopper_ids_by_hash(Shop(pk=shop_id), sorted(hashes)).items():
            found[(shop_id, key_hash)] = shopper_id
    return found


def _write_batch(batch: Sequence[ServedRecord]) -> tuple[int, int]:
    """(stored, rejected). Raises on an operational error (nothing is lost: the caller
    keeps the batch; records stored already are skipped when it is retried)."""
    try:
        _write(batch)
        return len(batch), 0
    except (IntegrityError, DataError, psycopg.IntegrityError, psycopg.DataError) as refused:
        # The data, not the database: retrying the whole batch would fail forever.
        logger.warning("served-list log: batch of %d refused (%s); writing it record by record", len(batch), refused)
        return _write_each(batch)


def _write(batch: Sequence[ServedRecord]) -> None:
    shoppers = _shopper_ids(batch)
    if connection.vendor == "postgresql":
        try:
            _copy(batch, shoppers)
            return
        except (IntegrityError, psycopg.IntegrityError) as error:
            # A batch retried after its commit was in doubt (ids already stored): the
            # bulk insert skips those. A record the insert refuses too (a shopper erased
            # since the look-up above, a shop deleted) sends the batch to _write_each.
            logger.warning("served-list log: COPY refused (%s); inserting the batch instead", error)
    _insert(batch, shoppers)


def _row(record: ServedRecord, shoppers: dict[tuple[int, str], int]) -> ServedList:
    r = record
    return ServedList(
        request_id=r.request_id,
        shop_id=r.shop_id,
        placement_slug=r.placement_slug,
        experiment_id=r.experiment_id,
        experiment_version=r.experiment_version,
        variant=r.variant,
        shopper_id=shoppers.get((r.shop_id, r.shopper_key_hash)),
        unit_hash=r.unit_hash,
        session=r.session,
        context_skus=r.context_skus,
        items=r.items,
        model_versions=r.model_versions,
        latency_ms=r.latency_ms,
        served_at=r.served_at,
    )


def _insert(batch: Sequence[ServedRecord], shoppers: dict[tuple[int, str], int]) -> None:
    with transaction.atomic():
        ServedList.objects.bulk_create(
            [_row(r, shoppers) for r in batch],
            ignore_conflicts=True,  # a batch retried after a failed commit may be in already
        )


def _write_each(batch: Sequence[ServedRecord]) -> tuple[int, int]:
    """Write a refused batch record by record, each in its own transaction: (stored,
    rejected). The shoppers are looked up again (one erased since the batch's look-up
    is simply no longer linked); a record the database still refuses (its shop is
    gone) is logged and left out. An operational error propagates: the caller keeps
    what was not written."""
    shoppers = _shopper_ids(batch)
    stored = rejected = 0
    for record in batch:
        try:
            # One transaction each: foreign keys are checked at commit (deferred).
            with transaction.atomic():
                ServedList.objects.bulk_create([_row(record, shoppers)], ignore_conflicts=True)
            stored += 1
        except (IntegrityError, DataError) as refused:
            rejected += 1
            logger.error(
                "served-list log: list %s of shop %s refused and left out: %s",
                record.request_id,
                record.shop_id,
                refused,
            )
    return stored, rejected


def _copy(batch: Sequence[ServedRecord], shoppers: dict[tuple[int, str], int]) -> None:
    """One COPY of the batch (text format, JSON columns as orjson text)."""
    table = ServedList._meta.db_table
    buffer = io.StringIO()
    for r in batch:
        shopper = shoppers.get((r.shop_id, r.shopper_key_hash))
        values = (
            str(r.request_id),
            str(r.shop_id),
            r.placement_slug,
            _optional(r.experiment_id),
            _optional(r.experiment_version),
            r.variant,
            _optional(shopper),
            r.unit_hash,
            r.session,
            orjson.dumps(r.context_skus).decode(),
            orjson.dumps(r.items).decode(),
            orjson.dumps(r.model_versions).decode(),
            repr(float(r.latency_ms)),
            r.served_at.isoformat(),
        )
        buffer.write("\t".join(_escape(v) for v in values))
        buffer.write("\n")
    connection.ensure_connection()
    raw = connection.connection
    with (
        transaction.atomic(),
        raw.cursor() as cursor,
        cursor.copy(f"COPY {table} ({', '.join(_COLUMNS)}) FROM STDIN") as copy,
    ):
        copy.write(buffer.getvalue())


def _optional(value: int | None) -> str:
    return "\\N" if value is None else str(value)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _escape(value: str) -> str:
    """A value in COPY's text format (``\\N``, already a NULL marker, is left alone)."""
    return value if value == "\\N" else value.translate(_ESCAPES)


served_log = ServedListLog()
atexit.register(lambda: served_log.flush() if served_log.pending() else None)
