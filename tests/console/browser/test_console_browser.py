"""The console in headless Chromium on the live server: sign-in, a pinned promotion seen
first in the Preview, a training run followed to the end on a real Celery worker, the
experiment wizard, and every console page without a CSP violation or a script error
(with a screenshot of each in test-artifacts/console/)."""

from typing import Any

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from campaigns.models import Experiment, Promotion
from recommender.models import ModelVersion, TrainingRun
from tests.console.browser.conftest import ConsoleTab, make_user, pass_second_factor, sign_in
from tests.console.conftest import console_routes, console_url
from tests.factories import PlacementFactory, ShopFactory
from tests.recommender.shop_data import build_shop_history

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def route_exists(name: str, **kwargs: Any) -> bool:
    try:
        reverse(f"console:{name}", kwargs=kwargs)
    except NoReverseMatch:
        return False
    return True


def assert_clean(tab: ConsoleTab) -> None:
    """No CSP violation in the current document, no script error, no console error so far."""
    assert tab.csp_violations() == [], tab.page.url
    assert tab.csp_console() == []
    assert tab.errors == []
    assert tab.console_errors == []


@pytest.fixture
def history_shop(db: Any) -> Any:
    """A shop with a history the models can learn from (not trained yet) and a home placement."""
    shop = ShopFactory(retrain_every_hours=0)
    build_shop_history(shop, with_embeddings=True)
    PlacementFactory(shop=shop, slug="home", kind="home")
    return shop


# --- sign-in ----------------------------------------------------------------------------------


def test_sign_in_through_the_form_reaches_the_dashboard(console_tab: ConsoleTab, shop: Any) -> None:
    # Given a viewer of one shop
    make_user(shop, "ada", "viewer")

    # When they get the password wrong, they see the form again with the error
    sign_in(console_tab, "ada", "not the password")
    assert console_tab.page.url == console_tab.base + "/console/login/"
    assert "Please enter a correct username and password" in console_tab.page.inner_text("#login-error")
    assert_clean(console_tab)

    # When they sign in with the right one, they land on their shop's dashboard
    sign_in(console_tab, "ada")
    console_tab.page.wait_for_url(f"{console_tab.base}/console/{shop.slug}/")
    assert console_tab.page.inner_text("h1") == "Dashboard"
    assert "ada" in console_tab.page.inner_text(".sidebar__user")
    assert_clean(console_tab)
    console_tab.screenshot("dashboard-after-sign-in")

    # And signing out (a POST with the CSRF token) ends the session
    with console_tab.page.expect_navigation():
        console_tab.page.click("form[action='/console/logout/'] button")
    assert console_tab.page.url == console_tab.base + "/console/login/"
    console_tab.open(f"/console/{shop.slug}/")
    assert console_tab.page.url.startswith(console_tab.base + "/console/login/?next=")


# --- a pinned promotion comes first in the Preview --------------------------------------------


def preview_skus(tab: ConsoleTab, shop: Any, placement: str) -> list[str]:
    """The Preview page's list for ``placement``, in served order (the form posts through htmx)."""
    tab.open(reverse("console:preview", kwargs={"shop_slug": shop.slug}))
    tab.page.select_option("#preview-form select[name=placement]", placement)
    with tab.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/preview/")) as answer:
        tab.page.click("#preview-form .form-actions button[type=submit]")
    assert answer.value.status == 200
    tab.htmx_idle()
    return tab.page.eval_on_selector_all("#preview-list li[data-sku]", "items => items.map(li => li.dataset.sku)")


