"""Writes to the catalog and behaviour store: ingestion of events and products, erasure."""

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.audit import Actor, audit_record
from catalog.models import Category, Event, Product, Rejection, Shop, Shopper
from catalog.redis_cache import cache_delete_many
from catalog.validation import Problem, ValidEvent, ValidProduct, validate_event, validate_product

TEXT_FIELDS = frozenset({"title", "description", "category", "brand", "tags", "attributes"})
SHOPPER_HISTORY_CACHE_S = 3600  # ingestion and erasure delete the entry on commit


@dataclass(frozen=True, slots=True)
class RecordRejection:
    """One problem with one record of a batch, as the API reports it."""

    index: int
    record_id: str
    field: str
    reason: str


@dataclass
class EventIngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RecordRejection] = field(default_factory=list)
    unknown_skus: list[RecordRejection] = field(default_factory=list)


@dataclass
class ProductUpsertResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RecordRejection] = field(default_factory=list)
    changed_product_ids: list[int] = field(default_factory=list)


def shopper_key_hash(shop: Shop, external_id: str) -> str:
    """The keyed hash (HMAC-SHA256) that stands for a shopper id; the id itself is never stored."""
    return hmac.digest(shop.shopper_secret.encode(), external_id.encode("utf-8"), hashlib.sha256).hex()


def shopper_history_cache_key(shop_id: int, key_hash: str) -> str:
    return f"shopper-history:v2:{shop_id}:{key_hash}"


def _payload_text(raw: Any) -> str:
    """The record as storable text: ASCII-escaped JSON keeps even NUL and lone surrogates."""
    try:
        return json.dumps(raw, ensure_ascii=True, default=repr)[:100_000]
    except (ValueError, RecursionError):
        pass
    try:
        return ascii(raw)[:100_000]
    except (ValueError, RecursionError):  # e.g. an int beyond the int-to-str digit limit
        return f"<{type(raw).__name__} that cannot be shown>"


