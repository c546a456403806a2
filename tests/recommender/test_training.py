"""The training service: request, claim by compare-and-swap, lease, attempts, stages, registry."""

import datetime as dt
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from catalog.audit import Actor
from catalog.models import AuditEntry, Event
from recommender import training
from recommender.algorithms.registry import ALGORITHMS
from recommender.algorithms.trending import Trending
from recommender.artifacts import artifact_absolute_path, artifact_write
from recommender.kinds import KINDS, KindSpec
from recommender.models import ActiveModel, ModelVersion, TrainingRun
from recommender.registry import model_version_load
from recommender.selectors import servable_versions
from recommender.serving import indexes
from recommender.serving.bundle import model_load
from recommender.serving.indexes import HnswIndex
from tests.factories import ShopFactory
from tests.recommender.shop_data import build_shop_history

SYSTEM = Actor.system("tests")
Status = TrainingRun.Status


class Gated(Trending):
    """Trending whose fit waits until the test opens the gate."""

    kind = "test_gated"
    entered = threading.Event()
    gate = threading.Event()

    def _fit(self, interactions, features):
        type(self).entered.set()
        assert type(self).gate.wait(30), "the test never opened the gate"
        super()._fit(interactions, features)


class Failing(Trending):
    """Trending whose fit raises ``error``."""

    kind = "test_failing"
    error: BaseException = ValueError("no")

    def _fit(self, interactions, features):
        raise type(self).error


@pytest.fixture
def test_kinds(monkeypatch):
    Gated.entered.clear()
    Gated.gate.clear()
    for algorithm in (Gated, Failing):
        monkeypatch.setitem(ALGORITHMS, algorithm.kind, algorithm)
    monkeypatch.setitem(KINDS, "gated", KindSpec("gated", Gated.kind))
    monkeypatch.setitem(KINDS, "failing", KindSpec("failing", Failing.kind))


@pytest.fixture
def sent(monkeypatch):
    """Task messages the service sends: (run id, countdown)."""
    messages = []
    monkeypatch.setattr(training, "_enqueue", lambda run_id, countdown=0: messages.append((run_id, countdown)))
    return messages


@pytest.fixture
def history_shop(transactional_db):
    shop = ShopFactory(retrain_every_hours=0)
    build_shop_history(shop)
    return shop


def _run(shop, kind="trending", **fields):
    return TrainingRun.objects.create(shop=shop, kind=kind, requested_by="tests", enqueued_at=timezone.now(), **fields)


def _expire(run_id):
    TrainingRun.objects.filter(pk=run_id).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))


def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- requesting ----------------------------------------------------------------------------


