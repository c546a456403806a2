"""Importing event and product files (catalog.importing and the import_* commands)."""

import json
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.importing import ImportFileError, import_events, import_products
from catalog.models import Event, Product, Rejection
from tests.factories import ProductFactory

TS = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
HEADER = "event_id,type,shopper,sku,ts,session,request_id,quantity,price\n"


@pytest.fixture
def products(shop):
    ProductFactory(shop=shop, sku="SKU-1")
    ProductFactory(shop=shop, sku="SKU-2")


def write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def csv_events(n: int, start: int = 0) -> str:
    return "".join(f"e-{i},view,s-{i % 3},SKU-{1 + i % 2},{TS},sess-{i},,,\n" for i in range(start, start + n))


def rejections(shop) -> list[tuple[int, str]]:
    return [
        (r.line, r.reasons[0]["field"] + " " + r.reasons[0]["reason"])
        for r in Rejection.objects.filter(shop=shop, source="import").order_by("line")
    ]


# --- events, CSV ----------------------------------------------------------------------------


def test_a_csv_of_events_is_stored_and_bad_rows_are_kept_with_their_lines(shop, products, tmp_path):
    # Given a CSV with valid rows and bad ones at known lines
    text = (
        HEADER
        + csv_events(3)  # lines 2-4
        + f"e-x,wink,s-1,SKU-1,{TS},,,,\n"  # line 5: unknown type
        + f"e-y,purchase,s-1,SKU-1,{TS},,,two,\n"  # line 6: quantity as text
        + "e-z,view,s-1,SKU-1,1999-12-31T00:00:00Z,,,,\n"  # line 7: too old
        + f"e-5,purchase,s-2,NOPE,{TS},sess,req-1,2,19.99\n"  # line 8: unknown SKU, kept
    )
    path = write(tmp_path, "events.csv", text)
    # When it is imported
    result = import_events(shop=shop, path=path)
    # Then the good rows are stored, the bad ones kept as rejections with their line numbers
    assert (result.rows_read, result.accepted, result.unchanged, result.rejected) == (7, 4, 0, 3)
    assert result.unknown_skus == 1
    assert rejections(shop) == [
        (5, "type must be one of add_to_cart, click, impression, purchase, view, got 'wink'"),
        (6, "quantity must be a whole number, got a string"),
        (7, "ts is before 2000-01-01"),
    ]
    kept = Rejection.objects.get(shop=shop, line=5)
    assert (kept.kind, kept.record_id, json.loads(kept.payload)["type"]) == ("event", "e-x", "wink")
    purchase = Event.objects.get(shop=shop, event_id="e-5")
    assert (purchase.quantity, str(purchase.price), purchase.product_id, purchase.request_id) == (
        2,
        "19.99",
        None,
        "req-1",
    )
    assert result.problems_sample[0] == (
        5,
        "type must be one of add_to_cart, click, impression, purchase, view, got 'wink'",
    )


def test_importing_the_same_file_twice_adds_nothing(shop, products, tmp_path):
    path = write(tmp_path, "events.csv", HEADER + csv_events(50))
    first, second = import_events(shop=shop, path=path), import_events(shop=shop, path=path)
    assert (first.accepted, second.accepted, second.unchanged) == (50, 0, 50)
    assert Event.objects.filter(shop=shop).count() == 50


def test_quoted_values_and_line_breaks_in_values_keep_the_line_numbers(shop, products, tmp_path):
    # Given quoted cells, one spanning two lines, then a bad row
    text = (
        HEADER
        + f'"e-1","view","s, with comma",SKU-1,{TS},,,,\n'  # line 2
        + f'e-2,view,s-2,SKU-1,{TS},"multi\nline",,,\n'  # lines 3-4: session with a line break
        + f"e-3,wink,s-3,SKU-1,{TS},,,,\n"  # line 5
    )
    result = import_events(shop=shop, path=write(tmp_path, "q.csv", text))
    assert (result.accepted, result.rejected) == (1, 2)
    assert Event.objects.get(shop=shop).shopper.shop_id == shop.pk  # e-1, its shopper id had a comma
    assert rejections(shop) == [
        (3, "session must not contain control characters, NUL or lone surrogates"),
        (5, "type must be one of add_to_cart, click, impression, purchase, view, got 'wink'"),
    ]


