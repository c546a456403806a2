"""POST /api/v1/events with bad input: never a 500, never the valid part lost.

Whole-request problems answer 400/413 with the error shape and store nothing; problems
of single events reject just those events (kept as Rejection rows) and store the rest.
"""

import json
from datetime import UTC, datetime, timedelta

import pytest

from catalog.models import Event, Rejection
from tests.factories import ProductFactory, event_payload

URL = "/api/v1/events"


@pytest.fixture
def client(api, secret_key):
    return api(secret_key)


@pytest.fixture
def product(shop):
    return ProductFactory(shop=shop, sku="SKU-A")


def post_raw(client, body: bytes | str, content_type: str = "application/json", **extra):
    return client.generic("POST", URL, body, content_type=content_type, **extra)


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- whole-request problems -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (b"", "empty_body", "Body is empty; send a JSON document."),
        (b"   \n", "empty_body", "Body is empty; send a JSON document."),
        (b"[]", "invalid_envelope", 'Send a JSON object such as {"events": [...]}; the body is a list.'),
        (b"null", "invalid_envelope", 'Send a JSON object such as {"events": [...]}; the body is null.'),
        (b"42", "invalid_envelope", 'Send a JSON object such as {"events": [...]}; the body is a number.'),
        (b'"events"', "invalid_envelope", 'Send a JSON object such as {"events": [...]}; the body is a string.'),
        (b"{}", "invalid_envelope", '"events" must be a list, got nothing.'),
        (b'{"events": {}}', "invalid_envelope", '"events" must be a list, got an object.'),
        (b'{"events": null}', "invalid_envelope", '"events" must be a list, got null.'),
        (b'{"events": NaN}', "invalid_envelope", '"events" must be a list, got a number.'),
        (
            b'{"events": [], "events": []}',
            "invalid_envelope",
            'Send a JSON object such as {"events": [...]}; the body has repeated keys.',
        ),
        (b'{"events": [', "malformed_json", "Body is not valid JSON: Expecting value at line 1 column 13."),
        (b"\xff\xfe{}", "invalid_utf8", "Body is not valid UTF-8 (byte 0)."),
        (
            b'{"events": [1' + b"1" * 5000 + b"]}",
            "malformed_json",
            "Body is not valid JSON: a number has too many digits.",
        ),
    ],
    ids=[
        "empty",
        "whitespace",
        "empty-list",
        "null",
        "bare-number",
        "bare-string",
        "no-events",
        "object-for-list",
        "null-for-list",
        "nan-for-list",
        "duplicate-envelope-keys",
        "truncated",
        "invalid-utf8",
        "5000-digit-number",
    ],
)
def test_a_body_that_is_not_a_batch_is_a_400_and_stores_nothing(client, shop, body, code, message):
    # Given a body that cannot be read as {"events": [...]}
    # When it is posted
    response = post_raw(client, body)
    # Then it is a 400 with a code saying why, and nothing is stored
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["message"]) == (code, message)
    assert Event.objects.count() == 0
    assert Rejection.objects.count() == 0


def test_more_than_100_events_is_a_400_and_stores_none_of_them(client, shop, product):
    # Given 101 valid events
    events = [event_payload(n) for n in range(101)]
    # When they are posted at once
    response = client.post(URL, {"events": events}, format="json")
    # Then the batch is refused as a whole: the sender splits it and loses nothing
    assert response.status_code == 400
    assert error_of(response)["code"] == "too_many_records"
    assert error_of(response)["message"] == "At most 100 events per request, got 101; split the batch."
    assert Event.objects.count() == 0


def test_exactly_100_events_are_accepted(client, shop, product):
    events = [event_payload(n) for n in range(100)]
    response = client.post(URL, {"events": events}, format="json")
    assert response.status_code == 200
    assert response.json()["accepted"] == 100
    assert Event.objects.filter(shop=shop).count() == 100


def test_a_body_over_64_kb_is_a_413(client, shop, product):
    # Given 100 events whose padding makes the body larger than 64 KB
    events = [event_payload(n, session="x" * 700) for n in range(100)]
    body = json.dumps({"events": events}).encode()
    assert len(body) > 64 * 1024
    # When it is posted
    response = post_raw(client, body)
    # Then it is refused as too large, and nothing is stored
    assert response.status_code == 413
    assert error_of(response)["code"] == "payload_too_large"
    assert error_of(response)["message"] == "Request body is larger than 65536 bytes."
    assert Event.objects.count() == 0


