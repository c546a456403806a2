"""Reads of the model registry. Every read takes the shop."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db.models import QuerySet

from catalog.models import Shop
from recommender.artifacts import artifact_absolute_path
from recommender.models import ActiveModel, ModelVersion, TrainingRun


@dataclass(frozen=True, slots=True)
class ActiveVersion:
    """What serving needs to find, verify and load the active version of one kind."""

    kind: str
    version_id: int
    number: int
    artifact_path: str  # relative to settings.ARTIFACT_DIR (registry.model_version_load takes it)
    artifact_sha256: str
    activated_at: datetime

    @property
    def directory(self) -> Path:
        return artifact_absolute_path(self.artifact_path)


@dataclass(frozen=True, slots=True)
class RunProgress:
    run_id: int
    kind: str
    status: str
    stage: str
    progress: int
    attempts: int
    error: str
    heartbeat_at: datetime | None
    version_id: int | None


def active_versions_for_shop(shop_id: int) -> list[ActiveVersion]:
    """The active version of every kind of the shop, by kind: one indexed query, cheap
    enough for serving to poll every SERVING_REFRESH_S. Compare ``version_id`` with what
    is loaded; load a changed one with ``registry.model_version_load``."""
    rows = (
        ActiveModel.objects.filter(shop_id=shop_id)
        .order_by("kind")
        .values_list(
            "kind",
            "version_id",
            "version__number",
            "version__artifact_path",
            "version__artifact_sha256",
            "activated_at",
        )
    )
    return [ActiveVersion(*row) for row in rows]


def model_versions_for_shop(shop: Shop, kind: str | None = None) -> QuerySet[ModelVersion]:
    """Versions with their metrics, newest first (archived ones included: their metrics stay)."""
    versions = ModelVersion.objects.filter(shop=shop).order_by("kind", "-number")
    return versions.filter(kind=kind) if kind else versions


def model_version_for_shop(shop: Shop, version_id: int) -> ModelVersion | None:
    return ModelVersion.objects.filter(shop=shop, pk=version_id).first()


def active_model_for_shop(shop: Shop, kind: str) -> ActiveModel | None:
    return ActiveModel.objects.filter(shop=shop, kind=kind).select_related("version", "previous_version").first()


def versions_awaiting_review(shop: Shop) -> QuerySet[ModelVersion]:
    """READY versions newer than their kind's active one that were not activated
    automatically (their metrics fell outside the tolerance): a human decides."""
    active = dict(ActiveModel.objects.filter(shop=shop).values_list("kind", "version__number"))
    waiting = ModelVersion.objects.none()
    for kind, number in active.items():
        waiting = waiting | ModelVersion.objects.filter(
            shop=shop, kind=kind, status=ModelVersion.Status.READY, number__gt=number
        )
    return waiting.order_by("kind", "-number")


def training_runs_for_shop(shop: Shop, kind: str | None = None) -> QuerySet[TrainingRun]:
    runs = TrainingRun.objects.filter(shop=shop).order_by("-created_at", "-id")
    return runs.filter(kind=kind) if kind else runs


def training_run_progress(shop: Shop, run_id: int) -> RunProgress | None:
    """Stage and percent of a run as its worker last wrote them (readable while it runs)."""
    row = (
        TrainingRun.objects.filter(shop=shop, pk=run_id)
        .values_list("pk", "kind", "status", "stage", "progress", "attempts", "error", "heartbeat_at", "version__id")
        .first()
    )
    return RunProgress(*row) if row else None


# -- serving (recommender.serving polls these; each is one indexed query) ----------------------


@dataclass(frozen=True, slots=True)
class ServingVersions:
    """The change counters serving polls: the shop's catalog version, its campaigns
    version and time zone (a change of either reloads that part of the serving state)."""

    catalog_version: int
    campaigns_version: int
    timezone: str


def serving_versions(shop_id: int) -> ServingVersions | None:
    """The shop's change counters in one indexed read; None for an unknown shop."""
    row = (
        Shop.objects.filter(pk=shop_id)
        .values_list("catalog_version", "campaigns_version__version", "timezone")
        .first()
    )
    if row is None:
        return None
    return ServingVersions(catalog_version=row[0], campaigns_version=row[1] or 0, timezone=row[2])


@dataclass(frozen=True, slots=True)
class ServableVersion:
    """A READY version serving may load (the active one of its kind, or one an experiment
    variant or placement names), with the time its training data was read: product
    embeddings written after that are not in the version (serving adds them itself)."""

    kind: str
    version_id: int
    number: int
    artifact_path: str
    artifact_sha256: str
    data_read_at: datetime


def servable_versions(shop_id: int, version_ids: list[int]) -> list[ServableVersion]:
    """The READY versions of the shop among ``version_ids`` (ids of other shops, archived,
    failed or unknown versions are left out), by id."""
    if not version_ids:
        return []
    rows = (
        ModelVersion.objects.filter(shop_id=shop_id, pk__in=version_ids, status=ModelVersion.Status.READY)
        .order_by("pk")
        .values_list(
            "kind",
            "pk",
            "number",
            "artifact_path",
            "artifact_sha256",
            "training_run__started_at",
            "created_at",
        )
    )
    return [
        ServableVersion(kind, pk, number, path, sha, started if started is not None else created)
        for kind, pk, number, path, sha, started, created in rows
    ]


def product_embeddings_since(
    shop_id: int, since: datetime | None, *, limit: int
) -> list[tuple[int, bytes, datetime]]:
    """(product id, vector bytes, updated_at) of the shop's product embeddings written at
    or after ``since`` (all when None), the newest ``limit`` of them, newest first."""
    from catalog import embedding
    from catalog.models import ProductEmbedding

    rows = ProductEmbedding.objects.filter(shop_id=shop_id, model_name=embedding.MODEL_NAME)
    if since is not None:
        rows = rows.filter(updated_at__gte=since)
    return [
        (product_id, bytes(vector), updated_at)
        for product_id, vector, updated_at in rows.order_by("-updated_at", "-product_id").values_list(
            "product_id", "vector", "updated_at"
        )[:limit]
    ]
