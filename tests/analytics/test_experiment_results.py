"""Experiment results from the per-unit table: units, exposures, metrics with intervals,
CUPED with the pre-period revenue the rollups fix per unit, the sequential looks, the CSV
export, and the sample-ratio check that blocks "promote winner" (service, API, console)."""

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.experiments import experiment_results, per_unit_csv_lines, srm_check_passes
from analytics.models import ExperimentLook, ExperimentUnit
from campaigns.models import Experiment
from tests.analytics.helpers import catch_up, event, serve, split_experiment, unit_hash_of
from tests.factories import PlacementFactory, ProductFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def started() -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


@pytest.fixture
def experiment(shop: Any, started: datetime) -> Experiment:
    placement = PlacementFactory(shop=shop, slug="pdp")
    return split_experiment(shop, placement, started=started, name="Bigger mix", primary_metric="conversion_rate")


def units(shop: Any, experiment: Experiment, variant: str, count: int, *, offset: int = 0) -> list[ExperimentUnit]:
    """Per-unit rows as the rollups write them (for the large-sample checks)."""
    rows = [
        ExperimentUnit(
            shop=shop,
            experiment_id=experiment.pk,
            experiment_version=1,
            unit_hash=unit_hash_of(f"{variant}-{offset + n}"),
            variant=variant,
            first_hour=experiment.started_at,
            exposures=2,
            impressions=2,
            clicks=1 if n % 10 == 0 else 0,
            purchases=1 if n % 50 == 0 else 0,
            revenue=Decimal("30.00") if n % 50 == 0 else Decimal("0.00"),
        )
        for n in range(count)
    ]
    return ExperimentUnit.objects.bulk_create(rows, batch_size=5000)


def test_results_count_units_and_exposures_from_served_lists_and_attributed_events(
    shop: Any, experiment: Experiment, started: datetime
) -> None:
    product = ProductFactory(shop=shop)
    pk = experiment.pk
    for n in range(6):
        shopper = ShopperFactory(shop=shop)
        variant = "control" if n < 3 else "b"
        at = started + timedelta(hours=n)
        lists = [
            serve(
                shop,
                [product],
                at + timedelta(minutes=m),
                shopper=shopper,
                unit_id=f"s{n}",
                experiment=(pk, 1, variant),
            )
            for m in range(2)
        ]
        if n in (0, 3, 4):
            event(shop, "click", shopper, product, at + timedelta(minutes=3), served=lists[1])
        if n in (3, 4):
            event(shop, "purchase", shopper, product, at + timedelta(minutes=9), served=lists[1], price="15.00")
    catch_up(shop.pk)

    results = experiment_results(experiment)

    assert results is not None
    variants = {v.name: v for v in results.analysis.variants}
    assert [(v.units, v.exposures) for v in variants.values()] == [(3, 6), (3, 6)]
    conversion = {m.metric: m.estimate.estimate for m in variants["b"].metrics}
    assert conversion["ctr"] == pytest.approx(2 / 3)
    assert conversion["conversion_rate"] == pytest.approx(2 / 3)
    assert conversion["revenue_per_unit"] == pytest.approx(10.0)
    comparison = results.comparisons_of("conversion_rate")[0]
    assert comparison.variant == "b"
    assert comparison.classic.difference.estimate == pytest.approx(2 / 3)
    assert not results.analysis.srm.flagged and results.analysis.can_promote


def test_cuped_narrows_the_revenue_interval_with_each_shoppers_pre_period_revenue(
    shop: Any, experiment: Experiment, started: datetime
) -> None:
    product = ProductFactory(shop=shop, price=Decimal("1.00"))
    pk = experiment.pk
    for n in range(40):
        shopper = ShopperFactory(shop=shop)
        habit = 5 + (n * 7) % 23  # what this shopper spends anyway
        event(shop, "purchase", shopper, product, started - timedelta(days=3, minutes=n), price=f"{habit}.00")
        served = serve(
            shop,
            [product],
            started + timedelta(hours=1, minutes=n),
            shopper=shopper,
            unit_id=f"c{n}",
            experiment=(pk, 1, "control" if n % 2 else "b"),
        )
        spent = habit + (n % 3)  # mostly habit, a little noise
        event(
            shop,
            "purchase",
            shopper,
            product,
            served.served_at + timedelta(minutes=5),
            served=served,
            price=f"{spent}.00",
        )
    catch_up(shop.pk)

    results = experiment_results(experiment)

    assert results is not None
    pre = dict(ExperimentUnit.objects.filter(experiment_id=pk).values_list("unit_hash", "pre_revenue"))
    assert pre[unit_hash_of("c0")] == Decimal("5.00") and pre[unit_hash_of("c1")] == Decimal("12.00")
    revenue = results.comparisons_of("revenue_per_unit")[0]
    assert revenue.cuped is not None
    classic, adjusted = revenue.classic.difference, revenue.cuped.comparison.difference
    assert revenue.cuped.variance_reduction > 0.8
    assert (adjusted.high - adjusted.low) < (classic.high - classic.low) / 2