def test_a_request_queues_one_run_per_kind_and_sends_it_on_commit(quiet_shop, sent, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        requested = training.training_run_request(shop=quiet_shop, kinds=["als", "trending"], actor=SYSTEM)

    runs = [item.run for item in requested]
    assert [(r.kind, r.status, r.requested_by, item.created) for r, item in zip(runs, requested, strict=True)] == [
        ("als", Status.QUEUED, "system:tests", True),
        ("trending", Status.QUEUED, "system:tests", True),
    ]
    assert sent == [(runs[0].pk, 0), (runs[1].pk, 0)]
    assert AuditEntry.objects.filter(shop=quiet_shop, action="train").count() == 2


def test_a_kind_already_queued_or_running_is_not_requested_again(quiet_shop, sent, django_capture_on_commit_callbacks):
    running = _run(quiet_shop, "als", status=Status.RUNNING)
    with django_capture_on_commit_callbacks(execute=True):
        first = training.training_run_request(shop=quiet_shop, kinds=["trending"], actor=SYSTEM)
    with django_capture_on_commit_callbacks(execute=True):
        again = training.training_run_request(shop=quiet_shop, kinds=["trending", "als"], actor=SYSTEM)

    assert [(item.run.pk, item.created) for item in again] == [(first[0].run.pk, False), (running.pk, False)]
    assert sent == [(first[0].run.pk, 0)]
    assert TrainingRun.objects.count() == 2


def test_without_kinds_every_kind_the_shop_can_train_is_requested(quiet_shop, sent):
    requested = training.training_run_request(shop=quiet_shop, actor=SYSTEM)

    # No product has a text embedding: the kinds that need one are left out.
    assert [item.run.kind for item in requested] == [
        "trending",
        "also_viewed",
        "bought_together",
        "item_knn",
        "als",
        "sasrec",
    ]


@pytest.mark.parametrize(
    ("kinds", "config", "message"),
    [(["nope"], None, "unknown model kind"), (["als"], {"factorz": 3}, "unknown AlsConfig settings: factorz")],
)
def test_a_bad_request_fails_at_once_and_queues_nothing(quiet_shop, sent, kinds, config, message):
    with pytest.raises(ValueError, match=message):
        training.training_run_request(shop=quiet_shop, kinds=kinds, actor=SYSTEM, config=config)

    assert not TrainingRun.objects.exists()


# -- claiming ------------------------------------------------------------------------------


def test_of_two_claims_one_wins(quiet_shop):
    run = _run(quiet_shop)

    first = training.training_run_claim(run_id=run.pk, owner="worker-a")
    second = training.training_run_claim(run_id=run.pk, owner="worker-b")

    assert (first.status, first.lease_owner, first.attempts, first.stage) == (Status.RUNNING, "worker-a", 1, "dataset")
    assert second is None
    run.refresh_from_db()
    assert (run.lease_owner, run.attempts) == ("worker-a", 1)


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_claims_exactly_one_wins():
    run = _run(ShopFactory())
    barrier = threading.Barrier(4)
    results = []

    def claim(owner):
        try:
            barrier.wait()
            results.append(training.training_run_claim(run_id=run.pk, owner=owner))
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(f"worker-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [r for r in results if r is not None]
    assert len(results) == 4 and len(winners) == 1
    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempts) == (Status.RUNNING, winners[0].lease_owner, 1)


def test_a_run_under_a_live_lease_is_not_taken_over(quiet_shop):
    run = _run(quiet_shop)
    training.training_run_claim(run_id=run.pk, owner="worker-a")

    assert training.training_run_claim(run_id=run.pk, owner="worker-b") is None


def test_a_run_whose_lease_expired_is_taken_over_as_the_next_attempt(quiet_shop):
    run = _run(quiet_shop)
    training.training_run_claim(run_id=run.pk, owner="worker-a")
    TrainingRun.objects.filter(pk=run.pk).update(stage="fit", progress=10)
    _expire(run.pk)

    taken = training.training_run_claim(run_id=run.pk, owner="worker-b")

    assert (taken.lease_owner, taken.attempts, taken.status) == ("worker-b", 2, Status.RUNNING)
    assert taken.error.startswith("attempt 1 stopped in stage fit at 10% without finishing")


def test_a_poison_run_fails_after_three_attempts_with_its_error(quiet_shop, settings):
    settings.TASK_MAX_ATTEMPTS = 3
    run = _run(quiet_shop)
    for attempt, owner in enumerate(("a", "b", "c"), start=1):
        assert training.training_run_claim(run_id=run.pk, owner=owner).attempts == attempt
        TrainingRun.objects.filter(pk=run.pk).update(stage="fit", progress=10)
        _expire(run.pk)

    assert training.training_run_claim(run_id=run.pk, owner="d") is None

    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 3)
    assert run.error.startswith("gave up after 3 attempts; last: attempt 3 stopped in stage fit at 10%")
    assert run.finished_at is not None


def test_finished_and_missing_runs_are_not_claimed(quiet_shop):
    done = _run(quiet_shop, status=Status.SUCCEEDED)

    assert training.training_run_claim(run_id=done.pk, owner="a") is None
    assert training.training_run_claim(run_id=done.pk + 1000, owner="a") is None


# -- executing -------------------------------------------------------------------------------


