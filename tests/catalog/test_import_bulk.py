"""The bulk path of event imports (catalog.event_copy): direct COPY, its staged fallback,
and JSON lines read in blocks. Every guarantee of the careful path holds: each valid
row stored once with the same values, duplicates never twice, reruns idempotent."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from django.db import connection

from catalog.event_copy import BinaryField, EventWriter, binary_copy_data
from catalog.importing import import_events
from catalog.models import Event, Rejection
from catalog.services import events_ingest, shopper_key_hash
from tests.factories import ProductFactory, ShopFactory

NOW = datetime.now(UTC).replace(microsecond=0)
TS = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
HEADER = "event_id,type,shopper,sku,ts,session,request_id,quantity,price\n"


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def csv_events(n: int, start: int = 0, kind: str = "view") -> str:
    return "".join(f"e-{i:05d},{kind},s-{i % 7},SKU-{1 + i % 2},{TS},sess-{i},,,\n" for i in range(start, start + n))


def stored(shop) -> dict[str, tuple]:
    return {
        e.event_id: (
            e.type,
            e.shopper.key_hash,
            e.product_id,
            e.sku,
            e.session,
            e.ts,
            e.quantity,
            e.price,
            e.request_id,
        )
        for e in Event.objects.filter(shop=shop).select_related("shopper")
    }


class WriterPaths:
    """Counts how the batches of an import went in (observes EventWriter, changes nothing)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches = 0
        self.direct = 0
        self.staged = 0
        write, direct, staged = EventWriter.write, EventWriter._copy_direct, EventWriter._copy_and_insert

        def count_write(writer, batch):
            self.batches += 1
            return write(writer, batch)

        def count_direct(writer, *args):
            result = direct(writer, *args)
            self.direct += result is not None
            return result

        def count_staged(writer, *args):
            self.staged += 1
            return staged(writer, *args)

        monkeypatch.setattr(EventWriter, "write", count_write)
        monkeypatch.setattr(EventWriter, "_copy_direct", count_direct)
        monkeypatch.setattr(EventWriter, "_copy_and_insert", count_staged)


# --- on any database ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_event_id_repeated_in_a_file_is_stored_once_from_its_first_line(tmp_path):
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    text = HEADER + csv_events(3) + f"e-00001,purchase,s-9,SKU-1,{TS},,,2,5.00\n" + csv_events(1, start=1)
    result = import_events(shop=shop, path=write(tmp_path, "repeat.csv", text))
    assert (result.rows_read, result.accepted, result.unchanged, result.rejected) == (5, 3, 2, 0)
    assert Event.objects.filter(shop=shop).count() == 3
    assert Event.objects.get(shop=shop, event_id="e-00001").type == "view"


@pytest.mark.django_db(transaction=True)
def test_a_rerun_after_an_interrupted_import_adds_only_the_rest(tmp_path):
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    part = import_events(shop=shop, path=write(tmp_path, "part.csv", HEADER + csv_events(600)), block_bytes=4000)
    whole = import_events(shop=shop, path=write(tmp_path, "whole.csv", HEADER + csv_events(1500)), block_bytes=4000)
    again = import_events(shop=shop, path=write(tmp_path, "whole.csv", HEADER + csv_events(1500)), block_bytes=4000)
    assert (part.accepted, part.unchanged) == (600, 0)
    assert (whole.accepted, whole.unchanged, whole.unknown_skus) == (900, 600, 450)
    assert (again.accepted, again.unchanged) == (0, 1500)
    assert Event.objects.filter(shop=shop).count() == 1500


@pytest.mark.django_db(transaction=True)
def test_events_that_came_through_the_api_first_are_duplicates_of_the_file(tmp_path):
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    api = [{"event_id": f"e-{i:05d}", "type": "click", "shopper": "s-api", "sku": "SKU-1", "ts": TS} for i in (3, 250)]
    assert events_ingest(shop=shop, records=api).accepted == 2
    result = import_events(shop=shop, path=write(tmp_path, "e.csv", HEADER + csv_events(400)), block_bytes=5000)
    assert (result.accepted, result.unchanged) == (398, 2)
    assert Event.objects.filter(shop=shop).count() == 400
    assert Event.objects.get(shop=shop, event_id="e-00250").type == "click"  # the API's, not the file's