def _record_id(raw: Any, key: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    return _payload_text(value)[1:-1][:200] if isinstance(value, str) else ""


def rejections_keep(
    *,
    shop: Shop,
    kind: str,
    source: str,
    records: Sequence[Any],
    problems_by_index: dict[int, list[Problem]],
    id_key: str,
    lines: Sequence[int] | None,
) -> list[RecordRejection]:
    """Keep every rejected record with its reasons; return one entry per problem.

    ``records[index]`` is the record as received (any JSON value, or the cells of a
    CSV row); ``lines[index]`` its line in an imported file."""
    rejected: list[RecordRejection] = []
    rows: list[Rejection] = []
    for index, problems in problems_by_index.items():
        raw = records[index]
        record_id = _record_id(raw, id_key)
        rows.append(
            Rejection(
                shop=shop,
                kind=kind,
                source=source,
                payload=_payload_text(raw),
                reasons=[{"field": p.field, "reason": p.reason} for p in problems],
                record_id=record_id,
                line=lines[index] if lines is not None else None,
            )
        )
        rejected.extend(RecordRejection(index, record_id, p.field, p.reason) for p in problems)
    Rejection.objects.bulk_create(rows)
    return rejected


# Event has no database foreign keys (see its docstring). What keeps an erasure from
# interleaving with an ingestion is this lock: every transaction that writes events
# holds it shared for the shop, shopper_erase holds it exclusively. An erasure waits
# for the ingestions in flight (and then deletes their events too); an ingestion that
# starts during an erasure waits for it (and then finds no shopper and starts a new
# one). Postgres queues a waiting exclusive request ahead of later shared ones, so a
# steady stream of ingestions cannot starve an erasure. SQLite has one writer at a
# time and needs no lock.
_EVENTS_LOCK_SPACE = 0x45564E54  # "EVNT": the advisory-lock namespace of event writes


def shop_events_lock(shop: Shop, *, exclusive: bool) -> None:
    """Take the shop's event-write lock until the current transaction ends."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s::int4, %s::int4)", [_EVENTS_LOCK_SPACE, shop.pk & 0x7FFFFFFF])


def shoppers_ensure(shop: Shop, key_hashes: Iterable[str]) -> dict[str, int]:
    """Shopper ids for these hashes (hex digests of shopper_key_hash), creating the
    missing shoppers. Call it inside the transaction that writes the events, after
    shop_events_lock (or alone, to create shoppers ahead: see EventWriter).

    Race-safe: a shopper created concurrently is found, not duplicated (unique
    constraint, ON CONFLICT DO NOTHING, then a fresh read). Hashes are inserted in
    sorted order, so concurrent callers cannot deadlock. On Postgres it is usually one
    statement (find, create the rest, return both).
    """
    wanted = sorted(set(key_hashes))
    if not wanted:
        return {}
    if any("," in h for h in wanted):
        raise ValueError("shopper key hashes are hex digests")
    if connection.vendor != "postgresql":
        known = _shopper_ids(shop.pk, wanted)
        missing = [h for h in wanted if h not in known]
        if missing:
            Shopper.objects.bulk_create([Shopper(shop=shop, key_hash=h) for h in missing], ignore_conflicts=True)
            known.update(_shopper_ids(shop.pk, missing))
        return known
    with _binding_cursor() as cursor:
        # Hashes are hex: a comma-separated text is the cheapest way to send them.
        cursor.execute(_SHOPPERS_ENSURE_SQL, [",".join(wanted), shop.pk, shop.pk, timezone.now()])
        known = dict(cursor.fetchall())
    missing = [h for h in wanted if h not in known]
    if missing:
        # Created by a transaction that committed after this statement's snapshot was
        # taken: visible to a new statement.
        known.update(_shopper_ids(shop.pk, missing))
    if len(known) != len(wanted):
        raise RuntimeError(f"{len(wanted) - len(known)} shoppers of shop {shop.pk} could be neither found nor created")
    return known


_SHOPPERS_ENSURE_SQL = f"""
WITH wanted AS (SELECT value FROM unnest(string_to_array(%s, ',')) AS value),
found AS (
    SELECT wanted.value, shopper.id FROM wanted CROSS JOIN LATERAL (
        SELECT id FROM {Shopper._meta.db_table} WHERE shop_id = %s AND key_hash = wanted.value LIMIT 1
    ) AS shopper
),
created AS (
    INSERT INTO {Shopper._meta.db_table} (shop_id, key_hash, created_at)
    SELECT %s, wanted.value, %s FROM wanted
    WHERE NOT EXISTS (SELECT 1 FROM found WHERE found.value = wanted.value)
    ORDER BY wanted.value
    ON CONFLICT (shop_id, key_hash) DO NOTHING
    RETURNING key_hash, id
)
SELECT value, id FROM found UNION ALL SELECT key_hash, id FROM created
"""


def shopper_ids_by_hash(shop: Shop, key_hashes: list[str]) -> dict[str, int]:
    """Row ids of the existing shoppers among these hashes (any number of them)."""
    return _shopper_ids(shop.pk, key_hashes)


def _shopper_ids(shop_id: int, key_hashes: list[str]) -> dict[str, int]:
    if connection.vendor != "postgresql":
        found: dict[str, int] = {}
        for part in _slices(key_hashes):
            found.update(Shopper.objects.filter(shop_id=shop_id, key_hash__in=part).values_list("key_hash", "id"))
        return found
    with _binding_cursor() as cursor:
        cursor.execute(_lookup_sql(Shopper._meta.db_table, "key_hash"), [key_hashes, shop_id])
        return dict(cursor.fetchall())


def product_ids_by_sku(shop: Shop, skus: Iterable[str]) -> dict[str, int]:
    """Product row ids of the known SKUs among ``skus`` (any number of them)."""
    wanted = list(set(skus))
    if not wanted:
        return {}
    if connection.vendor == "postgresql":
        with _binding_cursor() as cursor:
            cursor.execute(_lookup_sql(Product._meta.db_table, "sku"), [wanted, shop.pk])
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for part in _slices(wanted):
        found.update(Product.objects.filter(shop=shop, sku__in=part).values_list("sku", "id"))
    return found


def _lookup_sql(table: str, column: str) -> str:
    """(value, id) of the rows of one shop whose unique ``column`` is in an array.

    One probe of the (shop_id, column) unique index per value, whatever the planner
    believes about the table: the LIMIT keeps the lateral subquery from being merged
    into a join that stale statistics (a shop that just grew) turn into a scan of every
    row of the shop."""
    return (
        f"SELECT wanted.value, found.id FROM unnest(%s::text[]) AS wanted (value)"
        f" CROSS JOIN LATERAL (SELECT id FROM {table} WHERE shop_id = %s AND {column} = wanted.value LIMIT 1) AS found"
    )


def _binding_cursor() -> Any:
    """A psycopg cursor on Django's connection (same transaction) that sends parameters
    separately from the query: a list of 50,000 ids goes as one binary array instead of
    megabytes of SQL text (Django's cursors bind on the client), and a statement run
    often is prepared once per connection."""
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _slices(values: list[str], size: int = 10_000) -> list[list[str]]:
    """Pieces small enough for SQLite's limit on bound parameters."""
    return [values[start : start + size] for start in range(0, len(values), size)]


@dataclass(frozen=True, slots=True)
class EventRow:
    """An event ready to store: a valid event with its shopper's row id."""

    event_id: str
    type: str
    shopper_id: int
    sku: str
    session: str
    ts: datetime
    quantity: int
    price: Decimal | None
    request_id: str


_EVENT_COLUMNS = (
    "shop_id",
    "event_id",
    "type",
    "shopper_id",
    "product_id",
    "sku",
    "session",
    "ts",
    "quantity",
    "price",
    "request_id",
    "received_at",
)


def events_insert(*, shop: Shop, rows: list[EventRow], received_at: datetime) -> dict[str, int | None]:
    """Store events of one shop; for each event_id that was new, its product id (None
    when no product has its SKU). Call it inside a transaction, after shop_events_lock.

    INSERT ... ON CONFLICT (shop_id, event_id) DO NOTHING: a replayed or concurrently
    sent duplicate is a no-op, in the same statement or across transactions. Rows go
    in ordered by event_id (code point order, as Postgres orders them with COLLATE
    "C", and as the bulk path does), so two writers waiting on each other's uncommitted
    duplicates always wait in the same direction: no deadlock.
    """
    if not rows:
        return {}
    rows = sorted(rows, key=lambda row: row.event_id)
    if connection.vendor == "postgresql":
        return _events_insert_postgres(shop, rows, received_at)
    product_ids = product_ids_by_sku(shop, {row.sku for row in rows})
    ops = connection.ops
    received = ops.adapt_datetimefield_value(received_at)
    values = [
        (
            shop.pk,
            row.event_id,
            row.type,
            row.shopper_id,
            product_ids.get(row.sku),
            row.sku,
            row.session,
            ops.adapt_datetimefield_value(row.ts),
            row.quantity,
            ops.adapt_decimalfield_value(row.price, 12, 2),
            row.request_id,
            received,
        )
        for row in rows
    ]
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _EVENT_COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    inserted: dict[str, int | None] = {}
    chunk = 500  # stays below SQLite's bound-parameter limit
    with connection.cursor() as cursor:
        for start in range(0, len(values), chunk):
            part = values[start : start + chunk]
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(part))} "
                "ON CONFLICT (shop_id, event_id) DO NOTHING RETURNING event_id, product_id",
                [value for row in part for value in row],
            )
            inserted.update(cursor.fetchall())
    return inserted


