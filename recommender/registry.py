"""The model registry's writes: register a trained version, activate, roll back, retention, load.

Activation and rollback each change the active pointer (``ActiveModel``) with one
UPDATE, conditional on the pointer still being what the caller saw, and write one
audit entry in the same transaction. Serving polls the pointer (see
``selectors.active_versions_for_shop``) and loads the new version's artifact.
"""

import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone

from catalog.audit import Actor, audit_record
from catalog.models import Shop
from recommender import artifacts
from recommender.algorithms.base import Algorithm
from recommender.algorithms.vocabulary import Vocabulary
from recommender.kinds import kind_spec
from recommender.models import ActiveModel, ModelVersion, TrainingRun
from recommender.selectors import ActiveVersion
from recommender.serving.indexes import index_caches_prune

logger = logging.getLogger(__name__)

MODEL_DIR = "model"  # the algorithm's own files (Algorithm.save)
ITEMS_FILE = "items.npz"  # item vocabulary: str(product id) per item index
CATEGORIES_FILE = "categories.npz"  # category vocabulary: str(category id) per category index


class LeaseLost(Exception):
    """This worker no longer holds the run's lease (it expired and another worker took
    the run over, or the run was finished or cancelled meanwhile): stop, write nothing."""


@dataclass(frozen=True)
class ActivationDecision:
    activate: bool
    reason: str


@dataclass(frozen=True)
class VersionFacts:
    """What a training run learned about the version it is registering."""

    config: dict[str, Any]
    data_from: datetime | None
    data_to: datetime | None
    event_count: int
    shopper_count: int
    item_count: int
    metrics: dict[str, Any]
    durations: dict[str, float]


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A verified, loaded version: what serving holds in memory."""

    version_id: int
    kind: str
    number: int
    model: Algorithm[Any]
    items: Vocabulary  # str(product id) per item index
    categories: Vocabulary  # str(category id) per category index


def next_version_number(*, shop_id: int, kind: str) -> int:
    """One more than the highest registered number. Only meaningful to the holder of the
    (shop, kind) training lease: nobody else registers meanwhile."""
    highest = ModelVersion.objects.filter(shop_id=shop_id, kind=kind).aggregate(n=Max("number"))["n"]
    return (highest or 0) + 1


def registered_numbers(*, shop_id: int, kind: str) -> list[int]:
    return list(ModelVersion.objects.filter(shop_id=shop_id, kind=kind).values_list("number", flat=True))


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _metric(metrics: dict[str, Any], name: str) -> float | None:
    """The metric's value, None when absent, not finite, or measured on no test case."""
    if metrics.get("cases") == 0:
        return None
    return _finite(metrics.get(name))


def activation_decision(*, kind: str, metrics: dict[str, Any], active: ModelVersion | None) -> ActivationDecision:
    """Whether a new version replaces the active one without a human.

    Yes when there is no active version, or when the new version's primary metric is
    not worse than the active one's by more than ``TRAINING_ACTIVATION_TOLERANCE``
    (relative). A new version without the metric (or evaluated on no test shopper)
    waits for a human.
    """
    if active is None:
        return ActivationDecision(True, "activated automatically: first version of this kind")
    metric = kind_spec(kind).primary_metric
    tolerance = settings.TRAINING_ACTIVATION_TOLERANCE
    new, old = _metric(metrics, metric), _metric(active.metrics, metric)
    if new is None:
        return ActivationDecision(False, f"waiting for review: no {metric} to compare with v{active.number}")
    if old is None:
        return ActivationDecision(True, f"activated automatically: v{active.number} has no {metric} to compare")
    floor = old * (1 - tolerance)
    if new >= floor:
        return ActivationDecision(True, f"activated automatically: {metric} {new:.4f} vs {old:.4f} of v{active.number}")
    return ActivationDecision(
        False,
        f"waiting for review: {metric} {new:.4f} is worse than {old:.4f} of v{active.number}"
        f" by more than {tolerance:.0%}",
    )