def test_a_run_trains_evaluates_saves_and_registers_an_active_version(history_shop, sent, artifact_dir):
    run = _run(history_shop, "als")

    ended = training.training_run_execute(run_id=run.pk)

    assert (ended.status, ended.stage, ended.progress, ended.attempts, ended.error) == (
        Status.SUCCEEDED,
        "done",
        100,
        1,
        "",
    )
    version = ModelVersion.objects.get(training_run=run)
    events = Event.objects.filter(shop=history_shop).count()
    assert (version.kind, version.number, version.status) == ("als", 1, ModelVersion.Status.READY)
    assert (version.event_count, version.shopper_count, version.item_count) == (events, 60, 40)
    assert version.config["factors"] == 64 and version.config["half_life_days"] == history_shop.decay_half_life_days
    assert set(version.durations) == {"dataset", "fit", "evaluate", "save", "total"}
    assert version.metrics["cases"] > 0 and 0 < version.metrics["ndcg_at_10"] <= 1
    assert {"recall_at_20", "hit_rate_at_10", "mrr", "coverage_at_10", "novelty_at_10", "cold_hit_rate_at_10"} <= set(
        version.metrics
    )
    assert version.activation_note == "activated automatically: first version of this kind"
    assert ActiveModel.objects.get(shop=history_shop, kind="als").version_id == version.pk
    loaded = model_version_load(
        version_id=version.pk,
        kind="als",
        number=1,
        artifact_path=version.artifact_path,
        sha256=version.artifact_sha256,
    )
    assert loaded.model.n_items == 40 and len(loaded.items) == 40
    assert sorted(p.name for p in (artifact_dir / str(history_shop.pk) / "als").iterdir()) == ["1"]


def test_progress_is_readable_while_a_run_trains_and_the_heartbeat_renews_the_lease(
    history_shop, sent, settings, test_kinds
):
    settings.TRAINING_LEASE_S = 5
    run = _run(history_shop, "gated")
    worker = threading.Thread(target=lambda: (training.training_run_execute(run_id=run.pk), connection.close()))
    worker.start()
    try:
        assert Gated.entered.wait(20)
        running = TrainingRun.objects.get(pk=run.pk)
        assert (running.status, running.stage, running.progress) == (Status.RUNNING, "fit", 10)
        _wait_for(lambda: TrainingRun.objects.get(pk=run.pk).heartbeat_at > running.heartbeat_at)
        assert TrainingRun.objects.get(pk=run.pk).lease_expires_at > running.lease_expires_at
    finally:
        Gated.gate.set()
        worker.join(30)
    assert TrainingRun.objects.get(pk=run.pk).status == Status.SUCCEEDED


def test_a_worker_that_lost_its_lease_registers_nothing(history_shop, sent, settings, test_kinds):
    run = _run(history_shop, "gated")
    worker = threading.Thread(target=lambda: (training.training_run_execute(run_id=run.pk), connection.close()))
    worker.start()
    try:
        assert Gated.entered.wait(20)
        _expire(run.pk)
        assert training.training_run_claim(run_id=run.pk, owner="worker-b") is not None
    finally:
        Gated.gate.set()
        worker.join(30)

    run.refresh_from_db()
    assert (run.status, run.lease_owner, run.attempts) == (Status.RUNNING, "worker-b", 2)
    assert not ModelVersion.objects.exists()


def test_a_cancelled_run_stops_without_a_version(history_shop, sent, settings, test_kinds):
    settings.TRAINING_LEASE_S = 5
    run = _run(history_shop, "gated")
    worker = threading.Thread(target=lambda: (training.training_run_execute(run_id=run.pk), connection.close()))
    worker.start()
    try:
        assert Gated.entered.wait(20)
        assert training.training_run_cancel(run=run, actor=SYSTEM)
    finally:
        Gated.gate.set()
        worker.join(30)

    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert not ModelVersion.objects.exists()
    assert AuditEntry.objects.filter(action="cancel", object_id=str(run.pk)).count() == 1


def test_bad_data_fails_the_run_at_once_with_its_error(history_shop, sent, test_kinds):
    Failing.error = ValueError("item features are inconsistent")
    run = _run(history_shop, "failing")

    ended = training.training_run_execute(run_id=run.pk)

    assert (ended.status, ended.attempts) == (Status.FAILED, 1)
    assert ended.error.startswith("ValueError: item features are inconsistent (at test_training.py:")
    assert sent == []


def test_a_transient_error_is_retried_with_backoff_until_the_attempts_are_used_up(
    history_shop, sent, settings, test_kinds
):
    settings.TASK_MAX_ATTEMPTS = 3
    Failing.error = OperationalError("server closed the connection unexpectedly")
    run = _run(history_shop, "failing")

    for _ in range(3):
        training.training_run_execute(run_id=run.pk)

    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.FAILED, 3)
    assert run.error.startswith("gave up after 3 attempts; last: OperationalError: server closed the connection")
    assert sent == [(run.pk, 10), (run.pk, 20)]


def test_a_shop_without_events_fails_with_a_reason(quiet_shop, sent):
    run = _run(quiet_shop, "trending")

    ended = training.training_run_execute(run_id=run.pk)

    assert ended.status == Status.FAILED
    assert ended.error.startswith("NothingToTrain: the shop has no counted events on known products yet")


