"""Storing large batches of clean events: the bulk path of imports.

On Postgres a batch goes in by the cheapest way that keeps every guarantee:

1. The batch is sorted by event_id (code point order, as catalog.services.events_insert
   and the API insert, so concurrent writers always wait on each other in the same
   direction: no deadlock) and an event_id repeated inside the batch is kept once
   (the row of the lowest line).
2. Direct: the rows are copied (COPY, binary format, built a column at a time by
   binary_copy_rows) straight into the event table, inside a savepoint. The unique
   constraint on (shop_id, event_id) still checks every row, so an event_id already
   stored (a rerun, an interrupted import, an event that also came through the API, a
   batch of the same file in another connection) makes the COPY fail as a whole: the
   savepoint is rolled back and nothing of it remains.
3. Staged, when the direct COPY failed (or recently failed, see ``_Backoff``): the batch
   is copied into a temporary staging table and moved with one ``INSERT ... SELECT ...
   ON CONFLICT (shop_id, event_id) DO NOTHING``, which skips the stored ones.

So a file of new events costs the database what a raw COPY into the table costs, and a
rerun a failed start (the first duplicate is found within the first rows) and the
staged path. A COPY that waits on a row another transaction is inserting (the same
event_id) fails if that one commits, or goes on if it rolls back. Elsewhere (SQLite)
the rows go in with batched INSERTs and the same ON CONFLICT clause.

Each batch holds the shop's event-write lock shared (catalog.services.shop_events_lock:
Event has no database foreign key, see its docstring). Shoppers are found or created
through catalog.services.shoppers_ensure; the hash of each shopper id is remembered
for the whole import. Products are mapped by SKU;
an event with an unknown SKU is kept with no product.

Call ``write`` inside a transaction (one per batch): the staging table empties itself
when that transaction ends.
"""

import io
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone

from catalog.event_columns import CLEAN_SCHEMA, price_from_cents, ts_from_us
from catalog.models import Event, Shop
from catalog.redis_cache import cache_delete_many
from catalog.services import _EVENT_COLUMNS as EVENT_TABLE_COLUMNS
from catalog.services import (
    EventRow,
    events_insert,
    product_ids_by_sku,
    shop_events_lock,
    shopper_history_cache_key,
    shopper_ids_by_hash,
    shopper_key_hash,
    shoppers_ensure,
)

STAGE_TABLE = "recsite_event_stage"
_STAGE_COLUMNS = (
    "event_id",
    "type",
    "shopper_id",
    "product_id",
    "sku",
    "session",
    "ts_us",
    "quantity",
    "price_cents",
    "request_id",
)
# The columns in catalog.services' order (the fields built in _copy_direct follow it).
_DIRECT_COPY_SQL = f"COPY {Event._meta.db_table} ({', '.join(EVENT_TABLE_COLUMNS)}) FROM STDIN (FORMAT binary)"
# After a direct COPY failed on a stored event_id, the next batches of the import go
# the staged way: 1, then 2, 4, ... up to this many while the failures go on.
MAX_DIRECT_BACKOFF = 32
# How many shopper-id hashes an import remembers (about 250 bytes each: ~50 MB).
# Hashing is cheap (a microsecond); the memo only spares repeating it for regulars.
HASH_MEMO_SIZE = 200_000
# How many SKU -> product id pairs an import remembers (about 150 bytes each).
PRODUCT_MEMO_SIZE = 500_000


@dataclass(frozen=True)
class WriteResult:
    inserted: int  # new rows
    duplicates: int  # event_ids already stored (or twice in the batch)
    unknown_skus: int  # new rows without a product (unknown SKU)


# From staging into the table, in event_id order (see catalog.services.events_insert).
# received_at: clock_timestamp() gives each row its own instant; one value shared by a
# whole batch makes the (shop, received_at) index much slower to insert into.
_MOVE_SQL = f"""
WITH moved AS (
    INSERT INTO {Event._meta.db_table} (shop_id, event_id, type, shopper_id, product_id, sku, session, ts,
                                        quantity, price, request_id, received_at)
    SELECT %s, event_id, type, shopper_id, product_id, sku, session,
           timestamptz '1970-01-01 00:00:00+00' + ts_us * interval '1 microsecond',
           quantity, price_cents * 0.01, request_id, clock_timestamp()
    FROM {STAGE_TABLE} ORDER BY event_id COLLATE "C"
    ON CONFLICT (shop_id, event_id) DO NOTHING
    RETURNING product_id
)
SELECT count(*), count(*) FILTER (WHERE product_id IS NULL) FROM moved
"""


