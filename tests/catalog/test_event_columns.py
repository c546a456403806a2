"""The vectorised fast path of event imports agrees with validate_event.

fast_valid may say "valid" only where validate_event (on the same CSV cells, through
event_record_from_csv) accepts, with exactly the same cleaned values; it must say
"valid" for the common shapes, or it would be useless."""

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.event_columns import (
    EVENT_COLUMNS,
    event_record_from_csv,
    fast_valid,
    jsonl_event_cells,
    price_from_cents,
    ts_from_us,
)
from catalog.json_input import parse_json
from catalog.validation import ValidEvent, validate_event

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GOOD = {
    "event_id": "e-1",
    "type": "view",
    "shopper": "s-1",
    "sku": "SKU-1",
    "ts": "2026-11-28T09:30:00Z",
    "session": "",
    "request_id": "",
    "quantity": "",
    "price": "",
}

TRICKY: list[dict[str, str]] = [
    GOOD,
    {**GOOD, "ts": "2026-11-28 09:30:00Z"},
    {**GOOD, "ts": "2026-11-28T09:30:00.5+05:30"},
    {**GOOD, "ts": "2026-11-28T09:30:00.123456-00:00"},
    {**GOOD, "ts": "2026-11-28T12:59:59+00:00"},  # 59 min 59 s ahead: still in
    {**GOOD, "ts": "2026-11-28T13:00:00Z"},  # exactly one hour ahead: in
    {**GOOD, "ts": "2026-11-28T13:00:00.000001Z"},  # a microsecond more: out
    {**GOOD, "ts": "2000-01-01T00:00:00Z"},
    {**GOOD, "ts": "2000-01-01T05:29:59+05:30"},  # 1999 in UTC
    {**GOOD, "ts": "1999-12-31T23:59:59Z"},
    {**GOOD, "ts": "2024-02-29T00:00:00Z"},
    {**GOOD, "ts": "2026-02-29T00:00:00Z"},
    {**GOOD, "ts": "2026-04-31T00:00:00Z"},
    {**GOOD, "ts": "2026-11-28T24:00:00Z"},
    {**GOOD, "ts": "2026-11-28T09:60:00Z"},
    {**GOOD, "ts": "2026-11-28T09:30:60Z"},
    {**GOOD, "ts": "2026-11-28T09:30:00+24:00"},
    {**GOOD, "ts": "2026-11-28T09:30:00+23:59"},
    {**GOOD, "ts": "2026-11-28T09:30:00"},
    {**GOOD, "ts": "2026-11-28T09:30:00.1234567Z"},
    {**GOOD, "ts": "2026-11-28t09:30:00z"},
    {**GOOD, "ts": "20261128T093000Z"},
    {**GOOD, "ts": "2026-11-28"},
    {**GOOD, "ts": " 2026-11-28T09:30:00Z"},
    {**GOOD, "ts": "1764322200"},
    {**GOOD, "ts": "1764322200.5"},
    {**GOOD, "ts": "946684799"},
    {**GOOD, "ts": "946684800"},
    {**GOOD, "ts": "1764322200000"},
    {**GOOD, "ts": "-1764322200"},
    {**GOOD, "ts": "+1764322200"},
    {**GOOD, "ts": ""},
    {**GOOD, "event_id": " e-1"},
    {**GOOD, "event_id": "e-1 "},
    {**GOOD, "event_id": "e 1"},
    {**GOOD, "event_id": "é-1"},
    {**GOOD, "event_id": "e-\x7f"},
    {**GOOD, "event_id": "e\t1"},
    {**GOOD, "event_id": "x" * 128},
    {**GOOD, "event_id": "x" * 129},
    {**GOOD, "event_id": ""},
    {**GOOD, "shopper": "s" * 256},
    {**GOOD, "shopper": "s" * 257},
    {**GOOD, "type": "View"},
    {**GOOD, "type": " view"},
    {**GOOD, "type": "purchase", "quantity": "3", "price": "12.5"},
    {**GOOD, "quantity": "007"},
    {**GOOD, "quantity": "0"},
    {**GOOD, "quantity": "10000"},
    {**GOOD, "quantity": "10001"},
    {**GOOD, "quantity": "+2"},
    {**GOOD, "quantity": "2.0"},
    {**GOOD, "quantity": "two"},
    {**GOOD, "quantity": " 2"},
    {**GOOD, "price": "0"},
    {**GOOD, "price": "0012.50"},
    {**GOOD, "price": "1000000"},
    {**GOOD, "price": "1000000.00"},
    {**GOOD, "price": "1000000.01"},
    {**GOOD, "price": "12.345"},
    {**GOOD, "price": "-1"},
    {**GOOD, "price": "1e3"},
    {**GOOD, "price": "NaN"},
    {**GOOD, "price": "12,50"},
    {**GOOD, "session": "sess-1", "request_id": "r" * 64},
    {**GOOD, "request_id": "r" * 65},
    {**GOOD, "session": " "},
]


