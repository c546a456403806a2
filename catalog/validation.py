"""Validation of what shops send: events and products, one record at a time.

The validators take any parsed JSON value and never raise: they return either a
clean, typed record or the list of problems with it. Everything they accept can be
stored as it is (no NUL characters or lone surrogates, which Postgres refuses; no
numbers out of the columns' range; timezone-aware timestamps in a sane window).
"""

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from catalog.json_input import JsonObject, NonFinite
from catalog.models import EventType

MAX_ID_LENGTH = 128
MAX_SHOPPER_LENGTH = 256
MAX_PRICE = Decimal("1000000")
MAX_QUANTITY = 10_000
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)
_EARLIEST_UNIX = int(EARLIEST_TS.timestamp())
MAX_FUTURE = timedelta(hours=1)
MAX_TAGS = 50
MAX_TAG_LENGTH = 100
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 100
MAX_ATTRIBUTE_VALUE = 500
MAX_CATEGORY_PATH = 1000  # Category.path
EVENT_TYPES = frozenset(EventType.values)
_CENT = Decimal("0.01")
# Control characters (other than tab/newline in long text) and the two code points
# that cannot be stored: NUL and lone surrogates.
_BAD_IN_ID = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_BAD_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class ValidEvent:
    event_id: str
    type: str
    shopper: str
    sku: str
    ts: datetime
    session: str = ""
    request_id: str = ""
    quantity: int = 1
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ValidProduct:
    """A product as sent. ``fields`` holds only the fields present in the request:
    an upsert changes those and leaves the others as they are."""

    sku: str
    fields: dict[str, Any] = field(default_factory=dict)


