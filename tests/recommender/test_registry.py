"""Activation, rollback, retention and loading of model versions."""

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from catalog.audit import Actor
from catalog.models import AuditEntry
from recommender import registry
from recommender.artifacts import ArtifactCorrupt, artifact_absolute_path
from recommender.models import ActiveModel, ModelVersion
from recommender.registry import activation_decision, model_rollback, model_version_activate
from recommender.selectors import active_versions_for_shop, versions_awaiting_review
from tests.recommender.versions import make_version, tiny_trending

HUMAN = Actor(label="user:merchandiser", user_id=None)


def _pointer_updates(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "recommender_activemodel"')]


@pytest.mark.parametrize(
    ("new_metrics", "activate"),
    [
        ({"ndcg_at_10": 0.21, "cases": 50}, True),  # better
        ({"ndcg_at_10": 0.19, "cases": 50}, True),  # 5 % worse: within tolerance
        ({"ndcg_at_10": 0.1899, "cases": 50}, False),  # a little more than 5 % worse
        ({"cases": 50}, False),  # no metric
        ({"ndcg_at_10": float("nan"), "cases": 50}, False),
        ({"ndcg_at_10": 0.5, "cases": 0}, False),  # measured on nobody
    ],
)
def test_activation_needs_a_human_only_when_the_metric_got_worse_beyond_the_tolerance(
    quiet_shop, settings, new_metrics, activate
):
    settings.TRAINING_ACTIVATION_TOLERANCE = 0.05
    active = make_version(quiet_shop, 1, metrics={"ndcg_at_10": 0.2, "cases": 50})

    decision = activation_decision(kind="trending", metrics=new_metrics, active=active)

    assert decision.activate is activate
    assert decision.reason.startswith("activated automatically" if activate else "waiting for review")


def test_the_first_version_and_one_after_an_unmeasured_version_activate_automatically(quiet_shop):
    unmeasured = make_version(quiet_shop, 1, metrics={"cases": 0})

    assert activation_decision(kind="trending", metrics={"cases": 0}, active=None).activate
    assert activation_decision(kind="trending", metrics={"ndcg_at_10": 0.01, "cases": 9}, active=unmeasured).activate


def test_activation_is_one_update_of_the_pointer_and_one_audit_entry(quiet_shop):
    v1, v2 = make_version(quiet_shop, 1), make_version(quiet_shop, 2)
    model_version_activate(version=v1, actor=HUMAN)

    with CaptureQueriesContext(connection) as queries:
        pointer = model_version_activate(version=v2, actor=HUMAN)

    assert len(_pointer_updates(queries.captured_queries)) == 1
    assert (pointer.version_id, pointer.previous_version_id, pointer.activated_by) == (v2.pk, v1.pk, HUMAN.label)
    entries = list(AuditEntry.objects.filter(shop=quiet_shop, object_type="model_version").order_by("id"))
    assert [(e.action, e.object_id, e.before, e.after) for e in entries] == [
        ("activate", str(v1.pk), None, {"version_id": v1.pk}),
        ("activate", str(v2.pk), {"version_id": v1.pk}, {"version_id": v2.pk}),
    ]


def test_activating_the_active_version_changes_nothing(quiet_shop):
    v1 = make_version(quiet_shop, 1)
    model_version_activate(version=v1, actor=HUMAN)

    with CaptureQueriesContext(connection) as queries:
        model_version_activate(version=v1, actor=HUMAN)

    assert _pointer_updates(queries.captured_queries) == []
    assert AuditEntry.objects.filter(object_type="model_version").count() == 1


def test_rollback_swaps_back_in_one_update_and_twice_restores(quiet_shop):
    v1, v2 = make_version(quiet_shop, 1), make_version(quiet_shop, 2)
    model_version_activate(version=v1, actor=HUMAN)
    model_version_activate(version=v2, actor=HUMAN)

    with CaptureQueriesContext(connection) as queries:
        pointer = model_rollback(shop=quiet_shop, kind="trending", actor=HUMAN)

    assert len(_pointer_updates(queries.captured_queries)) == 1
    assert (pointer.version_id, pointer.previous_version_id) == (v1.pk, v2.pk)
    assert model_rollback(shop=quiet_shop, kind="trending", actor=HUMAN).version_id == v2.pk
    rollbacks = AuditEntry.objects.filter(shop=quiet_shop, action="rollback").order_by("id")
    assert [(e.before, e.after) for e in rollbacks] == [
        ({"version_id": v2.pk}, {"version_id": v1.pk}),
        ({"version_id": v1.pk}, {"version_id": v2.pk}),
    ]


def test_rollback_without_a_previous_version_fails(quiet_shop):
    model_version_activate(version=make_version(quiet_shop, 1), actor=HUMAN)

    with pytest.raises(ValidationError, match="no previous trending version"):
        model_rollback(shop=quiet_shop, kind="trending", actor=HUMAN)


def test_archived_versions_cannot_be_activated(quiet_shop):
    v1 = make_version(quiet_shop, 1)
    ModelVersion.objects.filter(pk=v1.pk).update(status=ModelVersion.Status.ARCHIVED)

    with pytest.raises(ValidationError, match="only ready versions"):
        model_version_activate(version=v1, actor=HUMAN)
    assert not ActiveModel.objects.exists()


def test_retention_keeps_the_newest_n_and_the_active_and_previous_ones(quiet_shop, artifact_dir):
    versions = [make_version(quiet_shop, n, metrics={"ndcg_at_10": n / 10, "cases": 5}) for n in range(1, 8)]
    model_version_activate(version=versions[0], actor=HUMAN)
    model_version_activate(version=versions[1], actor=HUMAN)  # active v2, previous v1

    archived = registry.model_versions_apply_retention(shop_id=quiet_shop.pk, kind="trending", keep=3)

    assert archived == [3, 4]
    statuses = dict(ModelVersion.objects.filter(shop=quiet_shop).values_list("number", "status"))
    assert statuses == {1: "ready", 2: "ready", 3: "archived", 4: "archived", 5: "ready", 6: "ready", 7: "ready"}
    assert sorted(int(p.name) for p in (artifact_dir / str(quiet_shop.pk) / "trending").iterdir()) == [1, 2, 5, 6, 7]
    # Archived versions keep their metrics.
    assert ModelVersion.objects.get(shop=quiet_shop, number=3).metrics == {"ndcg_at_10": 0.3, "cases": 5}
    assert registry.model_versions_apply_retention(shop_id=quiet_shop.pk, kind="trending", keep=3) == []


def test_the_selector_returns_every_active_version_in_one_query(quiet_shop, django_assert_num_queries):
    trending = make_version(quiet_shop, 1)
    als = make_version(quiet_shop, 1, kind="als")
    model_version_activate(version=trending, actor=HUMAN)
    model_version_activate(version=als, actor=HUMAN)

    with django_assert_num_queries(1):
        active = active_versions_for_shop(quiet_shop.pk)

    assert [(a.kind, a.version_id, a.number, a.artifact_path) for a in active] == [
        ("als", als.pk, 1, als.artifact_path),
        ("trending", trending.pk, 1, trending.artifact_path),
    ]
    assert active[0].directory == artifact_absolute_path(als.artifact_path)


def test_newer_ready_versions_than_the_active_one_await_review(quiet_shop):
    v1, v2 = make_version(quiet_shop, 1), make_version(quiet_shop, 2)
    model_version_activate(version=v1, actor=HUMAN)

    assert list(versions_awaiting_review(quiet_shop)) == [v2]


def test_loading_the_active_version_verifies_it_and_gives_the_same_scores(quiet_shop):
    version = make_version(quiet_shop, 1)
    model_version_activate(version=version, actor=HUMAN)
    (active,) = active_versions_for_shop(quiet_shop.pk)

    loaded = registry.active_version_load(active)

    assert (loaded.version_id, loaded.kind, loaded.number) == (version.pk, "trending", 1)
    assert loaded.items.all_ids == ("10", "11", "12")
    np.testing.assert_array_equal(loaded.model.scores(), tiny_trending().scores())


def test_a_corrupted_artifact_refuses_to_load_and_marks_the_version_failed(quiet_shop, artifact_dir):
    version = make_version(quiet_shop, 1)
    arrays = artifact_absolute_path(version.artifact_path) / registry.MODEL_DIR / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0xFF
    arrays.write_bytes(bytes(data))

    with pytest.raises(ArtifactCorrupt):
        registry.model_version_load(
            version_id=version.pk,
            kind="trending",
            number=1,
            artifact_path=version.artifact_path,
            sha256=version.artifact_sha256,
        )

    version.refresh_from_db()
    assert version.status == ModelVersion.Status.FAILED
    assert "does not match its checksum" in version.error
