"""Merchandising pages, part 3: seasonal boosts (list, create, edit, delete), the
suggestions to accept or dismiss, and "measure now", which queues the task on commit."""

import re
from datetime import date
from typing import Any

import pytest
from django.test import Client

from campaigns import views
from campaigns.models import SeasonalBoost, SeasonalSuggestion
from catalog.models import AuditEntry
from tests.factories import CategoryFactory, SeasonalBoostFactory

BOOST = {
    "name": "Christmas gifts",
    "recurrence": "yearly",
    "yearly_from": "11-20",
    "yearly_until": "12-24",
    "first_day": "2026-12-01",  # left over from "once": dropped
    "categories": ["Gifts"],
    "tags": "gift, Xmas",
    "factor": "1.6",
    "ramp_up_days": "7",
    "ramp_down_days": "2",
    "active": "on",
}


def audit(shop: Any) -> list[tuple[str, str, str]]:
    return [(e.action, e.object_type, e.object_repr) for e in AuditEntry.objects.filter(shop=shop).order_by("at", "id")]


@pytest.fixture
def suggestion(shop: Any) -> SeasonalSuggestion:
    return SeasonalSuggestion.objects.create(
        shop=shop,
        category=CategoryFactory(shop=shop, name="Christmas", path="Gifts > Christmas"),
        first_day=date(2026, 12, 7),
        last_day=date(2026, 12, 13),
        lift=1.84,
        window_volume=312.0,
        suggested_factor=1.42,
    )


def test_list_shows_windows_targets_and_what_applies_now(shop: Any, viewer: Client) -> None:
    SeasonalBoostFactory(shop=shop, name="All year", yearly_from="01-01", yearly_until="12-31", tags=["gift"])
    SeasonalBoostFactory(
        shop=shop,
        name="Long gone",
        recurrence="once",
        yearly_from="",
        yearly_until="",
        first_day=date(2020, 3, 1),
        last_day=date(2020, 3, 31),
        ramp_up_days=3,
    )
    SeasonalBoostFactory(shop=shop, name="Paused", active=False)

    html = viewer.get(f"/console/{shop.slug}/seasonal/").content.decode()

    assert re.findall(r'class="table__primary" href="[^"]+">([^<]+)</a>', html) == ["All year", "Long gone", "Paused"]
    assert "<td>Every year 1 Jan to 31 Dec</td>" in html
    assert '1 Mar 2020 to 31 Mar 2020<span class="table__secondary">ramps 3 days up, 0 down</span>' in html
    assert '<span class="badge badge--neutral">Gifts</span><span class="badge badge--info">#gift</span>' in html
    assert re.findall(r'<td>(<span class="badge badge--\w+">[^<]+</span>)</td>', html) == [
        '<span class="badge badge--success">Live x1.5</span>',
        '<span class="badge badge--info">Outside its window</span>',
        '<span class="badge badge--neutral">Switched off</span>',
    ]
    assert "New seasonal boost" not in html and "Measure now" not in html  # a viewer


def test_empty_page_says_what_to_do(shop: Any, merchandiser: Client) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/seasonal/").content.decode()
    assert "No seasonal boosts yet — create one to lift a season's products" in html
    assert f'href="/console/{shop.slug}/seasonal/new/">Create a seasonal boost</a>' in html
    assert "No suggestions right now." in html
    assert '<section id="calendar"' in html  # the calendar, with boosts only


def test_create_a_yearly_boost(shop: Any, merchandiser: Client) -> None:
    CategoryFactory(shop=shop, name="Gifts", path="Gifts")
    response = merchandiser.post(f"/console/{shop.slug}/seasonal/new/", BOOST)

    boost = SeasonalBoost.objects.get(shop=shop)
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/seasonal/")
    assert (boost.recurrence, boost.yearly_from, boost.yearly_until, boost.first_day) == (
        "yearly",
        "11-20",
        "12-24",
        None,
    )
    assert (boost.categories, boost.tags, boost.factor) == (["Gifts"], ["gift", "Xmas"], 1.6)
    assert (boost.ramp_up_days, boost.ramp_down_days, boost.active) == (7, 2, True)
    assert audit(shop) == [("create", "seasonal_boost", "Christmas gifts")]


def test_switch_a_boost_to_once_drops_its_yearly_window(shop: Any, merchandiser: Client) -> None:
    boost = SeasonalBoostFactory(shop=shop)
    response = merchandiser.post(
        f"/console/{shop.slug}/seasonal/{boost.pk}/",
        {**BOOST, "categories": [], "recurrence": "once", "first_day": "2026-12-01", "last_day": "2026-12-07"},
    )
    boost.refresh_from_db()
    assert response.status_code == 302
    assert (boost.recurrence, boost.yearly_from, boost.yearly_until) == ("once", "", "")
    assert (boost.first_day, boost.last_day) == (date(2026, 12, 1), date(2026, 12, 7))
    assert audit(shop) == [("update", "seasonal_boost", "Christmas gifts")]


