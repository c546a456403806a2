"""Storing large batches of clean events: the bulk path of imports.

On Postgres a batch is copied (COPY, CSV format) into a temporary staging table and
moved with one ``INSERT ... SELECT ... ON CONFLICT (shop_id, event_id) DO NOTHING``:
a rerun of the same file, or an event that also came through the API, makes no
second row. Elsewhere (SQLite) the same rows go in with batched INSERTs and the same
ON CONFLICT clause.

Each batch holds the shop's event-write lock shared (catalog.services.shop_events_lock:
Event has no database foreign key, see its docstring). Shoppers are found or created
through catalog.services.shoppers_ensure; the hash of each shopper id is remembered
for the whole import. Products are mapped by SKU;
an event with an unknown SKU is kept with no product.

Call ``write`` inside a transaction (one per batch): the staging table empties itself
when that transaction ends.
"""

import io
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection, transaction
from django.utils import timezone

from catalog.event_columns import CLEAN_SCHEMA, ts_from_us
from catalog.models import Event, Shop
from catalog.redis_cache import cache_delete_many
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
    "price",
    "request_id",
)
# How many shopper-id hashes an import remembers (about 250 bytes each: ~50 MB).
# Hashing is cheap (a microsecond); the memo only spares repeating it for regulars.
HASH_MEMO_SIZE = 200_000


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
           quantity, price, request_id, clock_timestamp()
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
        shopper_hashes, shopper_ids = self._shopper_ids(batch.column("shopper"))
        if connection.vendor == "postgresql":
            result = self._copy_and_insert(batch, shopper_ids, self._product_ids(batch.column("sku")))
        else:
            stored = self._insert_rows(batch, shopper_ids)
            without_product = sum(1 for product_id in stored.values() if product_id is None)
            result = WriteResult(len(stored), batch.num_rows - len(stored), without_product)
        keys = [shopper_history_cache_key(self.shop.pk, h) for h in shopper_hashes]
        transaction.on_commit(lambda: cache_delete_many(keys))
        return result

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
        """The product row id of every event; null where the SKU is unknown."""
        known = product_ids_by_sku(self.shop, pc.unique(skus).to_pylist())
        if not known:
            return pa.nulls(len(skus), pa.int64())
        known_skus = pa.array(list(known), pa.string())
        known_ids = pa.array(list(known.values()), pa.int64())
        return pc.take(known_ids, pc.index_in(skus, value_set=known_skus)).combine_chunks()

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
                "price": batch.column("price"),
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
        raised first (possible only before the session's first temporary table)."""
        cursor.execute(f"SELECT to_regclass('pg_temp.{STAGE_TABLE}') IS NULL")
        if cursor.fetchone()[0]:
            cursor.execute("SET temp_buffers = '64MB'")
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGE_TABLE} ("
            " event_id text NOT NULL, type text NOT NULL, shopper_id bigint NOT NULL, product_id bigint,"
            " sku text NOT NULL, session text NOT NULL, ts_us bigint NOT NULL, quantity integer NOT NULL,"
            " price numeric(12, 2), request_id text NOT NULL"
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
                price=None if price is None else Decimal(price),
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
                columns["price"],
                columns["request_id"],
                strict=True,
            )
        ]
        return events_insert(shop=self.shop, rows=rows, received_at=timezone.now())
