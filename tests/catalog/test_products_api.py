"""PUT /api/v1/products (bulk upsert, partial success) and DELETE /api/v1/products/{sku}."""

import json
from decimal import Decimal

import pytest

from catalog.models import Category, Product, Rejection, Shop
from tests.factories import ProductFactory, product_payload

URL = "/api/v1/products"


@pytest.fixture
def client(api, secret_key):
    return api(secret_key)


def test_new_products_are_created_with_their_fields(client, shop):
    # Given two new products, one with every field
    full = product_payload(
        "SKU-1",
        description="Sharp.",
        brand="Acme",
        url="https://shop.example/p/1",
        image_url="https://shop.example/i/1.jpg",
        tags=["steel", "kitchen", "steel"],
        attributes={"colour": "red", "size": 3, "sizes": [1, 2]},
        in_stock=False,
        active=True,
    )
    # When they are upserted
    response = client.put(URL, {"products": [full, product_payload("SKU-2", category=None)]}, format="json")
    # Then both exist with exactly what was sent
    assert response.status_code == 200
    assert response.json() == {"created": 2, "updated": 0, "unchanged": 0, "rejected": []}
    product = Product.objects.get(shop=shop, sku="SKU-1")
    assert (product.title, product.price, product.brand, product.in_stock) == (
        "Product SKU-1",
        Decimal("12.50"),
        "Acme",
        False,
    )
    assert (product.tags, product.attributes) == (["steel", "kitchen"], {"colour": "red", "size": 3, "sizes": [1, 2]})
    assert product.category.path == "Home > Kitchen"
    assert product.category.parent.path == "Home"
    assert Product.objects.get(shop=shop, sku="SKU-2").category is None


def test_an_upsert_changes_only_the_fields_sent(client, shop):
    # Given a product
    ProductFactory(shop=shop, sku="SKU-1", title="Old", price=Decimal("5.00"), brand="Acme")
    # When only its price is sent, then the same again
    first = client.put(URL, {"products": [{"sku": "SKU-1", "price": 7}]}, format="json")
    again = client.put(URL, {"products": [{"sku": "SKU-1", "price": "7.00"}]}, format="json")
    # Then the price changed, nothing else did, and the repeat changes nothing
    assert first.json() == {"created": 0, "updated": 1, "unchanged": 0, "rejected": []}
    assert again.json() == {"created": 0, "updated": 0, "unchanged": 1, "rejected": []}
    product = Product.objects.get(shop=shop, sku="SKU-1")
    assert (product.title, product.price, product.brand) == ("Old", Decimal("7.00"), "Acme")


def test_partial_success_stores_the_valid_products_and_reports_the_others(client, shop):
    # Given valid products mixed with bad ones
    products = [
        product_payload("SKU-1"),
        {"sku": "SKU-2"},  # new, without a title
        product_payload("SKU-3", price=-2),
        product_payload("SKU-1", title="Twice"),
        product_payload("SKU-4", colour="red"),
        product_payload("SKU-5", price="NaN"),
        "not an object",
        product_payload("SKU-6", url="javascript:alert(1)"),
        product_payload("SKU-7"),
    ]
    # When they are upserted
    response = client.put(URL, {"products": products}, format="json")
    # Then the valid ones are stored and each bad one is reported with its reason
    body = response.json()
    assert (response.status_code, body["created"]) == (200, 2)
    assert [(r["index"], r["sku"], r["field"], r["reason"]) for r in body["rejected"]] == [
        (1, "SKU-2", "title", "is required for a new product"),
        (2, "SKU-3", "price", "must not be negative"),
        (3, "SKU-1", "sku", "appears more than once in this request"),
        (
            4,
            "SKU-4",
            "colour",
            "is not a product field; known fields: sku, title, description, category, brand, price, url, "
            "image_url, tags, attributes, in_stock, active",
        ),
        (5, "SKU-5", "price", "must be a finite number"),
        (6, "", "", "each product must be a JSON object, got a string"),
        (7, "SKU-6", "url", "must be an http:// or https:// URL"),
    ]
    assert sorted(Product.objects.filter(shop=shop).values_list("sku", flat=True)) == ["SKU-1", "SKU-7"]
    assert Rejection.objects.filter(shop=shop, kind="product").count() == 7