class EventWriter:
    """Writes CLEAN_SCHEMA batches of one shop's events. One per import: it remembers
    shopper hashes across batches. Threads may share it, each writing in its own
    connection (the memo is a dict whose single operations are atomic).

    Per batch: ``create_shoppers`` in a transaction of its own, then ``write`` in the
    batch's transaction. Creating the shoppers apart keeps concurrent batches that
    share new shoppers from waiting for each other's whole batch to commit (a
    conflicting insert waits for the other transaction); ``write`` looks them up again
    under the shop's event-write lock and recreates any erased in between.
    """

    def __init__(self, shop: Shop) -> None:
        self.shop = shop
        self._hashes: dict[str, str] = {}
        self._product_id_of: dict[str, int] = {}
        self._backoff = _Backoff(MAX_DIRECT_BACKOFF)

    def create_shoppers(self, batch: pa.Table) -> None:
        """Create the batch's missing shoppers (idempotent) and commit them, unless
        called inside a transaction (then they are part of it)."""
        if batch.num_rows:
            hashes = [self._hash(s) for s in pc.unique(batch.column("shopper")).to_pylist()]
            with transaction.atomic():
                shoppers_ensure(self.shop, hashes)

    def write(self, batch: pa.Table) -> WriteResult:
        """Store the batch; call it inside a transaction. Idempotent by event_id."""
        if batch.num_rows == 0:
            return WriteResult(0, 0, 0)
        assert batch.schema.equals(CLEAN_SCHEMA), batch.schema
        shop_events_lock(self.shop, exclusive=False)
        batch, repeated = first_of_each_event_id(batch)
        shopper_hashes, shopper_ids = self._shopper_ids(batch.column("shopper"))
        if connection.vendor == "postgresql":
            product_ids = self._product_ids(batch.column("sku"))
            result = self._copy_direct(batch, shopper_ids, product_ids) if self._backoff.try_direct() else None
            if result is None:
                result = self._copy_and_insert(batch, shopper_ids, product_ids)
        else:
            stored = self._insert_rows(batch, shopper_ids)
            without_product = sum(1 for product_id in stored.values() if product_id is None)
            result = WriteResult(len(stored), batch.num_rows - len(stored), without_product)
        keys = [shopper_history_cache_key(self.shop.pk, h) for h in shopper_hashes]
        transaction.on_commit(lambda: cache_delete_many(keys))
        return WriteResult(result.inserted, result.duplicates + repeated, result.unknown_skus)

    # --- ids ---

    def _hash(self, external_id: str) -> str:
        found = self._hashes.get(external_id)
        if found is None:
            if len(self._hashes) >= HASH_MEMO_SIZE:
                self._hashes.clear()
            found = self._hashes[external_id] = shopper_key_hash(self.shop, external_id)
        return found

    def _shopper_ids(self, shoppers: pa.ChunkedArray) -> tuple[list[str], pa.Array]:
        """The distinct hashes of the batch, and the shopper row id of every event."""
        distinct = pc.unique(shoppers)
        hashes = [self._hash(s) for s in distinct.to_pylist()]
        ids_by_hash = shopper_ids_by_hash(self.shop, hashes)
        missing = [h for h in hashes if h not in ids_by_hash]
        if missing:  # not created yet (write without create_shoppers), or erased since
            ids_by_hash.update(shoppers_ensure(self.shop, missing))
        distinct_ids = pa.array([ids_by_hash[h] for h in hashes], pa.int64())
        return hashes, pc.take(distinct_ids, pc.index_in(shoppers, value_set=distinct)).combine_chunks()

    def _product_ids(self, skus: pa.ChunkedArray) -> pa.Array:
        """The product row id of every event; null where the SKU is unknown.

        Known SKUs are remembered for the whole import (a product row is never deleted
        and its SKU never changes, so its id stays right); unknown ones are looked up
        again in every batch, since the product may be created meanwhile."""
        distinct = pc.unique(skus).to_pylist()
        memo = self._product_id_of
        missing = [sku for sku in distinct if sku not in memo]
        if missing:
            if len(memo) + len(missing) > PRODUCT_MEMO_SIZE:
                memo.clear()
            memo.update(product_ids_by_sku(self.shop, missing))
        known = {sku: memo[sku] for sku in distinct if sku in memo}
        if not known:
            return pa.nulls(len(skus), pa.int64())
        known_skus = pa.array(list(known), pa.string())
        known_ids = pa.array(list(known.values()), pa.int64())
        return pc.take(known_ids, pc.index_in(skus, value_set=known_skus)).combine_chunks()

    # --- Postgres: COPY straight into the table ---

    def _copy_direct(self, batch: pa.Table, shopper_ids: pa.Array, product_ids: pa.Array) -> WriteResult | None:
        """COPY the (sorted, distinct) rows into the event table in a savepoint; None,
        with nothing of the batch stored, when an event_id of it is stored already (or
        is being stored by a transaction that then commits)."""
        from psycopg import errors

        n = batch.num_rows
        # Each row its own instant (see _MOVE_SQL): the batch's start plus one
        # microsecond a row, well inside the time the COPY itself takes.
        received_us = time.time_ns() // 1000 + np.arange(n, dtype=np.int64)
        product_null = np.asarray(product_ids.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        price = batch.column("price_cents").combine_chunks()
        data = binary_copy_data(
            n,
            [
                BinaryField.int8(np.full(n, self.shop.pk, dtype=np.int64)),
                BinaryField.text(batch.column("event_id")),
                BinaryField.text(batch.column("type")),
                BinaryField.int8(_int64s(shopper_ids)),
                BinaryField.int8(_int64s(product_ids), null=product_null),
                BinaryField.text(batch.column("sku")),
                BinaryField.text(batch.column("session")),
                BinaryField.timestamptz(_int64s(batch.column("ts_us"))),
                BinaryField.int4(_int64s(batch.column("quantity"))),
                BinaryField.cents(_int64s(price), null=np.asarray(price.is_null().to_numpy(zero_copy_only=False))),
                BinaryField.text(batch.column("request_id")),
                BinaryField.timestamptz(received_us),
            ],
        )
        try:
            with transaction.atomic(), connection.cursor() as cursor, cursor.copy(_DIRECT_COPY_SQL) as copy:
                for part in data:
                    copy.write(part)
        except (errors.UniqueViolation, errors.DeadlockDetected, IntegrityError):
            self._backoff.failed()
            return None
        self._backoff.succeeded()
        without_product = product_ids.null_count
        return WriteResult(n, 0, without_product)

    # --- Postgres: COPY into staging, then one INSERT ... SELECT ---

    def _copy_and_insert(self, batch: pa.Table, shopper_ids: pa.Array, product_ids: pa.Array) -> WriteResult:
        stage = pa.table(
            {
                "event_id": batch.column("event_id"),
                "type": batch.column("type"),
                "shopper_id": shopper_ids,
                "product_id": product_ids,
                "sku": batch.column("sku"),
                "session": batch.column("session"),
                "ts_us": batch.column("ts_us"),
                "quantity": batch.column("quantity"),
                "price_cents": batch.column("price_cents"),
                "request_id": batch.column("request_id"),
            }
        )
        data = io.BytesIO()
        # Strings are always quoted, so "" is an empty string and an unquoted empty cell is NULL.
        pacsv.write_csv(stage, data, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        with connection.cursor() as cursor:
            self._ensure_stage(cursor)
            # The sort by event_id of a whole batch fits in memory instead of spilling to disk.
            cursor.execute("SET LOCAL work_mem = '64MB'")
            with cursor.copy(f"COPY {STAGE_TABLE} ({', '.join(_STAGE_COLUMNS)}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(data.getbuffer())
            cursor.execute(_MOVE_SQL, [self.shop.pk])
            inserted, without_product = cursor.fetchone()
            return WriteResult(inserted, batch.num_rows - inserted, without_product)

    def _ensure_stage(self, cursor: Any) -> None:
        """The staging table of this connection (temporary tables are per session).

        A batch is about 20 MB in it: the session's buffers for temporary tables are
        raised first. Postgres allows that only before the session's first use of a
        temporary table; a session that has used one keeps its buffers (the savepoint
        keeps the refusal from aborting the batch's transaction)."""
        cursor.execute(f"SELECT to_regclass('pg_temp.{STAGE_TABLE}') IS NULL")
        if cursor.fetchone()[0]:
            try:
                with transaction.atomic():
                    cursor.execute("SET temp_buffers = '64MB'")
            except DataError:
                pass
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} ("
            " event_id text NOT NULL, type text NOT NULL, shopper_id bigint NOT NULL, product_id bigint,"
            " sku text NOT NULL, session text NOT NULL, ts_us bigint NOT NULL, quantity integer NOT NULL,"
            " price_cents bigint, request_id text NOT NULL"
            ") ON COMMIT DELETE ROWS"
        )

    # --- elsewhere: batched INSERTs ---

    def _insert_rows(self, batch: pa.Table, shopper_ids: pa.Array) -> dict[str, int | None]:
        columns = batch.to_pydict()
        rows = [
            EventRow(
                event_id=event_id,
                type=event_type,
                shopper_id=shopper_id,
                sku=sku,
                session=session,
                ts=ts_from_us(ts_us),
                quantity=quantity,
                price=price_from_cents(price),
                request_id=request_id,
            )
            for event_id, event_type, shopper_id, sku, session, ts_us, quantity, price, request_id in zip(
                columns["event_id"],
                columns["type"],
                shopper_ids.to_pylist(),
                columns["sku"],
                columns["session"],
                columns["ts_us"],
                columns["quantity"],
                columns["price_cents"],
                columns["request_id"],
                strict=True,
            )
        ]
        return events_insert(shop=self.shop, rows=rows, received_at=timezone.now())


def _int64s(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An integer column as int64 numpy values (0 where null)."""
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=np.int64)


# --- Postgres's binary COPY format, built a column at a time ----------------------------

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # no OIDs, no extension
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800 * 1_000_000  # 2000-01-01 in Unix microseconds


@dataclass(frozen=True)
class BinaryField:
    """One column of a binary COPY. ``cells`` is an (n, 4 + width) uint8 array: each
    value's length word and its fixed-width big-endian encoding; or, for text
    (``width`` 0), an Arrow string array. Rows where ``null`` is true are sent as NULL."""

    width: int
    cells: Any
    null: np.ndarray | None = None

    @classmethod
    def _fixed(cls, code: str, values: np.ndarray, null: np.ndarray | None) -> "BinaryField":
        width = np.dtype(code).itemsize
        cells = np.empty(len(values), dtype=[("length", ">i4"), ("value", code)])
        cells["length"] = width
        cells["value"] = values
        return cls(width, cells.view(np.uint8).reshape(-1, 4 + width), null)

    @classmethod
    def int8(cls, values: np.ndarray, null: np.ndarray | None = None) -> "BinaryField":
        return cls._fixed(">i8", values, null)

    @classmethod
    def int4(cls, values: np.ndarray) -> "BinaryField":
        return cls._fixed(">i4", values, None)

    @classmethod
    def timestamptz(cls, unix_us: np.ndarray) -> "BinaryField":
        return cls._fixed(">i8", unix_us - _PG_EPOCH_US, None)

    @classmethod
    def cents(cls, cents: np.ndarray, null: np.ndarray | None = None) -> "BinaryField":
        """A non-negative amount in cents (below 10^10) as a numeric with two decimals:
        3 base-10000 digits (weight 1: units // 10^4, units % 10^4, cents x 100);
        Postgres strips the zero digits as it reads them."""
        units, rest = np.divmod(cents, 100)
        words = np.stack(
            [
                np.full_like(cents, 3),  # ndigits
                np.ones_like(cents),  # weight
                np.zeros_like(cents),  # sign: positive
                np.full_like(cents, 2),  # dscale
                units // 10_000,
                units % 10_000,
                rest * 100,
            ],
            axis=1,
        )
        return cls._fixed("(7,)>i2", words, null)

    @classmethod
    def text(cls, values: pa.Array | pa.ChunkedArray) -> "BinaryField":
        array = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
        if array.null_count:
            raise ValueError("text columns of a binary COPY here are never null")
        return cls(0, array.cast(pa.string()))


def _string_offsets(array: pa.Array) -> np.ndarray:
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32)
    return offsets[array.offset : array.offset + len(array) + 1].astype(np.int64)


_NULL_CELL = pa.scalar(b"\xff\xff\xff\xff", pa.binary())  # a length of -1


def _as_binary(cells: np.ndarray) -> pa.Array:
    """An (n, k) uint8 array as n binary values of k bytes."""
    cells = np.ascontiguousarray(cells)
    fixed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(cells.shape[1]), len(cells), [None, pa.py_buffer(cells)])
    return fixed.cast(pa.binary())


def binary_copy_rows(n: int, fields: list[BinaryField]) -> pa.Array:
    """``n`` rows of ``fields`` in Postgres's binary COPY format, as a binary array
    whose data buffer holds the rows back to back (put COPY_HEADER before it and
    COPY_TRAILER after it).

    Built a column at a time, never a row at a time: every row is cut into the same
    pieces (runs of fixed-width cells with the length words of the text cells around
    them, a text, a cell that may be NULL, ...), each piece is one binary array of n
    values, and one ``take`` lays them out row after row."""
    field_count = np.broadcast_to(np.array([len(fields)], dtype=">i2").view(np.uint8), (n, 2))
    pieces: list[pa.Array] = []
    fixed_run: list[np.ndarray] = [field_count]
    for field in fields:
        if field.width == 0:
            offsets = _string_offsets(field.cells)
            fixed_run.append(np.diff(offsets).astype(">i4").view(np.uint8).reshape(-1, 4))
            pieces += [_as_binary(np.hstack(fixed_run)), field.cells.view(pa.binary())]
            fixed_run = []
        elif field.null is None or not field.null.any():
            fixed_run.append(field.cells)
        else:
            if fixed_run:
                pieces.append(_as_binary(np.hstack(fixed_run)))
                fixed_run = []
            pieces.append(pc.if_else(pa.array(field.null), _NULL_CELL, _as_binary(field.cells)))
    if fixed_run:
        pieces.append(_as_binary(np.hstack(fixed_run)))
    row_major = (np.arange(len(pieces), dtype=np.int64) * n + np.arange(n, dtype=np.int64)[:, None]).ravel()
    return pa.concat_arrays(pieces).take(pa.array(row_major))


COPY_HEADER = _COPY_SIGNATURE


def binary_copy_data(n: int, fields: list[BinaryField]) -> list[memoryview]:
    """``n`` rows of ``fields`` as a whole binary COPY stream, in parts to write in turn."""
    rows = binary_copy_rows(n, fields)
    offsets = _string_offsets(rows) if n else np.zeros(1, dtype=np.int64)
    body = memoryview(rows.buffers()[2])[offsets[0] : offsets[-1]] if n and offsets[-1] > offsets[0] else b""
    return [memoryview(COPY_HEADER), memoryview(body), memoryview(_COPY_TRAILER)]


def first_of_each_event_id(batch: pa.Table) -> tuple[pa.Table, int]:
    """The batch sorted by event_id (code point order, then line), each event_id once
    (its first line), and how many rows repeated an event_id before it."""
    order = pc.sort_indices(batch, sort_keys=[("event_id", "ascending"), ("line", "ascending")])
    ordered = batch.take(order)
    if ordered.num_rows < 2:
        return ordered, 0
    ids = ordered.column("event_id").combine_chunks()
    new = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    keep = pa.concat_arrays([pa.array([True]), new])
    repeated = len(ids) - pc.sum(keep).as_py()
    return (ordered.filter(keep) if repeated else ordered), repeated


class _Backoff:
    """When to try the direct COPY: always, until it fails on a stored event_id; then
    not for the next 1 batch, and after each further failure for twice as many (up to
    ``limit``), so a file that is mostly stored already (a rerun) costs little more
    than the staged path alone. Shared by an import's writer threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._skip = 0  # batches still to send the staged way
        self._next_skip = 1

    def try_direct(self) -> bool:
        with self._lock:
            if self._skip > 0:
                self._skip -= 1
                return False
            return True

    def failed(self) -> None:
        with self._lock:
            self._skip = self._next_skip
            self._next_skip = min(self._next_skip * 2, self.limit)

    def succeeded(self) -> None:
        with self._lock:
            self._next_skip = 1
