"""API keys (secret shown once, stored hashed; revoke with a confirm; allowed origins)
and the widget snippets per placement."""

import hashlib
import re
from typing import Any

from django.test import Client

from catalog.audit import Actor
from catalog.models import ApiKey, AuditEntry
from recsite.onboarding import shop_create
from tests.console.conftest import client_for, make_member


def test_creating_a_key_shows_the_secret_once_and_stores_only_its_hash(shop: Any, admin: Client) -> None:
    url = f"/console/{shop.slug}/integration/keys/"
    response = admin.post(
        url,
        {"name": "Storefront", "kind": "publishable", "allowed_origins": "https://Shop.example/\nhttps://shop.example"},
    )
    html = response.content.decode()
    raw = re.search(r'<code class="secret" id="minted-key">(pk_[^<]+)</code>', html).group(1)
    key = ApiKey.objects.get(shop=shop, name="Storefront")

    assert response.status_code == 200
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert key.allowed_origins == ["https://shop.example"]
    assert raw not in admin.get(url).content.decode()  # shown once
    assert (
        AuditEntry.objects.filter(shop=shop, action="create", object_type="api_key", object_id=str(key.pk)).count() == 1
    )


def test_key_form_errors_are_shown_and_nothing_is_created(shop: Any, admin: Client) -> None:
    before = ApiKey.objects.count()
    response = admin.post(
        f"/console/{shop.slug}/integration/keys/",
        {"kind": "publishable", "allowed_origins": "https://shop.example/path"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 400
    assert html.lstrip().startswith('<div id="keys"')
    assert "has more than an origin; drop the path, e.g. https://shop.example" in html.replace("&#x27;", "'")
    assert ApiKey.objects.count() == before


def test_revoke_asks_first_then_revokes_and_refreshes_the_list(shop: Any, admin: Client) -> None:
    key = ApiKey.objects.create(shop=shop, kind="secret", prefix="abc123", key_hash="0" * 64, name="Server")
    url = f"/console/{shop.slug}/integration/keys/{key.pk}/revoke/"

    dialog = admin.post(url, HTTP_HX_REQUEST="true")
    html = dialog.content.decode()
    assert 'role="alertdialog"' in html and "Revoke secret key abc123?" in html
    assert '<input type="hidden" name="confirmed" value="yes">' in html
    key.refresh_from_db()
    assert key.active is True

    done = admin.post(url, {"confirmed": "yes"}, HTTP_HX_REQUEST="true")
    html = done.content.decode()
    key.refresh_from_db()
    assert (key.active, key.revoked_at is not None) == (False, True)
    assert html.lstrip().startswith('<div id="keys"')
    assert "Key abc123 is revoked." in html and '<div id="modal" class="modal-root" hx-swap-oob="true"></div>' in html
    assert AuditEntry.objects.filter(shop=shop, action="revoke", object_id=str(key.pk)).count() == 1


def test_revoke_without_htmx_redirects_back_to_the_keys(shop: Any, admin: Client) -> None:
    key = ApiKey.objects.create(shop=shop, kind="secret", prefix="def456", key_hash="0" * 64)
    response = admin.post(f"/console/{shop.slug}/integration/keys/{key.pk}/revoke/", {"confirmed": "yes"})
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/integration/keys/")
    assert "Key def456 is revoked." in admin.get(response["Location"]).content.decode()


def test_allowed_origins_are_edited_inline(shop: Any, admin: Client) -> None:
    key = ApiKey.objects.create(shop=shop, kind="publishable", prefix="pub1", key_hash="0" * 64, allowed_origins=[])
    url = f"/console/{shop.slug}/integration/keys/{key.pk}/origins/"

    editor = admin.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert editor.lstrip().startswith("<form") and 'name="allowed_origins"' in editor

    saved = admin.post(url, {"allowed_origins": "https://a.example\nhttp://localhost:8001"}, HTTP_HX_REQUEST="true")
    key.refresh_from_db()
    assert key.allowed_origins == ["https://a.example", "http://localhost:8001"]
    assert '<span class="mono origin">http://localhost:8001</span>' in saved.content.decode()
    entry = AuditEntry.objects.get(shop=shop, object_type="api_key", action="update")
    assert (entry.before, entry.after) == (
        {"allowed_origins": []},
        {"allowed_origins": ["https://a.example", "http://localhost:8001"]},
    )


def test_widget_snippets_list_the_shops_placements(db: Any) -> None:
    created = shop_create(
        name="Snippets", slug="snippets", allowed_origins=["https://s.example"], actor=Actor.system("t")
    )
    viewer = client_for(make_member(created.shop, "v", "viewer"), verified=False)
    key = ApiKey.objects.get(shop=created.shop, kind="publishable")

    html = viewer.get("/console/snippets/integration/widget/").content.decode()

    assert (
        f'&lt;script src="http://testserver/static/recsite/widget.js" data-key="pk_{key.prefix}_…" '
        'data-api="http://testserver" defer&gt;&lt;/script&gt;' in html
    )
    placements = re.findall(r'&lt;div data-recsite-placement="([a-z-]+)"&gt;&lt;/div&gt;', html)
    assert placements == sorted(created.shop.placements.values_list("slug", flat=True))
    assert placements


def test_widget_page_without_a_publishable_key_says_what_to_do(shop: Any, admin: Client) -> None:
    ApiKey.objects.filter(shop=shop).delete()
    html = admin.get(f"/console/{shop.slug}/integration/widget/").content.decode()
    assert "No active publishable key" in html
    assert f'href="/console/{shop.slug}/integration/keys/"' in html
