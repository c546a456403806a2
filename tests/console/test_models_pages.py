"""The Models page: versions with offline metrics and charts, train now with its progress
region, activation and rollback (admin), and the event weights and half-life editor."""

import json
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from catalog.audit import Actor
from catalog.models import AuditEntry
from recommender import registry, training
from recommender.kinds import KINDS
from recommender.models import ActiveModel, ModelVersion, TrainingRun
from tests.console.conftest import client_for, make_member
from tests.factories import ShopFactory
from tests.recommender.shop_data import build_shop_history
from tests.recommender.versions import make_version


@pytest.fixture(autouse=True)
def artifact_dir(settings: Any, tmp_path: Path) -> Path:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    return settings.ARTIFACT_DIR


def url(shop: Any, name: str = "models") -> str:
    return reverse(f"console:{name}", args=[shop.slug])


def metrics(ndcg: float, hit_rate: float) -> dict[str, Any]:
    return {"ndcg_at_10": ndcg, "recall_at_20": 0.3, "hit_rate_at_10": hit_rate, "mrr": 0.1, "cases": 40}


@pytest.fixture
def two_versions(shop: Any) -> tuple[ModelVersion, ModelVersion]:
    """trending v1 and v2, v2 active (v1 before it)."""
    first = make_version(shop, 1, metrics=metrics(0.125, 0.25))
    second = make_version(shop, 2, metrics=metrics(0.15, 0.5))
    registry.model_version_activate(version=first, actor=Actor.system("tests"))
    registry.model_version_activate(version=second, actor=Actor.system("tests"))
    return first, second


# --- the page ---------------------------------------------------------------------------------


def test_an_untrained_shop_shows_every_kind_and_what_to_do(shop: Any, viewer: Any, merchandiser: Any) -> None:
    response = viewer.get(url(shop))

    assert response.status_code == 200
    page = response.content.decode()
    assert all(f">{kind}</a>" in page for kind in KINDS)
    assert page.count("Not trained") == len(KINDS)
    assert "Nothing is training" in page
    assert "No versions yet" in page
    assert ">Train now</button>" not in page  # a viewer cannot train
    assert ">Train now</button>" in merchandiser.get(url(shop)).content.decode()


def test_versions_show_their_metrics_charts_and_serving_status(
    shop: Any, viewer: Any, admin: Any, two_versions: tuple[ModelVersion, ModelVersion]
) -> None:
    response = viewer.get(url(shop), {"kind": "trending"})

    page = response.content.decode()
    assert response.status_code == 200
    assert '<tr data-version="2">' in page and '<tr data-version="1">' in page
    assert page.index('data-version="2"') < page.index('data-version="1"')  # newest first
    assert "12.50%" in page and "15.00%" in page  # NDCG@10 of v1 and v2
    assert "25.00%" in page and "50.00%" in page  # HR@10
    assert page.count('<svg class="chart"') == 2  # NDCG@10 and hit rate over versions
    assert "NDCG@10 of trending by version" in page
    assert ">Serving</span>" in page and ">Previous</span>" in page
    assert "Activate v1" not in page and "Roll back" not in page  # a viewer changes nothing
    admin_page = admin.get(url(shop), {"kind": "trending"}).content.decode()
    assert "Activate v1" in admin_page and "Activate v2" not in admin_page
    assert "Roll back to the previous version" in admin_page


def test_switching_kind_with_htmx_renders_only_the_registry(shop: Any, viewer: Any, htmx: dict[str, str]) -> None:
    make_version(shop, 1, kind="als", metrics=metrics(0.2, 0.4))

    response = viewer.get(url(shop), {"kind": "als"}, **htmx)

    page = response.content.decode()
    assert response.status_code == 200
    assert page.lstrip().startswith('<div id="registry"')
    assert "Versions of als" in page
    assert "<html" not in page


# --- train now and its progress ------------------------------------------------------------


def test_train_now_queues_every_kind_and_shows_a_queued_progress_bar(
    shop: Any, merchandiser: Any, htmx: dict[str, str]
) -> None:
    build_shop_history(shop, with_embeddings=True)

    response = merchandiser.post(url(shop, "model-train"), {"kind": ""}, **htmx)

    assert response.status_code == 200
    runs = TrainingRun.objects.filter(shop=shop)
    assert sorted(runs.values_list("kind", flat=True)) == sorted(KINDS)
    assert set(runs.values_list("status", flat=True)) == {"queued"}
    page = response.content.decode()
    assert '<progress id="training-progress" data-state="queued"' in page
    assert 'hx-trigger="every 1s"' in page
    ids = ",".join(str(pk) for pk in runs.order_by("kind", "pk").values_list("pk", flat=True))
    assert f"runs={ids.replace(',', '%2C')}" in page
    assert AuditEntry.objects.filter(shop=shop, action="train").count() == len(KINDS)


def test_train_now_without_htmx_redirects_to_the_page_following_the_run(shop: Any, merchandiser: Any) -> None:
    response = merchandiser.post(url(shop, "model-train"), {"kind": "trending"})

    run = TrainingRun.objects.get(shop=shop)
    assert response.status_code == 302
    assert response["Location"] == f"{url(shop)}?runs={run.pk}"
    page = merchandiser.get(response["Location"]).content.decode()
    assert 'data-state="queued"' in page


