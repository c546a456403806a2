"""Keys go in the Authorization header only; malformed keys are a 401, never a crash."""

import pytest

from catalog.models import Event
from tests.factories import ProductFactory, event_payload

URL = "/api/v1/events"


def test_a_key_in_the_query_string_does_not_authenticate(api, secret_key, shop):
    response = api(None).post(f"{URL}?key={secret_key}", {"events": [event_payload(1)]}, format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert not Event.objects.exists()


def test_a_secret_key_in_the_body_does_not_authenticate(api, secret_key, shop):
    response = api(None).post(URL, {"key": secret_key, "events": [event_payload(1)]}, format="json")
    assert response.status_code == 401
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer sk_\x00_abc",
        "Bearer sk_zz\u00e9_abc",
        "Bearer pk_123abc",
        "Bearer " + "sk_" + "a" * 300,
        "Basic dXNlcjpwYXNz",
        "Bearer ",
    ],
)
def test_malformed_keys_are_a_401(api, shop, header):
    response = api(None).post(URL, {"events": [event_payload(1)]}, format="json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_a_tampered_key_is_a_401(api, secret_key, shop):
    response = api(secret_key[:-1] + ("A" if secret_key[-1] != "A" else "B")).post(
        URL, {"events": [event_payload(1)]}, format="json"
    )
    assert response.status_code == 401


def test_a_publishable_key_in_the_body_of_a_beacon_works_only_from_its_origins(api, publishable_key, shop):
    ProductFactory(shop=shop, sku="SKU-A")
    import json

    body = json.dumps({"key": publishable_key, "events": [event_payload(1)]})
    allowed = api(None).generic("POST", URL, body, content_type="text/plain", HTTP_ORIGIN="https://shop.example")
    denied = api(None).generic("POST", URL, body, content_type="text/plain", HTTP_ORIGIN="https://evil.example")
    assert (allowed.status_code, denied.status_code) == (200, 403)
    assert Event.objects.count() == 1
