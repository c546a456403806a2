"""Catalog pages: search and filters (full page and htmx partial), pagination, the
product page with its cold-start and embedding state; a fixed number of queries."""

import re
from typing import Any

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import ProductEmbedding
from tests.factories import CategoryFactory, EventFactory, ProductFactory


def titles(html: str) -> list[str]:
    return re.findall(r'class="table__primary" href="[^"]+">([^<]+)</a>', html)


def embed(product: Any) -> None:
    ProductEmbedding.objects.create(product=product, shop=product.shop, model_name="m", text_hash="h", vector=b"")


def test_search_matches_sku_or_title_and_htmx_gets_only_the_results(shop: Any, viewer: Client) -> None:
    ProductFactory(shop=shop, sku="LAMP-1", title="Oak lamp")
    ProductFactory(shop=shop, sku="MUG-1", title="Stoneware mug")
    ProductFactory(shop=shop, sku="OAK-9", title="Side table")

    full = viewer.get(f"/console/{shop.slug}/catalog/", {"q": "oak"})
    partial = viewer.get(f"/console/{shop.slug}/catalog/", {"q": "oak"}, HTTP_HX_REQUEST="true")

    assert sorted(titles(full.content.decode())) == ["Oak lamp", "Side table"]
    assert "<html" in full.content.decode()
    html = partial.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html and "sidebar" not in html
    assert sorted(titles(html)) == ["Oak lamp", "Side table"]


def test_filters_by_category_with_subcategories_status_embedding_and_cold_start(shop: Any, viewer: Client) -> None:
    home = CategoryFactory(shop=shop, name="Home", path="Home")
    kitchen = CategoryFactory(shop=shop, name="Kitchen", path="Home > Kitchen", parent=home)
    garden = CategoryFactory(shop=shop, name="Garden", path="Garden")
    pan = ProductFactory(shop=shop, title="Pan", category=kitchen)
    ProductFactory(shop=shop, title="Rug", category=home, active=False)
    hose = ProductFactory(shop=shop, title="Hose", category=garden, in_stock=False)
    embed(pan)
    EventFactory(shop=shop, product=hose)
    url = f"/console/{shop.slug}/catalog/"

    def listed(**params: str) -> list[str]:
        return sorted(titles(viewer.get(url, params, HTTP_HX_REQUEST="true").content.decode()))

    assert listed(category="Home") == ["Pan", "Rug"]
    assert listed(status="inactive") == ["Rug"]
    assert listed(status="out_of_stock") == ["Hose"]
    assert listed(embedding="ready") == ["Pan"]
    assert listed(embedding="pending") == ["Hose", "Rug"]
    assert listed(cold_start="on") == ["Pan", "Rug"]


def test_empty_catalog_says_what_to_do_and_empty_filter_offers_to_clear(shop: Any, viewer: Client) -> None:
    empty = viewer.get(f"/console/{shop.slug}/catalog/").content.decode()
    assert "No products yet" in empty and f'href="/console/{shop.slug}/data/uploads/"' in empty
    ProductFactory(shop=shop, title="Lamp")
    none = viewer.get(f"/console/{shop.slug}/catalog/", {"q": "zzz"}, HTTP_HX_REQUEST="true").content.decode()
    assert "No product matches these filters" in none


def test_pagination_keeps_the_filters_and_pages_by_fifty(shop: Any, viewer: Client) -> None:
    for n in range(55):
        ProductFactory(shop=shop, title=f"Lamp {n}")
    ProductFactory(shop=shop, title="Mug")

    first = viewer.get(f"/console/{shop.slug}/catalog/", {"q": "lamp"}, HTTP_HX_REQUEST="true").content.decode()
    second = viewer.get(
        f"/console/{shop.slug}/catalog/", {"q": "lamp", "page": "2"}, HTTP_HX_REQUEST="true"
    ).content.decode()

    assert len(titles(first)) == 50 and len(titles(second)) == 5
    assert "1\u201350 of 55" in first  # en dash
    assert 'href="?q=lamp&amp;page=2"' in first and 'hx-get="?q=lamp&amp;page=2"' in first


def test_product_list_costs_the_same_queries_for_3_or_40_products(shop: Any, viewer: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(f"/console/{shop.slug}/catalog/").status_code == 200
        return len(captured)

    for _ in range(3):
        EventFactory(shop=shop, product=ProductFactory(shop=shop, category=CategoryFactory(shop=shop)))
    few = queries()
    for _ in range(37):
        embed(ProductFactory(shop=shop, category=CategoryFactory(shop=shop)))
    assert queries() == few


def test_product_page_shows_cold_start_and_pending_embedding(shop: Any, viewer: Client) -> None:
    product = ProductFactory(shop=shop, sku="A/B 1", title="Oak lamp", tags=["new"], attributes={"colour": "oak"})
    html = viewer.get(f"/console/{shop.slug}/catalog/products/A/B%201").content.decode()
    assert "Oak lamp" in html
    assert "Cold start: no events yet" in html
    assert "Text embedding pending" in html
    assert 'hx-trigger="load"' in html
    assert "<strong>0 events</strong>" in html
    assert "colour" in html and product.sku in html


def test_product_page_with_events_and_embedding(shop: Any, viewer: Client) -> None:
    product = ProductFactory(shop=shop, sku="LAMP")
    embed(product)
    EventFactory(shop=shop, product=product, type="view")
    EventFactory(shop=shop, product=product, type="view")
    EventFactory(shop=shop, product=product, type="purchase")
    html = viewer.get(f"/console/{shop.slug}/catalog/products/LAMP").content.decode()
    assert "Cold start" not in html
    assert "Text embedding ready" in html
    assert "<strong>3 events</strong>" in html
    assert re.findall(r"<dt>(\w+)</dt><dd>(\d+)</dd>", html) == [("purchase", "1"), ("view", "2")]
    assert html.count('<span class="badge badge--neutral">view</span>') == 2


def test_product_of_another_shop_is_not_found(shop: Any, other_shop: Any, viewer: Client) -> None:
    ProductFactory(shop=other_shop, sku="THEIRS")
    assert viewer.get(f"/console/{shop.slug}/catalog/products/THEIRS").status_code == 404