def test_invalid_utf8_blank_lines_and_short_rows_are_handled(shop, products, tmp_path):
    text = (
        HEADER.encode()
        + csv_events(1).encode()  # line 2
        + b"\n"  # line 3: blank, skipped
        + b"e-\xff,view,s-1,SKU-1,"
        + TS.encode()
        + b",,,,\n"  # line 4: not UTF-8
        + b"e-9,view\n"  # line 5: too few cells
        + csv_events(1, start=7).encode()  # line 6
    )
    result = import_events(shop=shop, path=write(tmp_path, "bad.csv", text))
    assert (result.rows_read, result.accepted, result.rejected) == (4, 2, 2)
    assert rejections(shop) == [
        (4, "event_id must not contain control characters, NUL or lone surrogates"),
        (5, " has 2 cells; the header names 9 columns"),
    ]
    assert Rejection.objects.get(shop=shop, line=4).payload.startswith('{"event_id": "e-\\udcff"')


def test_small_blocks_give_the_same_result_as_one_block(shop, products, tmp_path):
    # Many blocks (fast and careful ones mixed) must number lines like a single pass
    text = HEADER + csv_events(40) + f'"e-q","view","s-1",SKU-1,{TS},,,,\n' + csv_events(30, start=40)
    text += f"e-bad,view,s-1,SKU-1,{TS},,,0,\n"  # line 73
    result = import_events(shop=shop, path=write(tmp_path, "blocks.csv", text), block_bytes=300)
    assert (result.rows_read, result.accepted, result.rejected) == (72, 71, 1)
    assert rejections(shop) == [(73, "quantity must be from 1 to 10000")]


def test_an_event_csv_may_leave_out_optional_columns_and_have_a_bom(shop, products, tmp_path):
    text = "\ufeffevent_id,type,shopper,sku,ts\n" + f"e-1,view,s-1,SKU-1,{TS}\n"
    result = import_events(shop=shop, path=write(tmp_path, "bom.csv", text))
    assert result.accepted == 1
    assert (Event.objects.get().session, Event.objects.get().quantity) == ("", 1)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "event_id,type,shopper,sku,when\n",
            "Unknown columns 'when'; known columns: event_id, type, shopper, sku, ts, "
            "session, request_id, quantity, price.",
        ),
        ("event_id,type,shopper,sku\n", "Required columns missing: ts."),
        ("event_id,type,shopper,sku,ts,ts\n", "Columns named more than once: ts."),
        (
            "\n",
            "The file has no header row; the first line must name the columns: event_id, type, shopper, sku, ts, "
            "session, request_id, quantity, price.",
        ),
    ],
)
def test_a_header_that_cannot_be_used_stops_the_import_before_anything_is_stored(shop, tmp_path, header, message):
    path = write(tmp_path, "events.csv", header + csv_events(2))
    with pytest.raises(ImportFileError) as raised:
        import_events(shop=shop, path=path)
    assert str(raised.value) == message
    assert not Event.objects.exists()


def test_the_format_comes_from_the_extension_or_is_given(shop, products, tmp_path):
    with pytest.raises(ImportFileError, match=r"Cannot tell the format of 'events\.txt'"):
        import_events(shop=shop, path=write(tmp_path, "events.txt", HEADER))
    result = import_events(shop=shop, path=write(tmp_path, "events.txt", HEADER + csv_events(2)), file_format="csv")
    assert result.accepted == 2


def test_progress_is_reported_in_bytes_up_to_the_file_size(shop, products, tmp_path):
    path = write(tmp_path, "events.csv", HEADER + csv_events(100))
    seen: list[int] = []
    import_events(shop=shop, path=path, on_progress=seen.append, block_bytes=1000)
    assert seen == sorted(seen)
    assert len(seen) > 3
    assert seen[-1] == path.stat().st_size


# --- events, JSON lines -------------------------------------------------------------------------


