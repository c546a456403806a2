"""The API's responses and the console's middleware: a fixed Content-Security-Policy
that allows nothing (the API answers data, never a document), whatever the outcome; no
cookie set, and a console login's session cookie is not even read. The pages keep the
site's policy (tests/console/test_shell.py checks every console page, nonces included)."""

import pytest

from recsite.middleware import API_CONTENT_SECURITY_POLICY
from tests.factories import event_payload


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("post", "/api/v1/events", {"events": [event_payload(1)]}, 200),
        ("post", "/api/v1/events", {"events": "not a list"}, 400),
        ("get", "/api/v1/recommendations", None, 400),  # no placement
        ("get", "/api/v1/no-such-route", None, 404),
    ],
)
def test_every_api_response_carries_the_fixed_policy(api, secret_key, method, path, body, status):
    client = api(secret_key)
    response = client.post(path, body, format="json") if method == "post" else client.get(path)
    assert response.status_code == status
    assert response["Content-Security-Policy"] == API_CONTENT_SECURITY_POLICY
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy-Report-Only" not in response
    assert not response.cookies


def test_an_unauthenticated_api_request_gets_the_fixed_policy_too(api, db):
    response = api(None).get("/api/v1/recommendations?placement=home")
    assert response.status_code == 401
    assert response["Content-Security-Policy"] == API_CONTENT_SECURITY_POLICY


def test_pages_keep_the_site_policy(client, db):
    response = client.get("/docs/")
    assert response.status_code == 200
    directives = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"].startswith("'self'")
    assert directives["frame-ancestors"] == "'none'"


def test_a_console_session_does_not_reach_the_api(api, secret_key, shop, django_user_model):
    # Given a merchandiser logged in to the console in this browser
    user = django_user_model.objects.create_user("merch", password="a long enough password")
    client = api(secret_key)
    client.force_login(user)
    session_cookie = client.cookies["sessionid"].value
    # When the browser calls the API (with its key)
    response = client.get("/api/v1/recommendations?placement=no-such-placement")
    # Then the API answers by the key alone: no session read (no user on the request),
    # refreshed or set
    assert response.status_code == 404
    assert not response.cookies
    assert client.cookies["sessionid"].value == session_cookie
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "_messages")
