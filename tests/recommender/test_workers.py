"""Training in real Celery worker processes (not eager mode), on the test database.

Broker: Redis when TEST_REDIS_URL is set (CI), else the file-system broker. Each test
bounds every wait and kills its workers in ``finally``.
"""

import json

import pytest

from recommender.artifacts import artifact_verify
from recommender.models import ActiveModel, ModelVersion, TrainingRun
from tests.factories import ShopFactory
from tests.recommender.shop_data import build_shop_history
from tests.recommender.workers import (
    LEASE_S,
    PROCESS_TIMEOUT_S,
    Worker,
    manage,
    send_task,
    wait_until,
    worker_environment,
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

Status = TrainingRun.Status
# A collaborative model that takes a few seconds to fit on the test shop, so a worker
# can be caught (and killed) in the middle of it.
SLOW_ALS = json.dumps({"factors": 256, "iterations": 150})


def _runs(shop):
    return list(TrainingRun.objects.filter(shop=shop).order_by("pk"))


def _kind_dir_entries(artifact_dir, shop, kind):
    return sorted(p.name for p in (artifact_dir / str(shop.pk) / kind).iterdir())


def test_a_worker_trains_every_kind_of_a_shop_end_to_end(tmp_path, artifact_dir):
    env = worker_environment(tmp_path, artifact_dir)
    worker = Worker("solo", env, tmp_path)
    try:
        shop = ShopFactory(slug="demo-like", retrain_every_hours=0)
        build_shop_history(shop)
        worker.wait_ready()

        output = manage(env, "train", "--shop", shop.slug, "--queue")

        runs = _runs(shop)
        assert len(runs) == 8 and output.count("run ") == 8
        wait_until(
            lambda: all(run.is_finished for run in _runs(shop)), timeout=480, interval=0.5, what="all runs finished"
        )
    finally:
        worker.stop()
    runs = _runs(shop)
    assert [(run.kind, run.status, run.attempts, run.error) for run in runs] == [
        (kind, Status.SUCCEEDED, 1, "")
        for kind in (
            "trending",
            "also_viewed",
            "bought_together",
            "item_knn",
            "als",
            "text_similarity",
            "cold_start",
            "sasrec",
        )
    ]
    for run in runs:
        version = ModelVersion.objects.get(training_run=run)
        assert (version.number, version.status, version.event_count) == (1, ModelVersion.Status.READY, 1440)
        assert version.metrics["cases"] > 0, run.kind
        assert set(version.durations) == {"dataset", "fit", "evaluate", "save", "total"}
        assert ActiveModel.objects.get(shop=shop, kind=run.kind).version_id == version.pk
        artifact_verify(version.artifact_path, version.artifact_sha256)
        assert _kind_dir_entries(artifact_dir, shop, run.kind) == ["1"]
    assert f"training run {runs[0].pk}: registered trending v1" in worker.log()
    if "CELERY_BROKER_URL" not in env:
        # The file-system broker keeps its exchange tables under the var directory too
        # (kombu's default is "control" in the working directory, the repository here).
        control = tmp_path / "var" / "broker" / "control"
        assert {"default.exchange", "celery.pidbox.exchange"} <= {p.name for p in control.iterdir()}


def test_a_run_killed_mid_training_finishes_once_on_another_worker(tmp_path, artifact_dir):
    env = worker_environment(tmp_path, artifact_dir)
    first = Worker("first", env, tmp_path)
    second = None
    try:
        shop = ShopFactory(slug="kill-me", retrain_every_hours=0)
        build_shop_history(shop, n_products=200, n_shoppers=500)
        first.wait_ready()
        manage(env, "train", "--shop", shop.slug, "--kind", "als", "--queue", "--config", SLOW_ALS)
        (run,) = _runs(shop)

        def fitting():
            run.refresh_from_db()
            return run.status == Status.RUNNING and run.stage == "fit"

        wait_until(fitting, timeout=PROCESS_TIMEOUT_S, what="the run fitting")
        assert (run.attempts, run.progress) == (1, 10)
        killed = first.kill()
        assert len(killed) == 2  # the pool process and the parent
        run.refresh_from_db()
        assert (run.status, run.stage) == (Status.RUNNING, "fit")  # nobody is left to say otherwise

        # A new worker (with beat, whose reaper puts the run back once its lease expired).
        second = Worker("second", env, tmp_path, beat=True)

        def finished():
            run.refresh_from_db()
            return run.is_finished

        # (the new worker starts, the lease expires, the reaper requeues, the run trains again)
        try:
            wait_until(finished, timeout=2 * PROCESS_TIMEOUT_S + LEASE_S, interval=0.2, what="the run finished")
        except AssertionError as error:
            state = (run.status, run.stage, run.progress, run.attempts, run.error)
            raise AssertionError(f"{error}; run {state}; second worker:\n{second.log()[-3000:]}") from None
    finally:
        first.stop()
        if second is not None:
            second.stop()
    assert (run.status, run.attempts) == (Status.SUCCEEDED, 2)
    assert run.error.startswith("attempt 1 stopped in stage fit at 10% without finishing")
    version = ModelVersion.objects.get(shop=shop, kind="als")
    assert (version.number, version.status, version.training_run_id) == (1, ModelVersion.Status.READY, run.pk)
    assert ActiveModel.objects.get(shop=shop, kind="als").version_id == version.pk
    assert _kind_dir_entries(artifact_dir, shop, "als") == ["1"]  # no temp or partial directory
    artifact_verify(version.artifact_path, version.artifact_sha256)
    assert f"training run {run.pk} (als of shop {shop.pk}): attempt 2 by" in second.log()


def test_two_workers_and_a_duplicate_message_train_a_run_once(tmp_path, artifact_dir):
    env = worker_environment(tmp_path, artifact_dir)
    workers = [Worker("one", env, tmp_path), Worker("two", env, tmp_path)]
    try:
        shop = ShopFactory(slug="twice", retrain_every_hours=0)
        build_shop_history(shop, n_products=200, n_shoppers=500)
        for worker in workers:
            worker.wait_ready()
        manage(env, "train", "--shop", shop.slug, "--kind", "als", "--queue", "--config", SLOW_ALS)
        (run,) = _runs(shop)
        wait_until(
            lambda: TrainingRun.objects.filter(pk=run.pk, stage="fit").exists(),
            timeout=PROCESS_TIMEOUT_S,
            what="the run fitting",
        )
        # A second delivery while the first is training (as Redis does after the visibility timeout).
        send_task(env, "recommender.tasks.training_run_execute", run.pk)
        wait_until(
            # (Redis may deliver it once more after the visibility timeout: also declined.)
            lambda: sum(w.log().count(f"training run {run.pk}: held by") for w in workers) >= 1,
            timeout=PROCESS_TIMEOUT_S,
            what="the duplicate delivery declined",
        )
        wait_until(
            lambda: TrainingRun.objects.get(pk=run.pk).is_finished,
            timeout=PROCESS_TIMEOUT_S,
            interval=0.2,
            what="run finished",
        )
    finally:
        for worker in workers:
            worker.stop()
    run.refresh_from_db()
    assert (run.status, run.attempts) == (Status.SUCCEEDED, 1)
    logs = [worker.log() for worker in workers]
    assert sum(log.count(f"training run {run.pk} (als of shop {shop.pk}): attempt") for log in logs) == 1
    assert ModelVersion.objects.filter(shop=shop, kind="als").count() == 1
