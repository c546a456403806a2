"""Training runs: request, claim, execute, reap, schedule.

Life of a run (one shop, one model kind)::

    QUEUED --claim (CAS)--> RUNNING --register--> SUCCEEDED
       ^                      |  \\--bad data, time limit--> FAILED
       |                      |--transient error--> QUEUED (retried with backoff)
       +--reaper: lease expired (worker died) ------+   ... FAILED after TASK_MAX_ATTEMPTS
    QUEUED / RUNNING --cancel--> CANCELLED

- At most one run per shop and kind is QUEUED or RUNNING (a partial unique
  constraint): requests for a kind already in flight return that run.
- A task message may be delivered more than once (Redis redelivers a message not
  acknowledged within the visibility timeout, even while the first delivery is still
  training; the reaper re-sends messages it believes lost). Every delivery tries to
  claim the run by compare-and-swap; only one can win, the others return at once.
- The claim counts an attempt. A worker killed mid-run (SIGKILL, out of memory, hard
  time limit) stops renewing its lease; once it expires, the reaper (or a redelivered
  message) puts the run back, and the next claim is the next attempt. A run that has
  used TASK_MAX_ATTEMPTS attempts is marked FAILED with the last error instead of
  being claimed again: a poison run stops.
- A run writes its artifact under a fresh version number and becomes visible only by
  registering it (the same transaction finishes the run), so a kill at any point
  leaves at most an unregistered directory, which the next attempt removes.
"""

import logging
import os
import socket
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Max, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from catalog.audit import Actor, audit_record
from catalog.models import Event, ProductEmbedding, Shop
from recommender import artifacts, registry
from recommender.dataset import ShopDataset, dataset_build
from recommender.kinds import KindSpec, kind_config, kind_spec, kinds_for_shop
from recommender.leases import Lease, lease_expiry
from recommender.models import ModelVersion, TrainingRun
from recommender.offline import evaluate_holdout
from recommender.registry import LeaseLost, VersionFacts
from recommender.serving.bundle import model_index

logger = logging.getLogger(__name__)

Status = TrainingRun.Status
Stage = TrainingRun.Stage

# Errors that may pass (the database or broker restarting): the run is retried with
# backoff. Anything else is a property of the data or the code: the run fails at once.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
RETRY_BACKOFF_S = 10

# Where each stage starts on the 0-100 progress scale.
STAGE_PROGRESS = {Stage.DATASET: 2, Stage.FIT: 10, Stage.EVALUATE: 45, Stage.SAVE: 85, Stage.REGISTER: 95}


class NothingToTrain(ValueError):
    """The shop has no data this kind can learn from."""


@dataclass(frozen=True)
class RequestedRun:
    run: TrainingRun
    created: bool  # False: a run of this shop and kind was already queued or running


def _enqueue(run_id: int, countdown: float = 0) -> None:
    from recommender.tasks import training_run_execute

    training_run_execute.apply_async(args=[run_id], countdown=countdown or None)


def _worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _error_text(error: BaseException) -> str:
    where = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    location = f" (at {Path(where[0].filename).name}:{where[0].lineno})" if where else ""
    return f"{type(error).__name__}: {error}{location}"[:4000]


def _lost_attempt_error(run: TrainingRun) -> str:
    return (
        f"attempt {run.attempts} stopped in stage {run.stage} at {run.progress}% without finishing "
        f"(its worker was killed, ran out of memory or hit the hard time limit); last heartbeat {run.heartbeat_at}"
    )


def _give_up_error(run: TrainingRun, last_error: str) -> str:
    return f"gave up after {run.attempts} attempts; last: {last_error}"[:4000]


# -- requesting --------------------------------------------------------------------------


