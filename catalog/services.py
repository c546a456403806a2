"""Writes to the catalog and behaviour store: ingestion of events and products, erasure."""

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from catalog.audit import Actor, audit_record
from catalog.models import Category, Event, Product, Rejection, Shop, Shopper
from catalog.validation import Problem, ValidEvent, ValidProduct, validate_event, validate_product

TEXT_FIELDS = frozenset({"title", "description", "category", "brand", "tags", "attributes"})
SHOPPER_HISTORY_CACHE_S = 60


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
    """The keyed hash that stands for a shopper id; the id itself is never stored."""
    return hmac.new(shop.shopper_secret.encode(), external_id.encode("utf-8"), hashlib.sha256).hexdigest()


def shopper_history_cache_key(shop_id: int, key_hash: str) -> str:
    return f"shopper-history:{shop_id}:{key_hash}"


def _payload_text(raw: Any) -> str:
    """The record as storable text: ASCII-escaped JSON keeps even NUL and lone surrogates."""
    try:
        return json.dumps(raw, ensure_ascii=True, default=repr)[:100_000]
    except (ValueError, RecursionError):
        return repr(raw)[:100_000]


def _record_id(raw: Any, key: str) -> str:
    value = raw.get(key) if isinstance(raw, dict) else None
    return _payload_text(value)[1:-1][:200] if isinstance(value, str) else ""


def _reject(
    *,
    shop: Shop,
    kind: str,
    source: str,
    records: Sequence[Any],
    problems_by_index: dict[int, list[Problem]],
    id_key: str,
    lines: Sequence[int] | None,
) -> list[RecordRejection]:
    """Keep every rejected record with its reasons; return one entry per problem."""
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


def shoppers_ensure(shop: Shop, key_hashes: Iterable[str]) -> dict[str, int]:
    """Shopper ids for these hashes, creating the missing shoppers (race-safe)."""
    wanted = sorted(set(key_hashes))
    if not wanted:
        return {}
    known = dict(Shopper.objects.filter(shop=shop, key_hash__in=wanted).values_list("key_hash", "id"))
    missing = [h for h in wanted if h not in known]
    if missing:
        Shopper.objects.bulk_create([Shopper(shop=shop, key_hash=h) for h in missing], ignore_conflicts=True)
        known.update(Shopper.objects.filter(shop=shop, key_hash__in=missing).values_list("key_hash", "id"))
    return known


def product_ids_by_sku(shop: Shop, skus: Iterable[str]) -> dict[str, int]:
    wanted = list(set(skus))
    if not wanted:
        return {}
    return dict(Product.objects.filter(shop=shop, sku__in=wanted).values_list("sku", "id"))


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


def _insert_events(rows: list[tuple[Any, ...]]) -> set[str]:
    """INSERT ... ON CONFLICT DO NOTHING; the event_ids that were new.

    The unique constraint on (shop, event_id) makes a replayed or concurrently sent
    duplicate a no-op, in the same statement or across transactions.
    """
    if not rows:
        return set()
    table = connection.ops.quote_name(Event._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _EVENT_COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(_EVENT_COLUMNS)) + ")"
    inserted: set[str] = set()
    chunk = 500  # stays below SQLite's bound-parameter limit
    with connection.cursor() as cursor:
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            sql = (
                f"INSERT INTO {table} ({columns}) VALUES {', '.join([placeholders] * len(part))} "
                f"ON CONFLICT (shop_id, event_id) DO NOTHING RETURNING event_id"
            )
            cursor.execute(sql, [value for row in part for value in row])
            inserted.update(r[0] for r in cursor.fetchall())
    return inserted


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
    in ``duplicates`` and makes no second row. An event whose SKU is unknown is kept
    with no product and reported in ``unknown_skus``.
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

    hashes = {event.shopper: shopper_key_hash(shop, event.shopper) for _, event in valid}
    ops = connection.ops
    with transaction.atomic():
        shopper_ids = shoppers_ensure(shop, hashes.values())
        product_ids = product_ids_by_sku(shop, (event.sku for _, event in valid))
        received_at = ops.adapt_datetimefield_value(now)
        rows = []
        for index, event in valid:
            product_id = product_ids.get(event.sku)
            if product_id is None:
                result.unknown_skus.append(
                    RecordRejection(index, event.event_id, "sku", "unknown product; the event is kept")
                )
            rows.append(
                (
                    shop.pk,
                    event.event_id,
                    event.type,
                    shopper_ids[hashes[event.shopper]],
                    product_id,
                    event.sku,
                    event.session,
                    ops.adapt_datetimefield_value(event.ts),
                    event.quantity,
                    ops.adapt_decimalfield_value(event.price, 12, 2),
                    event.request_id,
                    received_at,
                )
            )
        inserted = _insert_events(rows)
        if problems_by_index:
            result.rejected = _reject(
                shop=shop,
                kind=Rejection.Kind.EVENT,
                source=source,
                records=records,
                problems_by_index=problems_by_index,
                id_key="event_id",
                lines=lines,
            )
        touched = {hashes[event.shopper] for _, event in valid if event.event_id in inserted}
        transaction.on_commit(lambda: cache.delete_many([shopper_history_cache_key(shop.pk, h) for h in touched]))
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
            result.rejected = _reject(
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


def product_deactivate(*, shop: Shop, sku: str) -> bool:
    """Deactivate a product (it is no longer recommended; its history is kept)."""
    with transaction.atomic():
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
    them and their cached history. Served-list logs keep no link to them afterwards."""
    key_hash = shopper_key_hash(shop, external_id)
    escaped = json.dumps(external_id, ensure_ascii=True)[1:-1]
    with transaction.atomic():
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