_EVENTS_INSERT_SQL = f"""
INSERT INTO {Event._meta.db_table} ({", ".join(_EVENT_COLUMNS)})
SELECT %s, e.event_id, e.type, e.shopper_id, product.id, e.sku, e.session, e.ts, e.quantity, e.price,
       e.request_id, %s
FROM json_to_recordset(%s::json) AS e (
    position int4, event_id text, type text, shopper_id int8, sku text, session text, ts timestamptz,
    quantity int4, price numeric, request_id text
)
LEFT JOIN LATERAL (
    SELECT id FROM {Product._meta.db_table} WHERE shop_id = %s AND sku = e.sku LIMIT 1
) AS product ON true
ORDER BY e.position
ON CONFLICT (shop_id, event_id) DO NOTHING
RETURNING event_id, product_id
"""


def _events_insert_postgres(shop: Shop, rows: list[EventRow], received_at: datetime) -> dict[str, int | None]:
    """One statement whatever the number of rows: the rows travel as one JSON document
    (a tenth of the client CPU of one array parameter per column), the products are
    found by SKU in the same statement, and the statement text never changes
    (prepared once per connection)."""
    document = orjson.dumps(
        [
            {
                "position": position,
                "event_id": row.event_id,
                "type": row.type,
                "shopper_id": row.shopper_id,
                "sku": row.sku,
                "session": row.session,
                "ts": row.ts,
                "quantity": row.quantity,
                "price": None if row.price is None else str(row.price),
                "request_id": row.request_id,
            }
            for position, row in enumerate(rows)
        ]
    ).decode()
    with _binding_cursor() as cursor:
        cursor.execute(_EVENTS_INSERT_SQL, [shop.pk, received_at, document, shop.pk])
        return dict(cursor.fetchall())


