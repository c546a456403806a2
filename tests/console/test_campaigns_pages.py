"""Merchandising pages, part 1: placements and strategies (list, create, rename, edit
with StrategyConfig validation, delete), the bounded preview region, and the access
functions per object kind (another shop's object is a 404)."""

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from campaigns import services
from campaigns.models import Placement, SeasonalSuggestion, Strategy
from campaigns.services import VariantSpec
from campaigns.strategy import DEFAULT_STRATEGIES, StrategyConfig
from catalog.audit import Actor
from catalog.models import AuditEntry
from tests.factories import (
    CategoryFactory,
    PlacementFactory,
    PromotionFactory,
    SeasonalBoostFactory,
    StrategyFactory,
)

SYSTEM = Actor.system("tests")


def primary_links(html: str) -> list[str]:
    return re.findall(r'class="table__primary" href="[^"]+">([^<]+)</a>', html)


def audit(shop: Any) -> list[tuple[str, str, str, str]]:
    """(actor, action, object type, object) of the shop's audit entries, oldest first."""
    return [
        (e.actor_label, e.action, e.object_type, e.object_repr)
        for e in AuditEntry.objects.filter(shop=shop).order_by("at", "id")
    ]


# --- Placements ------------------------------------------------------------------------------


def test_placements_list_kind_default_strategy_and_running_experiment(shop: Any, viewer: Client) -> None:
    placements = {p.slug: p for p in services.placements_create_defaults(shop=shop, actor=SYSTEM)}

    def experiment(name: str, placement: str) -> Any:
        return services.experiment_create(
            shop=shop,
            actor=SYSTEM,
            fields={"name": name, "placement": placements[placement]},
            variants=[VariantSpec("control", 50, is_control=True), VariantSpec("b", 50)],
        )

    running = experiment("Home test", "home")
    services.experiment_start(experiment=running, actor=SYSTEM)
    now = timezone.now()
    later, sooner = experiment("Later cart test", "cart"), experiment("Sooner cart test", "cart")
    services.experiment_schedule(experiment=later, actor=SYSTEM, starts_at=now + timedelta(days=5))
    services.experiment_schedule(
        experiment=sooner, actor=SYSTEM, starts_at=now + timedelta(days=2), stops_at=now + timedelta(days=3)
    )

    response = viewer.get(f"/console/{shop.slug}/placements/")
    html = response.content.decode()

    assert response.status_code == 200
    assert primary_links(html)[:4] == ["Cart", "Category page", "Home page", "Product page"]
    assert "4 placements" in html
    for slug, placement in placements.items():
        strategy_url = f"/console/{shop.slug}/strategies/{placement.default_strategy_id}/"
        assert f'<a href="{strategy_url}">{placement.default_strategy.name}</a>' in html, slug
    assert f'href="/console/{shop.slug}/experiments/{running.pk}/">Home test</a>' in html
    assert html.count('<span class="badge badge--success">Running</span>') == 1
    # Of two scheduled experiments, the next one shows.
    assert f'href="/console/{shop.slug}/experiments/{sooner.pk}/">Sooner cart test</a>' in html
    assert "Later cart test" not in html
    # Viewers read only: no form to add one, no button for a new strategy.
    assert "Add a placement" not in html and "New strategy" not in html


def test_no_placements_says_what_to_do_and_creates_the_standard_four(shop: Any, merchandiser: Client) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/placements/").content.decode()
    assert "No placements yet" in html
    assert f'action="/console/{shop.slug}/placements/defaults/"' in html
    assert "No strategies yet" in html

    response = merchandiser.post(f"/console/{shop.slug}/placements/defaults/")

    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/placements/")
    assert sorted(Placement.objects.filter(shop=shop).values_list("slug", flat=True)) == [
        "cart",
        "category",
        "home",
        "product",
    ]
    page = merchandiser.get(f"/console/{shop.slug}/placements/").content.decode()
    assert "Created the placements home, product, cart, category." in page


def test_create_placement_with_a_new_strategy_from_its_kind(shop: Any, merchandiser: Client) -> None:
    response = merchandiser.post(
        f"/console/{shop.slug}/placements/", {"name": "Mini cart", "slug": "mini-cart", "kind": "cart", "strategy": ""}
    )

    placement = Placement.objects.get(shop=shop, slug="mini-cart")
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/placements/mini-cart/")
    assert (placement.name, placement.kind) == ("Mini cart", "cart")
    assert placement.default_strategy.name == "Mini cart (mini-cart)"
    assert placement.default_strategy.config == StrategyConfig.from_dict(DEFAULT_STRATEGIES["cart"]).to_dict()
    assert audit(shop) == [
        ("user:merchandiser", "create", "strategy", "Mini cart (mini-cart)"),
        ("user:merchandiser", "create", "placement", "mini-cart"),
    ]