def model_version_register(
    *, run_id: int, lease_owner: str, number: int, written: artifacts.WrittenArtifact, facts: VersionFacts
) -> ModelVersion:
    """Register the version a run trained, finish the run, and activate the version if its
    metrics allow: one transaction.

    Locking: the run row is locked and must still be RUNNING under ``lease_owner``,
    otherwise LeaseLost (nothing is written; the artifact directory is an unregistered
    leftover that the next lease holder removes). Exactly one version per run (a unique
    key) and per (shop, kind, number).
    """
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().select_related("shop").filter(pk=run_id).first()
        if run is None or run.status != TrainingRun.Status.RUNNING or run.lease_owner != lease_owner:
            raise LeaseLost(f"run {run_id} is no longer held by {lease_owner}")
        active = ActiveModel.objects.select_for_update().filter(shop_id=run.shop_id, kind=run.kind).first()
        active_version = ModelVersion.objects.get(pk=active.version_id) if active else None
        decision = activation_decision(kind=run.kind, metrics=facts.metrics, active=active_version)
        version = ModelVersion.objects.create(
            shop_id=run.shop_id,
            kind=run.kind,
            number=number,
            status=ModelVersion.Status.READY,
            training_run=run,
            config=facts.config,
            data_from=facts.data_from,
            data_to=facts.data_to,
            event_count=facts.event_count,
            shopper_count=facts.shopper_count,
            item_count=facts.item_count,
            metrics=facts.metrics,
            durations=facts.durations,
            artifact_path=written.relative_path,
            artifact_bytes=written.size_bytes,
            artifact_sha256=written.sha256,
            activation_note=decision.reason,
        )
        if decision.activate:
            _point_to(
                shop=run.shop, kind=run.kind, version=version, actor=Actor.system(f"training run {run.pk}"), seen=active
            )
        now = timezone.now()
        TrainingRun.objects.filter(pk=run.pk).update(
            status=TrainingRun.Status.SUCCEEDED,
            stage=TrainingRun.Stage.DONE,
            progress=100,
            finished_at=now,
            heartbeat_at=now,
            lease_expires_at=None,
        )
    return version


def _point_to(*, shop: Shop, kind: str, version: ModelVersion, actor: Actor, seen: ActiveModel | None) -> None:
    """Move the active pointer to ``version`` in one statement (an INSERT for the first
    version of a kind), provided it still points where ``seen`` did; audit it."""
    now = timezone.now()
    if seen is None:
        ActiveModel.objects.create(
            shop=shop, kind=kind, version=version, previous_version=None, activated_at=now, activated_by=actor.label
        )
        before = None
    else:
        updated = ActiveModel.objects.filter(pk=seen.pk, version_id=seen.version_id).update(
            version_id=version.pk, previous_version_id=seen.version_id, activated_at=now, activated_by=actor.label
        )
        if updated != 1:
            raise ValidationError("the active version changed meanwhile; reload and try again")
        before = {"version_id": seen.version_id}
    audit_record(
        shop=shop,
        actor=actor,
        action="activate",
        object_type="model_version",
        object_id=version.pk,
        object_repr=f"{kind} v{version.number}",
        before=before,
        after={"version_id": version.pk},
    )


def model_version_activate(*, version: ModelVersion, actor: Actor) -> ActiveModel:
    """Make ``version`` the one serving uses for its shop and kind (a human's decision, or
    the training run's). Only READY versions (artifact on disk) can be activated.
    Idempotent: activating the active version changes nothing."""
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("shop").get(pk=version.pk)
        if locked.status != ModelVersion.Status.READY:
            raise ValidationError(f"{locked} is {locked.status}; only ready versions can be activated")
        active = ActiveModel.objects.select_for_update().filter(shop_id=locked.shop_id, kind=locked.kind).first()
        if active is None or active.version_id != locked.pk:
            _point_to(shop=locked.shop, kind=locked.kind, version=locked, actor=actor, seen=active)
        return ActiveModel.objects.get(shop_id=locked.shop_id, kind=locked.kind)


def model_rollback(*, shop: Shop, kind: str, actor: Actor) -> ActiveModel:
    """Swap the active and the previous version back: one UPDATE of the pointer row.

    Rolling back twice restores the rolled-back version. Fails (ValidationError) when
    there is no previous version or its artifact is gone.
    """
    with transaction.atomic():
        active = ActiveModel.objects.select_for_update().filter(shop=shop, kind=kind).first()
        if active is None or active.previous_version_id is None:
            raise ValidationError(f"no previous {kind} version to roll back to")
        previous = ModelVersion.objects.select_for_update().get(pk=active.previous_version_id)
        if previous.status != ModelVersion.Status.READY:
            raise ValidationError(f"{previous} is {previous.status}; it cannot be served again")
        updated = ActiveModel.objects.filter(
            pk=active.pk, version_id=active.version_id, previous_version_id=active.previous_version_id
        ).update(
            # SQL evaluates both right-hand sides on the old row: a swap.
            version_id=F("previous_version_id"),
            previous_version_id=F("version_id"),
            activated_at=timezone.now(),
            activated_by=actor.label,
        )
        if updated != 1:
            raise ValidationError("the active version changed meanwhile; reload and try again")
        audit_record(
            shop=shop,
            actor=actor,
            action="rollback",
            object_type="model_version",
            object_id=previous.pk,
            object_repr=f"{kind} v{previous.number}",
            before={"version_id": active.version_id},
            after={"version_id": previous.pk},
        )
        return ActiveModel.objects.get(pk=active.pk)


