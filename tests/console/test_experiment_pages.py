"""Merchandising pages, part 4: experiments. The wizard (variants added and removed,
validation, the sample-size estimate), the list, the detail page with its bounded
results region, and start / schedule / stop through the pages with their audit."""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.statistics.power import minimum_detectable_effect
from campaigns import services
from campaigns.models import Experiment, ExperimentVersion
from campaigns.services import VariantSpec
from catalog.audit import Actor
from catalog.models import AuditEntry
from tests.factories import PlacementFactory, StrategyFactory

SYSTEM = Actor.system("tests")


@pytest.fixture
def placement(shop: Any) -> Any:
    return PlacementFactory(shop=shop, slug="home", name="Home page")


def wizard(on: Any, **changes: str) -> dict[str, str]:
    """The wizard's fields for an experiment on placement ``on``, with ``changes``."""
    data = {
        "name": "Trending test",
        "placement": on.slug,
        "primary_metric": "ctr",
        "holdout_percent": "10",
        "variants-TOTAL_FORMS": "2",
        "variants-INITIAL_FORMS": "2",
        "variants-0-name": "control",
        "variants-0-allocation": "50",
        "variants-0-promotions_on": "on",
        "variants-1-name": "trending",
        "variants-1-allocation": "50",
        "variants-1-model_version_id": "7",
    }
    data.update(changes)
    return data


def variant_names(html: str) -> list[str]:
    inputs = re.findall(r'<input[^>]*name="variants-\d+-name"[^>]*>', html)
    return [(re.search(r'value="([^"]*)"', tag) or re.match("()", "")).group(1) for tag in inputs]


def draft(shop: Any, placement: Any, **fields: Any) -> Experiment:
    return services.experiment_create(
        shop=shop,
        actor=SYSTEM,
        fields={"name": "Home test", "placement": placement, **fields},
        variants=[VariantSpec("control", 50, is_control=True), VariantSpec("b", 50)],
    )


def audit(shop: Any) -> list[tuple[str, str]]:
    return [(e.actor_label, e.action) for e in AuditEntry.objects.filter(shop=shop).order_by("at", "id")]


# --- The wizard -----------------------------------------------------------------------------


def test_wizard_starts_with_a_control_and_a_treatment(shop: Any, merchandiser: Client, placement: Any) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/experiments/new/").content.decode()
    assert variant_names(html) == ["control", "treatment"]
    assert re.findall(r'name="variants-\d+-allocation" value="(\d+)"', html) == ["50", "50"]
    assert '<legend class="variant__legend">Control</legend>' in html
    assert 'name="variants-TOTAL_FORMS" value="2"' in html
    assert f'hx-get="/console/{shop.slug}/experiments/estimate/" hx-target="this" hx-trigger="load' in html


def test_add_and_remove_variants_keep_what_was_typed(shop: Any, merchandiser: Client, placement: Any) -> None:
    url = f"/console/{shop.slug}/experiments/new/"
    added = merchandiser.post(url, {**wizard(placement), "add_variant": "1"}, HTTP_HX_REQUEST="true")
    html = added.content.decode()
    assert added.status_code == 200
    assert html.lstrip().startswith('<form id="wizard"')
    assert variant_names(html) == ["control", "trending", ""]
    assert 'name="variants-1-model_version_id" value="7"' in html
    assert 'value="Trending test"' in html
    assert "field__errors" not in html  # not checked yet
    assert Experiment.objects.count() == 0

    three = wizard(
        placement, **{"variants-TOTAL_FORMS": "3", "variants-2-name": "third", "variants-2-allocation": "10"}
    )
    removed = merchandiser.post(url, {**three, "remove_variant": "1"}, HTTP_HX_REQUEST="true").content.decode()
    assert variant_names(removed) == ["control", "third"]
    # The control cannot be removed.
    kept = merchandiser.post(url, {**three, "remove_variant": "0"}, HTTP_HX_REQUEST="true").content.decode()
    assert variant_names(kept) == ["control", "trending", "third"]


def test_create_from_the_wizard_makes_a_draft_with_its_variants(
    shop: Any, merchandiser: Client, placement: Any
) -> None:
    strategy = StrategyFactory(shop=shop, name="Trending mix")
    data = wizard(placement, **{"variants-1-strategy": str(strategy.pk)})

    response = merchandiser.post(f"/console/{shop.slug}/experiments/new/", data, HTTP_HX_REQUEST="true")

    experiment = Experiment.objects.get(shop=shop)
    assert response["HX-Redirect"] == f"/console/{shop.slug}/experiments/{experiment.pk}/"
    assert (experiment.name, experiment.placement, experiment.status) == ("Trending test", placement, "draft")
    assert (experiment.holdout_percent, experiment.primary_metric) == (10, "ctr")
    assert [
        (v.name, v.is_control, v.allocation, v.strategy, v.promotions_on, v.model_version_id)
        for v in experiment.variants.all()
    ] == [("control", True, 50, None, True, None), ("trending", False, 50, strategy, False, 7)]
    assert audit(shop) == [("user:merchandiser", "create")]


