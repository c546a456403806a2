"""The demo storefront in headless Chromium: its own process and origin (as ``make run``
starts it), the widget from the API origin (the live server), a strict CSP, and the
lists the real GET /api/v1/recommendations serves: fallback lists of a shop without
models, and lists from models trained on its behaviour.
"""

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from campaigns.services import promotion_create, promotion_publish
from catalog.audit import Actor
from catalog.models import Event, Shop
from catalog.services import events_ingest
from recommender.models import TrainingRun
from recommender.serving.pipeline import FALLBACK_REASONS, PUBLIC_REASONS
from recommender.training import training_run_execute, training_run_request
from recsite.onboarding import shop_create
from tests.factories import CategoryFactory, ProductFactory
from tests.widget.conftest import ARTIFACTS, StorefrontServer, Tab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

XSS_TITLE = "<img src=x onerror=window.__pwned=1>"
FILMS = {
    "Comedy": ["Toy Story (1995)", "Get Shorty (1995)", "Birdcage, The (1996)", "Babe (1995)"],
    "Drama": ["Braveheart (1995)", "Apollo 13 (1995)", "Usual Suspects, The (1995)", XSS_TITLE],
}


@dataclass
class DemoShop:
    shop: Shop
    publishable_key: str
    skus: list[str]
    titles: dict[str, str]  # sku -> title
    xss_sku: str
    storefront: StorefrontServer


@pytest.fixture
def demo_shop(storefront_server: StorefrontServer, live_server: Any) -> DemoShop:
    """The demo shop as load_demo leaves it, in small: placements, two categories of films
    (one titled with markup), some behaviour, product links and posters on the storefront,
    and the keys file the storefront reads."""
    created = shop_create(
        name="Reel Video",
        slug="demo",
        currency="EUR",
        allowed_origins=[storefront_server.url],
        actor=Actor.system("tests"),
    )
    shop = created.shop
    titles: dict[str, str] = {}
    number = 0
    for category_name, films in FILMS.items():
        category = CategoryFactory(shop=shop, name=category_name, path=category_name)
        for title in films:
            number += 1
            sku = f"ML-{number}"
            ProductFactory(
                shop=shop,
                sku=sku,
                title=title,
                category=category,
                price=Decimal("4.99") + number,
                url=f"{storefront_server.url}/product/{sku}",
                image_url=f"{storefront_server.url}/img/{sku}.svg",
            )
            titles[sku] = title
    skus = list(titles)
    now = timezone.now().isoformat()
    behaviour = [
        {
            "event_id": f"seed-{n}",
            "type": kind,
            "shopper": f"seed-shopper-{n % 5}",
            "sku": skus[n % len(skus)],
            "ts": now,
        }
        for n, kind in enumerate(["view", "purchase", "view", "add_to_cart"] * 10)
    ]
    assert events_ingest(shop=shop, records=behaviour).accepted == len(behaviour)
    storefront_server.write_keys(shop="demo", publishable_key=created.publishable_key, api_origin=live_server.url)
    xss_sku = next(sku for sku, title in titles.items() if title == XSS_TITLE)
    return DemoShop(shop, created.publishable_key, skus, titles, xss_sku, storefront_server)


def shopper_events(shop: Shop) -> list[Event]:
    """Events the browser sent (not the seeded behaviour)."""
    return list(Event.objects.filter(shop=shop).exclude(event_id__startswith="seed-").order_by("id"))


def page_events(shop: Shop) -> list[Event]:
    """What the storefront's own pages sent (views, carts, orders), without the widget's
    impressions of the lists on them (those come when a list was on screen for a second)."""
    return [event for event in shopper_events(shop) if event.type != "impression"]