def _table(rows: list[dict[str, str]]) -> pa.Table:
    return pa.table({name: pa.array([row[name] for row in rows], pa.string()) for name in EVENT_COLUMNS})


def _as_clean(event: ValidEvent) -> tuple:
    return (
        event.event_id, event.type, event.shopper, event.sku, event.ts, event.session, event.request_id,
        event.quantity, event.price,
    )  # fmt: skip


def _fast_rows(rows: list[dict[str, str]]) -> tuple[np.ndarray, list[tuple]]:
    ok, clean = fast_valid(_table(rows), np.arange(len(rows)), NOW)
    cleaned = [
        (
            r["event_id"],
            r["type"],
            r["shopper"],
            r["sku"],
            ts_from_us(r["ts_us"]),
            r["session"],
            r["request_id"],
            r["quantity"],
            price_from_cents(r["price_cents"]),
        )
        for r in clean.to_pylist()
    ]
    return ok, cleaned


def assert_agree(rows: list[dict[str, str]]) -> None:
    ok, cleaned = _fast_rows(rows)
    fast = iter(cleaned)
    for row, is_fast in zip(rows, ok, strict=True):
        checked = validate_event(event_record_from_csv(row), now=NOW)
        if is_fast:
            assert isinstance(checked, ValidEvent), (row, checked)
            assert next(fast) == _as_clean(checked), row


def test_fast_path_agrees_with_validate_event_on_tricky_rows():
    assert_agree(TRICKY)


def test_fast_path_takes_the_common_shapes():
    common = [TRICKY[i] for i in (0, 1, 2, 3, 4, 5, 7, 10, 24, 27, 38, 45, 46, 48, 54, 55, 56, 57, 64)]
    ok, _ = _fast_rows(common)
    assert ok.tolist() == [True] * len(common)


def test_fast_path_leaves_the_rest_to_validate_event():
    # Rows the fast path does not take: validate_event decides (and some of them are valid)
    ok, _ = _fast_rows(TRICKY)
    slow = [row for row, is_fast in zip(TRICKY, ok, strict=True) if not is_fast]
    verdicts = [isinstance(validate_event(event_record_from_csv(r), now=NOW), ValidEvent) for r in slow]
    assert True in verdicts and False in verdicts  # e.g. "é-1" is valid, "x" * 129 is not


def test_a_file_without_optional_columns_is_handled():
    table = pa.table(
        {name: pa.array([GOOD[name]], pa.string()) for name in ("event_id", "type", "shopper", "sku", "ts")}
    )
    ok, clean = fast_valid(table, np.array([2]), NOW)
    assert ok.tolist() == [True]
    assert clean.to_pylist()[0] | {"ts_us": 0} == {
        "event_id": "e-1", "type": "view", "shopper": "s-1", "sku": "SKU-1", "ts_us": 0, "session": "",
        "request_id": "", "quantity": 1, "price_cents": None, "line": 2,
    }  # fmt: skip


cells = st.one_of(
    st.sampled_from(["", " ", "0", "1", "2.50", "+3", "view", "purchase", "1764322200", "946684800"]),
    st.text(max_size=12),
    st.datetimes(min_value=datetime(1998, 1, 1), max_value=datetime(2027, 1, 1)).map(
        lambda d: d.isoformat(timespec="microseconds") + "Z"
    ),
    st.datetimes(min_value=datetime(1998, 1, 1), max_value=datetime(2027, 1, 1)).map(
        lambda d: (d.replace(tzinfo=UTC) + timedelta(hours=1)).isoformat()
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.fixed_dictionaries({name: cells for name in EVENT_COLUMNS}), min_size=1, max_size=20))
def test_fast_path_agrees_with_validate_event_on_generated_rows(rows):
    assert_agree(rows)


# --- JSON lines: the simple shape read as cells -------------------------------------------------

