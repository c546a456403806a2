"""The demo storefront's pages through Django's test client, under the storefront's own
settings (URLs, middleware, CSP), without a browser."""

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.test import Client, override_settings

from catalog.models import Shop
from recsite.storefront import settings as storefront_settings
from recsite.storefront.config import (
    DEFAULT_API_ORIGIN,
    StorefrontNotConfigured,
    api_origin,
    load_config,
    origin_of,
)
from recsite.storefront.posters import poster_for
from tests.factories import CategoryFactory, ProductFactory, ShopFactory

API = "https://recs.example.com"
XSS_TITLE = "<img src=x onerror=window.__pwned=1>"


@pytest.fixture
def var_dir(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def storefront(var_dir: Path) -> Iterator[Client]:
    """A client of the storefront as recsite.storefront.settings configures it."""
    with override_settings(
        ROOT_URLCONF="recsite.storefront.urls",
        MIDDLEWARE=storefront_settings.MIDDLEWARE,
        CONTENT_SECURITY_POLICY={
            "DIRECTIVES": {
                **storefront_settings.CONTENT_SECURITY_POLICY["DIRECTIVES"],
                "script-src": ["'self'", API],
                "connect-src": [API],
            }
        },
        STOREFRONT_API_ORIGIN=API,
        STOREFRONT_REQUIRE_CONSENT=False,
        VAR_DIR=var_dir,
    ):
        yield Client()


@pytest.fixture
def demo(db: Any, var_dir: Path) -> Shop:
    shop = ShopFactory(slug="demo", name="Reel Video", currency="EUR")
    (var_dir / "demo-keys.json").write_text(
        json.dumps({"shop": "demo", "publishable_key": "pk_abc_def", "secret_key": "sk_x", "api_origin": API})
    )
    return shop


def text(response: Any) -> str:
    return response.content.decode()


# --- configuration --------------------------------------------------------------------------


def test_without_the_keys_file_every_page_says_how_to_set_up(db: Any, storefront: Client) -> None:
    response = storefront.get("/")
    assert response.status_code == 503
    assert "demo-keys.json does not exist yet" in text(response)
    assert "manage.py load_demo" in text(response)
    assert "make run" in text(response)


def test_a_keys_file_naming_a_missing_shop_says_so(db: Any, storefront: Client, var_dir: Path) -> None:
    (var_dir / "demo-keys.json").write_text(json.dumps({"shop": "demo", "publishable_key": "pk_abc_def"}))
    response = storefront.get("/product/SKU-1")
    assert response.status_code == 503
    assert "There is no shop &#x27;demo&#x27; in the database." in text(response)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "cannot be read as JSON"),
        ("[]", "must hold a JSON object"),
        ('{"publishable_key": "pk_a_b"}', 'has no "shop"'),
        ('{"shop": "demo", "publishable_key": "sk_a_b"}', "has no publishable key"),
    ],
)
def test_a_broken_keys_file_is_explained(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "demo-keys.json").write_text(content)
    with pytest.raises(StorefrontNotConfigured) as problem:
        load_config(tmp_path, API)
    assert reason in problem.value.reason


def test_the_api_origin_comes_from_the_environment_then_the_keys_file_then_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECSITE_API_ORIGIN", raising=False)
    assert api_origin(tmp_path) == DEFAULT_API_ORIGIN
    (tmp_path / "demo-keys.json").write_text(json.dumps({"api_origin": "http://10.0.0.5:8000/"}))
    assert api_origin(tmp_path) == "http://10.0.0.5:8000"
    monkeypatch.setenv("RECSITE_API_ORIGIN", "https://recs.example.com/some/path")
    assert api_origin(tmp_path) == "https://recs.example.com"


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "recs.example.com", "ftp://recs.example.com", ""])
def test_an_api_origin_must_be_http_or_https(bad: str) -> None:
    with pytest.raises(ValueError):
        origin_of(bad)


# --- pages ---------------------------------------------------------------------------------------