def model_versions_apply_retention(*, shop_id: int, kind: str, keep: int | None = None) -> list[int]:
    """Delete the artifacts of versions older than the newest ``keep`` (default
    ARTIFACTS_KEEP_VERSIONS), with their serving indexes, and mark them ARCHIVED; their
    rows and metrics stay.

    Never touches the active or the previous active version. Idempotent; safe to run
    concurrently with activation (the version row is locked while it is archived, and
    the directory is removed only after the status change committed). Returns the
    numbers archived.
    """
    keep = settings.ARTIFACTS_KEEP_VERSIONS if keep is None else keep
    newest = set(
        ModelVersion.objects.filter(shop_id=shop_id, kind=kind).order_by("-number").values_list("pk", flat=True)[:keep]
    )
    candidates = (
        ModelVersion.objects.filter(shop_id=shop_id, kind=kind)
        .exclude(pk__in=newest)
        .exclude(status=ModelVersion.Status.ARCHIVED)
        .order_by("number")
        .values_list("pk", flat=True)
    )
    archived: list[int] = []
    for version_id in list(candidates):
        with transaction.atomic():
            version = ModelVersion.objects.select_for_update().get(pk=version_id)
            pointer = ActiveModel.objects.select_for_update().filter(shop_id=shop_id, kind=kind).first()
            if pointer is not None and version.pk in (pointer.version_id, pointer.previous_version_id):
                continue
            ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.ARCHIVED)
        artifacts.artifact_delete(version.artifact_path)
        archived.append(version.number)
    if archived:
        logger.info("retention: archived %s versions %s of shop %s", kind, archived, shop_id)
    # The serving indexes derived from the artifacts go with them (and those of older formats).
    kept = ModelVersion.objects.filter(shop_id=shop_id, kind=kind).exclude(status=ModelVersion.Status.ARCHIVED)
    index_caches_prune(shop_id=shop_id, kind=kind, keep_numbers=list(kept.values_list("number", flat=True)))
    return archived


def model_version_mark_failed(*, version_id: int, error: str) -> bool:
    """Mark a READY version FAILED because its artifact failed verification. It may be the
    active one: serving then keeps what it had loaded, and a human rolls back or activates
    another version. Returns whether the row changed."""
    return (
        ModelVersion.objects.filter(pk=version_id, status=ModelVersion.Status.READY).update(
            status=ModelVersion.Status.FAILED, error=error[:2000]
        )
        == 1
    )


def model_version_load(*, version_id: int, kind: str, number: int, artifact_path: str, sha256: str) -> LoadedModel:
    """Verify a version's artifact against its checksum and load it.

    Raises ArtifactCorrupt (after marking the version FAILED) when any file is missing or
    differs. Reads every byte of the artifact: call it when the active version changes,
    not per request.
    """
    try:
        directory = artifacts.artifact_verify(artifact_path, sha256)
    except artifacts.ArtifactCorrupt as error:
        model_version_mark_failed(version_id=version_id, error=str(error))
        logger.error("model version %s (%s v%s): %s", version_id, kind, number, error)
        raise
    model = kind_spec(kind).algorithm_class.load(directory / MODEL_DIR)
    return LoadedModel(
        version_id=version_id,
        kind=kind,
        number=number,
        model=model,
        items=Vocabulary.load(directory / ITEMS_FILE),
        categories=Vocabulary.load(directory / CATEGORIES_FILE),
    )


def active_version_load(active: ActiveVersion) -> LoadedModel:
    """``model_version_load`` for a row of ``selectors.active_versions_for_shop``."""
    return model_version_load(
        version_id=active.version_id,
        kind=active.kind,
        number=active.number,
        artifact_path=active.artifact_path,
        sha256=active.artifact_sha256,
    )