J = '"event_id": "e-1", "type": "view", "shopper": "s-1", "sku": "SKU-1"'
JSON_TRICKY = [
    "{" + J + ', "ts": "2026-11-28T09:30:00Z"}',
    "{" + J + ', "ts": 1764322200}',
    " {\t" + J + ' , "ts" : "2026-11-28T09:30:00+01:00" }\r',
    "{" + J + ', "ts": "1764322200"}',  # a string of digits is not Unix seconds in JSON
    "{" + J + ', "ts": 1764322200.5}',
    "{" + J + ', "ts": null}',
    "{" + J + ', "ts": 1764322200000}',
    "{" + J + ', "ts": "2026-11-28T09:30:00"}',
    "{" + J + ', "ts": 1764322200, "quantity": 2, "price": 12.99}',
    "{" + J + ', "ts": 1764322200, "quantity": "2"}',
    "{" + J + ', "ts": 1764322200, "quantity": 2.0}',
    "{" + J + ', "ts": 1764322200, "quantity": 0}',
    "{" + J + ', "ts": 1764322200, "quantity": -1}',
    "{" + J + ', "ts": 1764322200, "quantity": null, "price": null, "session": null}',
    "{" + J + ', "ts": 1764322200, "price": "4.5"}',
    "{" + J + ', "ts": 1764322200, "price": 12.999}',
    "{" + J + ', "ts": 1764322200, "price": 1e2}',
    "{" + J + ', "ts": 1764322200, "price": -1}',
    "{" + J + ', "ts": 1764322200, "price": 1000000.01}',
    "{" + J + ', "ts": 1764322200, "price": 1000000}',
    "{" + J + ', "ts": 1764322200, "price": 0.1}',
    "{" + J + ', "ts": 1764322200, "price": 0}',
    "{" + J + ', "ts": 1764322200, "price": ""}',
    "{" + J + ', "ts": 1764322200, "session": "", "request_id": ""}',
    "{" + J + ', "ts": 1764322200, "request_id": "' + "r" * 65 + '"}',
    "{" + J + ', "ts": 1764322200, "session": " x"}',
    "{" + J + ', "ts": 1764322200, "type": "click"}',  # a repeated key
    "{" + J + ', "ts": 1764322200, "type" :"click"}',
    "{" + J + ', "ts": 1764322200, "extra": 1}',
    "{" + J + ', "ts": 1764322200, "session": {"a": 1}}',
    "{" + J + ', "ts": 1764322200, "session": true}',
    '{"event_id": 7, "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"event_id": null, "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"event_id": "", "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"event_id": "a\\"b", "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"event_id": "\\u0041", "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"event_id": "é", "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"event_id": "e", "type": "wink", "shopper": "s", "sku": "k", "ts": 1764322200}',
    '{"type": "view", "shopper": "s", "sku": "k", "ts": 1764322200}',
    "{}",
    "[]",
    '{"event_id": "e", "type": "view", "shopper": "s", "sku": "k", "ts": 1764322200,}',
    '{"event_id": "e", "type": "view", "shopper": "s", "sku": "k", "ts": 01764322200}',
    '{"event_id": "e" "type": "view"}',
]


def _fast_json(lines: list[str]) -> dict[int, tuple]:
    """The lines the JSON fast path takes, by position, with their cleaned values."""
    array = pa.array([line.encode() for line in lines], pa.binary())
    index, cells = jsonl_event_cells(array)
    _, clean = fast_valid(cells, index, NOW)
    return {int(r["line"]): _clean_tuple(r) for r in clean.to_pylist()}


def _clean_tuple(r: dict) -> tuple:
    return (
        r["event_id"], r["type"], r["shopper"], r["sku"], ts_from_us(r["ts_us"]), r["session"], r["request_id"],
        r["quantity"], price_from_cents(r["price_cents"]),
    )  # fmt: skip


def assert_json_agrees(lines: list[str]) -> dict[int, tuple]:
    fast = _fast_json(lines)
    for position, cleaned in fast.items():
        checked = validate_event(parse_json(lines[position]), now=NOW)
        assert isinstance(checked, ValidEvent), (lines[position], checked)
        assert cleaned == _as_clean(checked), lines[position]
    return fast


def test_json_fast_path_agrees_with_validate_event_on_tricky_lines():
    fast = assert_json_agrees(JSON_TRICKY)
    assert sorted(fast) == [0, 1, 2, 8, 13, 19, 20, 21, 23]


def test_json_fast_path_takes_the_lines_the_api_documents():
    lines = [
        json.dumps({"event_id": f"e-{i}", "type": "purchase", "shopper": "s", "sku": "K", "ts": ts, **extra})
        for i, (ts, extra) in enumerate(
            [
                ("2026-11-28T09:30:00Z", {}),
                (1764322200, {"quantity": 2, "price": 12.99}),
                ("2026-11-28T09:30:00.250+01:00", {"session": "x", "request_id": "r-1"}),
            ]
        )
    ]
    assert sorted(assert_json_agrees(lines)) == [0, 1, 2]


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-10, max_value=2_000_000_000),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1, max_value=2e9),
    st.sampled_from(["", " ", "0", "2", "4.5", "view", "purchase", "1764322200", "2026-11-28T09:30:00Z"]),
    st.text(max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.sampled_from([*EVENT_COLUMNS, "other"]), json_values, max_size=10),
        min_size=1,
        max_size=20,
    )
)
def test_json_fast_path_agrees_with_validate_event_on_generated_lines(records):
    assert_json_agrees([json.dumps(record, separators=(",", ":")) for record in records])