def test_every_page_embeds_the_widget_from_the_api_origin_under_the_strict_csp(storefront: Client, demo: Shop) -> None:
    ProductFactory(shop=demo, sku="SKU-1")
    for path in ("/", "/product/SKU-1", "/cart/", "/events/"):
        response = storefront.get(path)
        assert response.status_code == 200, path
        page = text(response)
        assert (
            f'<script src="{API}/static/recsite/widget.js" data-key="pk_abc_def" data-api="{API}" '
            'data-currency="EUR" data-locale="en" defer></script>'
        ) in page
        assert '<script src="/static/storefront/shop.js" defer></script>' in page
        assert "<script>" not in page and " style=" not in page  # nothing inline
        policy = dict(
            (part.split()[0], set(part.split()[1:])) for part in response["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == {"'self'", API}
        assert policy["connect-src"] == {API}
        assert policy["img-src"] == {"'self'", "https:"}
        assert policy["style-src"] == {"'self'"}
        assert policy["default-src"] == {"'none'"}


def test_the_home_page_has_a_list_placement_categories_and_new_products(storefront: Client, demo: Shop) -> None:
    comedy = CategoryFactory(shop=demo, name="Comedy", path="Comedy")
    # an http image would break the page's img-src: the storefront's own poster stands in
    ProductFactory(
        shop=demo,
        sku="SKU-1",
        title="Toy Story (1995)",
        category=comedy,
        price=Decimal("3.50"),
        image_url="http://shop.example/toy-story.jpg",
    )
    ProductFactory(shop=demo, sku="SKU-2", title="Gone", category=comedy, active=False)
    ProductFactory(sku="OTHER-1", title="Another shop's film")

    page = text(storefront.get("/"))

    assert 'data-recsite-placement="home" data-recsite-layout="carousel"' in page
    assert f'href="/category/{comedy.pk}/">Comedy <span class="muted">1</span>' in page
    assert "Toy Story (1995)" in page and "€3.50" in page and 'src="/img/SKU-1.svg"' in page
    assert "Gone" not in page
    assert "Another shop" not in page


def test_a_product_page_escapes_the_title_and_names_its_sku_for_the_list(storefront: Client, demo: Shop) -> None:
    ProductFactory(
        shop=demo, sku="SKU-X", title=XSS_TITLE, price=Decimal("9.00"), image_url="https://cdn.example/x.jpg"
    )

    response = storefront.get("/product/SKU-X")

    page = text(response)
    assert response.status_code == 200
    assert XSS_TITLE not in page
    assert "&lt;img src=x onerror=window.__pwned=1&gt;" in page
    assert 'data-recsite-placement="product" data-recsite-item="SKU-X"' in page
    assert 'data-add-to-cart data-sku="SKU-X"' in page and 'data-price="9.00"' in page
    assert 'src="https://cdn.example/x.jpg"' in page  # an https image of the product is used as it is


def test_unknown_inactive_and_other_shops_products_are_not_found(storefront: Client, demo: Shop) -> None:
    ProductFactory(shop=demo, sku="OFF", active=False)
    ProductFactory(sku="ELSEWHERE")
    for path in ("/product/NOPE", "/product/OFF", "/product/ELSEWHERE", "/img/ELSEWHERE.svg"):
        response = storefront.get(path)
        assert response.status_code == 404, path
        assert "We could not find that page" in text(response)


def test_a_category_page_lists_its_subtree_and_gives_the_list_its_first_products(
    storefront: Client, demo: Shop
) -> None:
    films = CategoryFactory(shop=demo, name="Films", path="Films")
    comedy = CategoryFactory(shop=demo, name="Comedy", path="Films > Comedy", parent=films)
    for n, category in enumerate([films, comedy, comedy, films]):
        ProductFactory(shop=demo, sku=f"F-{n}", title=f"Film {n}", category=category)
    ProductFactory(shop=demo, sku="ELSE", title="Filmless", category=CategoryFactory(shop=demo, path="Filmstrips"))
    elsewhere = CategoryFactory(name="Films", path="Films")

    page = text(storefront.get(f"/category/{films.pk}/"))

    assert [f"Film {n}" in page for n in range(4)] == [True] * 4
    assert "Filmless" not in page
    assert (
        'data-recsite-placement="category" data-recsite-items="[&quot;F-0&quot;, &quot;F-1&quot;, &quot;F-2&quot;]"'
        in page
    )
    assert storefront.get(f"/category/{elsewhere.pk}/").status_code == 404


def test_posters_are_escaped_deterministic_svg(storefront: Client, demo: Shop) -> None:
    ProductFactory(shop=demo, sku="SKU-X", title=XSS_TITLE)
    ProductFactory(shop=demo, sku="SKU-Y", title="Usual Suspects, The (1995)")

    first, again = storefront.get("/img/SKU-X.svg"), storefront.get("/img/SKU-X.svg")
    other = text(storefront.get("/img/SKU-Y.svg"))

    assert first["Content-Type"] == "image/svg+xml"
    assert first.content == again.content
    svg = first.content.decode()
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "<title>&lt;img src=x onerror=window.__pwned=1&gt;</title>" in svg
    assert "<img" not in svg
    assert ">The Usual<" in other and ">Suspects<" in other and ">1995<" in other


def test_a_poster_takes_the_year_from_the_attributes_or_the_title() -> None:
    assert poster_for("SKU-1", "The Usual Suspects", 1995).year == "1995"
    assert poster_for("SKU-1", "Usual Suspects, The (1995)").year == "1995"
    assert poster_for("SKU-1", "Usual Suspects, The (1995)").lines == ["The Usual", "Suspects"]
    assert poster_for("SKU-1", "Untitled", "<b>").year == ""  # only a whole number counts


def test_poster_colours_come_from_the_sku_and_long_titles_are_cut() -> None:
    long = poster_for("SKU-1", "A " * 60)
    assert len(long.lines) == 5 and long.lines[-1].endswith("…")
    assert poster_for("SKU-1", "x").background == poster_for("SKU-1", "y").background
    assert poster_for("SKU-1", "x").background != poster_for("SKU-2", "x").background


def test_with_consent_required_the_widget_and_a_banner_say_so(storefront: Client, demo: Shop) -> None:
    with override_settings(STOREFRONT_REQUIRE_CONSENT=True):
        page = text(storefront.get("/"))
    assert 'data-locale="en" data-require-consent="true" defer></script>' in page
    assert "data-consent-banner hidden" in page


def test_the_event_log_shows_what_recsite_stored_for_the_shop(storefront: Client, demo: Shop) -> None:
    from catalog.services import events_ingest

    ProductFactory(shop=demo, sku="SKU-1")
    events_ingest(
        shop=demo,
        records=[
            {
                "event_id": "e-1",
                "type": "click",
                "shopper": "s",
                "sku": "SKU-1",
                "ts": 1767225600,
                "request_id": "req-9",
            }
        ],
    )
    page = text(storefront.get("/events/"))
    assert '<td>click</td><td class="mono">SKU-1</td><td class="mono">req-9</td>' in page