def test_train_now_while_a_run_is_in_flight_follows_that_run(shop: Any, merchandiser: Any) -> None:
    first = merchandiser.post(url(shop, "model-train"), {"kind": "trending"})
    second = merchandiser.post(url(shop, "model-train"), {"kind": "trending"})

    assert TrainingRun.objects.filter(shop=shop).count() == 1
    assert first["Location"] == second["Location"]


def test_the_progress_bar_follows_a_run_to_done_and_reloads_the_registry(
    shop: Any, merchandiser: Any, htmx: dict[str, str]
) -> None:
    build_shop_history(shop, with_embeddings=False)
    merchandiser.post(url(shop, "model-train"), {"kind": "trending"})
    run = TrainingRun.objects.get(shop=shop)
    poll = f"{url(shop, 'model-training')}?runs={run.pk}"

    # While a worker trains it (as its lease records the stage), the bar shows its percent
    TrainingRun.objects.filter(pk=run.pk).update(status="running", attempts=1, stage="fit", progress=40)
    running = merchandiser.get(poll, **htmx)
    assert '<progress id="training-progress" data-state="running"' in running.content.decode()
    assert 'value="40"' in running.content.decode()
    assert "HX-Trigger" not in running

    # When the run ends, the last poll shows done, stops polling and reloads the registry
    TrainingRun.objects.filter(pk=run.pk).update(status="queued", attempts=0, stage="queued", progress=0)
    training.training_run_execute(run_id=run.pk)
    done = merchandiser.get(poll, **htmx)
    page = done.content.decode()
    assert '<progress id="training-progress" data-state="done"' in page
    assert 'value="100"' in page
    assert "every 1s" not in page
    assert json.loads(done["HX-Trigger"]) == {"models-changed": {}}
    assert ">v1</a>" in page
    assert ModelVersion.objects.get(shop=shop, kind="trending").number == 1


def test_a_failed_run_shows_failed_with_its_reason(shop: Any, merchandiser: Any, htmx: dict[str, str]) -> None:
    merchandiser.post(url(shop, "model-train"), {"kind": "trending"})  # the shop has no events
    run = TrainingRun.objects.get(shop=shop)
    training.training_run_execute(run_id=run.pk)

    page = merchandiser.get(f"{url(shop, 'model-training')}?runs={run.pk}", **htmx).content.decode()

    assert '<progress id="training-progress" data-state="failed"' in page
    assert "the shop has no counted events on known products yet" in page


def test_the_page_shows_runs_in_flight_without_being_told_which(shop: Any, viewer: Any) -> None:
    TrainingRun.objects.create(shop=shop, kind="als", requested_by="tests")

    page = viewer.get(url(shop)).content.decode()

    assert 'data-state="queued"' in page


def test_another_shops_runs_are_not_shown(shop: Any, viewer: Any, htmx: dict[str, str]) -> None:
    foreign = TrainingRun.objects.create(shop=ShopFactory(), kind="als", requested_by="tests")

    page = viewer.get(f"{url(shop, 'model-training')}?runs={foreign.pk}", **htmx).content.decode()

    assert "training-progress" not in page
    assert "Nothing is training" in page


@pytest.mark.parametrize("runs", ["abc", "1;2", ",".join(["1"] * 20)])
def test_malformed_run_ids_are_a_clear_400(shop: Any, viewer: Any, htmx: dict[str, str], runs: str) -> None:
    response = viewer.get(url(shop, "model-training"), {"runs": runs}, **htmx)

    assert response.status_code == 400
    assert "comma-separated run ids" in response.content.decode()


def test_an_unknown_kind_is_refused_with_the_form(shop: Any, merchandiser: Any, htmx: dict[str, str]) -> None:
    response = merchandiser.post(url(shop, "model-train"), {"kind": "magic"}, **htmx)

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert not TrainingRun.objects.filter(shop=shop).exists()


# --- activate and roll back ------------------------------------------------------------------


def test_an_admin_activates_an_older_version(
    shop: Any, admin: Any, htmx: dict[str, str], two_versions: tuple[ModelVersion, ModelVersion]
) -> None:
    first, second = two_versions

    response = admin.post(url(shop, "model-activate"), {"version": first.pk}, **htmx)

    assert response.status_code == 200
    pointer = ActiveModel.objects.get(shop=shop, kind="trending")
    assert (pointer.version_id, pointer.previous_version_id) == (first.pk, second.pk)
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="registry"')
    assert "trending v1 is now served." in page
    entry = AuditEntry.objects.filter(shop=shop, action="activate").latest("pk")
    assert (entry.object_id, entry.actor_label) == (str(first.pk), "user:admin")