def test_json_lines_follow_the_api_rules(shop, products, tmp_path):
    good = {
        "event_id": "j-1",
        "type": "purchase",
        "shopper": "s",
        "sku": "SKU-1",
        "ts": TS,
        "quantity": 2,
        "price": 3.5,
    }
    lines = [
        json.dumps(good),  # 1
        "",  # 2: blank
        json.dumps({**good, "event_id": "j-2", "quantity": "2"}),  # 3: quantity as a string
        '{"event_id": "j-3", "event_id": "j-4", "type": "view", "shopper": "s", "sku": "SKU-1", "ts": "'
        + TS
        + '"}',  # 4
        "{not json",  # 5
        json.dumps({**good, "event_id": "j-5", "price": float("nan")}),  # 6: NaN
        json.dumps({**good, "event_id": "j-6"}),  # 7
    ]
    result = import_events(shop=shop, path=write(tmp_path, "events.ndjson", "\n".join(lines) + "\n"))
    assert (result.rows_read, result.accepted, result.rejected) == (6, 2, 4)
    assert rejections(shop) == [
        (3, "quantity must be a whole number, got a string"),
        (4, "event_id appears more than once in this object"),
        (5, " Body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2."),
        (6, "price must be a finite number, got NaN"),
    ]
    assert sorted(Event.objects.values_list("event_id", flat=True)) == ["j-1", "j-6"]


# --- products ----------------------------------------------------------------------------------


def test_a_csv_of_products_is_upserted_with_tags_attributes_and_booleans(shop, tmp_path):
    text = (
        "sku,title,price,category,tags,attributes,in_stock,active\n"
        'P-1,"Knife, chef\'s",19.99,Home > Kitchen,steel|sharp,"{""len"": 20}",yes,true\n'  # 2
        "P-2,Board,,,,,,\n"  # 3
        "P-3,,5,,,,,\n"  # 4: new without a title
        'P-4,Pan,5,,,"{bad",,\n'  # 5: attributes not JSON
        "P-5,Lid,5,,,,maybe,\n"  # 6: not a boolean
        "P-6,<script>alert(1)</script>,1,,,,0,\n"  # 7
    )
    result = import_products(shop=shop, path=write(tmp_path, "products.csv", text))
    assert (result.rows_read, result.accepted, result.rejected) == (6, 3, 3)
    knife = Product.objects.get(shop=shop, sku="P-1")
    assert (knife.title, str(knife.price), knife.tags, knife.attributes, knife.in_stock) == (
        "Knife, chef's",
        "19.99",
        ["steel", "sharp"],
        {"len": 20},
        True,
    )
    assert knife.category.path == "Home > Kitchen"
    assert Product.objects.get(shop=shop, sku="P-6").title == "<script>alert(1)</script>"
    assert Product.objects.get(shop=shop, sku="P-6").in_stock is False
    assert rejections(shop) == [
        (4, "title is required for a new product"),
        (5, "attributes must be a JSON object; the cell is not JSON (malformed_json)"),
        (6, "in_stock must be true or false, got a string"),
    ]


def test_an_empty_product_cell_leaves_the_field_as_it_is(shop, tmp_path):
    ProductFactory(shop=shop, sku="P-1", title="Old", brand="Acme")
    result = import_products(shop=shop, path=write(tmp_path, "p.csv", "sku,title,brand\nP-1,New,\n"))
    assert result.accepted == 1
    assert (Product.objects.get(sku="P-1").title, Product.objects.get(sku="P-1").brand) == ("New", "Acme")


def test_products_from_json_lines(shop, tmp_path):
    lines = [json.dumps({"sku": "P-1", "title": "A", "tags": ["x"]}), "[1, 2]", json.dumps({"sku": "P-1", "price": 2})]
    result = import_products(shop=shop, path=write(tmp_path, "p.jsonl", "\n".join(lines)))
    assert (result.rows_read, result.accepted, result.rejected) == (3, 2, 1)
    assert rejections(shop) == [(2, " each product must be a JSON object, got a list")]


# --- the commands ------------------------------------------------------------------------------


def test_import_events_command_prints_a_summary_and_the_bad_lines(shop, products, tmp_path):
    path = write(tmp_path, "events.csv", HEADER + csv_events(3) + f"e-x,wink,s,SKU-1,{TS},,,,\n")
    out, err = StringIO(), StringIO()
    call_command("import_events", str(path), "--shop", shop.slug, "--no-progress", stdout=out, stderr=err)
    assert out.getvalue().startswith(
        "events: 4 rows read, 3 accepted, 0 duplicates, 1 rejected, 0 with unknown SKU (kept) in "
    )
    assert "line 5: type must be one of add_to_cart" in err.getvalue()


