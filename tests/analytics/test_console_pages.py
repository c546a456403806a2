"""The console's analytics: the analytics page (filters, charts, breakdowns), the
dashboard's KPI sections, and an experiment's results as a page of its own and as CSV.
(The results region and promote winner are in test_experiment_results.py.)"""

import re
import zoneinfo
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.buckets import day_start, local_date
from campaigns.models import Experiment
from tests.analytics.helpers import catch_up, event, serve, split_experiment
from tests.factories import PlacementFactory, ProductFactory, ShopperFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def experiment(shop: Any) -> Experiment:
    placement = PlacementFactory(shop=shop, slug="pdp")
    return split_experiment(shop, placement, started=timezone.now() - timedelta(days=3), name="Bigger mix")


@pytest.fixture
def traffic(shop: Any, experiment: Experiment) -> Any:
    """Two days ago at noon (local): 3 home lists, one clicked and bought; 1 pdp list in b."""
    zone = zoneinfo.ZoneInfo(shop.timezone)
    day = local_date(timezone.now(), zone) - timedelta(days=2)
    at = day_start(day, zone) + timedelta(hours=12)
    PlacementFactory(shop=shop, slug="home")
    product = ProductFactory(shop=shop, price=Decimal("10.00"))
    shopper = ShopperFactory(shop=shop)
    lists = [serve(shop, [product], at + timedelta(minutes=n), placement="home", shopper=shopper) for n in range(3)]
    for served in lists:
        event(shop, "impression", shopper, product, served.served_at + timedelta(seconds=1), served=served)
    event(shop, "click", shopper, product, at + timedelta(minutes=5), served=lists[0])
    event(shop, "purchase", shopper, product, at + timedelta(minutes=9), served=lists[0], price="40.00")
    serve(shop, [product], at, placement="pdp", shopper=shopper, unit_id="u", experiment=(experiment.pk, 1, "b"))
    catch_up(shop.pk)
    return day


def stat(html: str, label: str) -> str:
    found = re.search(rf'<p class="stat__label">{re.escape(label)}</p><p class="stat__value">([^<]+)</p>', html)
    assert found, label
    return found.group(1).strip()


def test_the_analytics_page_shows_totals_charts_and_every_breakdown(shop: Any, viewer: Client, traffic: Any) -> None:
    html = viewer.get(f"/console/{shop.slug}/analytics/").content.decode()

    assert stat(html, "Served lists") == "4"
    assert stat(html, "Click-through rate") == "33.33%"  # 1 click in 3 impressions
    assert stat(html, "Attributed revenue") == "40.00 EUR"
    assert html.count('<svg class="chart"') == 3
    placements = re.findall(r'<td><span class="table__primary">([^<]+)</span></td>\s*<td class="num">(\d+)</td>', html)
    assert ("home", "3") in placements and ("pdp", "1") in placements
    assert "pdp · experiment" in html  # the variant breakdown
    assert 'style="' not in html and "<script>" not in html  # strict CSP


def test_filters_refresh_only_the_report_for_htmx(shop: Any, viewer: Client, traffic: Any) -> None:
    day = traffic.isoformat()

    response = viewer.get(
        f"/console/{shop.slug}/analytics/",
        {"date_from": day, "date_to": day, "granularity": "hour", "placement": "home"},
        HTTP_HX_REQUEST="true",
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="report"') and "<html" not in html
    assert stat(html, "Served lists") == "3"
    assert "Clear filters" in html


def test_a_bad_range_is_explained_and_the_default_shown(shop: Any, viewer: Client, traffic: Any) -> None:
    html = viewer.get(
        f"/console/{shop.slug}/analytics/", {"date_from": "2026-05-02", "date_to": "2026-05-01"}
    ).content.decode()

    assert "From: The start must not be after the end." in html
    assert "Showing the last 30 days instead." in html
    assert stat(html, "Served lists") == "4"


def test_the_dashboard_shows_kpis_per_placement_live_experiments_and_charts(
    shop: Any, viewer: Client, traffic: Any
) -> None:
    html = viewer.get(f"/console/{shop.slug}/").content.decode()

    kpis = html[html.index('id="dashboard-kpis"') :]
    assert stat(kpis, "Served lists") == "4"
    assert stat(kpis, "Attributed revenue") == "40.00 EUR"
    rows = re.findall(r'<td><span class="table__primary mono">([^<]+)</span></td>\s*<td class="num">(\d+)', kpis)
    assert rows == [("home", "3"), ("pdp", "1")]
    assert "home: click-through rate per day" in kpis
    assert ">Bigger mix</a>" in kpis and "Waiting for data" in kpis
    assert "Ingestion health" in html


def test_the_dashboard_of_a_new_shop_says_what_to_do(shop: Any, viewer: Client) -> None:
    html = viewer.get(f"/console/{shop.slug}/").content.decode()

    assert "Nothing served yet. Add the widget to a page" in html
    assert "No experiment is running." in html
    assert "No model is active yet" in html


def test_results_open_as_a_page_of_their_own_and_as_csv(
    shop: Any, viewer: Client, traffic: Any, experiment: Experiment
) -> None:
    base = f"/console/{shop.slug}/experiments/{experiment.pk}"

    page = viewer.get(f"{base}/results/").content.decode()
    download = viewer.get(f"{base}/results.csv")

    assert '<h1 class="page-title">Results of Bigger mix</h1>' in page
    assert '<svg class="chart"' in page
    assert download["Content-Disposition"] == f'attachment; filename="experiment-{experiment.pk}-v1-units.csv"'
    assert len(b"".join(download.streaming_content).decode().splitlines()) == 2


@pytest.mark.parametrize("version", ["7", "one", "-1"])
def test_a_version_the_experiment_never_had_is_not_found(
    shop: Any, viewer: Client, experiment: Experiment, version: str
) -> None:
    base = f"/console/{shop.slug}/experiments/{experiment.pk}"

    assert viewer.get(f"{base}/results/", {"version": version}).status_code == 404
    assert viewer.get(f"{base}/results.csv", {"version": version}).status_code == 404
    assert viewer.get(f"{base}/results/", {"version": "1"}).status_code == 200