def test_boost_errors_are_inline(shop: Any, merchandiser: Client) -> None:
    url = f"/console/{shop.slug}/seasonal/new/"
    no_window = merchandiser.post(url, {**BOOST, "yearly_from": "", "yearly_until": "02-30x"})
    html = no_window.content.decode()
    assert no_window.status_code == 400
    assert (
        '<ul class="field__errors" id="id_yearly_from_error"><li>A yearly window needs both days (MM-DD).</li></ul>'
        in html
    )
    assert "Ensure this value has at most 5 characters (it has 6)." in html

    nothing = merchandiser.post(url, {**BOOST, "categories": [], "tags": " , "})
    assert '<ul class="field__errors" id="id_categories_error"><li>Choose at least one category or tag.</li></ul>' in (
        nothing.content.decode()
    )

    once = merchandiser.post(url, {**BOOST, "recurrence": "once", "first_day": "2026-12-09", "last_day": "2026-12-01"})
    assert '<ul class="field__errors" id="id_last_day_error"><li>Must be on or after first_day</li></ul>' in (
        once.content.decode()
    )

    strong = merchandiser.post(url, {**BOOST, "factor": "11"})
    assert "Ensure this value is less than or equal to 10." in strong.content.decode()
    assert SeasonalBoost.objects.count() == 0


def test_delete_a_boost_asks_first(shop: Any, merchandiser: Client) -> None:
    boost = SeasonalBoostFactory(shop=shop, name="Spring")
    url = f"/console/{shop.slug}/seasonal/{boost.pk}/delete/"
    dialog = merchandiser.post(url)
    assert dialog.status_code == 200 and "Delete seasonal boost &quot;Spring&quot;?" in dialog.content.decode()
    assert SeasonalBoost.objects.filter(pk=boost.pk).exists()
    merchandiser.post(url, {"confirmed": "yes"})
    assert not SeasonalBoost.objects.filter(pk=boost.pk).exists()
    assert audit(shop) == [("delete", "seasonal_boost", "Spring")]


def test_suggestions_are_listed_and_accepted_with_a_chosen_factor(
    shop: Any, merchandiser: Client, suggestion: SeasonalSuggestion
) -> None:
    html = merchandiser.get(f"/console/{shop.slug}/seasonal/").content.decode()
    assert '<span class="table__primary">Gifts &gt; Christmas</span>' in html
    assert "Mon 7 Dec \u2013 Sun 13 Dec 2026" in html
    assert '<td class="num">x1.84</td>' in html
    assert f'name="factor" id="factor-{suggestion.pk}" value="1.42"' in html

    response = merchandiser.post(
        f"/console/{shop.slug}/seasonal/suggestions/{suggestion.pk}/accept/", {"factor": "1.3"}
    )

    assert response["Location"] == f"/console/{shop.slug}/seasonal/"
    suggestion.refresh_from_db()
    boost = SeasonalBoost.objects.get(shop=shop)
    assert (suggestion.status, suggestion.boost) == ("accepted", boost)
    assert (boost.name, boost.categories, boost.factor) == ("Christmas 7 Dec", ["Gifts > Christmas"], 1.3)
    assert (boost.recurrence, boost.first_day, boost.last_day) == ("once", date(2026, 12, 7), date(2026, 12, 13))
    assert audit(shop) == [
        ("create", "seasonal_boost", "Christmas 7 Dec"),
        ("accept", "seasonal_suggestion", str(suggestion)),
    ]
    page = merchandiser.get(response["Location"]).content.decode()
    assert "Seasonal boost &quot;Christmas 7 Dec&quot; is created from the suggestion." in page
    assert "No suggestions right now." in page

    twice = merchandiser.post(f"/console/{shop.slug}/seasonal/suggestions/{suggestion.pk}/accept/")
    assert "Not accepted: the suggestion is already accepted." in merchandiser.get(twice["Location"]).content.decode()


def test_dismiss_a_suggestion(shop: Any, merchandiser: Client, suggestion: SeasonalSuggestion) -> None:
    merchandiser.post(f"/console/{shop.slug}/seasonal/suggestions/{suggestion.pk}/dismiss/")
    suggestion.refresh_from_db()
    assert suggestion.status == "dismissed"
    assert [a[:2] for a in audit(shop)] == [("dismiss", "seasonal_suggestion")]
    assert SeasonalBoost.objects.count() == 0


def test_measure_now_queues_the_suggestion_task_when_the_request_commits(
    shop: Any, merchandiser: Client, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    queued: list[int] = []
    monkeypatch.setattr(views.seasonal_suggestions_refresh, "delay", queued.append)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = merchandiser.post(f"/console/{shop.slug}/seasonal/measure/")
    assert (response.status_code, response["Location"]) == (302, f"/console/{shop.slug}/seasonal/")
    assert queued == []  # not before the commit
    for callback in callbacks:
        callback()
    assert queued == [shop.pk]
    page = merchandiser.get(response["Location"]).content.decode()
    assert "Measuring last year&#x27;s seasonal lift." in page