class InvalidValue(Exception):
    """Raised by the clean_* functions; ``reason`` completes "<field> ..."."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def storable_name(name: Any, max_length: int = 100) -> str:
    """A field name as sent, safe to store and to echo in JSON: NUL, control characters
    and lone surrogates (which Postgres and UTF-8 JSON refuse) are written as escapes."""
    text = name if isinstance(name, str) else str(name)
    return _BAD_IN_ID.sub(lambda match: f"\\u{ord(match.group()):04x}", text[:max_length])


def describe_json_type(value: Any) -> str:
    """How a parsed JSON value is named in messages: "null", "a list", "an object"..."""
    return _describe(value)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (int, float, NonFinite)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def clean_id(value: Any, max_length: int = MAX_ID_LENGTH) -> str:
    if not isinstance(value, str):
        raise InvalidValue(f"must be a string, got {_describe(value)}")
    value = value.strip()
    if not value:
        raise InvalidValue("must not be empty")
    if len(value) > max_length:
        raise InvalidValue(f"must be at most {max_length} characters, got {len(value)}")
    if _BAD_IN_ID.search(value):
        raise InvalidValue("must not contain control characters, NUL or lone surrogates")
    return value


def clean_text(value: Any, max_length: int, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidValue(f"must be a string, got {_describe(value)}")
    value = value.strip()
    if required and not value:
        raise InvalidValue("must not be empty")
    if len(value) > max_length:
        raise InvalidValue(f"must be at most {max_length} characters, got {len(value)}")
    if _BAD_IN_TEXT.search(value):
        raise InvalidValue("must not contain control characters, NUL or lone surrogates")
    return value


def clean_price(value: Any) -> Decimal:
    """A price as a JSON number or a decimal string, 0 to MAX_PRICE, rounded to cents."""
    if isinstance(value, NonFinite):
        raise InvalidValue(f"must be a finite number, got {value.literal}")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidValue(f"must be a number, got {_describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidValue("must be a finite number")
    try:
        if isinstance(value, str):
            amount = Decimal(value.strip())
        elif isinstance(value, int):
            amount = Decimal(value)  # exact, and free of the int-to-str digit limit
        else:
            amount = Decimal(repr(value))
    except InvalidOperation:
        raise InvalidValue("must be a number such as 12.99") from None
    if not amount.is_finite():
        raise InvalidValue("must be a finite number")
    if amount < 0:
        raise InvalidValue("must not be negative")
    if amount > MAX_PRICE:
        raise InvalidValue(f"must be at most {MAX_PRICE}")
    return amount.quantize(_CENT, rounding=ROUND_HALF_UP)


def clean_quantity(value: Any) -> int:
    if isinstance(value, NonFinite):
        raise InvalidValue(f"must be a whole number, got {value.literal}")
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidValue(f"must be a whole number, got {_describe(value)}")
    if not 1 <= value <= MAX_QUANTITY:
        raise InvalidValue(f"must be from 1 to {MAX_QUANTITY}")
    return value


def clean_timestamp(value: Any, now: datetime) -> datetime:
    """An ISO 8601 string with a UTC offset, or Unix seconds as a number."""
    if isinstance(value, str):
        if len(value) > 40:
            raise InvalidValue("is too long for a timestamp")
        try:
            ts = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidValue("must be an ISO 8601 timestamp such as 2026-11-28T09:30:00Z") from None
        if ts.tzinfo is None:
            raise InvalidValue("needs a UTC offset, e.g. 2026-11-28T09:30:00Z")
    elif isinstance(value, NonFinite):
        raise InvalidValue(f"must be a finite number, got {value.literal}")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidValue("must be a finite number")
        if not -1e11 < value < 1e11:
            raise InvalidValue("must be Unix time in seconds (not milliseconds)")
        if value < _EARLIEST_UNIX:  # checked first: far-past seconds are out of datetime's range
            raise InvalidValue("is before 2000-01-01")
        ts = datetime.fromtimestamp(value, tz=UTC)
    else:
        raise InvalidValue(f"must be an ISO 8601 string or Unix seconds, got {_describe(value)}")
    if ts < EARLIEST_TS:
        raise InvalidValue("is before 2000-01-01")
    if ts > now + MAX_FUTURE:
        raise InvalidValue("is more than an hour in the future")
    return ts.astimezone(UTC)


def clean_url(value: Any) -> str:
    text = clean_text(value, 2000)
    if text and not (text.startswith("https://") or text.startswith("http://")):
        raise InvalidValue("must be an http:// or https:// URL")
    if any(c.isspace() for c in text):
        raise InvalidValue("must not contain spaces")
    return text


def clean_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidValue(f"must be true or false, got {_describe(value)}")
    return value


def clean_tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidValue(f"must be a list of strings, got {_describe(value)}")
    if len(value) > MAX_TAGS:
        raise InvalidValue(f"must have at most {MAX_TAGS} tags")
    tags: list[str] = []
    for item in value:
        tag = clean_text(item, MAX_TAG_LENGTH, required=True)
        if tag not in tags:
            tags.append(tag)
    return tags


def _clean_attribute_value(value: Any) -> str | int | float | bool:
    if isinstance(value, NonFinite) or (isinstance(value, float) and not math.isfinite(value)):
        raise InvalidValue("values must be finite numbers")
    if isinstance(value, (bool, int, float)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
            raise InvalidValue("numbers must be at most 2^53")
        return value
    return clean_text(value, MAX_ATTRIBUTE_VALUE)


def clean_attributes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidValue(f"must be an object, got {_describe(value)}")
    repeated: tuple[str, ...] = getattr(value, "duplicate_keys", ())
    if repeated:
        raise InvalidValue(f"has repeated keys: {', '.join(storable_name(k) for k in repeated)}")
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidValue(f"must have at most {MAX_ATTRIBUTES} keys")
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        name = clean_text(key, MAX_ATTRIBUTE_KEY, required=True)
        if isinstance(item, list):
            if len(item) > MAX_TAGS:
                raise InvalidValue(f"list of {name!r} must have at most {MAX_TAGS} values")
            cleaned[name] = [_clean_attribute_value(v) for v in item]
        else:
            cleaned[name] = _clean_attribute_value(item)
    return cleaned


def clean_category(value: Any) -> str:
    """A category path such as ``Home > Kitchen > Knives`` (or a list of names)."""
    if value is None:
        return ""
    if isinstance(value, list):
        parts = [clean_text(part, 200, required=True) for part in value]
        if any(">" in part for part in parts):
            raise InvalidValue("levels must not contain '>'")
    else:
        parts = [part.strip() for part in clean_text(value, 1000).split(">")]
        if parts == [""]:
            return ""
        if any(not part for part in parts):
            raise InvalidValue("has an empty level; write levels as 'Home > Kitchen'")
        if any(len(part) > 200 for part in parts):
            raise InvalidValue("levels must be at most 200 characters")
    if len(parts) > 10:
        raise InvalidValue("must have at most 10 levels")
    path = " > ".join(parts)
    if len(path) > MAX_CATEGORY_PATH:
        raise InvalidValue(f"must be at most {MAX_CATEGORY_PATH} characters written as 'A > B > C'")
    return path


def _record_problems(raw: Any, label: str) -> list[Problem]:
    if not isinstance(raw, dict):
        return [Problem("", f"each {label} must be a JSON object, got {_describe(raw)}")]
    if isinstance(raw, JsonObject) and raw.duplicate_keys:
        return [Problem(storable_name(key), "appears more than once in this object") for key in raw.duplicate_keys]
    return []


def validate_event(raw: Any, *, now: datetime) -> ValidEvent | list[Problem]:
    problems = _record_problems(raw, "event")
    if problems:
        return problems
    values: dict[str, Any] = {}

    def take(name: str, cleaner: Any, *, required: bool) -> None:
        if name not in raw or raw[name] is None:
            if required:
                problems.append(Problem(name, "is required"))
            return
        try:
            values[name] = cleaner(raw[name])
        except InvalidValue as invalid:
            problems.append(Problem(name, invalid.reason))

    take("event_id", clean_id, required=True)
    take("type", _clean_event_type, required=True)
    take("shopper", lambda v: clean_id(v, MAX_SHOPPER_LENGTH), required=True)
    take("sku", clean_id, required=True)
    take("ts", lambda v: clean_timestamp(v, now), required=True)
    take("session", lambda v: clean_id(v) if v != "" else "", required=False)
    take("request_id", lambda v: clean_id(v, 64) if v != "" else "", required=False)
    take("quantity", clean_quantity, required=False)
    take("price", clean_price, required=False)
    if problems:
        return problems
    return ValidEvent(**values)


def _clean_event_type(value: Any) -> str:
    if not isinstance(value, str) or value not in EVENT_TYPES:
        shown = repr(value)[:40] if isinstance(value, str) else _describe(value)
        raise InvalidValue(f"must be one of {', '.join(sorted(EVENT_TYPES))}, got {shown}")
    return value


_PRODUCT_FIELDS: dict[str, Any] = {
    "title": lambda v: clean_text(v, 500, required=True),
    "description": lambda v: clean_text(v, 20_000),
    "category": clean_category,
    "brand": lambda v: clean_text(v, 200),
    "price": clean_price,
    "url": clean_url,
    "image_url": clean_url,
    "tags": clean_tags,
    "attributes": clean_attributes,
    "in_stock": clean_bool,
    "active": clean_bool,
}
PRODUCT_FIELDS = ("sku", *_PRODUCT_FIELDS)


def validate_product(raw: Any) -> ValidProduct | list[Problem]:
    """A product for an upsert. Only the fields present are returned; unknown fields
    are refused so that a misspelt field does not silently change nothing."""
    problems = _record_problems(raw, "product")
    if problems:
        return problems
    sku = ""
    if "sku" not in raw:
        problems.append(Problem("sku", "is required"))
    else:
        try:
            sku = clean_id(raw["sku"])
        except InvalidValue as invalid:
            problems.append(Problem("sku", invalid.reason))
    fields: dict[str, Any] = {}
    for name, value in raw.items():
        if name == "sku":
            continue
        cleaner = _PRODUCT_FIELDS.get(name)
        if cleaner is None:
            problems.append(
                Problem(storable_name(name), f"is not a product field; known fields: {', '.join(PRODUCT_FIELDS)}")
            )
            continue
        try:
            fields[name] = cleaner(value)
        except InvalidValue as invalid:
            problems.append(Problem(name, invalid.reason))
    if problems:
        return problems
    return ValidProduct(sku=sku, fields=fields)