def events_ingest(
    *,
    shop: Shop,
    records: Sequence[Any],
    source: str = Rejection.Source.API,
    lines: Sequence[int] | None = None,
    now: datetime | None = None,
) -> EventIngestResult:
    """Validate and store a batch of events; keep the rejected ones with their reasons.

    Idempotent by ``event_id``: a duplicate (replayed, or sent concurrently) is counted
    in ``duplicates`` and makes no second row. A new event whose SKU is unknown is kept
    with no product and reported in ``unknown_skus``. One transaction, holding the
    shop's event-write lock shared (see shop_events_lock).
    """
    now = now or timezone.now()
    result = EventIngestResult()
    valid: list[tuple[int, ValidEvent]] = []
    problems_by_index: dict[int, list[Problem]] = {}
    for index, raw in enumerate(records):
        checked = validate_event(raw, now=now)
        if isinstance(checked, ValidEvent):
            valid.append((index, checked))
        else:
            problems_by_index[index] = checked

    hashes: dict[str, str] = {}
    for _, event in valid:
        if event.shopper not in hashes:
            hashes[event.shopper] = shopper_key_hash(shop, event.shopper)
    inserted: dict[str, int | None] = {}
    with transaction.atomic():
        if valid:
            shop_events_lock(shop, exclusive=False)
            shopper_ids = shoppers_ensure(shop, hashes.values())
            rows = [
                EventRow(
                    event_id=event.event_id,
                    type=event.type,
                    shopper_id=shopper_ids[hashes[event.shopper]],
                    sku=event.sku,
                    session=event.session,
                    ts=event.ts,
                    quantity=event.quantity,
                    price=event.price,
                    request_id=event.request_id,
                )
                for _, event in valid
            ]
            inserted = events_insert(shop=shop, rows=rows, received_at=now)
        if problems_by_index:
            result.rejected = rejections_keep(
                shop=shop,
                kind=Rejection.Kind.EVENT,
                source=source,
                records=records,
                problems_by_index=problems_by_index,
                id_key="event_id",
                lines=lines,
            )
        touched = {hashes[event.shopper] for _, event in valid if event.event_id in inserted}
        if touched:
            keys = [shopper_history_cache_key(shop.pk, h) for h in touched]
            transaction.on_commit(lambda: cache_delete_many(keys))
    reported: set[str] = set()
    for index, event in valid:
        if event.event_id in inserted and inserted[event.event_id] is None and event.event_id not in reported:
            reported.add(event.event_id)
            result.unknown_skus.append(
                RecordRejection(index, event.event_id, "sku", "unknown product; the event is kept")
            )
    result.accepted = len(inserted)
    result.duplicates = len(valid) - len(inserted)
    return result