def csp_directives(header: str) -> dict[str, set[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = set(values)
    return directives


def open_page(tab: Tab, url: str) -> Any:
    response = tab.page.goto(url)
    assert response is not None and response.status == 200, url
    tab.page.wait_for_function("window.recsite && window.recsite.version === '1'")
    return response


def list_state(tab: Tab, selector: str) -> str:
    """Wait until the widget finished the list (ready, empty or error), and say which."""
    tab.page.wait_for_selector(f"{selector}[data-recsite-state]:not([data-recsite-state='loading'])", state="attached")
    return tab.page.get_attribute(selector, "data-recsite-state") or ""


def drawn_items(tab: Tab, selector: str) -> list[dict[str, Any]]:
    return tab.page.evaluate(
        """(selector) => [...document.querySelector(selector).shadowRoot.querySelectorAll('li')].map(li => ({
            title: li.querySelector('.title').textContent,
            href: li.querySelector('a') && li.querySelector('a').href,
        }))""",
        selector,
    )


# --- runs now: pages, events, CSP, markup in titles ---------------------------------------------


def test_the_storefront_pages_work_with_the_widget_under_the_strict_csp(tab: Tab, demo_shop: DemoShop) -> None:
    shop, storefront = demo_shop.shop, demo_shop.storefront
    page = tab.page

    # Home: the page's policy is the strict host policy, and the widget loads from the API origin
    response = open_page(tab, storefront.url + "/")
    policy = csp_directives(response.headers["content-security-policy"])
    api_origin = json.loads((storefront.var_dir / "demo-keys.json").read_text())["api_origin"]
    assert policy["script-src"] == {"'self'", api_origin}
    assert policy["connect-src"] == {api_origin}
    assert policy["img-src"] == {"'self'", "https:"}
    assert policy["style-src"] == {"'self'"}
    assert policy["default-src"] == {"'none'"}
    assert not any("unsafe" in value for values in policy.values() for value in values)
    assert page.locator(f"script[src='{api_origin}/static/recsite/widget.js']").get_attribute("data-key") == (
        demo_shop.publishable_key
    )
    assert tab.csp_violations() == []
    tab.screenshot("storefront-home")

    # A category, then a product from it: the product page sends a view
    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Comedy").click()
    page.wait_for_function("window.recsite")
    assert page.locator("h1").text_content() == "Comedy"
    assert page.locator(".product-card__title").all_text_contents() == sorted(FILMS["Comedy"])
    assert tab.csp_violations() == []
    tab.screenshot("storefront-category")
    page.get_by_role("link", name="Babe (1995)").click()
    page.wait_for_function("window.recsite")
    babe = next(sku for sku, title in demo_shop.titles.items() if title == "Babe (1995)")
    views = tab.eventually(lambda: page_events(shop))
    assert [(e.type, e.sku) for e in views] == [("view", babe)]

    # Add to cart: an add_to_cart event with the price, and the cart badge counts it
    page.get_by_role("button", name="Add to cart").click()
    assert page.locator("[data-cart-count]").text_content() == "1"
    page.evaluate("recsite.flush()")
    tab.eventually(lambda: len(page_events(shop)) >= 2)
    added = page_events(shop)[1]
    assert (added.type, added.sku, added.quantity, added.price) == ("add_to_cart", babe, 1, Decimal("8.99"))
    assert tab.csp_violations() == []
    tab.screenshot("storefront-product")

    # The cart, and the order: one purchase event per line
    page.locator(".cart-link").click()
    page.wait_for_function("window.recsite")
    assert page.locator("[data-cart-rows] tr td:first-child").all_text_contents() == ["Babe (1995)"]
    tab.screenshot("storefront-cart")
    page.get_by_role("button", name="Place order").click()
    tab.eventually(lambda: len(page_events(shop)) >= 3)
    bought = page_events(shop)[2]
    assert (bought.type, bought.sku, bought.quantity, bought.price) == ("purchase", babe, 1, Decimal("8.99"))
    assert bought.event_id.startswith("order-")
    assert "Thank you" in page.locator("[data-order-notice]").text_content()
    assert tab.csp_violations() == []

    # The event log: what this browser sent, and what recsite stored
    page.get_by_role("link", name="Watch the events").click()
    page.wait_for_function("window.recsite")
    sent_log = page.locator("[data-log-list]").text_content()
    assert f"view {babe}" in sent_log and f"add_to_cart {babe}" in sent_log and f"purchase {babe}" in sent_log
    stored_types = page.locator("[data-stored-events] tbody tr td:nth-child(2)").all_text_contents()
    shown = [kind for kind in stored_types if kind != "impression"]
    assert shown[:3] == ["purchase", "add_to_cart", "view"]  # newest first, then the seeded ones
    tab.screenshot("storefront-events")

    assert len(page_events(shop)) == 3
    assert tab.csp_console() == []
    assert tab.errors == []


def test_a_product_titled_with_markup_shows_as_text_on_every_storefront_page(tab: Tab, demo_shop: DemoShop) -> None:
    storefront, sku = demo_shop.storefront, demo_shop.xss_sku
    page = tab.page

    open_page(tab, f"{storefront.url}/product/{sku}")
    assert page.locator("h1").text_content() == XSS_TITLE
    assert page.locator("img[src='x']").count() == 0
    page.get_by_role("link", name="Drama").first.click()
    page.wait_for_function("window.recsite")
    assert XSS_TITLE in page.locator(".product-card__title").all_text_contents()
    tab.wait(0.5)
    assert page.evaluate("window.__pwned") is None

    poster = page.request.get(f"{storefront.url}/img/{sku}.svg")
    assert poster.headers["content-type"] == "image/svg+xml"
    assert "&lt;img src=x onerror=window.__pwned=1&gt;" in poster.text()
    assert "<img" not in poster.text()
    assert tab.csp_console() == []


# --- lists from the recommendations endpoint ---------------------------------------------------


def test_lists_render_real_items_and_the_time_to_the_first_list_is_recorded(tab: Tab, demo_shop: DemoShop) -> None:
    tab.page.add_init_script(
        "window.__rendered = []; addEventListener('recsite:rendered', (e) => window.__rendered.push("
        "{placement: e.detail.placement, at: e.detail.at, ms: e.detail.ms, items: e.detail.items}));"
    )
    timings = {}
    pages = {
        "home": ("/", ".recs[data-recsite-placement='home']"),
        "product": (f"/product/{demo_shop.skus[0]}", ".recs[data-recsite-placement='product']"),
        "category": ("/category/{}/", ".recs[data-recsite-placement='category']"),
    }
    category_id = demo_shop.shop.categories.get(name="Comedy").pk
    for name, (path, selector) in pages.items():
        open_page(tab, demo_shop.storefront.url + path.format(category_id))
        assert list_state(tab, selector) == "ready", name
        items = drawn_items(tab, selector)
        # real items of the shop, linking to its product pages
        assert items and all(item["title"] in demo_shop.titles.values() for item in items), items
        assert all(item["href"].startswith(f"{demo_shop.storefront.url}/product/ML-") for item in items)
        if name == "product":
            assert demo_shop.titles[demo_shop.skus[0]] not in [item["title"] for item in items]
        rendered = tab.page.evaluate("window.__rendered")
        timings[name] = {"load_to_render_ms": round(rendered[0]["at"]), "request_ms": round(rendered[0]["ms"])}
        assert tab.csp_violations() == []
        tab.screenshot(f"storefront-{name}-with-list")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "load-to-render.json").write_text(json.dumps(timings, indent=2))
    print("time from navigation start to the rendered list:", timings)


RENDERED_RECORDER = (
    "window.__rendered = []; addEventListener('recsite:rendered', (e) => window.__rendered.push("
    "{placement: e.detail.placement, request_id: e.detail.request_id, response: e.detail.response}));"
)


def rendered_reasons(tab: Tab, placement: str) -> list[list[str]]:
    """The public reasons of each item of the last list drawn for ``placement``."""
    lists = [r for r in tab.page.evaluate("window.__rendered") if r["placement"] == placement]
    return [item["reasons"] for item in lists[-1]["response"]["items"]]


def test_lists_come_from_fallbacks_before_training_and_from_the_trained_models_after(
    tab: Tab, demo_shop: DemoShop
) -> None:
    product_page = f"{demo_shop.storefront.url}/product/{demo_shop.skus[0]}"
    selector = ".recs[data-recsite-placement='product']"
    tab.page.add_init_script(RENDERED_RECORDER)

    # Given a shop without models: the list is filled from the fallbacks, never empty
    open_page(tab, product_page)
    assert list_state(tab, selector) == "ready"
    before = rendered_reasons(tab, "product")
    assert len(before) == len(demo_shop.skus) - 1  # every other product; the page's own is left out
    assert {reason for reasons in before for reason in reasons} <= set(FALLBACK_REASONS.values())

    # When the quick kinds train on its behaviour (the training service, as a worker runs it)
    for kind in ("trending", "also_viewed", "bought_together", "item_knn", "als"):
        (requested,) = training_run_request(
            shop=demo_shop.shop, kinds=[kind], actor=Actor.system("tests"), enqueue=False
        )
        run = training_run_execute(run_id=requested.run.pk)
        assert run is not None and run.status == TrainingRun.Status.SUCCEEDED, (kind, run and run.error)

    # Then the product page's list leads with what the models propose (the live server
    # loads the new versions without a restart), under the same strict CSP
    def trained_list() -> list[list[str]]:
        open_page(tab, product_page)
        assert list_state(tab, selector) == "ready"
        reasons = rendered_reasons(tab, "product")
        return reasons if set(reasons[0]) <= set(PUBLIC_REASONS.values()) else []

    after = tab.eventually(trained_list, timeout=15)
    assert after, rendered_reasons(tab, "product")
    assert len(after) == len(demo_shop.skus) - 1
    model_reasons = {PUBLIC_REASONS[name] for name in ("similar", "also_viewed", "bought_together", "personal")}
    assert set(after[0]) & model_reasons, after[0]
    assert tab.csp_violations() == []
    tab.screenshot("storefront-product-trained")


def test_a_click_on_a_recommendation_stores_the_lists_request_id(tab: Tab, demo_shop: DemoShop) -> None:
    storefront, shop = demo_shop.storefront, demo_shop.shop
    open_page(tab, f"{storefront.url}/product/{demo_shop.skus[0]}")
    selector = ".recs[data-recsite-placement='product']"
    assert list_state(tab, selector) == "ready"
    request_id = tab.page.get_attribute(selector, "data-recsite-request-id")
    assert request_id
    first = tab.page.locator(f"{selector} a").first
    target = first.get_attribute("href")

    first.click()
    tab.page.wait_for_url(target)

    clicked_sku = target.rsplit("/", 1)[1]
    clicks = tab.eventually(lambda: [e for e in shopper_events(shop) if e.type == "click"])
    assert [(e.sku, e.request_id) for e in clicks] == [(clicked_sku, request_id)]


def test_impressions_arrive_once_per_item_of_a_list(tab: Tab, demo_shop: DemoShop) -> None:
    storefront, shop = demo_shop.storefront, demo_shop.shop
    tab.page.set_viewport_size({"width": 1280, "height": 2400})  # the whole list on screen
    open_page(tab, f"{storefront.url}/product/{demo_shop.skus[0]}")
    selector = ".recs[data-recsite-placement='product']"
    assert list_state(tab, selector) == "ready"
    request_id = tab.page.get_attribute(selector, "data-recsite-request-id")
    shown = tab.page.evaluate(
        "(s) => [...document.querySelector(s).shadowRoot.querySelectorAll('a')].map(a => a.href.split('/').pop())",
        selector,
    )

    tab.wait(1.6)
    tab.page.evaluate("window.scrollTo(0, 400)")
    tab.wait(1.6)
    tab.page.evaluate("recsite.flush()")

    def impressions() -> list[Event]:
        return [e for e in shopper_events(shop) if e.type == "impression"]

    tab.eventually(lambda: len(impressions()) >= len(shown))
    tab.wait(0.5)
    assert sorted((e.sku, e.request_id) for e in impressions()) == sorted((sku, request_id) for sku in shown)


def test_a_product_titled_with_markup_is_text_in_a_recommended_list(tab: Tab, demo_shop: DemoShop) -> None:
    open_page(tab, demo_shop.storefront.url + "/")
    selector = ".recs[data-recsite-placement='home']"  # a carousel of 12: the whole small catalog
    assert list_state(tab, selector) == "ready"
    titles = [item["title"] for item in drawn_items(tab, selector)]
    assert XSS_TITLE in titles
    assert (
        tab.page.evaluate(
            "(s) => document.querySelector(s).shadowRoot.querySelectorAll('img[src=\"x\"]').length", selector
        )
        == 0
    )
    tab.wait(0.5)
    assert tab.page.evaluate("window.__pwned") is None
    assert tab.csp_violations() == []


def test_a_page_on_an_origin_the_key_does_not_allow_gets_no_recommendations(tab: Tab, demo_shop: DemoShop) -> None:
    storefront = demo_shop.storefront
    selector = ".recs[data-recsite-placement='home']"

    # The storefront's own origin gets its list ...
    open_page(tab, storefront.url + "/")
    assert list_state(tab, selector) == "ready"

    # ... the same page served under another origin gets none, and its events are refused
    open_page(tab, storefront.other_origin_url + f"/product/{demo_shop.skus[1]}")
    other = ".recs[data-recsite-placement='product']"
    assert list_state(tab, other) == "error"
    assert tab.page.evaluate("(s) => document.querySelector(s).shadowRoot", other) is None
    tab.page.evaluate("recsite.flush()")
    tab.wait(1.5)
    assert [e for e in shopper_events(demo_shop.shop) if e.sku == demo_shop.skus[1]] == []


def test_a_published_pin_promotion_leads_the_list(tab: Tab, demo_shop: DemoShop) -> None:
    selector = ".recs[data-recsite-placement='home']"
    pinned = demo_shop.skus[-2]
    promotion = promotion_create(
        shop=demo_shop.shop,
        actor=Actor.system("tests"),
        fields={"name": "Pin a film", "target": {"skus": [pinned]}, "action": "pin", "slot": 1},
    )
    promotion_publish(promotion=promotion, actor=Actor.system("tests"))

    open_page(tab, demo_shop.storefront.url + "/")
    assert list_state(tab, selector) == "ready"
    assert drawn_items(tab, selector)[0]["href"] == f"{demo_shop.storefront.url}/product/{pinned}"