def test_wizard_errors_are_inline(shop: Any, merchandiser: Client, placement: Any) -> None:
    url = f"/console/{shop.slug}/experiments/new/"
    shares = merchandiser.post(url, wizard(placement, **{"variants-1-allocation": "40"})).content.decode()
    assert "<li>The variants&#x27; shares add up to 90%; they must add up to 100%.</li>" in shares

    names = merchandiser.post(url, wizard(placement, **{"variants-1-name": "control"})).content.decode()
    assert "<li>Give every variant its own name.</li>" in names

    fields = merchandiser.post(
        url, wizard(placement, holdout_percent="60", **{"variants-1-name": "no spaces", "variants-1-allocation": "0"})
    )
    html = fields.content.decode()
    assert fields.status_code == 400
    assert (
        '<ul class="field__errors" id="id_holdout_percent_error">'
        "<li>Ensure this value is less than or equal to 50.</li></ul>" in html
    )
    assert 'id="id_variants-1-name_error"' in html and "Enter a valid “slug”" in html
    assert (
        '<ul class="field__errors" id="id_variants-1-allocation_error">'
        "<li>Ensure this value is greater than or equal to 1.</li></ul>" in html
    )

    reserved = merchandiser.post(url, wizard(placement, **{"variants-1-name": "holdout"})).content.decode()
    assert "Variants: &#x27;holdout&#x27; is reserved for held-out units" in reserved
    assert Experiment.objects.count() == 0


def test_change_a_running_experiment_starts_a_new_version(shop: Any, merchandiser: Client, placement: Any) -> None:
    experiment = draft(shop, placement)
    services.experiment_start(experiment=experiment, actor=SYSTEM)
    other = PlacementFactory(shop=shop, slug="pdp")
    url = f"/console/{shop.slug}/experiments/{experiment.pk}/edit/"
    page = merchandiser.get(url).content.decode()
    assert '<select name="placement"' in page and "disabled" in re.search(
        r'<select name="placement"[^>]*>', page
    ).group(0)

    data = wizard(placement, name="Home test", placement=other.slug, **{"variants-0-allocation": "70",
                  "variants-1-name": "b", "variants-1-allocation": "30"})  # fmt: skip
    response = merchandiser.post(url, data)

    experiment.refresh_from_db()
    assert response["Location"] == f"/console/{shop.slug}/experiments/{experiment.pk}/"
    assert (experiment.placement, experiment.version) == (placement, 2)  # the placement stays
    assert [v.allocation for v in experiment.variants.all()] == [70, 30]
    assert list(ExperimentVersion.objects.filter(experiment=experiment).values_list("number", flat=True)) == [1, 2]
    flash = merchandiser.get(response["Location"]).content.decode()
    assert "The split changed, so version 2 starts: shoppers are assigned anew." in flash


# --- The estimate ----------------------------------------------------------------------------