def training_run_request(
    *,
    shop: Shop,
    kinds: Sequence[str] | None = None,
    actor: Actor,
    config: dict[str, Any] | None = None,
    enqueue: bool = True,
) -> list[RequestedRun]:
    """Queue one training run per kind (default: every kind the shop can train) and send
    its task when the transaction commits (``enqueue=False``: the caller executes the
    runs itself, e.g. ``manage.py train``; should it die, the reaper sends them on).

    Idempotent per kind: where a run of this shop and kind is already QUEUED or RUNNING,
    that run is returned instead (``created=False``) and ``config`` is not applied to it.
    ``config`` overrides the kind's configuration (see kinds.kind_config) and is checked
    here, so a bad value fails the request rather than the run.
    """
    if kinds is None:
        has_text = ProductEmbedding.objects.filter(shop=shop).exists()
        kinds = kinds_for_shop(has_text_embeddings=has_text)
    for kind in kinds:
        kind_config(kind_spec(kind), shop, config)  # raises on an unknown kind or setting
    requested: list[RequestedRun] = []
    with transaction.atomic():
        for kind in kinds:
            existing = TrainingRun.objects.filter(shop=shop, kind=kind, status__in=TrainingRun.UNFINISHED).first()
            if existing is not None:
                requested.append(RequestedRun(existing, created=False))
                continue
            try:
                with transaction.atomic():
                    run = TrainingRun.objects.create(
                        shop=shop,
                        kind=kind,
                        config=config or {},
                        requested_by=actor.label[:200],
                        enqueued_at=timezone.now(),
                    )
            except IntegrityError:
                # A concurrent request created it between our read and insert.
                existing = TrainingRun.objects.get(shop=shop, kind=kind, status__in=TrainingRun.UNFINISHED)
                requested.append(RequestedRun(existing, created=False))
                continue
            audit_record(
                shop=shop,
                actor=actor,
                action="train",
                object_type="training_run",
                object_id=run.pk,
                object_repr=f"{kind} training",
                after={"kind": kind, "config": run.config},
            )
            if enqueue:
                transaction.on_commit(partial(_enqueue, run.pk))
            requested.append(RequestedRun(run, created=True))
    return requested


def training_run_cancel(*, run: TrainingRun, actor: Actor) -> bool:
    """Cancel a queued or running run. A running one stops at its next lease renewal
    (within TRAINING_LEASE_S / 3) without registering anything. Returns whether it changed."""
    with transaction.atomic():
        changed = (
            TrainingRun.objects.filter(pk=run.pk, status__in=TrainingRun.UNFINISHED).update(
                status=Status.CANCELLED, finished_at=timezone.now(), lease_expires_at=None
            )
            == 1
        )
        if changed:
            audit_record(
                shop=run.shop,
                actor=actor,
                action="cancel",
                object_type="training_run",
                object_id=run.pk,
                object_repr=f"{run.kind} training",
            )
    return changed


# -- claiming ------------------------------------------------------------------------------


def training_run_claim(*, run_id: int, owner: str) -> TrainingRun | None:
    """Take the run for ``owner``: QUEUED, or RUNNING under an expired lease (its worker
    died). One conditional UPDATE, so of concurrent claims exactly one wins; the others
    get None. Counts an attempt. A run that already used TASK_MAX_ATTEMPTS attempts is
    marked FAILED instead (None). None as well when the run is gone, finished, or held
    under a live lease (a duplicate delivery)."""
    now = timezone.now()
    run = TrainingRun.objects.filter(pk=run_id).first()
    if run is None:
        logger.info("training run %s: gone", run_id)
        return None
    if run.is_finished:
        logger.info("training run %s: already %s", run_id, run.status)
        return None
    lease_expired = run.status == Status.RUNNING and (run.lease_expires_at is None or run.lease_expires_at < now)
    if run.status == Status.RUNNING and not lease_expired:
        logger.info("training run %s: held by %s until %s", run_id, run.lease_owner, run.lease_expires_at)
        return None
    error = _lost_attempt_error(run) if lease_expired else run.error
    # The row must be exactly as read: same status, owner and attempt count.
    unchanged = TrainingRun.objects.filter(
        pk=run_id, status=run.status, lease_owner=run.lease_owner, attempts=run.attempts
    )
    if lease_expired:
        unchanged = unchanged.filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
    if run.attempts >= settings.TASK_MAX_ATTEMPTS:
        if unchanged.update(
            status=Status.FAILED, error=_give_up_error(run, error), finished_at=now, lease_expires_at=None
        ):
            logger.error("training run %s: failed after %s attempts: %s", run_id, run.attempts, error)
        return None
    claimed = unchanged.update(
        status=Status.RUNNING,
        lease_owner=owner,
        lease_expires_at=lease_expiry(),
        heartbeat_at=now,
        attempts=F("attempts") + 1,
        stage=Stage.DATASET,
        progress=0,
        error=error,
        started_at=Coalesce(F("started_at"), now),
    )
    if claimed != 1:
        logger.info("training run %s: claimed by another worker first", run_id)
        return None
    return TrainingRun.objects.select_related("shop").get(pk=run_id)


# -- executing -------------------------------------------------------------------------------