def categories_ensure(shop: Shop, paths: Iterable[str]) -> dict[str, Category]:
    """The Category for each ``A > B > C`` path, creating missing levels."""
    wanted = {p for p in paths if p}
    if not wanted:
        return {}
    every_level = {
        Category.PATH_SEPARATOR.join(path.split(Category.PATH_SEPARATOR)[: depth + 1])
        for path in wanted
        for depth in range(len(path.split(Category.PATH_SEPARATOR)))
    }
    known = {c.path: c for c in Category.objects.filter(shop=shop, path__in=every_level)}
    for path in sorted(every_level - set(known), key=lambda p: p.count(Category.PATH_SEPARATOR)):
        parent_path, _, name = path.rpartition(Category.PATH_SEPARATOR)
        category, _ = Category.objects.get_or_create(
            shop=shop, path=path, defaults={"name": name, "parent": known.get(parent_path)}
        )
        known[path] = category
    return {path: known[path] for path in wanted}


def _product_values(fields: dict[str, Any], categories: dict[str, Category]) -> dict[str, Any]:
    values = dict(fields)
    if "category" in values:
        values["category"] = categories.get(values["category"]) if values["category"] else None
    return values


def products_upsert(
    *,
    shop: Shop,
    records: Sequence[Any],
    source: str = Rejection.Source.API,
    lines: Sequence[int] | None = None,
) -> ProductUpsertResult:
    """Create or update products by SKU; fields not sent are left as they are.

    A new product needs at least a title. Products whose text changed (or that are
    new) are embedded by a task queued when the transaction commits, and the shop's
    catalog version moves so serving processes pick up the change.

    Locking: the shop row is locked FOR NO KEY UPDATE first, so concurrent upserts
    (and deactivations) of one shop run one after the other: a SKU sent by two at
    once is created once and then updated, never a unique-constraint error.
    """
    result = ProductUpsertResult()
    problems_by_index: dict[int, list[Problem]] = {}
    valid: dict[str, tuple[int, ValidProduct]] = {}
    for index, raw in enumerate(records):
        checked = validate_product(raw)
        if not isinstance(checked, ValidProduct):
            problems_by_index[index] = checked
        elif checked.sku in valid:
            problems_by_index[index] = [Problem("sku", "appears more than once in this request")]
        else:
            valid[checked.sku] = (index, checked)

    now = timezone.now()
    with transaction.atomic():
        _lock_shop_catalog(shop)
        existing = {p.sku: p for p in Product.objects.select_related("category").filter(shop=shop, sku__in=list(valid))}
        for sku, (index, product) in list(valid.items()):
            if sku not in existing and "title" not in product.fields:
                problems_by_index[index] = [Problem("title", "is required for a new product")]
                del valid[sku]
        categories = categories_ensure(shop, (p.fields.get("category", "") for _, p in valid.values()))
        to_create: list[Product] = []
        to_update: list[Product] = []
        update_fields: set[str] = set()
        text_changed: list[Product] = []
        for sku, (_, product) in valid.items():
            values = _product_values(product.fields, categories)
            current = existing.get(sku)
            if current is None:
                to_create.append(Product(shop=shop, sku=sku, **values))
                continue
            changed = {name for name, value in values.items() if _current(current, name) != value}
            if not changed:
                result.unchanged += 1
                continue
            for name in changed:
                setattr(current, name, values[name])
            current.updated_at = now
            update_fields |= changed | {"updated_at"}
            to_update.append(current)
            if changed & TEXT_FIELDS:
                text_changed.append(current)
        created = Product.objects.bulk_create(to_create)
        if to_update:
            Product.objects.bulk_update(to_update, sorted(update_fields))
        if created or to_update:
            Shop.objects.filter(pk=shop.pk).update(catalog_version=F("catalog_version") + 1)
        if problems_by_index:
            result.rejected = rejections_keep(
                shop=shop,
                kind=Rejection.Kind.PRODUCT,
                source=source,
                records=records,
                problems_by_index=dict(sorted(problems_by_index.items())),
                id_key="sku",
                lines=lines,
            )
        if not all(p.pk for p in created):  # backends without RETURNING on bulk insert
            created = list(Product.objects.filter(shop=shop, sku__in=[p.sku for p in created]))
        to_embed = [p.pk for p in created] + [p.pk for p in text_changed]
        if to_embed:
            transaction.on_commit(lambda: products_embed_enqueue(shop_id=shop.pk, product_ids=to_embed))
    result.created = len(created)
    result.updated = len(to_update)
    result.changed_product_ids = [p.pk for p in created] + [p.pk for p in to_update]
    return result


