"""The widget in headless Chromium, on pretend shop pages of another origin, against the
real events endpoint of the live server.

Lists here are drawn with ``recsite.renderData`` (a response the shop fetched itself),
so these tests need no recommendations endpoint; the storefront tests cover the lists
the widget fetches.
"""

import json
from html import escape
from typing import Any

import pytest

from catalog.models import Event, Shop
from catalog.selectors import shopper_by_external_id
from tests.factories import ShopFactory, make_key
from tests.widget.conftest import HostPages, Tab, strict_csp

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]

HOST_TAGS = {"SECTION", "UL", "LI", "A", "DIV", "IMG", "SPAN"}  # all the widget creates for a grid


def shop_page(api: str, key: str, *, script_attrs: str = "", body: str = '<div id="list"></div>') -> str:
    """A shop page that embeds the widget as the docs say (attributes escaped like a template would)."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A shop</title>'
        f'<script src="{escape(api)}/static/recsite/widget.js" data-key="{escape(key)}" data-api="{escape(api)}" '
        f"{script_attrs} defer></script></head><body>{body}</body></html>"
    )


def item(sku: str, title: Any, *, url: Any = None, image_url: Any = None, price: Any = 10.0) -> dict[str, Any]:
    return {"sku": sku, "title": title, "url": url, "image_url": image_url, "price": price, "score": 1.0, "reasons": []}


def render_data(tab: Tab, request_id: str, items: list[dict[str, Any]], selector: str = "#list") -> None:
    tab.page.wait_for_function("window.recsite && window.recsite.version === '1'")
    tab.page.evaluate(
        """([selector, response]) => recsite.renderData(document.querySelector(selector), response)""",
        [selector, {"request_id": request_id, "placement": "product", "variant": "control", "items": items}],
    )


def stored(shop: Shop, type: str | None = None) -> list[Event]:
    events = Event.objects.filter(shop=shop).order_by("id")
    return list(events.filter(type=type) if type else events)


@pytest.fixture
def shop_key(live_server: Any, host_pages: HostPages) -> tuple[Shop, str]:
    """A shop whose publishable key allows the host pages' origin (and nothing else)."""
    shop = ShopFactory()
    return shop, make_key(shop, "publishable", allowed_origins=[host_pages.origin])


# --- rendering: text only, http(s) only, styles under a strict CSP ---------------------------