def test_estimate_from_the_wizards_fields(shop: Any, viewer: Client, placement: Any) -> None:
    params = {**wizard(placement, primary_metric="conversion_rate", holdout_percent="0"), "baseline_rate": "10",
              "minimum_effect": "10"}  # fmt: skip
    html = viewer.get(f"/console/{shop.slug}/experiments/estimate/", params, HTTP_HX_REQUEST="true").content.decode()
    # Baseline 10%, lift 10%, alpha 0.05 two-sided, power 0.8: 14,751 per variant (power.py).
    assert '<span class="estimate__value">29,502</span>' in html
    assert (
        "<strong>14,751</strong> in every variant find a <strong>10%</strong> lift in conversion rate from 10%." in html
    )
    assert "<html" not in html

    held_out = viewer.get(
        f"/console/{shop.slug}/experiments/estimate/",
        {**params, "holdout_percent": "10", "weekly_units": "10000", "weeks": "2"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    # Each variant gets 45% of all shoppers: ceil(14,751 / 0.45).
    assert f'<span class="estimate__value">{math.ceil(14751 / 0.45):,}</span>' in held_out
    assert "<strong>3.3 weeks</strong>" in held_out
    detectable = minimum_detectable_effect(0.1, 9000) * 100  # 2 weeks x 10,000 x 45%
    assert f"the smallest lift it can find is <strong>{detectable:.1f}%</strong>" in held_out
    assert re.findall(
        r'<span class="split__name">([^<]+)</span>.*?<span class="split__value">([^<]+)</span>', held_out
    ) == [
        ("holdout", "10%"),
        ("control", "45%"),
        ("trending", "45%"),
    ]


def test_estimate_says_what_is_missing(shop: Any, viewer: Client, placement: Any) -> None:
    url = f"/console/{shop.slug}/experiments/estimate/"
    shares = viewer.get(url, wizard(placement, **{"variants-1-allocation": "30"}), HTTP_HX_REQUEST="true")
    assert "The variants&#x27; shares add up to 80%; make them 100% for an estimate." in shares.content.decode()

    revenue = viewer.get(url, wizard(placement, primary_metric="revenue_per_unit"), HTTP_HX_REQUEST="true")
    assert "Enter the revenue per shopper and its standard deviation for an estimate." in revenue.content.decode()

    typical = viewer.get(url, wizard(placement, primary_metric="ctr"), HTTP_HX_REQUEST="true").content.decode()
    assert "from 5%, a typical rate (enter yours)." in typical


def test_estimate_page_of_its_own_uses_an_equal_split(shop: Any, viewer: Client) -> None:
    page = viewer.get(f"/console/{shop.slug}/experiments/estimate/").content.decode()
    assert "<html" in page and '<form method="get"' in page
    assert re.findall(r'<span class="split__name">([^<]+)</span>', page) == ["A", "B"]
    three = viewer.get(
        f"/console/{shop.slug}/experiments/estimate/",
        {"primary_metric": "conversion_rate", "holdout_percent": "0", "variants": "3", "minimum_effect": "10"},
    ).content.decode()
    assert re.findall(r'<span class="split__value">([^<]+)</span>', three) == ["34%", "33%", "33%"]


# --- List and detail ---------------------------------------------------------------------------


def test_list_shows_status_placement_and_split(shop: Any, viewer: Client, placement: Any) -> None:
    running = draft(shop, placement, name="Running one")
    services.experiment_start(experiment=running, actor=SYSTEM)
    draft(shop, PlacementFactory(shop=shop, slug="cart"), name="Draft one", holdout_percent=5)

    html = viewer.get(f"/console/{shop.slug}/experiments/").content.decode()

    assert re.findall(r'class="table__primary" href="[^"]+">([^<]+)</a>', html) == ["Draft one", "Running one"]
    assert '<span class="table__secondary">Conversion rate · 5% held out</span>' in html
    assert (
        html.count('<span class="badge badge--neutral">control 50%</span><span class="badge badge--info">b 50%</span>')
        == 2
    )
    assert '<span class="badge badge--success">Running</span>' in html


def test_empty_list_says_what_to_do(shop: Any, merchandiser: Client) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/experiments/").content.decode()
    assert "No experiments yet — set one up to test a change before everyone gets it" in html


def test_detail_shows_definition_variants_and_the_bounded_results(shop: Any, viewer: Client, placement: Any) -> None:
    strategy = StrategyFactory(shop=shop, name="Trending mix")
    experiment = services.experiment_create(
        shop=shop,
        actor=SYSTEM,
        fields={
            "name": "Home test",
            "placement": placement,
            "holdout_percent": 20,
            "primary_metric": "add_to_cart_rate",
        },
        variants=[
            VariantSpec("control", 60, is_control=True),
            VariantSpec("trend", 40, strategy=strategy, promotions_on=False, model_version_id=3),
        ],
    )
    services.experiment_start(experiment=experiment, actor=SYSTEM)

    html = viewer.get(f"/console/{shop.slug}/experiments/{experiment.pk}/").content.decode()

    assert "<dt>Primary metric</dt><dd>Add-to-cart rate</dd>" in html
    assert "20% of shoppers get the placement as it is, logged as “holdout”" in html
    rows = re.findall(r'<td class="num">(\d+%)</td>\s*<td class="num">([^<]+)</td>', html)
    assert rows == [("60%", "48%"), ("40%", "32%")]
    assert f'<a href="/console/{shop.slug}/strategies/{strategy.pk}/">Trending mix</a>' in html
    assert '<span class="badge badge--neutral">Off</span>' in html and "<td>3</td>" in html
    assert "<td>holdout 20% · control 60% · trend 40%</td>" in html
    results_url = f"/console/{shop.slug}/experiments/{experiment.pk}/results/"
    results = html[html.index('id="experiment-results"') :]
    assert (
        f'<div id="experiment-results-body" aria-live="polite" hx-get="{results_url}" hx-target="this" '
        f'hx-trigger="load" hx-swap="innerHTML"><a href="{results_url}">Show the results</a></div>' in results
    )
    assert "Stop…" not in html  # a viewer has no actions
    # The region analytics fills: every arm of version 1 (the holdout too), no units yet,
    # and no promote form for a viewer.
    region = viewer.get(results_url, HTTP_HX_REQUEST="true").content.decode()
    first_table = region[: region.index("</table>")]
    arms = re.findall(r'<tr>\s*<td><span class="table__primary">([^<]+)</span>', first_table)
    assert arms == ["control", "trend", "holdout"]
    assert "No units yet in version 1." in region
    assert "<html" not in region and "Promote winner" not in region


def test_start_and_stop_through_the_pages_ask_first_and_are_audited(
    shop: Any, merchandiser: Client, placement: Any
) -> None:
    experiment = draft(shop, placement)
    base = f"/console/{shop.slug}/experiments/{experiment.pk}"

    dialog = merchandiser.post(f"{base}/start/", {"stops_at": ""}, HTTP_HX_REQUEST="true")
    assert "Start &quot;Home test&quot; now?" in dialog.content.decode()
    experiment.refresh_from_db()
    assert experiment.status == "draft"

    started = merchandiser.post(f"{base}/start/", {"stops_at": "", "confirmed": "yes"}, HTTP_HX_REQUEST="true")
    assert started["HX-Redirect"] == f"{base}/"
    experiment.refresh_from_db()
    assert experiment.status == "running"
    assert ExperimentVersion.objects.get(experiment=experiment).number == 1
    assert "Experiment &quot;Home test&quot; is running." in merchandiser.get(f"{base}/").content.decode()

    merchandiser.post(f"{base}/stop/")
    experiment.refresh_from_db()
    assert experiment.status == "running"
    merchandiser.post(f"{base}/stop/", {"confirmed": "yes"})
    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert audit(shop) == [("system:tests", "create"), ("user:merchandiser", "start"), ("user:merchandiser", "stop")]


def test_schedule_in_the_shops_time_and_refusals_show_on_the_page(
    shop: Any, merchandiser: Client, placement: Any
) -> None:
    experiment = draft(shop, placement)
    base = f"/console/{shop.slug}/experiments/{experiment.pk}"
    when = {"starts_at": "2099-07-01T09:00", "stops_at": "2099-07-15T09:00"}

    dialog = merchandiser.post(f"{base}/schedule/", when, HTTP_HX_REQUEST="true").content.decode()
    assert "It starts Wed 1 Jul 2099, 09:00 (Europe/Berlin) and stops Wed 15 Jul 2099, 09:00." in dialog
    assert '<input type="hidden" name="starts_at" value="2099-07-01T09:00">' in dialog

    merchandiser.post(f"{base}/schedule/", {**when, "confirmed": "yes"})
    experiment.refresh_from_db()
    assert experiment.status == "scheduled"
    assert experiment.starts_at == datetime(2099, 7, 1, 7, 0, tzinfo=UTC)  # 09:00 CEST
    assert audit(shop)[-1] == ("user:merchandiser", "schedule")

    other = draft(shop, PlacementFactory(shop=shop, slug="cart"), name="Late")
    past = (timezone.localtime(timezone.now() - timedelta(days=1))).strftime("%Y-%m-%dT%H:%M")
    refused = merchandiser.post(
        f"/console/{shop.slug}/experiments/{other.pk}/schedule/",
        {"starts_at": past, "confirmed": "yes"},
        HTTP_HX_REQUEST="true",
    )
    html = refused.content.decode()
    assert refused.status_code == 400
    assert (refused["HX-Retarget"], refused["HX-Reswap"]) == ("#actions", "outerHTML")
    assert html.lstrip().startswith('<section id="actions"')
    assert "Must be in the future; start it now instead" in html

    missing = merchandiser.post(f"/console/{shop.slug}/experiments/{other.pk}/schedule/", {"starts_at": ""})
    assert missing.status_code == 400
    assert '<ul class="field__errors" id="id_starts_at_error"><li>This field is required.</li></ul>' in (
        missing.content.decode()
    )


def test_second_running_experiment_on_a_placement_is_refused(shop: Any, merchandiser: Client, placement: Any) -> None:
    services.experiment_start(experiment=draft(shop, placement, name="First"), actor=SYSTEM)
    second = draft(shop, placement, name="Second")
    response = merchandiser.post(f"/console/{shop.slug}/experiments/{second.pk}/start/", {"confirmed": "yes"})
    page = merchandiser.get(response["Location"]).content.decode()
    assert "Not started: experiment &quot;First&quot; is already running on this placement." in page
    second.refresh_from_db()
    assert second.status == "draft"


def test_delete_only_a_draft(shop: Any, merchandiser: Client, placement: Any) -> None:
    experiment = draft(shop, placement)
    response = merchandiser.post(f"/console/{shop.slug}/experiments/{experiment.pk}/delete/", {"confirmed": "yes"})
    assert response["Location"] == f"/console/{shop.slug}/experiments/"
    assert not Experiment.objects.filter(pk=experiment.pk).exists()
    assert audit(shop)[-1] == ("user:merchandiser", "delete")