def test_create_placement_with_an_existing_strategy(shop: Any, merchandiser: Client) -> None:
    strategy = StrategyFactory(shop=shop, name="Shared")
    merchandiser.post(
        f"/console/{shop.slug}/placements/",
        {"name": "Email", "slug": "email", "kind": "email", "strategy": str(strategy.pk)},
    )
    assert Placement.objects.get(shop=shop, slug="email").default_strategy == strategy
    assert Strategy.objects.filter(shop=shop).count() == 1


def test_create_placement_shows_errors_next_to_the_fields(shop: Any, merchandiser: Client) -> None:
    PlacementFactory(shop=shop, slug="pdp")
    response = merchandiser.post(
        f"/console/{shop.slug}/placements/", {"name": "Again", "slug": "pdp", "kind": "product", "strategy": ""}
    )
    html = response.content.decode()

    assert response.status_code == 400
    assert 'aria-describedby="id_slug_helptext id_slug_error" aria-invalid="true"' in html
    assert (
        '<ul class="field__errors" id="id_slug_error"><li>A placement with this slug already exists</li></ul>' in html
    )
    # The strategy made for it was rolled back with the placement.
    assert Strategy.objects.filter(shop=shop).count() == 1
    assert AuditEntry.objects.filter(shop=shop).count() == 0

    bad = merchandiser.post(f"/console/{shop.slug}/placements/", {"name": "", "slug": "no spaces", "kind": "x"})
    text = bad.content.decode()
    assert bad.status_code == 400
    assert '<ul class="field__errors" id="id_name_error"><li>This field is required.</li></ul>' in text
    assert "Enter a valid “slug”" in text
    assert "Select a valid choice. x is not one of the available choices." in text


def test_rename_placement_and_change_its_strategy(shop: Any, merchandiser: Client) -> None:
    placement = PlacementFactory(shop=shop, slug="pdp", name="PDP")
    other = StrategyFactory(shop=shop, name="Other")

    response = merchandiser.post(
        f"/console/{shop.slug}/placements/pdp/",
        {"name": "Product page", "default_strategy": str(other.pk), "promotions_enabled": ""},
    )

    placement.refresh_from_db()
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/placements/pdp/")
    assert (placement.name, placement.default_strategy, placement.promotions_enabled) == ("Product page", other, False)
    entry = AuditEntry.objects.get(shop=shop)
    assert (entry.action, entry.before["name"], entry.after["name"]) == ("update", "PDP", "Product page")
    assert (entry.after["default_strategy"], entry.after["promotions_enabled"]) == (other.pk, False)
    page = merchandiser.get(f"/console/{shop.slug}/placements/pdp/").content.decode()
    assert "Placement pdp is saved." in page
    assert "Promotions and seasonal boosts are switched off here, so none of them applies." in page


def test_placement_page_shows_its_strategy_and_scoped_promotions(shop: Any, viewer: Client) -> None:
    strategy = StrategyFactory(
        shop=shop,
        name="Mix",
        config={
            "sources": {"similar": 1.0, "trending": 0.5},
            "filters": {"in_stock": True, "price_max": 80},
            "diversity": {"max_per_category": 2},
            "size": 6,
        },
    )
    placement = PlacementFactory(shop=shop, slug="pdp", default_strategy=strategy)
    scoped = services.promotion_create(
        shop=shop,
        actor=SYSTEM,
        fields={"name": "Only here", "target": {"brands": ["Acme"]}, "action": "bury", "all_placements": False},
        placements=[placement],
    )
    services.promotion_create(
        shop=shop, actor=SYSTEM, fields={"name": "Everywhere", "target": {"tags": ["x"]}, "action": "exclude"}
    )

    html = viewer.get(f"/console/{shop.slug}/placements/pdp/").content.decode()

    assert "Serves: Mix" in html
    assert re.findall(r'<span class="weights__value">([^<]+)</span>', html) == ["1", "0.5"]
    assert "In stock only · price 0 to 80 EUR" in html
    assert "At most 2 per category · MMR off" in html
    assert f'href="/console/{shop.slug}/promotions/{scoped.pk}/">Only here</a>' in html
    assert "Everywhere" not in html
    # A viewer reads the settings in a disabled fieldset, without a save button.
    assert '<fieldset class="plain-fieldset stack" disabled>' in html
    assert "Save placement" not in html


# --- Strategies -------------------------------------------------------------------------------

STRATEGY_POST = {
    "name": "Trending first",
    "source_trending": "1",
    "source_personal": "0.4",
    "source_similar": "",
    "in_stock": "on",
    "price_min": "5",
    "price_max": "100",
    "categories": ["Toys"],
    "max_per_category": "3",
    "mmr_lambda": "0.25",
    "size": "12",
}