def test_import_products_command_with_a_format_option(shop, tmp_path):
    path = write(tmp_path, "products.data", json.dumps({"sku": "P-1", "title": "A"}) + "\n")
    out = StringIO()
    call_command("import_products", str(path), "--shop", shop.slug, "--format", "jsonl", "--no-progress", stdout=out)
    assert out.getvalue().startswith("products: 1 rows read, 1 accepted, 0 unchanged, 0 rejected in ")


def test_the_commands_refuse_an_unknown_shop_or_file(shop, tmp_path):
    with pytest.raises(CommandError, match="No shop with slug 'nope'"):
        call_command("import_events", str(tmp_path / "x.csv"), "--shop", "nope")
    with pytest.raises(CommandError, match="No file at"):
        call_command("import_events", str(tmp_path / "x.csv"), "--shop", shop.slug)
    bad = write(tmp_path, "x.csv", "what,ever\n")
    with pytest.raises(CommandError, match="Unknown columns 'what', 'ever'"):
        call_command("import_events", str(bad), "--shop", shop.slug, "--no-progress")


# --- Postgres: the COPY path, with parallel writers outside a transaction ----------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_bulk_path_on_postgres_stores_every_row_once_with_parallel_writers(tmp_path):
    from tests.factories import ShopFactory

    shop = ShopFactory()
    ProductFactory(shop=shop, sku="SKU-1")
    text = HEADER + csv_events(3000) + f"e-bad,wink,s,SKU-1,{TS},,,,\n" + csv_events(1000, start=2500)
    path = write(tmp_path, "events.csv", text)
    result = import_events(shop=shop, path=path, block_bytes=20_000, writers=2)
    assert (result.rows_read, result.accepted, result.unchanged, result.rejected) == (4001, 3500, 500, 1)
    assert result.unknown_skus == 1750  # SKU-2 is unknown
    assert Event.objects.filter(shop=shop).count() == 3500
    assert rejections(shop) == [
        (3002, "type must be one of add_to_cart, click, impression, purchase, view, got 'wink'")
    ]
    stored = Event.objects.get(shop=shop, event_id="e-1")
    assert (stored.type, stored.sku, stored.session, stored.ts.strftime("%Y-%m-%dT%H:%M:%SZ")) == (
        "view",
        "SKU-2",
        "sess-1",
        TS,
    )


# --- the two CSV parsers agree ---------------------------------------------------------------

TRICKY_BLOCKS = [
    b'"a","b,c","d""e",""\n',
    b'ab"c,d,e,f\n',
    b'"ab"c,d,e,f\n',
    b' "ab",d,e,f\n',
    b'"a\nb",c,d,e\nx,y,z,w\n',
    b'ab"c,"d\ne",f,g\nh,i,j,k\n',
    b'"a"b"c",d,e,f\n',
    b'"a""",d,e,f\n',
    b'a,b,c,"d"\r\ne,f,g,h\r\n',
    b'"a\r\nb",c,d,e\r\n',
    b'a,,"",d\n"",,"",\n',
    b'"x\n\ny",1,2,3\n',
    b"a,b,c,d",
]


@pytest.mark.parametrize("data", TRICKY_BLOCKS)
def test_the_fast_and_the_careful_csv_parsers_give_the_same_cells_and_lines(data):
    from catalog.import_files import ByteBlock, csv_rows
    from catalog.importing import _arrow_cells

    names = ("w", "x", "y", "z")
    block = ByteBlock(first_line=10, data=data, end_offset=len(data))
    careful = [(row.line, row.cells) for row in csv_rows(block, names)]
    parsed = _arrow_cells(block, names)
    if parsed is None:  # left to the careful parser: nothing to compare
        assert b"\n\n" in data
        return
    table, lines = parsed
    assert list(zip(lines.tolist(), table.to_pylist(), strict=True)) == careful


@pytest.mark.parametrize(("name", "text"), [("only-header.csv", HEADER), ("empty.jsonl", ""), ("blank.jsonl", "\n\n")])
def test_files_without_rows_import_nothing(shop, tmp_path, name, text):
    result = import_events(shop=shop, path=write(tmp_path, name, text))
    assert (result.rows_read, result.accepted, result.rejected) == (0, 0, 0)


def test_an_empty_csv_has_no_header(shop, tmp_path):
    with pytest.raises(ImportFileError, match="The file has no header row"):
        import_events(shop=shop, path=write(tmp_path, "empty.csv", ""))