def test_a_list_is_text_only_with_http_urls_only_under_the_strict_csp(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given a page under the strict host CSP and a response full of hostile values
    _, key = shop_key
    url = host_pages.add(
        "/xss",
        shop_page(live_server.url, key, script_attrs='data-currency="EUR" data-locale="en"'),
        csp=strict_csp(live_server.url),
    )
    items = [
        item(
            "SKU-1",
            "<img src=x onerror=window.__pwned=1>",
            url=f"{host_pages.origin}/p/1",
            image_url="https://127.0.0.1:1/poster.png",
            price=12.5,
        ),
        item(
            "SKU-2",
            "<b>bold</b> & <script>window.__pwned=2</script>",
            url="javascript:window.__pwned=3",
            image_url="data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' onload='window.__pwned=4'/>",
            price="7.00",
        ),
        item("SKU-3", "Relative link", url="/p/3", image_url="javascript:window.__pwned=5", price=None),
        item("SKU-4", 42, url="https://shop.example/p/4?a=1&b=2", image_url=None, price="not a price"),
    ]
    tab.page.goto(url)
    tab.page.wait_for_function("window.recsite")

    # When the widget draws it (inspected at once, before the image fails to load)
    drawn = tab.page.evaluate(
        """(items) => {
            const list = document.getElementById('list');
            recsite.renderData(list, {request_id: 'req-xss', placement: 'product', variant: 'control', items});
            const root = list.shadowRoot;
            return {
                state: list.getAttribute('data-recsite-state'),
                requestId: list.getAttribute('data-recsite-request-id'),
                tags: [...new Set([...root.querySelectorAll('*')].map(node => node.tagName))],
                sheets: root.adoptedStyleSheets.length,
                display: getComputedStyle(root.querySelector('ul')).display,
                items: [...root.querySelectorAll('li')].map(li => ({
                    title: li.querySelector('.title').textContent,
                    href: li.querySelector('a') ? li.querySelector('a').getAttribute('href') : null,
                    img: li.querySelector('img') ? li.querySelector('img').getAttribute('src') : null,
                    price: li.querySelector('.price') ? li.querySelector('.price').textContent : null,
                })),
            };
        }""",
        items,
    )
    tab.page.wait_for_timeout(1000)  # let the image fail and any injected handler run

    # Then every title is text, only http(s) URLs became links and images, styles apply
    assert drawn["state"] == "ready"
    assert drawn["requestId"] == "req-xss"
    assert set(drawn["tags"]) <= HOST_TAGS
    assert drawn["items"] == [
        {
            "title": "<img src=x onerror=window.__pwned=1>",
            "href": f"{host_pages.origin}/p/1",
            "img": "https://127.0.0.1:1/poster.png",
            "price": "€12.50",
        },
        {"title": "<b>bold</b> & <script>window.__pwned=2</script>", "href": None, "img": None, "price": "€7.00"},
        {"title": "Relative link", "href": f"{host_pages.origin}/p/3", "img": None, "price": None},
        {"title": "42", "href": "https://shop.example/p/4?a=1&b=2", "img": None, "price": None},
    ]
    assert drawn["sheets"] == 1
    assert drawn["display"] == "grid"
    assert tab.page.evaluate("window.__pwned") is None
    assert tab.csp_violations() == []
    assert tab.errors == []
    tab.screenshot("widget-xss-strict-csp")


def test_custom_properties_theme_the_list(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    _, key = shop_key
    url = host_pages.add("/theme", shop_page(live_server.url, key), csp=strict_csp(live_server.url))
    tab.page.goto(url)
    # Set from the host page's side, through the CSSOM (allowed by the CSP)
    tab.page.evaluate(
        """() => {
            const list = document.getElementById('list');
            list.style.setProperty('--recsite-columns', '3');
            list.style.setProperty('--recsite-accent', 'rgb(180, 35, 90)');
            list.style.setProperty('--recsite-font', 'monospace');
        }"""
    )
    render_data(tab, "req-theme", [item(f"SKU-{n}", f"Item {n}", url=f"{host_pages.origin}/p/{n}") for n in range(6)])

    styles = tab.page.evaluate(
        """() => {
            const root = document.getElementById('list').shadowRoot;
            const ul = getComputedStyle(root.querySelector('ul'));
            return {columns: ul.gridTemplateColumns.split(' ').length,
                    font: getComputedStyle(root.querySelector('.title')).fontFamily};
        }"""
    )
    assert styles == {"columns": 3, "font": "monospace"}
    assert tab.csp_violations() == []


# --- clicks and impressions ----------------------------------------------------------------


def test_a_click_sends_the_lists_request_id_at_once_and_it_is_stored(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given a list on a shop page, whose items link to the shop's product pages
    shop, key = shop_key
    csp = strict_csp(live_server.url)
    url = host_pages.add("/list", shop_page(live_server.url, key), csp=csp)
    landing = host_pages.add("/p/SKU-2", shop_page(live_server.url, key, body="<h1>SKU-2</h1>"), csp=csp)
    tab.page.goto(url)
    render_data(
        tab, "req-click", [item(f"SKU-{n}", f"Item {n}", url=f"{host_pages.origin}/p/SKU-{n}") for n in (1, 2, 3)]
    )

    # When the shopper opens the second item (the page navigates away at once)
    tab.page.locator("#list a").nth(1).click()
    tab.page.wait_for_url(landing)

    # Then one click of SKU-2 with the list's request id is stored, for this shopper
    clicks = tab.eventually(lambda: stored(shop, "click"))
    assert [(e.sku, e.request_id) for e in clicks] == [("SKU-2", "req-click")]
    shopper_id = tab.page.evaluate("localStorage.getItem('recsite_id')")
    assert shopper_id.startswith("anon-")
    assert clicks[0].shopper_id == shopper_by_external_id(shop, shopper_id).pk

    # And an add-to-cart of that product on its page carries the same request id
    tab.page.wait_for_function("window.recsite")
    tab.page.evaluate("recsite.addToCart('SKU-2', {price: 9.5}); recsite.flush()")
    carts = tab.eventually(lambda: stored(shop, "add_to_cart"))
    assert [(e.sku, e.request_id, e.quantity, str(e.price)) for e in carts] == [("SKU-2", "req-click", 1, "9.50")]
    assert len(stored(shop)) == 2
    assert tab.csp_console() == []


def test_a_middle_click_and_the_keyboard_count_as_clicks(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    shop, key = shop_key
    csp = strict_csp(live_server.url)
    url = host_pages.add("/list", shop_page(live_server.url, key), csp=csp)
    landing = host_pages.add("/p/SKU-2", shop_page(live_server.url, key), csp=csp)
    tab.page.goto(url)
    render_data(tab, "req-keys", [item(f"SKU-{n}", f"Item {n}", url=f"{host_pages.origin}/p/SKU-{n}") for n in (1, 2)])

    tab.page.locator("#list a").first.click(button="middle")  # opens a background tab; this page stays
    tab.page.locator("#list a").nth(1).focus()
    tab.page.keyboard.press("Enter")
    tab.page.wait_for_url(landing)

    clicks = tab.eventually(lambda: len(stored(shop, "click")) >= 2 and stored(shop, "click"))
    assert sorted((e.sku, e.request_id) for e in clicks) == [("SKU-1", "req-keys"), ("SKU-2", "req-keys")]


def test_impressions_need_half_an_item_for_a_second_and_come_once_per_item_per_list(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given a list below the fold (this page allows inline styles for its spacer)
    shop, key = shop_key
    body = '<div style="height:2500px">top</div><div id="list"></div><div style="height:2500px">bottom</div>'
    url = host_pages.add("/impressions", shop_page(live_server.url, key, body=body))
    tab.page.goto(url)
    items = [item(f"SKU-{n}", f"Item {n}", url=f"{host_pages.origin}/p/{n}") for n in range(4)]
    render_data(tab, "req-one", items)
    scroll_to_list = "document.getElementById('list').scrollIntoView({block: 'center'})"

    # When it is on screen for less than a second, then off screen
    tab.page.evaluate(scroll_to_list)
    tab.page.wait_for_timeout(300)
    tab.page.evaluate("window.scrollTo(0, 0)")
    tab.page.wait_for_timeout(1300)
    tab.page.evaluate("recsite.flush()")
    tab.wait(1.0)
    # Then nothing counts
    assert stored(shop) == []

    # When it is seen for over a second, twice
    for _ in range(2):
        tab.page.evaluate(scroll_to_list)
        tab.page.wait_for_timeout(1500)
        tab.page.evaluate("window.scrollTo(0, 0)")
        tab.page.wait_for_timeout(200)
    tab.page.evaluate("recsite.flush()")
    # Then each item has exactly one impression with the list's request id
    tab.eventually(lambda: len(stored(shop)) >= 4)
    tab.wait(0.5)
    assert sorted((e.type, e.sku, e.request_id) for e in stored(shop)) == [
        ("impression", f"SKU-{n}", "req-one") for n in range(4)
    ]

    # And a newly drawn list (a new request id) counts its items again, once
    render_data(tab, "req-two", items)
    tab.page.evaluate(scroll_to_list)
    tab.page.wait_for_timeout(1500)
    tab.page.evaluate("recsite.flush()")
    tab.eventually(lambda: len(stored(shop)) >= 8)
    tab.wait(0.5)
    assert sorted((e.sku, e.request_id) for e in stored(shop) if e.request_id == "req-two") == [
        (f"SKU-{n}", "req-two") for n in range(4)
    ]
    assert len(stored(shop)) == 8


def test_list_elements_added_later_are_fetched_with_their_context(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    _, key = shop_key
    url = host_pages.add("/late", shop_page(live_server.url, key), csp=strict_csp(live_server.url))
    requested: list[str] = []
    tab.page.on("request", lambda r: requested.append(r.url) if "/api/v1/recommendations" in r.url else None)
    tab.page.goto(url)
    tab.page.wait_for_function("window.recsite")
    assert requested == []

    # A single-page app adds a list element after load
    tab.page.evaluate(
        """() => {
            const late = document.createElement('div');
            late.id = 'late';
            late.dataset.recsitePlacement = 'cart';
            late.dataset.recsiteItems = JSON.stringify(['SKU-1', 'SKU 2/&?']);
            late.dataset.recsiteLimit = '500';
            document.body.appendChild(late);
        }"""
    )

    tab.eventually(lambda: requested)
    assert requested == [
        f"{live_server.url}/api/v1/recommendations?placement=cart&limit=50"
        f"&shopper={tab.page.evaluate('localStorage.getItem(`recsite_id`)')}&item=SKU-1&item=SKU+2%2F%26%3F"
    ]
    tab.page.wait_for_selector("#late:not([data-recsite-state='loading'])", state="attached")


# --- sending: batches, sizes, retries --------------------------------------------------------


def test_a_queue_left_by_an_earlier_page_goes_out_in_requests_of_at_most_100_events_under_64_kb(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given 250 unsent events an earlier page left in storage (say, the shopper was offline)
    shop, key = shop_key
    url = host_pages.add("/queue", shop_page(live_server.url, key), csp=strict_csp(live_server.url))
    left = [
        {
            "event_id": f"left-{n}",
            "type": "view",
            "shopper": "anon-earlier",
            "sku": f"SKU-{n:03d}-" + "x" * 110,
            "ts": "2026-01-02T03:04:05Z",
            "session": "s-" + "y" * 100,
        }
        for n in range(250)
    ]
    # (what each request carried, as the widget reports it: Playwright does not show beacon bodies)
    tab.page.add_init_script(
        """window.__sent = [];
        addEventListener("recsite:sent", (e) => {
            const key = document.querySelector("script[data-key]").dataset.key;
            const body = JSON.stringify({key, events: e.detail.events});
            window.__sent.push({events: e.detail.events.length, bytes: new TextEncoder().encode(body).length});
        });"""
    )
    tab.page.goto(url)
    tab.page.evaluate("(queue) => localStorage.setItem('recsite_queue', JSON.stringify(queue))", left)

    # When the next page loads the widget
    tab.page.reload()

    # Then they go out in three requests of at most 100 events and under 64 KB, and are stored once each
    tab.eventually(lambda: len(tab.page.evaluate("window.__sent")) >= 3)
    sent = tab.page.evaluate("window.__sent")
    assert sorted(request["events"] for request in sent) == [50, 100, 100]
    assert all(30_000 < request["bytes"] < 64 * 1024 for request in sent if request["events"] == 100)
    tab.eventually(lambda: len(stored(shop)) >= 250)
    assert sorted(e.event_id for e in stored(shop)) == sorted(e["event_id"] for e in left)
    assert tab.page.evaluate("localStorage.getItem('recsite_queue')") is None


def test_a_failed_send_is_retried_with_the_same_event_ids(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given a browser that refuses beacons (so the widget falls back to fetch with
    # keepalive), and a network that drops the first request to the events endpoint
    shop, key = shop_key
    url = host_pages.add("/retry", shop_page(live_server.url, key), csp=strict_csp(live_server.url))
    tab.page.add_init_script("navigator.sendBeacon = () => false;")
    attempts: list[dict[str, Any]] = []

    def network(route: Any) -> None:
        attempts.append(json.loads(route.request.post_data))
        if len(attempts) == 1:
            route.abort("failed")
        else:
            route.continue_()

    tab.page.route(f"{live_server.url}/api/v1/events", network)
    tab.page.goto(url)
    tab.page.wait_for_function("window.recsite")

    # When three events are sent
    ids = tab.page.evaluate(
        "['SKU-1', 'SKU-2', 'SKU-3'].map(sku => recsite.track({type: 'view', sku})).concat([recsite.flush()])"
    )[:3]

    # Then the retry carries the very same event ids, and each event is stored once
    tab.eventually(lambda: len(stored(shop)) >= 3)
    assert len(attempts) == 2
    assert [e["event_id"] for e in attempts[0]["events"]] == ids
    assert [e["event_id"] for e in attempts[1]["events"]] == ids
    assert attempts[0]["events"] == attempts[1]["events"]
    assert sorted(e.event_id for e in stored(shop)) == sorted(ids)


# --- consent ----------------------------------------------------------------------------------


def test_with_consent_required_nothing_is_stored_or_sent_before_consent(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given a shop that requires consent, with a list placement on the page
    shop, key = shop_key
    body = '<div id="list"></div><div id="placed" data-recsite-placement="home"></div>'
    url = host_pages.add(
        "/consent",
        shop_page(live_server.url, key, script_attrs='data-require-consent="true"', body=body),
        csp=strict_csp(live_server.url),
    )
    requests: list[str] = []
    tab.page.on("request", lambda r: requests.append(r.url) if r.url.startswith(live_server.url) else None)
    tab.page.goto(url)

    # When the shopper sees and clicks a list and the page tracks events, before consent
    render_data(tab, "req-before", [item(f"SKU-{n}", f"Item {n}", url=f"{host_pages.origin}/p/{n}") for n in range(3)])
    tab.page.wait_for_timeout(1500)  # long enough for impressions
    tracked = tab.page.evaluate(
        """() => [recsite.track({type: 'view', sku: 'SKU-1'}), recsite.addToCart('SKU-1', {price: 3}),
                  recsite.purchase([{sku: 'SKU-1', price: 3}])]"""
    )
    tab.page.locator("#list a").first.click(modifiers=["Control"])  # a click that keeps the page
    tab.page.evaluate("recsite.flush()")
    tab.page.wait_for_timeout(1000)

    # Then nothing was stored on the device and no event was sent
    assert tracked == [None, None, [None]]
    storage = tab.page.evaluate("() => [Object.keys(localStorage), Object.keys(sessionStorage), document.cookie]")
    assert storage == [[], [], ""]
    assert not [r for r in requests if "/api/v1/events" in r]
    assert stored(shop) == []
    # and the only list request carried no shopper id (a list for anyone)
    recommendation_requests = [r for r in requests if "/api/v1/recommendations" in r]
    assert len(recommendation_requests) == 1
    assert "shopper=" not in recommendation_requests[0]

    # When the shopper consents
    tab.page.evaluate("recsite.consent(true)")
    event_id = tab.page.evaluate("recsite.track({type: 'view', sku: 'SKU-7'})")
    tab.page.evaluate("recsite.flush()")

    # Then from then on events are sent and stored, under a stored anonymous id
    tab.eventually(lambda: stored(shop))
    assert [(e.event_id, e.type, e.sku) for e in stored(shop)] == [(event_id, "view", "SKU-7")]
    shopper_id = tab.page.evaluate("localStorage.getItem('recsite_id')")
    assert stored(shop)[0].shopper_id == shopper_by_external_id(shop, shopper_id).pk
    tab.page.evaluate("recsite.render(document.getElementById('placed'))")
    tab.eventually(lambda: len([r for r in requests if "/api/v1/recommendations" in r]) == 2)
    assert f"shopper={shopper_id}" in [r for r in requests if "/api/v1/recommendations" in r][1]

    # When consent is withdrawn, the id is forgotten and nothing more is sent
    tab.page.evaluate("recsite.consent(false)")
    assert tab.page.evaluate("[Object.keys(localStorage), Object.keys(sessionStorage)]") == [[], []]
    assert tab.page.evaluate("recsite.track({type: 'view', sku: 'SKU-8'})") is None
    assert tab.csp_violations() == []


# --- origins ------------------------------------------------------------------------------------


def test_events_from_an_origin_the_key_does_not_allow_are_refused(
    tab: Tab, host_pages: HostPages, live_server: Any, shop_key: tuple[Shop, str]
) -> None:
    # Given the same page on the allowed origin and on another one
    shop, key = shop_key
    host_pages.add("/origin", shop_page(live_server.url, key), csp=strict_csp(live_server.url))
    sent: list[str] = []
    tab.page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/api/v1/events") else None)

    # When each sends one event
    for count, (origin, sku) in enumerate(((host_pages.other_origin, "SKU-FOREIGN"), (host_pages.origin, "SKU-HOME"))):
        tab.page.goto(f"{origin}/origin")
        tab.page.wait_for_function("window.recsite")
        tab.page.evaluate("(sku) => { recsite.track({type: 'view', sku}); recsite.flush(); }", sku)
        tab.eventually(lambda count=count: len(sent) > count)

    # Then both were sent, and only the allowed origin's was stored
    tab.eventually(lambda: stored(shop))
    tab.wait(0.5)
    assert len(sent) == 2
    assert [e.sku for e in stored(shop)] == ["SKU-HOME"]
