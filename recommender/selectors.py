"""Reads of the model registry. Every read takes the shop."""

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.db.models import Count, Max, Q, QuerySet

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
        Shop.objects.filter(pk=shop_id).values_list("catalog_version", "campaigns_version__version", "timezone").first()
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


def product_embeddings_since(shop_id: int, since: datetime | None, *, limit: int) -> list[tuple[int, bytes, datetime]]:
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


# -- the console's Models page ---------------------------------------------------------------


@dataclass(frozen=True)
class KindOverview:
    """One model kind of a shop on the Models page: what serves now, what is newest."""

    kind: str
    active: ModelVersion | None
    can_roll_back: bool  # the pointer remembers a previous version that is still READY
    latest: ModelVersion | None
    version_count: int
    awaiting_review: int  # READY versions newer than the active one, not activated


def model_kinds_overview(shop: Shop, kinds: list[str]) -> list[KindOverview]:
    """One row per kind in ``kinds`` (order kept), trained or not: four queries in all."""
    pointers = {
        pointer.kind: pointer
        for pointer in ActiveModel.objects.filter(shop=shop).select_related("version", "previous_version")
    }
    counts = {
        row["kind"]: (row["latest"], row["count"])
        for row in ModelVersion.objects.filter(shop=shop)
        .values("kind")
        .annotate(latest=Max("number"), count=Count("id"))
    }
    latest_filter = Q()
    for kind, (number, _) in counts.items():
        latest_filter |= Q(kind=kind, number=number)
    latest = {v.kind: v for v in ModelVersion.objects.filter(latest_filter, shop=shop)} if counts else {}
    waiting: dict[str, int] = {}
    for version in versions_awaiting_review(shop).only("kind"):
        waiting[version.kind] = waiting.get(version.kind, 0) + 1
    rows = []
    for kind in kinds:
        pointer = pointers.get(kind)
        previous = pointer.previous_version if pointer else None
        rows.append(
            KindOverview(
                kind=kind,
                active=pointer.version if pointer else None,
                can_roll_back=previous is not None and previous.status == ModelVersion.Status.READY,
                latest=latest.get(kind),
                version_count=counts.get(kind, (0, 0))[1],
                awaiting_review=waiting.get(kind, 0),
            )
        )
    return rows


def model_version_history(shop: Shop, kind: str, *, limit: int) -> list[ModelVersion]:
    """The newest ``limit`` versions of one kind, oldest first (the order of a chart over time)."""
    newest = ModelVersion.objects.filter(shop=shop, kind=kind).order_by("-number")[:limit]
    return list(reversed(newest))


def training_runs_by_ids(shop: Shop, run_ids: list[int]) -> list[TrainingRun]:
    """The shop's runs among ``run_ids`` (other shops' ids are left out), by kind, with their version."""
    return list(TrainingRun.objects.filter(shop=shop, pk__in=run_ids).select_related("version").order_by("kind", "pk"))


def training_runs_unfinished(shop: Shop) -> list[TrainingRun]:
    """The shop's QUEUED and RUNNING runs (at most one per kind), by kind."""
    return list(
        TrainingRun.objects.filter(shop=shop, status__in=TrainingRun.UNFINISHED)
        .select_related("version")
        .order_by("kind", "pk")
    )


@dataclass(frozen=True)
class BatchProgress:
    """Where a set of training runs (one "train now") stands, as one progress bar.

    ``state``: "queued" while none has started, "running" while any is unfinished,
    then "done" when every run succeeded, else "failed". ``percent`` averages the runs'
    own progress, a finished run counting 100.
    """

    runs: list[TrainingRun]
    state: str
    percent: int

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def batch_progress(runs: list[TrainingRun]) -> BatchProgress | None:
    if not runs:
        return None
    unfinished = [run for run in runs if not run.is_finished]
    if unfinished:
        started = any(run.status != TrainingRun.Status.QUEUED or run.attempts for run in runs)
        state = "running" if started or len(unfinished) < len(runs) else "queued"
    else:
        succeeded = all(run.status == TrainingRun.Status.SUCCEEDED for run in runs)
        state = "done" if succeeded else "failed"
    percent = round(sum(100 if run.is_finished else run.progress for run in runs) / len(runs))
    return BatchProgress(runs=runs, state=state, percent=percent)