def test_new_strategy_starts_from_a_kind_and_is_saved_as_validated_config(shop: Any, merchandiser: Client) -> None:
    CategoryFactory(shop=shop, name="Toys", path="Toys")
    form = merchandiser.get(f"/console/{shop.slug}/strategies/new/?from=product").content.decode()
    values = dict(re.findall(r'name="(source_\w+)" value="([^"]*)"', form))
    assert values == {"source_personal": "0.3", "source_similar": "1.0", "source_bought_together": "0.8",
                      "source_also_viewed": "0.6"}  # fmt: skip

    response = merchandiser.post(f"/console/{shop.slug}/strategies/new/", STRATEGY_POST)

    strategy = Strategy.objects.get(shop=shop, name="Trending first")
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/strategies/{strategy.pk}/")
    assert strategy.config == {
        "sources": {"personal": 0.4, "trending": 1.0},
        "filters": {"in_stock": True, "exclude_purchased": False, "price_min": 5.0, "price_max": 100.0,
                    "categories": ["Toys"]},
        "diversity": {"max_per_category": 3, "mmr_lambda": 0.25},
        "size": 12,
    }  # fmt: skip
    assert audit(shop) == [("user:merchandiser", "create", "strategy", "Trending first")]


def test_strategy_errors_come_from_strategy_config_and_sit_next_to_their_fields(
    shop: Any, merchandiser: Client
) -> None:
    strategy = StrategyFactory(shop=shop)
    url = f"/console/{shop.slug}/strategies/{strategy.pk}/"

    none = merchandiser.post(url, {"name": "X", "mmr_lambda": "0", "size": "10"})
    assert none.status_code == 400
    assert '<div class="alert alert--danger" role="alert"><ul><li>Give at least one source a weight above 0.</li>' in (
        none.content.decode()
    )

    prices = merchandiser.post(
        url,
        {"name": "X", "source_personal": "1", "price_min": "50", "price_max": "10", "mmr_lambda": "0", "size": "10"},
    )
    html = prices.content.decode()
    assert prices.status_code == 400
    assert (
        'name="price_max" value="10" min="0" step="any" aria-describedby="id_price_max_error" aria-invalid="true"'
        in html
    )
    assert '<ul class="field__errors" id="id_price_max_error"><li>Must be at least price_min</li></ul>' in html

    fields = merchandiser.post(
        url, {"name": "X", "source_personal": "101", "mmr_lambda": "2", "size": "0", "max_per_category": "51"}
    )
    text = fields.content.decode()
    assert (
        '<ul class="field__errors" id="id_source_personal_error"><li>Ensure this value is less than or equal to 100.0.'
        in text
    )
    assert (
        '<ul class="field__errors" id="id_mmr_lambda_error"><li>Ensure this value is less than or equal to 1.' in text
    )
    assert '<ul class="field__errors" id="id_size_error"><li>Ensure this value is greater than or equal to 1.' in text
    assert (
        '<ul class="field__errors" id="id_max_per_category_error"><li>Ensure this value is less than or equal to 50.'
        in text
    )
    strategy.refresh_from_db()
    assert strategy.name != "X"
    assert AuditEntry.objects.filter(shop=shop).count() == 0


def test_strategy_name_must_be_unique(shop: Any, merchandiser: Client) -> None:
    StrategyFactory(shop=shop, name="Taken")
    response = merchandiser.post(f"/console/{shop.slug}/strategies/new/", {**STRATEGY_POST, "name": "Taken"})
    assert response.status_code == 400
    assert '<ul class="field__errors" id="id_name_error"><li>A strategy with this name already exists</li></ul>' in (
        response.content.decode()
    )


def test_edit_strategy_writes_one_audit_entry_and_keeps_unknown_categories(shop: Any, merchandiser: Client) -> None:
    strategy = StrategyFactory(
        shop=shop, name="Old", config={"sources": {"personal": 1.0}, "filters": {"categories": ["Gone > Away"]}}
    )
    page = merchandiser.get(f"/console/{shop.slug}/strategies/{strategy.pk}/").content.decode()
    assert re.findall(r'<input type="checkbox" name="categories" value="([^"]+)"[^>]* checked>', page) == [
        "Gone &gt; Away"
    ]

    merchandiser.post(
        f"/console/{shop.slug}/strategies/{strategy.pk}/",
        {"name": "New", "source_session": "2", "categories": ["Gone > Away"], "mmr_lambda": "0", "size": "5"},
    )

    strategy.refresh_from_db()
    assert strategy.name == "New"
    assert strategy.config["sources"] == {"session": 2.0}
    assert strategy.config["filters"]["categories"] == ["Gone > Away"]
    assert [e[1:] for e in audit(shop)] == [("update", "strategy", "New")]