def test_an_analysis_of_unchanged_data_is_not_a_new_look(shop: Any, experiment: Experiment) -> None:
    units(shop, experiment, "control", 200)
    units(shop, experiment, "b", 200)

    first = experiment_results(experiment)
    again = experiment_results(experiment)
    units(shop, experiment, "b", 10, offset=200)
    third = experiment_results(experiment)

    assert [r.looks for r in (first, again, third) if r is not None] == [1, 1, 2]
    look = ExperimentLook.objects.get(experiment_id=experiment.pk, experiment_version=1)
    assert look.summary["units"] == {"control": 200, "b": 210}
    assert set(look.tau_squared) == {"ctr", "conversion_rate", "revenue_per_unit"}  # no add-to-carts: no tau yet


def test_the_per_unit_export_has_one_row_per_unit(shop: Any, experiment: Experiment) -> None:
    units(shop, experiment, "control", 3)

    rows = list(csv.reader(io.StringIO("".join(per_unit_csv_lines(experiment, 1)))))

    assert rows[0] == [
        "unit",
        "variant",
        "variants_seen",
        "first_hour",
        "exposures",
        "impressions",
        "clicks",
        "add_to_carts",
        "purchases",
        "revenue",
        "pre_revenue",
    ]
    assert sorted(row[0] for row in rows[1:]) == sorted(unit_hash_of(f"control-{n}") for n in range(3))
    assert {tuple(row[4:]) for row in rows[1:]} == {
        ("2", "2", "1", "0", "1", "30.00", "0.00"),
        ("2", "2", "0", "0", "0", "0.00", "0.00"),
    }


@pytest.fixture
def lost_exposures(shop: Any, experiment: Experiment) -> Experiment:
    """100,000 units designed 50/50, with 5% of variant b's lost."""
    units(shop, experiment, "control", 50_000)
    units(shop, experiment, "b", 47_500)
    return experiment


@pytest.mark.slow
def test_a_five_percent_loss_at_100k_units_is_flagged_and_blocks_promotion(
    shop: Any, lost_exposures: Experiment, secret_key: str, api: Any, merchandiser: Client
) -> None:
    results = experiment_results(lost_exposures)
    assert results is not None
    srm = results.analysis.srm
    assert srm.flagged and srm.p_value < 0.0005 and srm.observed == (50_000, 47_500)
    assert not results.analysis.can_promote
    assert srm_check_passes(lost_exposures) is False

    # The management API asks the same check and refuses.
    response = api(secret_key).post(f"/api/v1/experiments/{lost_exposures.pk}/promote", {"variant": "b"}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "srm_failed"

    # The console shows the banner, offers no promote form, and refuses a forged POST.
    base = f"/console/{shop.slug}/experiments/{lost_exposures.pk}"
    region = merchandiser.get(f"{base}/results/", HTTP_HX_REQUEST="true").content.decode()
    refused = merchandiser.post(f"{base}/promote/", {"variant": "b", "confirmed": "yes"})
    page = merchandiser.get(refused["Location"]).content.decode()

    assert (
        '<div class="alert alert--danger" role="alert" id="srm-banner"><p><strong>Sample ratio mismatch.</strong>'
        in region
    )
    assert (
        '<button class="button button--secondary" type="button" disabled aria-describedby="promote-refused">' in region
    )
    assert 'name="variant"' not in region
    assert refused.status_code == 302 and refused["Location"] == f"{base}/"
    assert "Not promoted: " in page
    lost_exposures.refresh_from_db()
    assert (lost_exposures.status, lost_exposures.winner) == ("running", "")


def test_a_sound_split_can_be_promoted_from_the_results_after_confirming(
    shop: Any, experiment: Experiment, merchandiser: Client
) -> None:
    units(shop, experiment, "control", 500)
    units(shop, experiment, "b", 500, offset=500)
    base = f"/console/{shop.slug}/experiments/{experiment.pk}"

    region = merchandiser.get(f"{base}/results/", HTTP_HX_REQUEST="true").content.decode()
    dialog = merchandiser.post(f"{base}/promote/", {"variant": "b"}, HTTP_HX_REQUEST="true")
    experiment.refresh_from_db()
    assert experiment.status == "running"  # asking first
    done = merchandiser.post(f"{base}/promote/", {"variant": "b", "confirmed": "yes"}, HTTP_HX_REQUEST="true")

    assert '<div class="alert alert--success" id="srm-banner"><p><strong>The split is as designed</strong>' in region
    assert '<option value="control">control</option><option value="b">b</option>' in region
    assert "Promote &quot;b&quot;?" in dialog.content.decode()
    assert done.status_code == 200 and done["HX-Redirect"] == f"{base}/"
    experiment.refresh_from_db()
    assert (experiment.status, experiment.winner) == ("promoted", "b")


@pytest.mark.parametrize(
    ("variant", "message"),
    [("nope", "Not promoted: choose one of the variants (control, b)."), ("", "Not promoted: choose one")],
)
def test_promoting_an_unknown_variant_is_refused_with_a_reason(
    shop: Any, experiment: Experiment, merchandiser: Client, variant: str, message: str
) -> None:
    base = f"/console/{shop.slug}/experiments/{experiment.pk}"

    response = merchandiser.post(f"{base}/promote/", {"variant": variant}, follow=True)

    assert message in response.content.decode()
    experiment.refresh_from_db()
    assert experiment.status == "running"