JSON_LINES = [
    {"event_id": "j-1", "type": "purchase", "shopper": "s", "sku": "SKU-1", "ts": TS, "quantity": 2, "price": 3.5},
    {"event_id": "j-2", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": int(NOW.timestamp()) - 60},
    {"event_id": "j-3", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": TS, "session": None, "price": None},
    {"event_id": "j-4", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": str(int(NOW.timestamp()))},
    {"event_id": "j-5", "type": "view", "shopper": "ß", "sku": "SKU-é", "ts": TS},
    {"event_id": "j-6", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": TS, "quantity": 2.0, "price": "4.5"},
    {"event_id": "j-7", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": TS, "price": 1.005},
    {"event_id": "j-8", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": TS, "extra": {"a": [1]}},
    {"event_id": "j-9", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": TS, "quantity": "3"},
    {"event_id": 10, "type": "view", "shopper": "s", "sku": "SKU-1", "ts": TS},
    [1, 2],
]


def jsonl_text() -> bytes:
    body = [json.dumps(record) for record in JSON_LINES]
    body.insert(3, "   ")
    body.insert(5, '{"event_id": "j-d", "type": "view", "type": "click", "shopper": "s", "sku": "SKU-1", "ts": "x"}')
    body.insert(6, "{broken")
    body.append('{"event_id":"j-crlf","type":"view","shopper":"s","sku":"SKU-1","ts":"' + TS + '"}\r')
    return b"\xef\xbb\xbf" + "\n".join(body).encode() + b"\n\n" + b'{"event_id": "j-\xff"}'


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("block_bytes", [64, 8 * 1024 * 1024])
def test_json_lines_read_in_blocks_give_the_same_rows_lines_and_reasons(tmp_path, block_bytes):
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    result = import_events(shop=shop, path=write(tmp_path, "e.jsonl", jsonl_text()), block_bytes=block_bytes)
    assert (result.rows_read, result.accepted, result.rejected, result.unknown_skus) == (15, 8, 7, 1)
    rows = stored(shop)
    assert sorted(rows) == ["j-1", "j-2", "j-3", "j-5", "j-6", "j-7", "j-8", "j-crlf"]
    assert [(rows[k][6], rows[k][7]) for k in ("j-1", "j-3", "j-6", "j-7")] == [
        (2, Decimal("3.50")),
        (1, None),
        (2, Decimal("4.50")),
        (1, Decimal("1.01")),
    ]
    assert rows["j-2"][5] == datetime.fromtimestamp(JSON_LINES[1]["ts"], UTC)
    rejected = [
        (r.line, r.reasons[0]["field"], r.reasons[0]["reason"])
        for r in Rejection.objects.filter(shop=shop).order_by("line")
    ]
    assert rejected == [
        (5, "ts", "must be an ISO 8601 timestamp such as 2026-11-28T09:30:00Z"),
        (6, "type", "appears more than once in this object"),
        (7, "", "Body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2."),
        (12, "quantity", "must be a whole number, got a string"),
        (13, "event_id", "must be a string, got a number"),
        (14, "", "each event must be a JSON object, got a list"),
        (17, "", "Body is not valid UTF-8 (byte 16)."),
    ]


# --- Postgres: the direct COPY and its fallback ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_new_file_goes_in_by_direct_copy_and_a_rerun_by_the_staged_path(tmp_path, monkeypatch):
    paths = WriterPaths(monkeypatch)
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    path = write(tmp_path, "e.csv", HEADER + csv_events(2000))
    first = import_events(shop=shop, path=path, block_bytes=20_000, writers=2)
    batches = paths.batches
    assert batches == 6  # 2000 rows of 57 bytes in blocks of 20,000 bytes
    assert (first.accepted, paths.direct, paths.staged) == (2000, batches, 0)
    again = import_events(shop=shop, path=path, block_bytes=20_000, writers=2)
    assert (again.accepted, again.unchanged) == (0, 2000)
    assert (paths.direct, paths.staged) == (batches, batches)  # every direct try failed: all went staged
    assert Event.objects.filter(shop=shop).count() == 2000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_bulk_path_stores_exactly_what_the_api_path_stores(tmp_path):
    """The same events through the file import (binary COPY) and through events_ingest
    (the API's INSERT) give the same rows, value for value."""
    ts_micro = (NOW - timedelta(minutes=5)).astimezone(UTC)
    records = [
        {
            "event_id": "b-1",
            "type": "purchase",
            "shopper": "s-1",
            "sku": "SKU-1",
            "ts": TS,
            "quantity": 3,
            "price": 12.99,
        },
        {"event_id": "b-2", "type": "purchase", "shopper": "s-1", "sku": "SKU-1", "ts": TS, "price": 0},
        {"event_id": "b-3", "type": "purchase", "shopper": "s-2", "sku": "SKU-1", "ts": TS, "price": 1000000},
        {"event_id": "b-4", "type": "purchase", "shopper": "s-2", "sku": "SKU-1", "ts": TS, "price": 3.456},
        {"event_id": "b-5", "type": "view", "shopper": "ß-ü", "sku": "SKU-é", "ts": TS, "session": "sé"},
        {
            "event_id": "b-6",
            "type": "click",
            "shopper": "s-3",
            "sku": "SKU-2",
            "ts": ts_micro.isoformat(timespec="microseconds").replace("+00:00", "+00:00"),
            "session": 'x,"y";\\z',
            "request_id": "r" * 64,
        },
        {"event_id": "b-7", "type": "impression", "shopper": "s-3", "sku": "SKU-2", "ts": int(NOW.timestamp()) - 9},
        {"event_id": "b-8", "type": "add_to_cart", "shopper": "s-4", "sku": "SKU-1", "ts": TS, "quantity": 10000},
    ]
    by_file, by_api = ShopFactory(), ShopFactory()
    for shop in (by_file, by_api):
        ProductFactory(shop=shop, sku="SKU-1")
        ProductFactory(shop=shop, sku="SKU-2")
    path = write(tmp_path, "e.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    result = import_events(shop=by_file, path=path)
    assert (result.accepted, result.rejected) == (8, 0), result.problems_sample
    assert events_ingest(shop=by_api, records=records).accepted == 8

    def comparable(shop) -> dict[str, tuple]:
        rows = stored(shop)
        skus = {p.id: p.sku for p in shop.products.all()}
        shoppers = {shopper_key_hash(shop, r["shopper"]): r["shopper"] for r in records}
        return {k: (v[0], shoppers[v[1]], skus.get(v[2]), *v[3:]) for k, v in rows.items()}

    assert comparable(by_file) == comparable(by_api)
    assert comparable(by_file)["b-4"][7] == Decimal("3.46")
    assert comparable(by_file)["b-5"][2] is None  # unknown SKU: kept without a product


@pytest.mark.postgres
@pytest.mark.django_db
def test_binary_copy_cells_read_back_as_sent():
    n = 6
    cents = np.array([0, 1, 99, 100, 1299, 100_000_000], dtype=np.int64)
    texts = pa.array(["", "a", 'é,"\n\\', "x" * 1000, "\u20ac", "z"]).slice(0)
    ints = np.array([0, -1, 2**62, 7, 8, 9], dtype=np.int64)
    null = np.array([False, True, False, False, True, False])
    unix_us = np.array([0, 946_684_800_000_000, 1_764_322_200_123_456, -1, 5, 6], dtype=np.int64)
    data = binary_copy_data(
        n,
        [
            BinaryField.int8(ints, null=null),
            BinaryField.text(texts),
            BinaryField.timestamptz(unix_us),
            BinaryField.int4(np.arange(n)),
            BinaryField.cents(cents, null=null[::-1].copy()),
            BinaryField.text(pa.array([""] * n)),
        ],
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE bin_t (i bigint, t text, ts timestamptz, q int, p numeric(12, 2), e text)"
        )
        with cursor.copy("COPY bin_t FROM STDIN (FORMAT binary)") as copy:
            for part in data:
                copy.write(part)
        cursor.execute("SELECT i, t, ts, q, p, e FROM bin_t ORDER BY q")
        rows = cursor.fetchall()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert rows == [
        (
            None if null[i] else int(ints[i]),
            texts[i].as_py(),
            epoch + timedelta(microseconds=int(unix_us[i])),
            i,
            None if null[::-1][i] else Decimal(int(cents[i])).scaleb(-2),
            "",
        )
        for i in range(n)
    ]


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_staged_path_works_in_a_session_that_has_used_temporary_tables(tmp_path):
    # Postgres refuses to resize a session's temporary buffers once it has used a
    # temporary table; the import must not fail for it.
    shop = ShopFactory()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE earlier_use (x int)")
    api = [{"event_id": "e-00002", "type": "click", "shopper": "s", "sku": "SKU-1", "ts": TS}]
    assert events_ingest(shop=shop, records=api).accepted == 1
    result = import_events(shop=shop, path=write(tmp_path, "e.csv", HEADER + csv_events(5)))
    assert (result.accepted, result.unchanged) == (4, 1)
    assert Event.objects.filter(shop=shop).count() == 5


def test_a_product_created_during_an_import_gets_the_events_of_the_later_batches(db, tmp_path):
    # Known SKUs are remembered across batches, unknown ones looked up again each batch.
    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    created = []

    def after_a_batch(offset: int) -> None:
        if not created:
            created.append(ProductFactory(shop=shop, sku="SKU-2"))

    result = import_events(
        shop=shop, path=write(tmp_path, "e.csv", HEADER + csv_events(400)), block_bytes=4000, on_progress=after_a_batch
    )
    product_of = dict(Event.objects.filter(shop=shop, sku="SKU-2").values_list("event_id", "product_id"))
    first_batch = [event_id for event_id, product_id in product_of.items() if product_id is None]
    assert 0 < len(first_batch) < len(product_of) == 200
    assert set(product_of.values()) == {None, created[0].pk}
    assert result.unknown_skus == len(first_batch)
    assert set(Event.objects.filter(shop=shop, sku="SKU-1").values_list("product_id", flat=True)) == {
        ProductFactory._meta.model.objects.get(shop=shop, sku="SKU-1").pk
    }