def test_delete_strategy_asks_first_and_refuses_one_in_use(shop: Any, merchandiser: Client) -> None:
    used = PlacementFactory(shop=shop, slug="pdp").default_strategy
    spare = StrategyFactory(shop=shop, name="Spare")

    dialog = merchandiser.post(f"/console/{shop.slug}/strategies/{spare.pk}/delete/", HTTP_HX_REQUEST="true")
    assert dialog.status_code == 200
    assert "Delete strategy &quot;Spare&quot;?" in dialog.content.decode()
    assert Strategy.objects.filter(pk=spare.pk).exists()

    done = merchandiser.post(
        f"/console/{shop.slug}/strategies/{spare.pk}/delete/", {"confirmed": "yes"}, HTTP_HX_REQUEST="true"
    )
    assert done["HX-Redirect"] == f"/console/{shop.slug}/placements/"
    assert not Strategy.objects.filter(pk=spare.pk).exists()

    refused = merchandiser.post(f"/console/{shop.slug}/strategies/{used.pk}/delete/", {"confirmed": "yes"})
    assert refused["Location"] == f"/console/{shop.slug}/strategies/{used.pk}/"
    assert Strategy.objects.filter(pk=used.pk).exists()
    page = merchandiser.get(refused["Location"]).content.decode()
    assert "Not deleted: the strategy is the default of placement(s) pdp." in page
    assert [e[1:3] for e in audit(shop)] == [("delete", "strategy")]


# --- Access: another shop's objects -------------------------------------------------------------


def _other_shop_objects(other_shop: Any) -> dict[str, str]:
    placement = PlacementFactory(shop=other_shop, slug="theirs")
    experiment = services.experiment_create(
        shop=other_shop,
        actor=SYSTEM,
        fields={"name": "Theirs", "placement": placement},
        variants=[VariantSpec("control", 50, is_control=True), VariantSpec("b", 50)],
    )
    suggestion = SeasonalSuggestion.objects.create(
        shop=other_shop,
        category=CategoryFactory(shop=other_shop),
        first_day="2026-12-07",
        last_day="2026-12-13",
        lift=2.0,
        window_volume=50.0,
        suggested_factor=1.5,
    )
    return {
        "placement": "placements/theirs/",
        "strategy": f"strategies/{placement.default_strategy_id}/",
        "promotion": f"promotions/{PromotionFactory(shop=other_shop).pk}/",
        "seasonal boost": f"seasonal/{SeasonalBoostFactory(shop=other_shop).pk}/",
        "suggestion": f"seasonal/suggestions/{suggestion.pk}/dismiss/",
        "experiment": f"experiments/{experiment.pk}/",
    }


@pytest.mark.parametrize("kind", ["placement", "strategy", "promotion", "seasonal boost", "suggestion", "experiment"])
def test_an_object_of_another_shop_is_not_found_through_your_own_shop(
    shop: Any, other_shop: Any, merchandiser: Client, kind: str
) -> None:
    path = _other_shop_objects(other_shop)[kind]
    url = f"/console/{shop.slug}/{path}"
    response = merchandiser.post(url) if path.endswith("dismiss/") else merchandiser.get(url)
    assert response.status_code == 404


# --- Regions that wait for serving and analytics ----------------------------------------------


def test_waiting_regions_switch_on_once_their_urls_exist(shop: Any, merchandiser: Client, settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.console.waiting_urls"
    strategy = StrategyFactory(shop=shop)
    experiment = services.experiment_create(
        shop=shop,
        actor=SYSTEM,
        fields={"name": "Test", "placement": PlacementFactory(shop=shop)},
        variants=[VariantSpec("control", 50, is_control=True), VariantSpec("b", 50)],
    )
    base = f"/console/{shop.slug}"

    strategy_page = merchandiser.get(f"{base}/strategies/{strategy.pk}/").content.decode()
    promotion_page = merchandiser.get(f"{base}/promotions/new/").content.decode()
    experiment_page = merchandiser.get(f"{base}/experiments/{experiment.pk}/").content.decode()

    assert (
        f'<div id="strategy-preview-body" aria-live="polite" hx-get="{base}/strategies/preview/" hx-target="this"'
        in (strategy_page)
    )
    assert (
        f'<div id="promotion-preview-body" aria-live="polite" hx-get="{base}/promotions/preview/" hx-target="this"'
        in (promotion_page)
    )
    results = f"{base}/experiments/{experiment.pk}/results/"
    assert f'hx-get="{results}" hx-target="this" hx-trigger="load" hx-swap="innerHTML"><a href="{results}">' in (
        experiment_page
    )
    assert "Available when serving is on" not in strategy_page + promotion_page
    assert "Available with analytics" not in experiment_page