def training_run_execute(*, run_id: int) -> TrainingRun | None:
    """Claim the run and train it; returns the run as it ended, or None if this call did
    not get the run (gone, finished, or another worker holds it).

    May be called more than once for one run, concurrently too (redelivered messages):
    only the claimant trains. Whatever happens here, the run ends SUCCEEDED with exactly
    one registered version, FAILED with its error, QUEUED again for a transient error
    (re-sent with backoff), or is left to the reaper if this process dies.
    """
    owner = _worker_identity()
    run = training_run_claim(run_id=run_id, owner=owner)
    if run is None:
        return None
    logger.info("training run %s (%s of shop %s): attempt %s by %s", run.pk, run.kind, run.shop_id, run.attempts, owner)
    with Lease(run_id=run.pk, owner=owner) as lease:
        try:
            _train(run, lease)
        except LeaseLost as error:
            logger.warning("training run %s: %s; stopping without registering", run.pk, error)
        except SoftTimeLimitExceeded:
            _finish_failed(
                run, owner, f"took longer than TRAINING_SOFT_TIME_LIMIT_S ({settings.TRAINING_SOFT_TIME_LIMIT_S} s)"
            )
        except TRANSIENT_ERRORS as error:
            logger.warning("training run %s: transient error, will retry: %s", run.pk, error, exc_info=True)
            _retry_later(run, owner, _error_text(error))
        except Exception as error:
            logger.exception("training run %s failed", run.pk)
            _finish_failed(run, owner, _error_text(error))
    return TrainingRun.objects.filter(pk=run.pk).first()


def _finish_failed(run: TrainingRun, owner: str, error: str) -> None:
    TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING, lease_owner=owner).update(
        status=Status.FAILED, error=error[:4000], finished_at=timezone.now(), lease_expires_at=None
    )


def _retry_later(run: TrainingRun, owner: str, error: str) -> None:
    """Back to QUEUED with a delayed message; FAILED if the attempts are used up."""
    if run.attempts >= settings.TASK_MAX_ATTEMPTS:
        _finish_failed(run, owner, _give_up_error(run, error))
        return
    delay = RETRY_BACKOFF_S * 2 ** (run.attempts - 1)
    with transaction.atomic():
        requeued = TrainingRun.objects.filter(pk=run.pk, status=Status.RUNNING, lease_owner=owner).update(
            status=Status.QUEUED,
            stage=Stage.QUEUED,
            progress=0,
            error=error[:4000],
            lease_owner="",
            lease_expires_at=None,
            # The reaper re-sends a message only when this one is overdue.
            enqueued_at=timezone.now() + timedelta(seconds=delay),
        )
        if requeued:
            transaction.on_commit(partial(_enqueue, run.pk, countdown=delay))


def _train(run: TrainingRun, lease: Lease) -> ModelVersion:
    spec = kind_spec(run.kind)
    config = kind_config(spec, run.shop, run.config)
    durations: dict[str, float] = {}
    started = time.monotonic()
    # The leftovers of killed attempts; this worker holds the lease, nobody else writes here.
    removed = artifacts.artifacts_remove_unregistered(
        shop_id=run.shop_id, kind=run.kind, registered=registry.registered_numbers(shop_id=run.shop_id, kind=run.kind)
    )
    if removed:
        logger.info("training run %s: removed leftovers %s", run.pk, removed)

    lease.stage(Stage.DATASET, STAGE_PROGRESS[Stage.DATASET])
    clock = time.monotonic()
    dataset = dataset_build(shop=run.shop)
    durations["dataset"] = time.monotonic() - clock
    _check_trainable(spec, dataset)

    lease.stage(Stage.FIT, STAGE_PROGRESS[Stage.FIT])
    clock = time.monotonic()
    model = spec.algorithm_class(config).fit(dataset.interactions, dataset.features)
    durations["fit"] = time.monotonic() - clock

    lease.stage(Stage.EVALUATE, STAGE_PROGRESS[Stage.EVALUATE])
    clock = time.monotonic()
    holdout = evaluate_holdout(spec.algorithm_class, config, dataset.interactions, dataset.features)
    durations["evaluate"] = time.monotonic() - clock

    lease.stage(Stage.SAVE, STAGE_PROGRESS[Stage.SAVE])
    clock = time.monotonic()
    number = registry.next_version_number(shop_id=run.shop_id, kind=run.kind)
    facts = VersionFacts(
        config=config.to_dict(),
        data_from=dataset.data_from,
        data_to=dataset.data_to,
        event_count=dataset.event_count,
        shopper_count=dataset.shopper_count,
        item_count=dataset.item_count,
        metrics=holdout.metrics,
        durations=durations,
    )

    def write(directory: Path) -> None:
        lease.check()
        model.save(directory / registry.MODEL_DIR)
        dataset.items.save(directory / registry.ITEMS_FILE)
        dataset.categories.save(directory / registry.CATEGORIES_FILE)
        lease.check()

    written = artifacts.artifact_write(shop_id=run.shop_id, kind=run.kind, number=number, write=write)
    # The serving index (vector kinds) before the version can be activated: serving
    # processes then load it from the disk cache within seconds instead of building it.
    model_index(model, shop_id=run.shop_id, kind=run.kind, number=number, sha256=written.sha256)
    lease.check()
    durations["save"] = time.monotonic() - clock

    lease.stage(Stage.REGISTER, STAGE_PROGRESS[Stage.REGISTER])
    durations["total"] = time.monotonic() - started
    version = registry.model_version_register(
        run_id=run.pk, lease_owner=lease.owner, number=number, written=written, facts=facts
    )
    logger.info(
        "training run %s: registered %s v%s (%s) in %.1f s",
        run.pk,
        run.kind,
        number,
        version.activation_note,
        durations["total"],
    )
    try:
        registry.model_versions_apply_retention(shop_id=run.shop_id, kind=run.kind)
    except Exception:
        # The run succeeded; retention runs again after the next one.
        logger.exception("training run %s: retention failed", run.pk)
    return version


