"""Property tests: the validators never raise on any JSON value, and whatever they accept
(and whatever they reject, as a Rejection) can be stored in Postgres."""

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from catalog.json_input import JsonInputError, NonFinite, _object_pairs, parse_json
from catalog.models import Event, Product, Rejection
from catalog.services import events_ingest, products_upsert
from catalog.validation import (
    EVENT_TYPES,
    PRODUCT_FIELDS,
    Problem,
    ValidEvent,
    ValidProduct,
    validate_event,
    validate_product,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

# Any character, lone surrogates and NUL included.
any_text = st.text(alphabet=st.characters(exclude_categories=()), max_size=40)
non_finite = st.sampled_from(["NaN", "Infinity", "-Infinity"]).map(NonFinite)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    any_text,
    non_finite,
)


def json_objects(children: st.SearchStrategy) -> st.SearchStrategy:
    """Objects as the strict parser builds them: repeated keys are kept visible."""
    keys = st.one_of(any_text, st.sampled_from([*PRODUCT_FIELDS, "event_id", "type", "shopper", "ts", "quantity"]))
    return st.lists(st.tuples(keys, children), max_size=6).map(_object_pairs)


json_values = st.recursive(
    scalars, lambda children: st.one_of(st.lists(children, max_size=5), json_objects(children)), max_leaves=20
)

timestamps = st.one_of(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)).map(
        lambda d: d.isoformat()
    ),
    st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda d: d.replace(tzinfo=timezone(timedelta(hours=5, minutes=30))).isoformat()
    ),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(min_value=9e8, max_value=2e9),
    st.sampled_from(
        ["2026-11-28T09:30:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "2026-02-30T00:00:00Z"]
    ),
)
ids = st.one_of(st.text(min_size=1, max_size=20), any_text, st.text(min_size=120, max_size=300))


def maybe(valid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly a plausible value, sometimes anything at all."""
    return st.one_of(valid, valid, valid, json_values)


near_valid_events = st.fixed_dictionaries(
    {
        "event_id": maybe(ids),
        "type": maybe(st.sampled_from(sorted(EVENT_TYPES))),
        "shopper": maybe(ids),
        "sku": maybe(st.sampled_from(["SKU-A", "SKU-B", "NOPE"]) | ids),
        "ts": maybe(timestamps),
    },
    optional={
        "session": maybe(ids),
        "request_id": maybe(ids),
        "quantity": maybe(st.integers(min_value=-5, max_value=20_000) | st.floats()),
        "price": maybe(st.decimals(allow_nan=True, places=3).map(str) | st.floats() | st.integers()),
    },
).map(lambda d: _object_pairs(list(d.items())))

near_valid_products = st.fixed_dictionaries(
    {"sku": maybe(ids)},
    optional={
        "title": maybe(st.text(max_size=600)),
        "description": maybe(any_text),
        "category": maybe(st.text(max_size=60) | st.lists(st.text(max_size=250), max_size=12)),
        "brand": maybe(any_text),
        "price": maybe(st.floats() | st.integers() | st.text(max_size=12)),
        "url": maybe(st.sampled_from(["https://a.example/x", "http://b", "ftp://c", "https://a b"]) | any_text),
        "image_url": maybe(st.just("https://a.example/i.png")),
        "tags": maybe(st.lists(any_text, max_size=60)),
        "attributes": maybe(json_objects(json_values)),
        "in_stock": maybe(st.booleans()),
        "active": maybe(st.booleans()),
    },
).map(lambda d: _object_pairs(list(d.items())))


def assert_storable(problems: list[Problem]) -> None:
    assert problems, "a rejection names at least one problem"
    for problem in problems:
        # orjson refuses lone surrogates; Postgres refuses NUL: neither may be in a reason
        orjson.dumps({"field": problem.field, "reason": problem.reason})
        assert "\x00" not in problem.field + problem.reason


@settings(max_examples=250, deadline=None)
@given(st.one_of(json_values, near_valid_events))
def test_validate_event_never_raises(raw):
    checked = validate_event(raw, now=NOW)
    if isinstance(checked, ValidEvent):
        assert checked.ts.tzinfo is not None
        assert datetime(2000, 1, 1, tzinfo=UTC) <= checked.ts <= NOW + timedelta(hours=1)
    else:
        assert_storable(checked)


@settings(max_examples=250, deadline=None)
@given(st.one_of(json_values, near_valid_products))
def test_validate_product_never_raises(raw):
    checked = validate_product(raw)
    if not isinstance(checked, ValidProduct):
        assert_storable(checked)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | json_values.map(lambda v: repr(v).encode("utf-8", "surrogatepass")))
def test_parse_json_raises_only_its_own_error(data):
    try:
        parse_json(data)
    except JsonInputError as error:
        assert error.code in {"invalid_utf8", "empty_body", "malformed_json", "too_deeply_nested"}


def test_the_generated_records_reach_acceptance():
    # The strategies are not just noise: they do produce records the validators accept.
    accepted = find(near_valid_events, lambda e: isinstance(validate_event(e, now=NOW), ValidEvent))
    assert isinstance(validate_event(accepted, now=NOW), ValidEvent)
    product = find(near_valid_products, lambda p: isinstance(validate_product(p), ValidProduct) and "title" in p)
    assert isinstance(validate_product(product), ValidProduct)


@pytest.mark.postgres
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(st.one_of(near_valid_events, json_values), min_size=1, max_size=8))
def test_whatever_events_ingest_accepts_or_rejects_is_stored_in_postgres(shop, events):
    # Given any batch (a known SKU exists)
    Product.objects.get_or_create(shop=shop, sku="SKU-A", defaults={"title": "A"})
    before_events, before_rejections = Event.objects.count(), Rejection.objects.count()
    # When it is ingested into Postgres
    result = events_ingest(shop=shop, records=events, now=NOW)
    # Then every record is either stored, a duplicate, or kept as a rejection
    rejected = len({r.index for r in result.rejected})
    assert result.accepted + result.duplicates + rejected == len(events)
    assert Event.objects.count() - before_events == result.accepted
    assert Rejection.objects.count() - before_rejections == rejected


@pytest.mark.postgres
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(products=st.lists(st.one_of(near_valid_products, json_values), min_size=1, max_size=6))
def test_whatever_products_upsert_accepts_or_rejects_is_stored_in_postgres(shop, products):
    result = products_upsert(shop=shop, records=products)
    rejected = len({r.index for r in result.rejected})
    assert result.created + result.updated + result.unchanged + rejected == len(products)
