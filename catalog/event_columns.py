"""Events as columns: the CSV cell rules, and a vectorised validator for imports.

Row by row, catalog.validation.validate_event costs about 10 µs an event; an import
of millions of events needs less. ``fast_valid`` checks whole columns at once with
pyarrow and accepts only rows that are valid in a simple, common shape (printable
ASCII ids, ISO 8601 timestamps like ``2026-11-28T09:30:00Z`` or ``...+01:00``, or
whole Unix seconds, plain decimal prices). Every other row, valid or not, goes to
validate_event itself. So the rules are exactly the same on both paths; the fast one
only ever says "valid" where validate_event would say so, with the same values.
tests/catalog/test_event_columns.py holds both to that on a sample of tricky rows.

Clean events travel as a pyarrow table of ``CLEAN_SCHEMA`` (one row per event).
"""

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.validation import (
    EARLIEST_TS,
    EVENT_TYPES,
    MAX_FUTURE,
    MAX_ID_LENGTH,
    MAX_PRICE,
    MAX_QUANTITY,
    MAX_SHOPPER_LENGTH,
    ValidEvent,
)

EVENT_COLUMNS = ("event_id", "type", "shopper", "sku", "ts", "session", "request_id", "quantity", "price")
REQUIRED_EVENT_COLUMNS = ("event_id", "type", "shopper", "sku", "ts")
MAX_SESSION_LENGTH = MAX_ID_LENGTH
MAX_REQUEST_ID_LENGTH = 64

CLEAN_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("shopper", pa.string()),
        ("sku", pa.string()),
        ("ts_us", pa.int64()),  # microseconds since 1970-01-01 UTC
        ("session", pa.string()),
        ("request_id", pa.string()),
        ("quantity", pa.int32()),
        ("price_cents", pa.int64()),  # the price in cents (prices have two decimals), or null
        ("line", pa.int64()),  # line in the imported file
    ]
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# --- CSV cells to a record (the one rule both paths follow) ---------------------------

_CSV_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_CSV_NUMBER = re.compile(r"[+-]?[0-9]+\.[0-9]+", re.ASCII)


def event_record_from_csv(cells: dict[str, str]) -> dict[str, Any]:
    """A CSV row as the record validate_event checks: an empty cell is a field not
    sent; ``quantity`` written as an integer is a number; ``ts`` written as a number is
    Unix seconds. Everything else stays text (so ``quantity`` "two" is refused as a
    string, exactly as in the API)."""
    record: dict[str, Any] = {}
    for name, text in cells.items():
        if text == "":
            continue
        value: Any = text
        if name == "quantity" and _CSV_INTEGER.fullmatch(text):
            value = int(text)
        elif name == "ts":
            if _CSV_INTEGER.fullmatch(text):
                value = int(text)
            elif _CSV_NUMBER.fullmatch(text):
                value = float(text)
        record[name] = value
    return record


# --- The vectorised fast path ---------------------------------------------------------

_PRINTABLE_ID = r"^[!-~](?:[ -~]*[!-~])?$"  # printable ASCII, no space at either end
_ISO_TS = (
    r"^(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[T ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?:\.(?P<f>[0-9]{1,6}))?(?:Z|(?P<sign>[+-])(?P<tzh>[0-9]{2}):(?P<tzm>[0-9]{2}))$"
)
_UNIX_SECONDS = r"^[0-9]{9,10}$"
_QUANTITY = r"^[0-9]{1,5}$"
_PRICE = r"^(?P<units>[0-9]{1,7})(?:\.(?P<cents>[0-9]{1,2}))?$"
_MAX_CENTS = int(MAX_PRICE * 100)
_EARLIEST_US = (EARLIEST_TS - _EPOCH) // _US


def fast_valid(cells: pa.Table, lines: np.ndarray, now: datetime) -> tuple[np.ndarray, pa.Table]:
    """Which rows are valid in the simple shape, and those rows cleaned.

    ``cells`` has one string column per CSV column of the file (empty string for an
    empty cell; absent optional columns count as empty). Returns a boolean mask over
    the rows and a CLEAN_SCHEMA table of the rows where it is true.
    """
    n = cells.num_rows
    column = {name: cells.column(name) if name in cells.column_names else None for name in EVENT_COLUMNS}
    ok = np.ones(n, dtype=bool)
    for name, limit in (("event_id", MAX_ID_LENGTH), ("shopper", MAX_SHOPPER_LENGTH), ("sku", MAX_ID_LENGTH)):
        ok &= _printable_id(column[name], limit)
    ok &= _bools(pc.is_in(column["type"], value_set=pa.array(sorted(EVENT_TYPES))))
    for name, limit in (("session", MAX_SESSION_LENGTH), ("request_id", MAX_REQUEST_ID_LENGTH)):
        if column[name] is not None:
            ok &= _bools(pc.equal(column[name], "")) | _printable_id(column[name], limit)
    ts_us, ts_ok = _timestamps(column["ts"], now)
    ok &= ts_ok
    quantity, quantity_ok = _quantities(column["quantity"], n)
    ok &= quantity_ok
    price, price_ok = _prices(column["price"], n)
    ok &= price_ok

    keep = pa.array(ok)
    empty = pa.array([""] * n, pa.string()) if column["session"] is None or column["request_id"] is None else None
    clean = pa.table(
        {
            "event_id": column["event_id"],
            "type": column["type"],
            "shopper": column["shopper"],
            "sku": column["sku"],
            "ts_us": pa.array(ts_us, pa.int64()),
            "session": column["session"] if column["session"] is not None else empty,
            "request_id": column["request_id"] if column["request_id"] is not None else empty,
            "quantity": pa.array(quantity, pa.int32()),
            "price_cents": price,
            "line": pa.array(lines, pa.int64()),
        },
        schema=CLEAN_SCHEMA,
    ).filter(keep)
    return ok, clean