@pytest.mark.skipif(not route_exists("preview", shop_slug="s"), reason="console:preview is not there yet")
def test_a_promotion_pinned_to_slot_one_is_first_in_the_preview(console_tab: ConsoleTab, history_shop: Any) -> None:
    shop = history_shop
    make_user(shop, "mia", "merchandiser")
    sign_in(console_tab, "mia")

    # Given the list the home placement serves now, and a product that is not first
    before = preview_skus(console_tab, shop, "home")
    assert len(before) > 1, before
    pinned = before[-1]
    assert_clean(console_tab)

    # When a merchandiser pins it to slot 1 in the promotion editor and publishes it
    console_tab.open(reverse("console:promotion-new", kwargs={"shop_slug": shop.slug}))
    page = console_tab.page
    page.fill("input[name=name]", "Pin the favourite")
    page.fill("[name=skus]", pinned)
    page.check("input[name=action][value=pin]")
    page.fill("input[name=slot]", "1")
    page.check("input[name=scope][value=all]")
    with page.expect_navigation():
        page.click("#promotion-form button[type=submit]")
    promotion = Promotion.objects.get(shop=shop, name="Pin the favourite")
    assert page.url == console_tab.base + reverse("console:promotion", args=[shop.slug, promotion.pk])
    assert_clean(console_tab)
    with page.expect_navigation():
        page.click(f"form[action='{reverse('console:promotion-publish', args=[shop.slug, promotion.pk])}'] button")
    promotion.refresh_from_db()
    assert (promotion.action, promotion.slot, promotion.status) == ("pin", 1, "published")
    console_tab.screenshot("promotion-published")

    # Then the Preview serves it first, and the others keep their order behind it
    after = preview_skus(console_tab, shop, "home")
    assert after == [pinned, *before[:-1]]
    assert_clean(console_tab)
    console_tab.screenshot("preview-with-pin")


# --- training from the Models page, on a real worker -----------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not route_exists("models", shop_slug="s"), reason="console:models is not there yet")
def test_train_now_runs_on_a_worker_and_the_progress_bar_reaches_done(
    console_tab: ConsoleTab, history_shop: Any, training_worker: Any
) -> None:
    shop = history_shop
    admin = make_user(shop, "ana", "admin")
    sign_in(console_tab, "ana")
    pass_second_factor(console_tab, admin)

    # Given the Models page of a shop that was never trained
    console_tab.open(reverse("console:models", kwargs={"shop_slug": shop.slug}))
    assert ModelVersion.objects.filter(shop=shop).count() == 0

    # When the admin picks the collaborative model and presses "Train now"
    console_tab.page.select_option("select[name=kind]", "als")
    console_tab.page.get_by_role("button", name="Train now").click()

    # Then the progress bar appears, and follows the run on the worker to its end
    console_tab.page.locator("#training-progress").wait_for(state="attached")
    console_tab.page.wait_for_selector("#training-progress[data-state=done]", timeout=240_000)
    assert console_tab.page.get_attribute("#training-progress", "value") == "100"
    assert_clean(console_tab)
    console_tab.screenshot("models-trained")
    runs = [(run.kind, run.status, run.attempts, run.error) for run in TrainingRun.objects.filter(shop=shop)]
    assert runs == [("als", TrainingRun.Status.SUCCEEDED, 1, "")]
    version = ModelVersion.objects.get(shop=shop)
    assert (version.kind, version.number, version.status) == ("als", 1, ModelVersion.Status.READY)
    assert "registered als v1" in training_worker.log()


# --- the experiment wizard -------------------------------------------------------------------------


