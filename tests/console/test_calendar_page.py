"""The calendar: a month of the shop's local days with the promotions live at some time
each day and the seasonal boosts in their window (with the multiplier at noon)."""

import re
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from django.test import Client

from campaigns import services
from catalog.audit import Actor
from tests.factories import PromotionFactory, SeasonalBoostFactory

SYSTEM = Actor.system("tests")


def days(html: str) -> dict[str, list[str]]:
    """Each day of the grid (its accessible name) -> "name detail" of its entries."""
    found = {}
    for label, body in re.findall(
        r'<span class="calendar__date"><span class="visually-hidden">([^<]+)</span>(.*?)</td>', html, re.S
    ):
        found[label] = [
            f"{name} {detail}"
            for name, detail in re.findall(
                r'title="[^"]*">([^<]+)</a><span class="cal-entry__detail">([^<]+)</span>', body
            )
        ]
    return found


@pytest.fixture
def december(shop: Any) -> None:
    """Campaigns of a shop in Berlin with a known December 2026."""

    def published(**fields: Any) -> None:
        promotion = services.promotion_create(shop=shop, actor=SYSTEM, fields={"target": {"tags": ["x"]}, **fields})
        services.promotion_publish(promotion=promotion, actor=SYSTEM, now=datetime(2026, 1, 1, tzinfo=UTC))

    published(name="Weekend deal", action="boost", factor=1.2, weekdays=[5, 6])
    published(
        name="Xmas pin",
        action="pin",
        slot=1,
        starts_at=datetime(2026, 12, 23, 23, 0, tzinfo=UTC),  # 24 Dec 00:00 in Berlin
        ends_at=datetime(2026, 12, 26, 23, 0, tzinfo=UTC),  # 27 Dec 00:00 in Berlin
    )
    published(
        name="Late nights",
        action="bury",
        yearly_from="12-30",
        yearly_until="12-31",
        daily_from=time(22),
        daily_until=time(2),
    )
    PromotionFactory(shop=shop, name="Still a draft", status="draft")
    PromotionFactory(shop=shop, name="On hold", status="paused")
    SeasonalBoostFactory(shop=shop, name="Gifts", factor=2.0, yearly_from="12-20", yearly_until="12-22", ramp_up_days=2)
    SeasonalBoostFactory(shop=shop, name="Switched off", yearly_from="12-01", yearly_until="12-31", active=False)
    SeasonalBoostFactory(
        shop=shop,
        name="New year",
        recurrence="once",
        yearly_from="",
        yearly_until="",
        first_day=date(2027, 1, 2),
        last_day=date(2027, 1, 3),
        factor=1.5,
    )


@pytest.mark.usefixtures("december")
def test_a_known_month_shows_what_is_live_each_local_day(shop: Any, viewer: Client) -> None:
    response = viewer.get(f"/console/{shop.slug}/calendar/", {"month": "2026-12"})
    html = response.content.decode()
    grid = days(html)

    assert response.status_code == 200
    assert len(grid) == 35  # Monday 30 November to Sunday 3 January
    assert next(iter(grid)) == "Monday 30 November" and list(grid)[-1] == "Sunday 3 January"
    assert html.count("calendar__day--outside") == 4  # 30 Nov, 1-3 Jan
    assert grid["Tuesday 1 December"] == []
    assert grid["Saturday 5 December"] == ["Weekend deal x1.2"]
    assert grid["Sunday 20 December"] == ["Weekend deal x1.2", "Gifts x1.25"]  # ramping up: 12 h of 48
    assert grid["Monday 21 December"] == ["Gifts x1.75"]
    assert grid["Tuesday 22 December"] == ["Gifts x2"]
    assert grid["Wednesday 23 December"] == []
    assert grid["Thursday 24 December"] == ["Xmas pin slot 1"]
    assert grid["Saturday 26 December"] == ["Weekend deal x1.2", "Xmas pin slot 1"]
    assert grid["Sunday 27 December"] == ["Weekend deal x1.2"]
    # 22:00-02:00 on its days only: the window's local dates decide, not the night.
    assert grid["Tuesday 29 December"] == []
    assert grid["Wednesday 30 December"] == ["Late nights bury"]
    assert grid["Thursday 31 December"] == ["Late nights bury"]
    assert grid["Friday 1 January"] == []
    assert grid["Saturday 2 January"] == ["Weekend deal x1.2", "New year x1.5"]
    assert "3 promotions and 1 seasonal boost live this month" in html
    assert "Still a draft" not in html and "On hold" not in html and "Switched off" not in html


@pytest.mark.usefixtures("december")
def test_month_links_and_htmx_partial(shop: Any, viewer: Client) -> None:
    url = f"/console/{shop.slug}/calendar/"
    partial = viewer.get(url, {"month": "2026-12", "show": "seasonal"}, HTTP_HX_REQUEST="true")
    html = partial.content.decode()

    assert html.lstrip().startswith('<section id="calendar"')
    assert "<html" not in html
    previous = f"{url}?month=2026-11&amp;show=seasonal"
    following = f"{url}?month=2027-01&amp;show=seasonal"
    assert f'href="{previous}" hx-get="{previous}"' in html
    assert f'href="{following}" hx-get="{following}"' in html
    assert days(html)["Sunday 20 December"] == ["Gifts x1.25"]  # boosts only
    assert '<p class="muted">1 seasonal boost live this month</p>' in html


def test_promotions_only_and_links_to_each_object(shop: Any, viewer: Client) -> None:
    promotion = PromotionFactory(shop=shop, name="Always on", status="published")
    boost = SeasonalBoostFactory(shop=shop, name="All year", yearly_from="01-01", yearly_until="12-31")
    url = f"/console/{shop.slug}/calendar/"

    both = viewer.get(url, {"month": "2027-02"}).content.decode()
    assert days(both)["Monday 1 February"] == ["Always on x2", "All year x1.5"]
    assert f'href="/console/{shop.slug}/promotions/{promotion.pk}/"' in both
    assert f'href="/console/{shop.slug}/seasonal/{boost.pk}/"' in both

    promotions = viewer.get(url, {"month": "2027-02", "show": "promotions"}).content.decode()
    assert days(promotions)["Monday 1 February"] == ["Always on x2"]


def test_without_a_month_it_shows_this_one_with_today_marked(shop: Any, viewer: Client) -> None:
    html = viewer.get(f"/console/{shop.slug}/calendar/", {"month": "not-a-month"}).content.decode()
    assert html.count('aria-current="date"') == 1