def test_leftovers_of_a_killed_attempt_are_replaced_by_one_complete_version(history_shop, sent, artifact_dir):
    run = _run(history_shop, "trending", status=Status.RUNNING, attempts=1, lease_owner="dead")
    _expire(run.pk)
    artifact_write(shop_id=history_shop.pk, kind="trending", number=1, write=lambda d: (d / "x").write_bytes(b"x"))
    (artifact_dir / str(history_shop.pk) / "trending" / ".tmp-1-0123abcd").mkdir()

    ended = training.training_run_execute(run_id=run.pk)

    assert (ended.status, ended.attempts) == (Status.SUCCEEDED, 2)
    version = ModelVersion.objects.get(shop=history_shop, kind="trending")
    assert sorted(p.name for p in (artifact_dir / str(history_shop.pk) / "trending").iterdir()) == ["1"]
    assert (artifact_absolute_path(version.artifact_path) / "model" / "model.json").exists()


def test_a_version_worse_than_the_active_one_waits_for_a_human(history_shop, sent):
    training.training_run_execute(run_id=_run(history_shop, "trending").pk)
    first = ModelVersion.objects.get(shop=history_shop, kind="trending")
    ModelVersion.objects.filter(pk=first.pk).update(metrics={**first.metrics, "ndcg_at_10": 0.99})

    training.training_run_execute(run_id=_run(history_shop, "trending").pk)

    second = ModelVersion.objects.get(shop=history_shop, kind="trending", number=2)
    assert second.status == ModelVersion.Status.READY
    assert second.activation_note.startswith("waiting for review: ndcg_at_10")
    assert ActiveModel.objects.get(shop=history_shop, kind="trending").version_id == first.pk


def test_retraining_keeps_the_artifacts_of_the_last_versions_only(history_shop, sent, settings, artifact_dir):
    settings.ARTIFACTS_KEEP_VERSIONS = 2
    for _ in range(4):
        training.training_run_execute(run_id=_run(history_shop, "trending").pk)

    statuses = dict(ModelVersion.objects.filter(shop=history_shop).values_list("number", "status"))
    assert statuses == {1: "archived", 2: "archived", 3: "ready", 4: "ready"}
    assert sorted(p.name for p in (artifact_dir / str(history_shop.pk) / "trending").iterdir()) == ["3", "4"]
    pointer = ActiveModel.objects.get(shop=history_shop, kind="trending")
    assert (pointer.version.number, pointer.previous_version.number) == (4, 3)


@pytest.fixture
def wide_shop(transactional_db):
    """300 products: enough for an approximate index (serving asks it for 100 at a time)."""
    shop = ShopFactory(retrain_every_hours=0)
    build_shop_history(shop, n_products=300, n_shoppers=150, with_embeddings=False)
    return shop


def test_a_run_of_a_vector_kind_builds_the_serving_index_before_it_registers(wide_shop, sent, settings, monkeypatch):
    settings.SERVING_ANN_MIN_ITEMS = 10  # an approximate index
    run = _run(wide_shop, "als")

    training.training_run_execute(run_id=run.pk)

    version = ModelVersion.objects.get(training_run=run)
    entry = f"1-{version.artifact_sha256[:16]}-{indexes.FORMAT}"
    cached = settings.SERVING_INDEX_DIR / str(wide_shop.pk) / "als"
    assert sorted(p.name for p in cached.iterdir()) == [entry, f"{entry}.lock"]

    def no_build(*args, **kwargs):
        raise AssertionError("serving built the index again")

    monkeypatch.setattr(indexes, "_build_into", no_build)
    (servable,) = servable_versions(wide_shop.pk, [version.pk])
    served = model_load(servable, wide_shop.pk)
    assert isinstance(served.index, HnswIndex) and served.index.size == served.model.items_with_vectors().sum()