def test_the_wizard_sets_up_an_experiment(console_tab: ConsoleTab, history_shop: Any) -> None:
    shop = history_shop
    make_user(shop, "max", "merchandiser")
    sign_in(console_tab, "max")
    page = console_tab.page

    # Given the wizard, whose sample-size estimate loads by itself (htmx)
    console_tab.open(reverse("console:experiment-new", kwargs={"shop_slug": shop.slug}))
    page.wait_for_selector("#estimate .estimate, #estimate > p.muted:not(:has(a))")
    console_tab.htmx_idle()

    # When the merchandiser names it, picks the placement, two variants and the metric
    page.fill("input[name=name]", "Trending on home")
    page.select_option("select[name=placement]", "home")
    page.fill("input[name='variants-0-name']", "control")
    page.fill("input[name='variants-0-allocation']", "50")
    page.fill("input[name='variants-1-name']", "trending")
    page.fill("input[name='variants-1-allocation']", "50")
    page.select_option("select[name=primary_metric]", "ctr")
    page.fill("input[name=holdout_percent]", "10")

    # Then the estimate beside follows: each variant's share of all shoppers
    page.wait_for_selector("#estimate .split__name:text-is('trending')")
    console_tab.htmx_idle()
    shares = page.eval_on_selector_all(
        "#estimate .split__item",
        "items => items.map(i => [i.querySelector('.split__name').textContent,"
        " i.querySelector('.split__value').textContent])",
    )
    assert shares == [["holdout", "10%"], ["control", "45%"], ["trending", "45%"]]

    # When they save it
    # The form posts through htmx (CSRF from <body hx-headers>) and the server redirects.
    with page.expect_navigation():
        page.click("#wizard .form-actions button[type=submit]")

    # Then the experiment exists as a draft with those variants, and its page shows it
    experiment = Experiment.objects.get(shop=shop, name="Trending on home")
    assert page.url == console_tab.base + reverse("console:experiment", args=[shop.slug, experiment.pk])
    assert (experiment.status, experiment.placement.slug, experiment.primary_metric, experiment.holdout_percent) == (
        "draft",
        "home",
        "ctr",
        10,
    )
    variants = [(v.name, v.allocation, v.is_control) for v in experiment.variants.all()]
    assert variants == [("control", 50, True), ("trending", 50, False)]
    assert "Trending on home" in page.inner_text("h1")
    assert_clean(console_tab)
    console_tab.screenshot("experiment-set-up")


# --- every page: no CSP violation, no script error; screenshots ----------------------------------------


def test_every_console_page_loads_without_csp_violations_or_errors(
    console_tab: ConsoleTab, world: dict[str, Any], shop: Any, members: dict[str, Any]
) -> None:
    # Given a shop with a history, so that lists and charts have something to show
    build_shop_history(shop, with_embeddings=True)
    probe: Client = world["clients"]["admin"]
    sign_in(console_tab, "admin")
    pass_second_factor(console_tab, members["admin"])

    visited = []
    problems: dict[str, dict[str, Any]] = {}
    for name in sorted(console_routes()):
        params = console_routes()[name]
        missing = params - set(world["kwargs"])
        assert not missing, f"console:{name} needs {missing}: add them to the world (tests/console/conftest.py)"
        url = console_url(name, world["kwargs"])
        # Which of them are HTML pages for GET: asked of the server first (POST-only
        # routes answer 405, downloads are not pages).
        answer = probe.get(url)
        if answer.status_code == 405 or not answer.get("Content-Type", "").startswith("text/html"):
            continue
        if name in {"login", "logout"}:
            continue
        # When the admin opens it in the browser
        response = console_tab.open(url)
        console_tab.htmx_idle()
        console_tab.page.wait_for_load_state("networkidle")
        # Then it answers, and nothing on it broke the policy or threw
        found = {
            "status": response.status if response is not None else None,
            "csp violations": console_tab.csp_violations(),
            "script errors": list(console_tab.errors),
            "console errors": list(console_tab.console_errors),
        }
        if found != {"status": 200, "csp violations": [], "script errors": [], "console errors": []}:
            problems[name] = found
        console_tab.errors.clear()
        console_tab.console_errors.clear()
        console_tab.screenshot(name)
        visited.append(name)

    assert problems == {}
    assert console_tab.csp_console() == []
    # The shell, the catalog, the data, merchandising and the shop pages are among them.
    for name in ("dashboard", "products", "product", "data", "placements", "promotions", "experiments", "audit"):
        assert name in visited
    # No page landed in the browser's storage (hx-history="false", historyCacheSize 0).
    assert console_tab.page.evaluate("() => Object.keys(localStorage)") == []