def _check_trainable(spec: KindSpec, dataset: ShopDataset) -> None:
    if dataset.event_count == 0:
        raise NothingToTrain("the shop has no counted events on known products yet")
    if spec.needs_text_embeddings and dataset.features.text_embeddings is None:
        raise NothingToTrain(f"{spec.name} needs product text embeddings and none are stored yet")


# -- beat: reaping and scheduling ------------------------------------------------------------


@dataclass(frozen=True)
class ReapReport:
    requeued: list[int]  # RUNNING runs whose lease expired, queued again
    failed: list[int]  # ... that had used up their attempts
    resent: list[int]  # QUEUED runs whose message seemed lost


def training_runs_reap(*, now: datetime | None = None) -> ReapReport:
    """Put back runs whose worker died (RUNNING, lease expired) and re-send the message of
    runs queued for longer than TRAINING_REQUEUE_AFTER_S without being claimed.

    Each change is a conditional UPDATE on the row as read, so it is safe alongside
    workers claiming and renewing, and alongside another reaper. A re-sent message for a
    run that is in fact still queued in the broker only causes a duplicate delivery,
    which the claim turns into a no-op.
    """
    now = now or timezone.now()
    requeued: list[int] = []
    failed: list[int] = []
    resent: list[int] = []
    expired = TrainingRun.objects.filter(status=Status.RUNNING, lease_expires_at__lt=now)
    for run in expired:
        error = _lost_attempt_error(run)
        as_read = TrainingRun.objects.filter(
            pk=run.pk, status=Status.RUNNING, lease_owner=run.lease_owner, lease_expires_at=run.lease_expires_at
        )
        if run.attempts >= settings.TASK_MAX_ATTEMPTS:
            if as_read.update(
                status=Status.FAILED, error=_give_up_error(run, error), finished_at=now, lease_expires_at=None
            ):
                failed.append(run.pk)
            continue
        with transaction.atomic():
            if as_read.update(
                status=Status.QUEUED,
                stage=Stage.QUEUED,
                progress=0,
                error=error,
                lease_owner="",
                lease_expires_at=None,
                enqueued_at=now,
            ):
                transaction.on_commit(partial(_enqueue, run.pk))
                requeued.append(run.pk)
    overdue = now - timedelta(seconds=settings.TRAINING_REQUEUE_AFTER_S)
    for run_id, enqueued_at in TrainingRun.objects.filter(status=Status.QUEUED, enqueued_at__lt=overdue).values_list(
        "pk", "enqueued_at"
    ):
        with transaction.atomic():
            if TrainingRun.objects.filter(pk=run_id, status=Status.QUEUED, enqueued_at=enqueued_at).update(
                enqueued_at=now
            ):
                transaction.on_commit(partial(_enqueue, run_id))
                resent.append(run_id)
    if requeued or failed or resent:
        logger.warning("training reaper: requeued %s, failed %s, re-sent %s", requeued, failed, resent)
    return ReapReport(requeued=requeued, failed=failed, resent=resent)


def training_schedule_due(*, now: datetime | None = None) -> list[RequestedRun]:
    """Request retraining of every kind whose last run (of any outcome) started more
    than the shop's ``retrain_every_hours`` ago; 0 hours means on demand only. Shops
    without events are skipped. Idempotent: a kind in flight is not requested again."""
    now = now or timezone.now()
    last_run = {
        (row["shop_id"], row["kind"]): row["last"]
        for row in TrainingRun.objects.values("shop_id", "kind").annotate(last=Max("created_at"))
    }
    requested: list[RequestedRun] = []
    for shop in Shop.objects.filter(retrain_every_hours__gt=0).order_by("pk"):
        if not Event.objects.filter(shop=shop).exists():
            continue
        cadence = timedelta(hours=shop.retrain_every_hours)
        has_text = ProductEmbedding.objects.filter(shop=shop).exists()
        due = [
            kind
            for kind in kinds_for_shop(has_text_embeddings=has_text)
            if (last := last_run.get((shop.pk, kind))) is None or last <= now - cadence
        ]
        if due:
            requested += training_run_request(shop=shop, kinds=due, actor=Actor.system("schedule"))
    return requested
