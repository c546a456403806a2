"""The console's recommendation-showing pages: the Preview page, the strategy and
promotion editors' live previews, the product page's lists and a shopper's lists.

A real shop: a structured history (tests/recommender/shop_data.py), models trained
in-process by the training service, placements and promotions made by the campaigns
services. Expected lists come from ``recommendations_preview``, the serving function
the page must show faithfully."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Placement
from campaigns.services import VariantSpec, experiment_create, experiment_start, promotion_create, promotion_publish
from catalog.models import Event, Product, ProductEmbedding, Shopper
from catalog.services import shopper_key_hash
from recommender.models import ServedList
from recommender.serving.log import served_log
from recommender.serving.service import recommendations_preview
from tests.console.conftest import client_for, make_member
from tests.factories import ShopFactory
from tests.recommender.serving.fixtures import SYSTEM, placement, train
from tests.recommender.shop_data import build_shop_history

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def trained_shop(db: Any) -> Any:
    shop = ShopFactory()
    build_shop_history(shop)
    train(shop, ["trending", "bought_together", "also_viewed", "text_similarity"])
    placement(shop, "home", {"sources": {"trending": 1.0}, "size": 6})
    placement(shop, "pdp", {"sources": {"similar": 1.0, "bought_together": 0.5}, "size": 5}, kind="product")
    return shop


@pytest.fixture
def viewer_of(trained_shop: Any) -> Client:
    return client_for(make_member(trained_shop, "viewer", "viewer"), verified=False)


def listed(html: str, list_id: str = "preview-list") -> list[str]:
    """The data-sku values of the list element ``list_id``, in order."""
    start = html.index(f'id="{list_id}"')
    end = html.index("</ol>", start)
    return re.findall(r'<li class="match-list__item" data-sku="([^"]+)"', html[start:end])


def skus(preview: Any) -> list[str]:
    return [preview.snapshot.skus[item.index] for item in preview.items]


def local(shop: Any, moment: datetime) -> str:
    return moment.astimezone(zoneinfo.ZoneInfo(shop.timezone)).strftime("%Y-%m-%dT%H:%M")


def _pin(shop: Any, sku: str, *, starts: datetime, name: str = "Black Friday") -> Any:
    promotion = promotion_create(
        shop=shop,
        actor=SYSTEM,
        fields={
            "name": name,
            "target": {"skus": [sku]},
            "action": "pin",
            "slot": 1,
            "starts_at": starts,
            "ends_at": starts + timedelta(days=1),
        },
    )
    return promotion_publish(promotion=promotion, actor=SYSTEM)


# --- The Preview page ----------------------------------------------------------------------------


def test_first_render_without_js_shows_the_first_placement_now(trained_shop: Any, viewer_of: Client) -> None:
    response = viewer_of.get(f"/console/{trained_shop.slug}/preview/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" in html and 'name="placement"' in html
    # Placements come in slug order: "home" first.
    assert listed(html) == skus(recommendations_preview(shop=trained_shop, placement_slug="home"))
    assert len(listed(html)) == 6
    assert "Proposed by" in html and "Trending" in html
    assert served_log.pending() == 0 and ServedList.objects.count() == 0


def test_submitting_the_form_updates_the_list_as_a_partial(trained_shop: Any, viewer_of: Client) -> None:
    response = viewer_of.post(f"/console/{trained_shop.slug}/preview/", {"placement": "pdp", "limit": "4"}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and html.lstrip().startswith('<div id="preview"')
    expected = skus(recommendations_preview(shop=trained_shop, placement_slug="pdp", limit=4))
    assert listed(html) == expected and len(expected) == 4


def test_as_of_an_instant_shows_the_campaigns_live_then(trained_shop: Any, viewer_of: Client) -> None:
    friday = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    _pin(trained_shop, "P0039", starts=friday)
    url = f"/console/{trained_shop.slug}/preview/"

    today = viewer_of.post(url, {"placement": "home"}, **HTMX).content.decode()
    then = viewer_of.post(url, {"placement": "home", "at": local(trained_shop, friday + timedelta(hours=1))}, **HTMX)

    html = then.content.decode()
    assert listed(today)[0] != "P0039"
    assert listed(html)[0] == "P0039"
    assert "Pinned to slot 1</span>" in html and "Pinned to slot 1 by promotion &quot;Black Friday&quot;" in html
    assert 'name="off" value="' in html  # the live promotion can be switched off


def test_switching_a_promotion_off_compares_side_by_side(trained_shop: Any, viewer_of: Client) -> None:
    friday = (datetime.now(UTC) + timedelta(days=3)).replace(second=0, microsecond=0)
    pin = _pin(trained_shop, "P0039", starts=friday)
    at = friday + timedelta(hours=1)

    response = viewer_of.post(
        f"/console/{trained_shop.slug}/preview/",
        {"placement": "home", "at": local(trained_shop, at), "off": [str(pin.pk)]},
        **HTMX,
    )

    html = response.content.decode()
    with_rules, without = listed(html, "preview-list"), listed(html, "preview-list-off")
    assert with_rules == skus(recommendations_preview(shop=trained_shop, placement_slug="home", at=at))
    assert without == skus(
        recommendations_preview(shop=trained_shop, placement_slug="home", at=at, disabled_promotion_ids=[pin.pk])
    )
    assert with_rules[0] == "P0039" and "P0039" not in without
    assert "Switching off 1 promotion changes the list" in html
    # The pinned item is marked as new on the left; everything it pushed down, as down.
    left = html[html.index('id="preview-list"') : html.index('id="preview-list-off"')]
    assert re.findall(r'data-sku="P0039" data-position="1" data-change="new"', left)
    assert f'id="id_off_{pin.pk}" checked' in html


def test_a_variant_of_the_running_experiment(trained_shop: Any, viewer_of: Client) -> None:
    other = placement(trained_shop, "spare", {"sources": {"new_arrivals": 1.0}, "size": 6})
    experiment = experiment_create(
        shop=trained_shop,
        actor=SYSTEM,
        fields={"name": "Newest", "placement": Placement.objects.get(shop=trained_shop, slug="home")},
        variants=[
            VariantSpec(name="control", is_control=True, allocation=50),
            VariantSpec(name="newest", allocation=50, strategy=other.default_strategy),
        ],
    )
    experiment_start(experiment=experiment, actor=SYSTEM)
    url = f"/console/{trained_shop.slug}/preview/"

    page = viewer_of.post(url, {"placement": "home", "variant": "newest"}, **HTMX)
    wrong = viewer_of.post(url, {"placement": "home", "variant": "nope"}, **HTMX)

    html = page.content.decode()
    assert listed(html) == skus(recommendations_preview(shop=trained_shop, placement_slug="home", variant="newest"))
    assert "Variant newest" in html and '<option value="newest" selected>' in html
    assert wrong.status_code == 200  # htmx swaps only 2xx: the errors replace the region
    assert "No variant &#x27;nope&#x27; in the experiment of this placement then" in wrong.content.decode()
    assert 'id="preview-list"' not in wrong.content.decode()


def test_a_session_built_from_picked_products(trained_shop: Any, viewer_of: Client) -> None:
    placement(trained_shop, "visit", {"sources": {"similar": 1.0}, "size": 5})
    url = f"/console/{trained_shop.slug}/preview/"

    added = viewer_of.post(url, {"placement": "visit", "add_item": "P0002"}, **HTMX).content.decode()
    both = viewer_of.post(url, {"placement": "visit", "session": ["P0002"], "add_item": "P0006"}, **HTMX)
    unknown = viewer_of.post(url, {"placement": "visit", "add_item": "NOPE"}, **HTMX)

    assert 'name="session" value="P0002" id="id_session_0" checked' in added
    expected = recommendations_preview(shop=trained_shop, placement_slug="visit", session_items=["P0002", "P0006"])
    assert listed(both.content.decode()) == skus(expected)
    assert all("similar" in item.sources for item in expected.items)
    assert unknown.status_code == 200
    assert "No product with SKU &quot;NOPE&quot;. Pick one of the suggestions." in unknown.content.decode()


def test_a_looked_up_shopper(trained_shop: Any, viewer_of: Client) -> None:
    shopper = Shopper.objects.create(shop=trained_shop, key_hash=shopper_key_hash(trained_shop, "s-42"))
    product = Product.objects.get(shop=trained_shop, sku="P0005")
    Event.objects.create(
        shop=trained_shop, event_id="x-1", type="purchase", shopper=shopper, product=product, sku="P0005",
        ts=datetime.now(UTC) - timedelta(minutes=5),
    )  # fmt: skip
    placement(trained_shop, "mine", {"sources": {"bought_together": 1.0}, "size": 4})

    response = viewer_of.post(f"/console/{trained_shop.slug}/preview/", {"placement": "mine", "shopper_id": "s-42"})

    html = response.content.decode()
    expected = recommendations_preview(shop=trained_shop, placement_slug="mine", shopper_id="s-42")
    assert listed(html) == skus(expected)
    assert "a looked-up shopper" in html and "s-42" in html  # echoed only in the POSTed form
    # A shopper id in a URL is ignored, so it never lands in logs or history.
    linked = viewer_of.get(f"/console/{trained_shop.slug}/preview/?placement=mine&shopper_id=s-42").content.decode()
    assert "an anonymous visitor" in linked


def test_bad_input_gets_clear_errors(trained_shop: Any, viewer_of: Client) -> None:
    url = f"/console/{trained_shop.slug}/preview/"
    response = viewer_of.post(url, {"placement": "nowhere", "at": "soon", "limit": "99", "off": ["x"]})
    gone = viewer_of.post(url, {"placement": "home", "session": ["P0001", "GONE-1"]})

    html = response.content.decode()
    assert response.status_code == 400
    assert "Select a valid choice. nowhere is not one of the available choices." in html
    assert "Enter a date and time." in html
    assert "Ensure this value is less than or equal to 50." in html
    assert "Promotions to switch off are given by their ids (whole numbers)." in html
    assert gone.status_code == 400 and "Not in the catalog: GONE-1." in gone.content.decode()
    assert 'name="session" value="P0001" id="id_session_0" checked' in gone.content.decode()


def test_no_placements_says_what_to_do(viewer: Client, shop: Any) -> None:
    html = viewer.get(f"/console/{shop.slug}/preview/").content.decode()
    assert "No placements yet" in html and 'id="preview-list"' not in html


def test_product_suggestions_for_the_session_builder(trained_shop: Any, viewer_of: Client) -> None:
    response = viewer_of.get(f"/console/{trained_shop.slug}/preview/products/?add_item=Product 3", **HTMX)

    html = response.content.decode()
    assert html.startswith('<datalist id="preview-products">')
    assert re.findall(r'<option value="([^"]+)">', html) == ["P0003", "P0030", "P0031", "P0032", "P0033", "P0034",
                                                            "P0035", "P0036", "P0037", "P0038"]  # fmt: skip


# --- The strategy editor's preview ---------------------------------------------------------------


def test_strategy_preview_shows_the_edited_strategy_next_to_the_saved_one(trained_shop: Any, viewer_of: Client) -> None:
    home = Placement.objects.get(shop=trained_shop, slug="home")
    url = f"/console/{trained_shop.slug}/strategies/preview/"
    fields = {"strategy": home.default_strategy_id, "name": "Mix", "source_trending": "1", "in_stock": "on"}
    fields |= {"mmr_lambda": "0", "size": "4"}

    unchanged = viewer_of.get(url, {"strategy": home.default_strategy_id}, **HTMX).content.decode()
    fields.pop("source_trending")
    edited = viewer_of.get(url, {**fields, "source_new_arrivals": "1"}, **HTMX).content.decode()

    assert listed(unchanged, "strategy-preview-list") == skus(
        recommendations_preview(shop=trained_shop, placement_slug="home")
    )
    assert "strategy-preview-saved" not in unchanged
    new_list = listed(edited, "strategy-preview-list")
    assert (
        len(new_list) == 4
        and listed(edited, "strategy-preview-saved") == listed(unchanged, "strategy-preview-list")[:4]
    )
    assert "Your changes change the list" in edited and 'data-change="new"' in edited


def test_strategy_preview_explains_what_is_wrong(trained_shop: Any, viewer_of: Client, other_shop: Any) -> None:
    url = f"/console/{trained_shop.slug}/strategies/preview/"
    none = viewer_of.get(url, {"name": "x", "source_personal": "0", "mmr_lambda": "0", "size": "5"}, **HTMX)
    bad = viewer_of.get(url, {"name": "x", "source_trending": "-1", "mmr_lambda": "2", "size": "500"}, **HTMX)
    theirs = placement(other_shop, "theirs", {"sources": {"trending": 1.0}})

    assert none.status_code == 200
    assert "Give at least one source a weight above 0 to see what this strategy serves" in none.content.decode()
    assert bad.status_code == 200
    problems = re.findall(r"<li>([^<]+)</li>", bad.content.decode())
    assert problems == [
        "Diversity strength (MMR): Ensure this value is less than or equal to 1.",
        "Items served: Ensure this value is less than or equal to 50.",
        "Trending: Ensure this value is greater than or equal to 0.",
    ]
    assert viewer_of.get(url, {"strategy": theirs.default_strategy_id}, **HTMX).status_code == 404
    not_a_number = viewer_of.get(url, {"strategy": "abc"})
    assert not_a_number.status_code == 400 and "The strategy id is a whole number." in not_a_number.content.decode()


# --- The promotion editor's preview --------------------------------------------------------------


def test_promotion_preview_shows_the_slots_before_and_after(trained_shop: Any, viewer_of: Client) -> None:
    url = f"/console/{trained_shop.slug}/promotions/preview/"
    fields = {"name": "Lamp", "skus": "P0039", "action": "pin", "slot": "2", "scope": "some", "placements": ["home"]}

    response = viewer_of.get(url, {**fields, "priority": "0"}, **HTMX)
    empty = viewer_of.get(url, {"name": "x", "action": "pin"}, **HTMX)
    bad = viewer_of.get(url, {**fields, "slot": "", "priority": "0"}, **HTMX)

    html = response.content.decode()
    before = skus(recommendations_preview(shop=trained_shop, placement_slug="home"))
    assert 'data-placement="home"' in html and 'data-placement="pdp"' not in html
    after = re.findall(r'data-sku="([^"]+)"', html[html.index("After</h4>") :])
    assert after[1] == "P0039" and after[0] == before[0]
    assert "Slots 2, " in html and "Pinned to slot 2 by promotion &quot;Lamp&quot;" in html
    assert "Fill in the target" in empty.content.decode()
    assert bad.status_code == 200 and "Slot: A pin needs a slot from 1 to 50." in bad.content.decode()
    assert viewer_of.get(url, {**fields, "slot": ""}).status_code == 400  # without htmx: a 400 page


# --- The product page and the shoppers page ------------------------------------------------------


def test_product_page_loads_its_lists_from_recommender(trained_shop: Any, viewer_of: Client) -> None:
    page = viewer_of.get(f"/console/{trained_shop.slug}/catalog/products/P0004").content.decode()
    url = f"/console/{trained_shop.slug}/catalog/recommendations/P0004"
    assert (
        f'hx-get="{url}" hx-target="this" hx-trigger="load"' in page and f'<a href="{url}">Show the lists</a>' in page
    )

    html = viewer_of.get(url, **HTMX).content.decode()

    similar = listed(html, "similar-list")
    viewed = listed(html, "also-viewed-list")
    # Text embeddings cluster by category (P0004 is in category 0: every fourth product).
    assert len(similar) == 8 and all(int(sku[1:]) % 4 == 0 for sku in similar) and "P0004" not in similar
    # Sessions keep to one category, so what was viewed with it is mostly of its category.
    assert len(viewed) == 8 and "P0004" not in viewed
    assert sum(int(sku[1:]) % 4 == 0 for sku in viewed) >= 6
    # The history has at most one purchase per session: nothing is bought together.
    assert "Nothing bought together with it yet." in html
    assert "Known from interactions" in html and 'data-cold-start="true"' not in html
    assert "also_viewed #" in html and "knows it" in html


def test_a_new_product_without_events_is_a_cold_start(trained_shop: Any, viewer_of: Client) -> None:
    embedded = ProductEmbedding.objects.get(product__shop=trained_shop, product__sku="P0008")
    product = Product.objects.create(
        shop=trained_shop, sku="NEW-1", title="Brand new", category=embedded.product.category
    )
    ProductEmbedding.objects.create(
        product=product, shop=trained_shop, model_name=embedded.model_name, text_hash="f" * 64, vector=embedded.vector
    )

    html = viewer_of.get(f"/console/{trained_shop.slug}/catalog/recommendations/NEW-1", **HTMX).content.decode()

    assert 'data-cold-start="true">Cold start' in html and "Fresh text embedding served" in html
    assert "served on the cold-start path, from its text embedding" in html
    assert "P0008" in listed(html, "similar-list")[:2]


def test_shopper_page_shows_their_recommendations(trained_shop: Any, viewer_of: Client) -> None:
    shopper = Shopper.objects.create(shop=trained_shop, key_hash=shopper_key_hash(trained_shop, "s-7"))
    Event.objects.create(
        shop=trained_shop, event_id="y-1", type="view", shopper=shopper,
        product=Product.objects.get(shop=trained_shop, sku="P0001"), sku="P0001", ts=datetime.now(UTC),
    )  # fmt: skip

    lookup = viewer_of.post(f"/console/{trained_shop.slug}/shoppers/", {"shopper_id": "s-7"}).content.decode()
    url = f"/console/{trained_shop.slug}/shoppers/recommendations/"
    response = viewer_of.post(url, {"shopper_id": "s-7"}, **HTMX)
    missing = viewer_of.post(url, {"shopper_id": ""}, **HTMX)

    assert f'hx-post="{url}" hx-trigger="load"' in lookup and 'name="shopper_id" value="s-7"' in lookup
    html = response.content.decode()
    for slug in ("home", "pdp"):
        section = html[html.index(f'data-placement="{slug}"') :]
        expected = skus(recommendations_preview(shop=trained_shop, placement_slug=slug, shopper_id="s-7"))
        assert re.findall(r'data-sku="([^"]+)"', section)[: len(expected)] == expected
    assert "Without a product on the page" in html
    assert missing.status_code == 200 and "Shopper id: This field is required." in missing.content.decode()
    assert viewer_of.post(url, {"shopper_id": ""}).status_code == 400


# --- The editors' preview regions are live -------------------------------------------------------


def test_the_editors_preview_regions_ask_for_their_previews(trained_shop: Any) -> None:
    merchandiser = client_for(make_member(trained_shop, "merch", "merchandiser"), verified=False)
    home = Placement.objects.get(shop=trained_shop, slug="home")
    promotion = _pin(trained_shop, "P0039", starts=datetime.now(UTC).replace(second=0, microsecond=0))
    base = f"/console/{trained_shop.slug}"

    strategy_page = merchandiser.get(f"{base}/strategies/{home.default_strategy_id}/").content.decode()
    promotion_page = merchandiser.get(f"{base}/promotions/{promotion.pk}/").content.decode()

    assert (
        f'<div id="strategy-preview-body" aria-live="polite" hx-get="{base}/strategies/preview/" hx-target="this" '
        'hx-trigger="load, change from:#strategy-form delay:400ms"' in strategy_page
    )
    assert f'<a href="{base}/strategies/preview/?strategy={home.default_strategy_id}">' in strategy_page
    assert (
        f'<div id="promotion-preview-body" aria-live="polite" hx-get="{base}/promotions/preview/" hx-target="this" '
        'hx-trigger="load, change from:#promotion-form delay:400ms"' in promotion_page
    )
    assert "Available when serving is on" not in strategy_page + promotion_page
    # The fallback links (no JS) give whole pages of the saved objects' previews.
    saved = merchandiser.get(f"{base}/promotions/preview/?promotion={promotion.pk}").content.decode()
    assert "<html" in saved and 'data-placement="home"' in saved and 'data-placement="pdp"' in saved
    after = re.findall(r'data-sku="([^"]+)"', saved[saved.index("After</h4>") :])
    before = re.findall(r'data-sku="([^"]+)"', saved[saved.index("Before</summary>") :])
    assert after[0] == "P0039" and before[0] != "P0039"  # "before" leaves the saved promotion out
    new = merchandiser.get(
        f"{base}/strategies/preview/", {"name": "", "source_trending": "1", "size": "3", "mmr_lambda": "0"}
    )
    assert listed(new.content.decode(), "strategy-preview-list") == skus(
        recommendations_preview(
            shop=trained_shop, placement_slug="home", limit=3, disabled_promotion_ids=[promotion.pk]
        )
    )  # a strategy no placement uses yet: no placement's promotions apply