def test_a_script_tag_in_a_title_is_stored_as_text(client, shop):
    title = '<script>alert("x")</script> Knife'
    client.put(URL, {"products": [product_payload("SKU-1", title=title)]}, format="json")
    assert Product.objects.get(shop=shop, sku="SKU-1").title == title


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("price", 1e9, "must be at most 1000000"),
        ("price", "12,50", "must be a number such as 12.99"),
        ("price", True, "must be a number, got a boolean"),
        ("title", "x" * 501, "must be at most 500 characters, got 501"),
        ("title", "a\u0000b", "must not contain control characters, NUL or lone surrogates"),
        ("tags", "a,b", "must be a list of strings, got a string"),
        ("in_stock", "yes", "must be true or false, got a string"),
        ("category", ["A"] * 11, "must have at most 10 levels"),
        ("category", ["a" * 200] * 5 + ["b"], "must be at most 1000 characters written as 'A > B > C'"),
        ("category", ["Home > Kitchen"], "levels must not contain '>'"),
        ("attributes", {"w": float("inf")}, "values must be finite numbers"),
        ("attributes", {"n": 2**60}, "numbers must be at most 2^53"),
    ],
)
def test_field_rules(client, shop, field, value, reason):
    response = client.generic(
        "PUT",
        URL,
        json.dumps({"products": [product_payload("SKU-1", **{field: value})]}, allow_nan=True),
        content_type="application/json",
    )
    assert [(r["field"], r["reason"]) for r in response.json()["rejected"]] == [(field, reason)]
    assert not Product.objects.filter(shop=shop).exists()


def test_repeated_attribute_keys_with_nul_are_named_as_escapes(client, shop):
    body = '{"products": [{"sku": "SKU-1", "title": "T", "attributes": {"k\\u0000": 1, "k\\u0000": 2}}]}'
    response = client.generic("PUT", URL, body, content_type="application/json")
    assert [(r["field"], r["reason"]) for r in response.json()["rejected"]] == [
        ("attributes", "has repeated keys: k\\u0000")
    ]


def test_products_nested_100000_deep_are_a_400_not_a_crash(client, shop):
    body = b'{"products": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.generic("PUT", URL, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "too_deeply_nested"


def test_more_than_500_products_is_a_400(client, shop):
    response = client.put(URL, {"products": [product_payload(f"S-{n}") for n in range(501)]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "too_many_records",
        "message": "At most 500 products per request, got 501; split the batch.",
        "details": {},
    }


def test_a_product_change_moves_the_catalog_version(client, shop):
    client.put(URL, {"products": [product_payload("SKU-1")]}, format="json")
    client.put(URL, {"products": [product_payload("SKU-1")]}, format="json")  # unchanged
    assert Shop.objects.get(pk=shop.pk).catalog_version == 1


def test_a_publishable_key_cannot_write_products(api, publishable_key, shop):
    response = api(publishable_key).put(URL, {"products": [product_payload()]}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "secret_key_required"
    assert not Product.objects.exists()


# --- DELETE /api/v1/products/{sku} --------------------------------------------------------


def test_delete_deactivates_the_product_and_keeps_it(client, shop):
    # Given an active product with a SKU that needs quoting in a URL
    ProductFactory(shop=shop, sku="A/B 1")
    # When it is deleted
    response = client.delete("/api/v1/products/A%2FB%201")
    # Then it is inactive but still there
    assert response.status_code == 200
    assert response.json() == {"sku": "A/B 1", "active": False}
    product = Product.objects.get(shop=shop, sku="A/B 1")
    assert product.active is False
    assert Shop.objects.get(pk=shop.pk).catalog_version == 1


def test_delete_of_an_unknown_sku_is_a_404(client, shop):
    response = client.delete("/api/v1/products/NOPE")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "No product with SKU 'NOPE'.", "details": {}}


@pytest.mark.parametrize("path", ["/api/v1/products/A%00B", "/api/v1/products/" + "x" * 10_240])
def test_delete_of_a_sku_no_product_can_have_is_a_404(client, shop, path):
    response = client.delete(path)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "No product with this SKU."


def test_a_product_can_be_brought_back(client, shop):
    ProductFactory(shop=shop, sku="SKU-1", active=False)
    response = client.put(URL, {"products": [{"sku": "SKU-1", "active": True}]}, format="json")
    assert response.json()["updated"] == 1
    assert Product.objects.get(shop=shop, sku="SKU-1").active is True


def test_categories_are_created_once(client, shop):
    client.put(
        URL, {"products": [product_payload("S-1"), product_payload("S-2", category="Home > Bath")]}, format="json"
    )
    assert sorted(Category.objects.filter(shop=shop).values_list("path", flat=True)) == [
        "Home",
        "Home > Bath",
        "Home > Kitchen",
    ]


def test_a_script_title_is_escaped_where_the_console_shows_it(client, shop, settings):
    # Given a product whose title holds markup, stored through the API as it was sent
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from catalog.models import Membership

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    title = "<script>alert('x')</script> Knife"
    client.put(URL, {"products": [product_payload("SKU-1", title=title)]}, format="json")
    user = get_user_model().objects.create_user(username="m", password="a long test password")
    Membership.objects.create(user=user, shop=shop, role="viewer")
    browser = Client()
    browser.force_login(user)
    session = browser.session
    session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.create(user=user, name="t", confirmed=True).persistent_id
    session.save()
    # When a merchandiser opens its page in the console
    page = browser.get(f"/console/{shop.slug}/catalog/products/SKU-1")
    # Then the title is shown as text, never as markup
    html = page.content.decode()
    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Knife" in html
    assert "<script>alert(" not in html