def _current(product: Product, name: str) -> Any:
    if name == "category":
        return product.category
    return getattr(product, name)


def products_embed_enqueue(*, shop_id: int, product_ids: list[int]) -> None:
    from catalog.tasks import products_embed

    for start in range(0, len(product_ids), 256):
        products_embed.delay(shop_id, product_ids[start : start + 256])


def _lock_shop_catalog(shop: Shop) -> None:
    """Serialise catalog writes of one shop (released when the transaction ends)."""
    Shop.objects.select_for_update(no_key=True).filter(pk=shop.pk).values_list("pk").first()


def product_deactivate(*, shop: Shop, sku: str) -> bool:
    """Deactivate a product (it is no longer recommended; its history is kept).
    Idempotent; locks the shop's catalog like products_upsert."""
    with transaction.atomic():
        _lock_shop_catalog(shop)
        changed = Product.objects.filter(shop=shop, sku=sku).update(active=False, updated_at=timezone.now())
        if changed:
            Shop.objects.filter(pk=shop.pk).update(catalog_version=F("catalog_version") + 1)
    return bool(changed)


@dataclass(frozen=True)
class ErasureResult:
    found: bool
    events_deleted: int
    rejections_deleted: int


def shopper_erase(*, shop: Shop, external_id: str, actor: Actor) -> ErasureResult:
    """Erase a shopper: their events, their profile row, rejected records that name
    them and their cached history. Served-list logs keep no link to them afterwards.

    Idempotent (erasing an unknown shopper finds nothing). Holds the shop's event-write
    lock exclusively (shop_events_lock): ingestions in flight commit first and their
    events are erased too; ingestions that come later wait, find no shopper and start
    a new one.
    """
    key_hash = shopper_key_hash(shop, external_id)
    escaped = json.dumps(external_id, ensure_ascii=True)[1:-1]
    with transaction.atomic():
        shop_events_lock(shop, exclusive=True)
        shopper = Shopper.objects.filter(shop=shop, key_hash=key_hash).first()
        events_deleted = 0
        if shopper is not None:
            events_deleted = Event.objects.filter(shop=shop, shopper=shopper).delete()[0]
            shopper.delete()
        rejections_deleted = 0
        if escaped:
            rejections_deleted = Rejection.objects.filter(
                shop=shop, kind=Rejection.Kind.EVENT, payload__contains=f'"{escaped}"'
            ).delete()[0]
        audit_record(
            shop=shop,
            actor=actor,
            action="erase",
            object_type="shopper",
            object_id=key_hash[:16],
            object_repr=f"shopper {key_hash[:16]}",
            before={"events": events_deleted},
            after=None,
        )
        transaction.on_commit(lambda: cache.delete(shopper_history_cache_key(shop.pk, key_hash)))
    return ErasureResult(
        found=shopper is not None, events_deleted=events_deleted, rejections_deleted=rejections_deleted
    )