def bool_mask(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean array as numpy, null counting as false."""
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


_bools = bool_mask


def _printable_id(values: pa.ChunkedArray, limit: int) -> np.ndarray:
    shaped = _bools(pc.match_substring_regex(values, _PRINTABLE_ID))
    short = _bools(pc.less_equal(pc.binary_length(values), limit))
    return shaped & short


def _digits(values: pa.Array, width: int | None = None) -> np.ndarray:
    """Digit strings (or "" for a group that did not take part) as int64."""
    if width is not None:
        values = pc.utf8_rpad(values, width=width, padding="0")
    zero_for_empty = pc.if_else(pc.equal(values, ""), "0", values)
    return np.asarray(pc.cast(zero_for_empty, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _timestamps(values: pa.ChunkedArray, now: datetime) -> tuple[np.ndarray, np.ndarray]:
    n = len(values)
    latest_us = (now + MAX_FUTURE - _EPOCH) // _US
    combined = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    parts = pc.extract_regex(combined, _ISO_TS)
    iso = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    year, month, day = (_digits(parts.field(k)) for k in ("y", "mo", "d"))
    hour, minute, second = (_digits(parts.field(k)) for k in ("h", "mi", "s"))
    fraction = _digits(parts.field("f"), width=6)
    sign = np.where(np.asarray(pc.equal(parts.field("sign"), "-").to_numpy(zero_copy_only=False)), -1, 1)
    tz_hours, tz_minutes = _digits(parts.field("tzh")), _digits(parts.field("tzm"))
    safe_month = np.clip(month, 1, 12)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _DAYS_IN_MONTH[safe_month] + ((safe_month == 2) & leap)
    in_range = (
        (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (day <= month_days)
        & (hour <= 23)
        & (minute <= 59)
        & (second <= 59)
        & (tz_hours <= 23)
        & (tz_minutes <= 59)
    )
    days = _days_from_civil(year, safe_month, np.clip(day, 1, 31))
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - sign * (tz_hours * 3600 + tz_minutes * 60)
    iso_us = seconds * 1_000_000 + fraction
    iso &= in_range

    unix = _bools(pc.match_substring_regex(combined, _UNIX_SECONDS))
    unix_us = np.where(unix, _digits(pc.if_else(pa.array(unix), combined, "")) * 1_000_000, 0)

    ts_us = np.where(iso, iso_us, unix_us)
    ok = (iso | unix) & (ts_us >= _EARLIEST_US) & (ts_us <= latest_us)
    return np.where(ok, ts_us, 0).astype(np.int64), ok if n else np.zeros(0, dtype=bool)


def _quantities(values: pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    if values is None:
        return np.ones(n, dtype=np.int64), np.ones(n, dtype=bool)
    empty = _bools(pc.equal(values, ""))
    shaped = _bools(pc.match_substring_regex(values, _QUANTITY))
    number = _digits(pc.if_else(pa.array(shaped), values.combine_chunks(), ""))
    ok = empty | (shaped & (number >= 1) & (number <= MAX_QUANTITY))
    return np.where(empty, 1, number), ok


def _prices(values: pa.ChunkedArray | None, n: int) -> tuple[pa.Array, np.ndarray]:
    """Prices in cents (null for an empty cell), and which cells are valid prices."""
    if values is None:
        return pa.nulls(n, pa.int64()), np.ones(n, dtype=bool)
    combined = values.combine_chunks()
    empty = _bools(pc.equal(combined, ""))
    parts = pc.extract_regex(combined, _PRICE)
    shaped = np.asarray(parts.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    cents = _digits(parts.field("units")) * 100 + _digits(parts.field("cents"), width=2)
    ok = empty | (shaped & (cents <= _MAX_CENTS))
    price = pa.array(np.where(ok, cents, 0), pa.int64(), mask=empty | ~ok)
    return price, ok


# --- Rows validated one by one, as columns ---------------------------------------------


def valid_events_table(events: Sequence[ValidEvent], lines: Sequence[int]) -> pa.Table:
    """CLEAN_SCHEMA rows for events that validate_event accepted."""
    return pa.table(
        {
            "event_id": [e.event_id for e in events],
            "type": [e.type for e in events],
            "shopper": [e.shopper for e in events],
            "sku": [e.sku for e in events],
            "ts_us": [(e.ts - _EPOCH) // _US for e in events],
            "session": [e.session for e in events],
            "request_id": [e.request_id for e in events],
            "quantity": [e.quantity for e in events],
            "price_cents": [None if e.price is None else int(e.price * 100) for e in events],
            "line": list(lines),
        },
        schema=CLEAN_SCHEMA,
    )


def ts_from_us(ts_us: int) -> datetime:
    return _EPOCH + ts_us * _US


def price_from_cents(cents: int | None) -> Decimal | None:
    return None if cents is None else Decimal(cents).scaleb(-2)


# --- JSON lines to cells -----------------------------------------------------------------

_JSON_SPACE = r"[ \t\r]*"
_JSON_STRING = r'"[ !#-\[\]-~]*"'  # printable ASCII, no quote, no backslash: nothing escaped
_JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?"  # no exponent
_JSON_MEMBER = f'"(?:{"|".join(EVENT_COLUMNS)})"{_JSON_SPACE}:{_JSON_SPACE}(?:{_JSON_STRING}|{_JSON_NUMBER}|null)'
_SIMPLE_JSON_EVENT = (
    f"^{_JSON_SPACE}\\{{{_JSON_SPACE}(?:{_JSON_MEMBER}(?:{_JSON_SPACE},{_JSON_SPACE}{_JSON_MEMBER})*)?"
    f"{_JSON_SPACE}\\}}{_JSON_SPACE}$"
)
_ANY_KEY = f'"(?:{"|".join(EVENT_COLUMNS)})"{_JSON_SPACE}:'
_STRING_FIELDS = ("event_id", "type", "shopper", "sku", "session", "request_id")
_NUMBER_FIELDS = ("quantity", "price")  # taken only as JSON numbers (a string quantity is refused)


def jsonl_event_cells(lines: pa.Array) -> tuple[np.ndarray, pa.Table]:
    """The JSON lines (a binary array, one JSON text each) that have a simple, common
    shape: their positions in ``lines``, and their values as the CSV cells that
    fast_valid checks (one row a line).

    The shape: one flat object whose keys are event fields, each at most once; string
    values of printable ASCII with no escapes; numbers without exponents; ``null``.
    Where a JSON type would be read differently from the same text in a CSV cell
    (``"ts": "1764322200"`` is a string, not Unix seconds; ``"quantity": "2"`` is
    refused), the line is left out of the shape. Every other line goes to parse_json
    and validate_event, which decide."""
    index = np.flatnonzero(_bools(pc.match_substring_regex(lines, _SIMPLE_JSON_EVENT)))
    empty = pa.array([""] * len(index), pa.string())
    shaped = lines.take(pa.array(index)).cast(pa.string())
    keep = np.ones(len(index), dtype=bool)
    # Each key at most once: as many keys in all as distinct keys found.
    keys = np.asarray(pc.count_substring_regex(shaped, _ANY_KEY).to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct = np.zeros(len(index), dtype=np.int64)
    columns: dict[str, pa.Array] = {}
    for name in EVENT_COLUMNS:
        key = f'"{name}"{_JSON_SPACE}:'
        found = pc.extract_regex(shaped, f"{key}{_JSON_SPACE}(?P<v>{_JSON_STRING}|{_JSON_NUMBER}|null)")
        token = found.field("v")  # "" where the key is absent (the struct is null there)
        # An absent key is a field not sent, as is null.
        absent = ~np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool) | _bools(
            pc.equal(token, "null")
        )
        distinct += np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=np.int64)
        quoted = _bools(pc.starts_with(token, '"'))
        text = pc.if_else(pa.array(quoted), pc.utf8_slice_codeunits(token, 1, -1), token)
        if name in _STRING_FIELDS:
            keep &= quoted | absent
        elif name in _NUMBER_FIELDS:
            keep &= ~quoted
        else:  # ts: an ISO string or Unix seconds as a number, not a string of digits
            keep &= ~(quoted & _bools(pc.match_substring_regex(text, r"^[0-9.+-]*$")))
        columns[name] = pc.if_else(pa.array(absent), empty, text)
    keep &= keys == distinct
    table = pa.table({name: columns[name] for name in EVENT_COLUMNS})
    return index[keep], table.filter(pa.array(keep))