def test_a_declared_length_over_64_kb_is_a_413_before_anything_is_read(client, shop):
    # Given a request whose Content-Length announces more than 64 KB
    response = post_raw(client, b'{"events": []}', CONTENT_LENGTH=str(64 * 1024 + 1))
    # Then it is refused on the announcement alone
    assert response.status_code == 413
    assert error_of(response)["message"] == "Request body is larger than 65536 bytes."


def test_arrays_nested_100000_deep_are_refused_without_a_crash(client, shop):
    # Given 100,000 nested arrays (200 KB: over the events limit) and 30,000 (within it)
    deep = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    within = b'{"events": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    # When each is posted
    too_big, too_deep = post_raw(client, deep), post_raw(client, within)
    # Then the first is too large and the second too deep; neither is a 500
    assert (too_big.status_code, error_of(too_big)["code"]) == (413, "payload_too_large")
    assert (too_deep.status_code, error_of(too_deep)["code"]) == (400, "too_deeply_nested")
    assert error_of(too_deep)["message"] == "JSON is nested too deeply."


def test_a_form_body_is_an_unsupported_media_type(client, shop):
    response = post_raw(client, b"events=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_text_plain_with_a_charset_is_read_as_json(client, shop, product):
    # navigator.sendBeacon with a string sends text/plain;charset=UTF-8
    body = json.dumps({"events": [event_payload(1)]})
    response = post_raw(client, body, content_type="text/plain;charset=UTF-8")
    assert response.status_code == 200
    assert response.json()["accepted"] == 1


# --- problems of single events --------------------------------------------------------------


def _now_iso(**delta) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


BAD_EVENTS = [
    # (raw JSON of one event, field, reason)
    (
        '{"event_id": "e-1\\u0000", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": "%s"}',
        "event_id",
        "must not contain control characters, NUL or lone surrogates",
    ),
    (
        '{"event_id": "e-2", "type": "view", "shopper": "s-\\ud800", "sku": "SKU-A", "ts": "%s"}',
        "shopper",
        "must not contain control characters, NUL or lone surrogates",
    ),
    (
        '{"event_id": "e-3", "type": "view", "type": "click", "shopper": "s", "sku": "SKU-A", "ts": "%s"}',
        "type",
        "appears more than once in this object",
    ),
    (
        '{"event_id": "e-4", "type": "purchase", "shopper": "s", "sku": "SKU-A", "ts": "%s", "price": NaN}',
        "price",
        "must be a finite number, got NaN",
    ),
    (
        '{"event_id": "e-5", "type": "purchase", "shopper": "s", "sku": "SKU-A", "ts": "%s", "price": -Infinity}',
        "price",
        "must be a finite number, got -Infinity",
    ),
    (
        '{"event_id": "e-6", "type": "wink", "shopper": "s", "sku": "SKU-A", "ts": "%s"}',
        "type",
        "must be one of add_to_cart, click, impression, purchase, view, got 'wink'",
    ),
    (
        '{"event_id": "e-7", "type": "purchase", "shopper": "s", "sku": "SKU-A", "ts": "%s", "price": -1}',
        "price",
        "must not be negative",
    ),
    (
        '{"event_id": "e-8", "type": "purchase", "shopper": "s", "sku": "SKU-A", "ts": "%s", "price": 1e12}',
        "price",
        "must be at most 1000000",
    ),
    (
        '{"event_id": "e-9", "type": "purchase", "shopper": "s", "sku": "SKU-A", "ts": "%s", "quantity": "2"}',
        "quantity",
        "must be a whole number, got a string",
    ),
    (
        '{"event_id": "e-10", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": "1999-12-31T23:59:59Z"}',
        "ts",
        "is before 2000-01-01",
    ),
    (
        '{"event_id": "e-11", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": 1732786200000}',
        "ts",
        "must be Unix time in seconds (not milliseconds)",
    ),
    (
        '{"event_id": "e-12", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": "2026-11-28T09:30:00"}',
        "ts",
        "needs a UTC offset, e.g. 2026-11-28T09:30:00Z",
    ),
    (
        '{"event_id": "e-13", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": -99999999999}',
        "ts",
        "is before 2000-01-01",
    ),
    (
        '{"event_id": "e-14", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": -62135596801}',
        "ts",
        "is before 2000-01-01",
    ),
    (
        '{"event_id": "e-15", "type": "view", "shopper": "s", "sku": "SKU-A", "ts": Infinity}',
        "ts",
        "must be a finite number, got Infinity",
    ),
    ('{"event_id": "e-16", "type": "view", "shopper": "s", "sku": "SKU-A"}', "ts", "is required"),
    (
        '{"event_id": "e-17", "type": "view", "shopper": "s", "sku": ["SKU-A"], "ts": "%s"}',
        "sku",
        "must be a string, got a list",
    ),
    (
        '{"event_id": "e-18", "type": "purchase", "shopper": "s", "sku": "SKU-A", "ts": "%s", "quantity": 0}',
        "quantity",
        "must be from 1 to 10000",
    ),
]


@pytest.mark.parametrize(("raw", "field", "reason"), BAD_EVENTS, ids=[b[0][14:19].strip('",') for b in BAD_EVENTS])
def test_a_bad_event_is_rejected_with_its_reason_and_kept_while_the_valid_one_is_stored(
    client, shop, product, raw, field, reason
):
    # Given a batch of one valid event and one bad one
    bad = raw % _now_iso(minutes=-1) if "%s" in raw else raw
    body = '{"events": [' + json.dumps(event_payload(100)) + ", " + bad + "]}"
    # When it is posted
    response = post_raw(client, body)
    # Then the valid event is stored, the bad one rejected with exactly this reason and kept
    assert response.status_code == 200
    result = response.json()
    assert result["accepted"] == 1
    assert [(r["index"], r["field"], r["reason"]) for r in result["rejected"]] == [(1, field, reason)]
    assert list(Event.objects.filter(shop=shop).values_list("event_id", flat=True)) == ["e-100"]
    kept = Rejection.objects.get(shop=shop)
    assert (kept.kind, kept.source, kept.reasons) == ("event", "api", [{"field": field, "reason": reason}])


def test_a_10_kb_event_id_is_rejected(client, shop, product):
    response = client.post(URL, {"events": [event_payload(1, event_id="x" * 10_240)]}, format="json")
    rejected = response.json()["rejected"]
    assert [(r["field"], r["reason"]) for r in rejected] == [("event_id", "must be at most 128 characters, got 10240")]
    assert rejected[0]["event_id"] == "x" * 200  # the echo is shortened
    assert Event.objects.count() == 0


def test_a_timestamp_more_than_an_hour_ahead_is_rejected_and_one_just_within_is_stored(client, shop, product):
    events = [event_payload(1, ts=_now_iso(minutes=61)), event_payload(2, ts=_now_iso(minutes=59))]
    response = client.post(URL, {"events": events}, format="json")
    assert [(r["event_id"], r["reason"]) for r in response.json()["rejected"]] == [
        ("e-1", "is more than an hour in the future")
    ]
    assert list(Event.objects.values_list("event_id", flat=True)) == ["e-2"]


def test_an_event_that_is_not_an_object_is_rejected(client, shop, product):
    response = client.post(URL, {"events": [event_payload(1), 7, None, "e"]}, format="json")
    assert response.json()["accepted"] == 1
    assert [(r["index"], r["event_id"], r["field"], r["reason"]) for r in response.json()["rejected"]] == [
        (1, "", "", "each event must be a JSON object, got a number"),
        (2, "", "", "each event must be a JSON object, got null"),
        (3, "", "", "each event must be a JSON object, got a string"),
    ]
    assert Rejection.objects.filter(shop=shop).count() == 3


def test_a_nul_and_a_lone_surrogate_in_a_repeated_key_are_echoed_as_escapes(client, shop, product):
    # Given an event whose repeated keys hold NUL and a lone surrogate
    body = '{"events": [{"a\\u0000": 1, "a\\u0000": 2, "b\\ud800": 1, "b\\ud800": 2}]}'
    # When it is posted
    response = post_raw(client, body)
    # Then the key names come back as visible escapes (valid JSON, storable in Postgres)
    assert response.status_code == 200
    assert [r["field"] for r in response.json()["rejected"]] == ["a\\u0000", "b\\ud800"]
    assert Rejection.objects.get(shop=shop).reasons == [
        {"field": "a\\u0000", "reason": "appears more than once in this object"},
        {"field": "b\\ud800", "reason": "appears more than once in this object"},
    ]


def test_an_unknown_sku_is_kept_without_a_product_and_flagged(client, shop, product):
    response = client.post(URL, {"events": [event_payload(1, sku="NOPE"), event_payload(2)]}, format="json")
    assert response.json()["accepted"] == 2
    assert response.json()["warnings"] == [
        {"index": 0, "event_id": "e-1", "field": "sku", "reason": "unknown product; the event is kept"}
    ]
    stored = dict(Event.objects.values_list("event_id", "product_id"))
    assert stored == {"e-1": None, "e-2": product.pk}


def test_a_script_tag_in_an_id_is_stored_as_text(client, shop, product):
    response = client.post(URL, {"events": [event_payload(1, session="<script>alert(1)</script>")]}, format="json")
    assert response.json()["accepted"] == 1
    assert Event.objects.get().session == "<script>alert(1)</script>"
