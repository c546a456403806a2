"""Merchandising pages, part 2: promotions. The list with the status derived now, the
target builder's matches on a known catalog (htmx), the editor's validation, and
publish / pause / delete through the pages with their audit entries."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import console_selectors, services
from campaigns.models import Promotion
from catalog.audit import Actor
from catalog.models import AuditEntry, Product
from catalog.services import products_upsert
from tests.factories import PlacementFactory, ProductFactory, PromotionFactory

SYSTEM = Actor.system("tests")

# SKU, title, category, brand, tags, price, attributes, in stock, active
CATALOG = [
    ("TOY-1", "Brick set", "Toys > Lego", "Acme", ["gift"], 10, {"color": "red", "size": 42}, True, True),
    ("TOY-2", "Kite", "Toys", "Acme", [], 20, {"color": ["Blue", "green"], "size": "42"}, True, True),
    ("TOY-3", "Doll house", "Toys > Dolls", "Bravo", ["Gift", "new"], 30, {"color": "red"}, False, True),
    ("GAR-1", "Hose", "Garden", "Bravo", [], 40, {}, True, True),
    ("KIT-1", "Pan", "Kitchen", "Cobra", [], 60, {}, True, False),
]


@pytest.fixture(autouse=True)
def _fresh_snapshots() -> None:
    """Shop ids repeat between tests (rolled back): no snapshot survives a test."""
    console_selectors.snapshot_cache_clear()


@pytest.fixture
def catalog(shop: Any) -> None:
    products_upsert(
        shop=shop,
        records=[
            {"sku": sku, "title": title, "category": category, "brand": brand, "tags": tags, "price": price,
             "attributes": attributes, "in_stock": in_stock, "active": active}
            for sku, title, category, brand, tags, price, attributes, in_stock, active in CATALOG
        ],
    )  # fmt: skip


def names_and_statuses(html: str) -> list[tuple[str, str]]:
    rows = re.findall(
        r'class="table__primary" href="[^"]+">([^<]+)</a>.*?<span class="badge badge--\w+">(\w+)</span>', html, re.S
    )
    return rows


def matched(html: str) -> list[str]:
    return re.findall(r'<a class="match-list__title" href="[^"]+">([^<]+)</a>', html)


# --- The list ---------------------------------------------------------------------------------


def test_list_shows_each_status_derived_now_in_rule_order(shop: Any, viewer: Client) -> None:
    now = timezone.now()
    PromotionFactory(shop=shop, name="Draft one", status="draft")
    PromotionFactory(shop=shop, name="Live one", status="published", priority=5)
    PromotionFactory(shop=shop, name="Later", status="published", starts_at=now + timedelta(days=3))
    PromotionFactory(shop=shop, name="Paused one", status="paused", priority=9)
    PromotionFactory(shop=shop, name="Over", status="published", ends_at=now - timedelta(days=1))

    response = viewer.get(f"/console/{shop.slug}/promotions/")
    html = response.content.decode()

    assert response.status_code == 200
    assert names_and_statuses(html) == [
        ("Paused one", "Paused"),
        ("Live one", "Live"),
        ("Draft one", "Draft"),
        ("Later", "Scheduled"),
        ("Over", "Ended"),
    ]
    assert "New promotion" not in html  # a viewer reads only


def test_status_filter_answers_htmx_with_the_results_only(shop: Any, viewer: Client) -> None:
    PromotionFactory(shop=shop, name="Live one", status="published")
    PromotionFactory(shop=shop, name="Draft one", status="draft")

    partial = viewer.get(f"/console/{shop.slug}/promotions/", {"status": "live"}, HTTP_HX_REQUEST="true")
    html = partial.content.decode()
    assert html.lstrip().startswith('<section id="results"')
    assert "<html" not in html
    assert names_and_statuses(html) == [("Live one", "Live")]

    none = viewer.get(f"/console/{shop.slug}/promotions/", {"status": "ended"}, HTTP_HX_REQUEST="true")
    assert "No promotion has this status now" in none.content.decode()


def test_row_describes_action_target_scope_and_schedule_in_the_shops_time(shop: Any, viewer: Client) -> None:
    home = PlacementFactory(shop=shop, slug="home")
    services.promotion_create(
        shop=shop,
        actor=SYSTEM,
        fields={
            "name": "Advent",
            "target": {"skus": ["A-1"], "brands": ["Acme"], "price_max": 50},
            "action": "pin",
            "slot": 2,
            "all_placements": False,
            "starts_at": datetime(2026, 11, 30, 23, 0, tzinfo=UTC),  # 1 Dec 00:00 in Berlin
            "yearly_from": "12-01",
            "yearly_until": "12-24",
            "weekdays": [5, 6],
            "daily_from": "09:00",
            "daily_until": "17:00",
        },
        placements=[home],
    )
    html = viewer.get(f"/console/{shop.slug}/promotions/").content.decode()
    assert "<td>home</td>" in html
    assert '<td class="nowrap">Pin to slot 2</td>' in html
    assert '<span class="table__secondary">SKUs A-1; brands Acme; price 0 to 50</span>' in html
    assert "<td>From 1 Dec 2026 00:00 · every year 1 Dec to 24 Dec · Sat, Sun · 09:00\u201317:00</td>" in html


def test_empty_list_says_what_to_do(shop: Any, merchandiser: Client) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/promotions/").content.decode()
    assert "No promotions yet — create one to pin, boost or bury products" in html
    assert (
        f'<a class="button button--primary button--small" href="/console/{shop.slug}/promotions/new/">'
        "Create a promotion</a>" in html
    )


def test_list_costs_the_same_queries_for_2_or_12_promotions(shop: Any, viewer: Client) -> None:
    placement = PlacementFactory(shop=shop)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert viewer.get(f"/console/{shop.slug}/promotions/").status_code == 200
        return len(captured)

    for _ in range(2):
        PromotionFactory(shop=shop, all_placements=False).placements.add(placement)
    few = queries()
    for _ in range(10):
        PromotionFactory(shop=shop, all_placements=False, status="published").placements.add(placement)
    assert queries() == few


# --- The target builder -----------------------------------------------------------------------


@pytest.mark.usefixtures("catalog")
@pytest.mark.parametrize(
    ("query", "count", "showable", "titles"),
    [
        ({"categories": ["Toys"]}, 3, 2, ["Brick set", "Kite", "Doll house"]),
        ({"categories": ["Toys"], "brands": "bravo"}, 1, 0, ["Doll house"]),
        ({"tags": "GIFT"}, 2, 1, ["Brick set", "Doll house"]),
        ({"skus": "GAR-1\nKIT-1, NOPE"}, 2, 1, ["Hose", "Pan"]),
        ({"price_min": "20", "price_max": "40"}, 3, 2, ["Kite", "Doll house", "Hose"]),
        ({"brands": "Cobra", "categories": ["Kitchen"]}, 1, 0, ["Pan"]),
        ({"attributes": "color: RED"}, 2, 1, ["Brick set", "Doll house"]),
        ({"attributes": "color: red, blue\nsize = 42"}, 2, 2, ["Brick set", "Kite"]),
        ({"brands": "Zeta"}, 0, 0, []),
    ],
)
def test_matches_count_and_list_the_products_of_the_catalog(
    shop: Any, viewer: Client, query: dict[str, Any], count: int, showable: int, titles: list[str]
) -> None:
    response = viewer.get(f"/console/{shop.slug}/promotions/matches/", query, HTTP_HX_REQUEST="true")
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="matches"')
    assert f"<strong>{count} product{'s' if count != 1 else ''}</strong>" in html
    if count:
        assert f"{showable} of them can be shown (active and in stock)" in html
    assert matched(html) == titles
    assert f'<span class="badge badge--info">{count} of 5</span>' in html


@pytest.mark.usefixtures("catalog")
def test_matches_link_to_the_product_page_and_show_state(shop: Any, viewer: Client) -> None:
    html = viewer.get(f"/console/{shop.slug}/promotions/matches/", {"categories": ["Toys", "Kitchen"]}).content.decode()
    assert f'<a class="match-list__title" href="/console/{shop.slug}/catalog/products/TOY-3">Doll house</a>' in html
    assert '<span class="mono">TOY-3</span> · Toys &gt; Dolls · 30.00 EUR' in html
    assert html.count('<span class="badge badge--warning">Out of stock</span>') == 1
    assert html.count('<span class="badge badge--neutral">Inactive</span>') == 1
    assert "<html" in html  # without htmx: a page of its own


def test_matches_show_the_first_20_of_more_and_follow_catalog_changes(shop: Any, viewer: Client) -> None:
    url = f"/console/{shop.slug}/promotions/matches/"
    products_upsert(
        shop=shop, records=[{"sku": f"L-{n:02d}", "title": f"Lamp {n:02d}", "brand": "Lux"} for n in range(25)]
    )
    first = viewer.get(url, {"brands": "lux"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<strong>25 products</strong>" in first
    assert matched(first) == [f"Lamp {n:02d}" for n in range(20)]
    assert "The first 20 in catalog order." in first

    products_upsert(shop=shop, records=[{"sku": "L-99", "title": "Lamp 99", "brand": "LUX"}])
    assert "<strong>26 products</strong>" in viewer.get(url, {"brands": "lux"}, HTTP_HX_REQUEST="true").content.decode()


def test_new_within_days_counts_back_from_now(shop: Any, viewer: Client) -> None:
    old = ProductFactory(shop=shop, title="Old lamp")
    Product.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    ProductFactory(shop=shop, title="New lamp")
    html = viewer.get(f"/console/{shop.slug}/promotions/matches/", {"new_within_days": "30"}).content.decode()
    assert matched(html) == ["New lamp"]


@pytest.mark.usefixtures("catalog")
def test_matches_without_a_target_or_with_a_wrong_one_say_so(shop: Any, viewer: Client) -> None:
    url = f"/console/{shop.slug}/promotions/matches/"
    empty = viewer.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Fill in the target: the products it matches show here as you type" in empty

    wrong = viewer.get(url, {"price_min": "50", "price_max": "10"}, HTTP_HX_REQUEST="true").content.decode()
    assert "Fix the target to see what it matches:" in wrong
    assert "<li>Price up to: must be at least price_min</li>" in wrong

    attributes = viewer.get(url, {"attributes": "color"}, HTTP_HX_REQUEST="true").content.decode()
    assert (
        "<li>Attribute values: Line 1: write an attribute as name: value, value (e.g. color: red, blue).</li>"
        in attributes
    )


# --- The editor ---------------------------------------------------------------------------------

PROMOTION = {
    "name": "Toy week",
    "categories": ["Toys"],
    "brands": "Acme, Bravo",
    "attributes": "color: red, blue\nsize = 42",
    "action": "boost",
    "factor": "1.5",
    "slot": "3",  # ignored: only a pin has a slot
    "scope": "some",
    "placements": ["home"],
    "starts_at": "2026-12-01T09:00",
    "ends_at": "2026-12-08T00:00",
    "weekdays": ["0", "4"],
    "daily_from": "09:00",
    "daily_until": "17:30",
    "priority": "7",
}


@pytest.mark.usefixtures("catalog")
def test_create_a_promotion_as_a_draft_from_the_editor(shop: Any, merchandiser: Client) -> None:
    home = PlacementFactory(shop=shop, slug="home")
    PlacementFactory(shop=shop, slug="pdp")

    response = merchandiser.post(f"/console/{shop.slug}/promotions/new/", PROMOTION)

    promotion = Promotion.objects.get(shop=shop)
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/promotions/{promotion.pk}/")
    assert promotion.status == "draft"
    assert promotion.target == {
        "skus": [], "categories": ["Toys"], "brands": ["Acme", "Bravo"], "tags": [],
        "attributes": {"color": ["red", "blue"], "size": ["42"]}, "price_min": None, "price_max": None,
        "new_within_days": None,
    }  # fmt: skip
    assert (promotion.action, promotion.factor, promotion.slot, promotion.priority) == ("boost", 1.5, None, 7)
    assert (promotion.all_placements, list(promotion.placements.all())) == (False, [home])
    # Entered on the shop's wall clock (Berlin, UTC+1 in December), stored in UTC.
    assert promotion.starts_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert promotion.ends_at == datetime(2026, 12, 7, 23, 0, tzinfo=UTC)
    assert (promotion.weekdays, str(promotion.daily_from), str(promotion.daily_until)) == (
        [0, 4],
        "09:00:00",
        "17:30:00",
    )
    entry = AuditEntry.objects.get(shop=shop)
    assert (entry.actor_label, entry.action, entry.object_type) == ("user:merchandiser", "create", "promotion")

    page = merchandiser.get(response["Location"]).content.decode()
    assert "Promotion &quot;Toy week&quot; is saved as a draft. Publish it to make it live." in page
    assert 'value="2026-12-01T09:00"' in page  # shown again in the shop's time
    # Toys by Acme or Bravo, red or blue, size 42: TOY-1 and TOY-2 (TOY-3 has no size).
    assert "<strong>2 products</strong>" in page
    assert matched(page) == ["Brick set", "Kite"]


def test_editor_errors_are_inline_and_linked_to_their_fields(shop: Any, merchandiser: Client) -> None:
    url = f"/console/{shop.slug}/promotions/new/"
    pin = merchandiser.post(url, {"name": "Pin", "skus": "A", "action": "pin", "scope": "all", "priority": "0"})
    html = pin.content.decode()
    assert pin.status_code == 400
    assert 'aria-describedby="id_slot_helptext id_slot_error" aria-invalid="true"' in html
    assert '<ul class="field__errors" id="id_slot_error"><li>A pin needs a slot from 1 to 50.</li></ul>' in html

    nothing = merchandiser.post(url, {"name": "Empty", "action": "bury", "scope": "some", "priority": "0"})
    text = nothing.content.decode()
    assert (
        "Choose what to target: SKUs, categories, brands, tags, attribute values, a price range or new arrivals."
        in text
    )
    assert (
        '<ul class="field__errors" id="id_placements_error">'
        "<li>Choose at least one placement, or all placements.</li></ul>" in text
    )

    times = merchandiser.post(
        url,
        {
            "name": "Times", "skus": "A", "action": "exclude", "scope": "all", "priority": "0",
            "starts_at": "2027-03-28T02:30", "ends_at": "2027-10-31T02:30", "yearly_from": "13-40",
        },
    )  # fmt: skip
    page = times.content.decode()
    assert "The clocks skip 2027-03-28 02:30 in Europe/Berlin (daylight saving); pick another time." in page
    assert (
        "2027-10-31 02:30 happens twice in Europe/Berlin (the clocks go back); pick a time outside that hour." in page
    )
    assert "&#x27;13-40&#x27; is not a day of the year" in page
    assert Promotion.objects.count() == 0


def test_service_refusal_shows_on_the_form(shop: Any, merchandiser: Client) -> None:
    response = merchandiser.post(
        f"/console/{shop.slug}/promotions/new/",
        {"name": "Backwards", "skus": "A", "action": "bury", "scope": "all", "priority": "0",
         "starts_at": "2026-12-10T00:00", "ends_at": "2026-12-01T00:00"},
    )  # fmt: skip
    assert response.status_code == 400
    assert (
        '<ul class="field__errors" id="id_ends_at_error"><li>Must be after starts_at</li></ul>'
        in response.content.decode()
    )


def test_publish_pause_and_delete_through_the_pages_are_audited(shop: Any, merchandiser: Client) -> None:
    promotion = services.promotion_create(
        shop=shop,
        actor=SYSTEM,
        fields={"name": "Gift boost", "target": {"tags": ["gift"]}, "action": "boost", "factor": 2},
    )
    base = f"/console/{shop.slug}/promotions/{promotion.pk}"

    published = merchandiser.post(f"{base}/publish/")
    assert (published.status_code, published["Location"]) == (302, f"{base}/")
    promotion.refresh_from_db()
    assert promotion.status == "published"
    page = merchandiser.get(f"{base}/").content.decode()
    assert "Promotion &quot;Gift boost&quot; is published: it is live now." in page
    assert '<span class="badge badge--success">Live</span>' in page

    dialog = merchandiser.post(f"{base}/pause/", HTTP_HX_REQUEST="true")
    assert "Pause &quot;Gift boost&quot;?" in dialog.content.decode()
    assert f'hx-post="{base}/pause/"' in dialog.content.decode()
    promotion.refresh_from_db()
    assert promotion.status == "published"  # asked first, nothing changed

    paused = merchandiser.post(f"{base}/pause/", {"confirmed": "yes"}, HTTP_HX_REQUEST="true")
    assert paused["HX-Redirect"] == f"{base}/"
    promotion.refresh_from_db()
    assert promotion.status == "paused"

    again = merchandiser.post(f"{base}/pause/", {"confirmed": "yes"})
    assert "Not paused: a paused promotion cannot be paused." in merchandiser.get(again["Location"]).content.decode()

    deleted = merchandiser.post(f"{base}/delete/", {"confirmed": "yes"})
    assert deleted["Location"] == f"/console/{shop.slug}/promotions/"
    assert not Promotion.objects.filter(pk=promotion.pk).exists()
    assert [(e.actor_label, e.action) for e in AuditEntry.objects.filter(shop=shop).order_by("at", "id")] == [
        ("system:tests", "create"),
        ("user:merchandiser", "publish"),
        ("user:merchandiser", "pause"),
        ("user:merchandiser", "delete"),
    ]


def test_publishing_a_promotion_that_ended_is_refused_with_the_reason(shop: Any, merchandiser: Client) -> None:
    promotion = PromotionFactory(shop=shop, ends_at=timezone.now() - timedelta(hours=1))
    response = merchandiser.post(f"/console/{shop.slug}/promotions/{promotion.pk}/publish/")
    page = merchandiser.get(response["Location"]).content.decode()
    assert "Not published: the promotion&#x27;s end is in the past; change ends_at first." in page
    promotion.refresh_from_db()
    assert promotion.status == "draft"


def test_viewer_reads_the_editor_without_actions(shop: Any, viewer: Client) -> None:
    promotion = PromotionFactory(shop=shop, name="Read me")
    html = viewer.get(f"/console/{shop.slug}/promotions/{promotion.pk}/").content.decode()
    assert '<fieldset class="plain-fieldset stack stack--large" disabled>' in html
    assert "Publish" not in html and "Delete…" not in html and "Save promotion" not in html
    assert "You can read this promotion; a merchandiser or admin can change it." in html


def test_target_builder_asks_for_matches_as_the_target_changes(shop: Any, merchandiser: Client) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/promotions/new/").content.decode()
    assert f'hx-get="/console/{shop.slug}/promotions/matches/" hx-trigger="input delay:400ms"' in html