def test_retraining_removes_the_serving_indexes_of_archived_versions(wide_shop, sent, settings):
    settings.SERVING_ANN_MIN_ITEMS = 10
    settings.ARTIFACTS_KEEP_VERSIONS = 2
    kind_dir = settings.SERVING_INDEX_DIR / str(wide_shop.pk) / "als"
    kind_dir.mkdir(parents=True)
    (kind_dir / "1-0123456789abcdef-hnsw-m16-efc100").mkdir()  # an index of an older format
    legacy = settings.SERVING_INDEX_DIR / str(wide_shop.pk) / "als-4-0123456789abcdef-hnsw-m16-efc100"
    legacy.mkdir()  # the flat layout of earlier releases

    for _ in range(3):
        training.training_run_execute(run_id=_run(wide_shop, "als").pk)

    kept = {p.name.split("-")[0] for p in kind_dir.iterdir()}
    assert kept == {"2", "3"}
    assert all(p.name.endswith((indexes.FORMAT, f"{indexes.FORMAT}.lock")) for p in kind_dir.iterdir())
    assert not legacy.exists()


# -- beat: reaper and schedule ----------------------------------------------------------------


def test_the_reaper_requeues_runs_whose_worker_died_and_fails_exhausted_ones(
    quiet_shop, sent, settings, django_capture_on_commit_callbacks
):
    settings.TASK_MAX_ATTEMPTS = 3
    dead = _run(quiet_shop, "als", status=Status.RUNNING, attempts=1, lease_owner="w1", stage="fit", progress=10)
    exhausted = _run(quiet_shop, "trending", status=Status.RUNNING, attempts=3, lease_owner="w2", stage="save")
    alive = _run(quiet_shop, "sasrec", status=Status.RUNNING, attempts=1, lease_owner="w3")
    for run in (dead, exhausted):
        _expire(run.pk)
    TrainingRun.objects.filter(pk=alive.pk).update(lease_expires_at=timezone.now() + dt.timedelta(seconds=30))

    with django_capture_on_commit_callbacks(execute=True):
        report = training.training_runs_reap()

    assert (report.requeued, report.failed, report.resent) == ([dead.pk], [exhausted.pk], [])
    assert sent == [(dead.pk, 0)]
    dead.refresh_from_db()
    exhausted.refresh_from_db()
    assert (dead.status, dead.lease_owner, dead.attempts, dead.stage) == (Status.QUEUED, "", 1, "queued")
    assert dead.error.startswith("attempt 1 stopped in stage fit at 10%")
    assert exhausted.status == Status.FAILED
    assert exhausted.error.startswith("gave up after 3 attempts; last: attempt 3 stopped in stage save")
    assert TrainingRun.objects.get(pk=alive.pk).status == Status.RUNNING


def test_the_reaper_resends_queued_runs_whose_message_was_lost(
    quiet_shop, sent, settings, django_capture_on_commit_callbacks
):
    settings.TRAINING_REQUEUE_AFTER_S = 60
    lost = _run(quiet_shop, "als")
    fresh = _run(quiet_shop, "trending")
    TrainingRun.objects.filter(pk=lost.pk).update(enqueued_at=timezone.now() - dt.timedelta(seconds=61))

    with django_capture_on_commit_callbacks(execute=True):
        first = training.training_runs_reap()
    with django_capture_on_commit_callbacks(execute=True):
        second = training.training_runs_reap()

    assert (first.resent, second.resent) == ([lost.pk], [])
    assert sent == [(lost.pk, 0)]
    assert TrainingRun.objects.get(pk=fresh.pk).status == Status.QUEUED


def test_retraining_is_requested_by_each_shops_cadence(db, sent):
    now = timezone.now()
    daily = ShopFactory(retrain_every_hours=24)
    build_shop_history(daily, n_products=4, n_shoppers=2, with_embeddings=False)
    on_demand = ShopFactory(retrain_every_hours=0)
    build_shop_history(on_demand, n_products=4, n_shoppers=2, with_embeddings=False)
    ShopFactory(retrain_every_hours=24)  # no events yet
    recent = _run(daily, "als", status=Status.SUCCEEDED)
    old = _run(daily, "trending", status=Status.FAILED)
    TrainingRun.objects.filter(pk=recent.pk).update(created_at=now - dt.timedelta(hours=23))
    TrainingRun.objects.filter(pk=old.pk).update(created_at=now - dt.timedelta(hours=25))

    requested = training.training_schedule_due(now=now)

    assert [(item.run.shop_id, item.run.kind) for item in requested] == [
        (daily.pk, kind) for kind in ("trending", "also_viewed", "bought_together", "item_knn", "sasrec")
    ]
    # The runs just queued are the last ones now: nothing is due again.
    assert training.training_schedule_due(now=now) == []