def test_an_admin_rolls_back_and_a_second_rollback_restores(
    shop: Any, admin: Any, two_versions: tuple[ModelVersion, ModelVersion]
) -> None:
    first, second = two_versions

    response = admin.post(url(shop, "model-rollback"), {"kind": "trending"})

    assert response.status_code == 302
    assert response["Location"] == f"{url(shop)}?kind=trending"
    assert ActiveModel.objects.get(shop=shop, kind="trending").version_id == first.pk
    assert "Rolled back: trending v1 is served again." in admin.get(response["Location"]).content.decode()
    admin.post(url(shop, "model-rollback"), {"kind": "trending"})
    assert ActiveModel.objects.get(shop=shop, kind="trending").version_id == second.pk
    assert AuditEntry.objects.filter(shop=shop, action="rollback").count() == 2


def test_rolling_back_without_a_previous_version_says_why(shop: Any, admin: Any) -> None:
    response = admin.post(url(shop, "model-rollback"), {"kind": "als"}, follow=True)

    assert "no previous als version to roll back to" in response.content.decode()
    assert not ActiveModel.objects.filter(shop=shop).exists()


def test_merchandisers_cannot_activate_or_roll_back(
    shop: Any, merchandiser: Any, two_versions: tuple[ModelVersion, ModelVersion]
) -> None:
    first, _ = two_versions

    assert merchandiser.post(url(shop, "model-activate"), {"version": first.pk}).status_code == 403
    assert merchandiser.post(url(shop, "model-rollback"), {"kind": "trending"}).status_code == 403
    assert ActiveModel.objects.get(shop=shop, kind="trending").version.number == 2


def test_another_shops_version_cannot_be_activated(shop: Any, admin: Any) -> None:
    foreign = make_version(ShopFactory(), 1)

    response = admin.post(url(shop, "model-activate"), {"version": foreign.pk})

    assert response.status_code == 404
    assert not ActiveModel.objects.exists()


@pytest.mark.parametrize(("name", "data"), [("model-activate", {"version": "v2"}), ("model-rollback", {"kind": "x"})])
def test_bad_activation_input_is_a_clear_400(shop: Any, admin: Any, name: str, data: dict[str, str]) -> None:
    response = admin.post(url(shop, name), data)

    assert response.status_code == 400
    assert response.content.decode() in ("Choose a version to activate (its id).", "Choose a model kind to roll back.")


# --- event weights and half-life -----------------------------------------------------------


LEARNING = {
    "decay_half_life_days": "21",
    "weight_view": "0.5",
    "weight_click": "2",
    "weight_add_to_cart": "5",
    "weight_purchase": "12",
    "weight_impression": "0",
}


def test_a_merchandiser_changes_event_weights_and_half_life(shop: Any, merchandiser: Any) -> None:
    response = merchandiser.post(url(shop, "model-learning"), LEARNING)

    assert response.status_code == 302
    assert response["Location"] == url(shop)
    shop.refresh_from_db()
    assert shop.event_weights == {"view": 0.5, "click": 2.0, "add_to_cart": 5.0, "purchase": 12.0, "impression": 0.0}
    assert shop.decay_half_life_days == 21.0
    entry = AuditEntry.objects.get(shop=shop, action="update", object_type="shop")
    assert set(entry.after) == {"event_weights", "decay_half_life_days"}
    page = merchandiser.get(url(shop)).content.decode()
    assert "Saved. The next training of every model learns with these settings." in page
    assert "<dt>Purchase</dt><dd>12.0</dd>" in page


def test_the_editor_shows_the_current_values(shop: Any, merchandiser: Any) -> None:
    page = merchandiser.get(url(shop, "model-learning")).content.decode()

    assert f'value="{shop.decay_half_life_days}"' in page
    assert 'name="weight_purchase"' in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weight_view": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"decay_half_life_days": "0"}, "Ensure this value is greater than or equal to 0.1."),
        ({"weight_click": "lots"}, "Enter a number."),
        (
            {f"weight_{name}": "0" for name in ("view", "click", "add_to_cart", "purchase")},
            "At least one event type needs a weight above 0",
        ),
    ],
)
def test_bad_learning_settings_are_refused_with_the_reason(
    shop: Any, merchandiser: Any, change: dict[str, str], message: str
) -> None:
    before = (dict(shop.event_weights), shop.decay_half_life_days)

    response = merchandiser.post(url(shop, "model-learning"), {**LEARNING, **change})

    assert response.status_code == 400
    assert message in response.content.decode()
    shop.refresh_from_db()
    assert (shop.event_weights, shop.decay_half_life_days) == before
    assert not AuditEntry.objects.filter(shop=shop, object_type="shop").exists()


def test_viewers_cannot_edit_learning_settings(shop: Any, viewer: Any) -> None:
    assert viewer.get(url(shop, "model-learning")).status_code == 403
    assert viewer.post(url(shop, "model-learning"), LEARNING).status_code == 403


def test_a_member_of_another_shop_gets_404(shop: Any, members: dict[str, Any]) -> None:
    outsider = client_for(make_member(ShopFactory(), "outsider", "admin"), verified=True)

    assert outsider.get(url(shop)).status_code == 404
    assert outsider.post(url(shop, "model-train"), {"kind": "als"}).status_code == 404
