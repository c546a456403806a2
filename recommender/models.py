"""The model registry: training runs, trained versions, and the active pointer per shop and kind.

- ``TrainingRun``: one request to train one model kind for one shop, claimed by a worker
  through a lease (``lease_owner`` / ``lease_expires_at``) so that two workers never train
  the same shop and kind at once. At most one run per shop and kind is QUEUED or RUNNING
  (a partial unique constraint).
- ``ModelVersion``: what a successful run produced: numbered per shop and kind, with its
  configuration, data window, counts, offline metrics, stage durations and the artifact
  (directory relative to ``settings.ARTIFACT_DIR``, size, SHA-256).
- ``ActiveModel``: which version serving uses, one row per shop and kind. Activation and
  rollback are each one UPDATE of that row.
"""

from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from catalog.models import Shop


class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Stage(models.TextChoices):
        QUEUED = "queued"
        DATASET = "dataset"
        FIT = "fit"
        EVALUATE = "evaluate"
        SAVE = "save"
        REGISTER = "register"
        DONE = "done"

    UNFINISHED = (Status.QUEUED, Status.RUNNING)

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="training_runs")
    kind = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Overrides of the kind's default configuration (JSON of the algorithm's config fields).
    config = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=200)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    # The last error: why the run failed, or (running, succeeded) what ended an earlier attempt.
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    # When a task message was last sent for this run; the reaper re-sends one when a
    # queued run stays unclaimed (its message was lost).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "kind"],
                condition=Q(status__in=["queued", "running"]),
                name="training_run_one_unfinished_per_shop_kind",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="training_run_progress_max_100"),
        ]
        indexes = [
            models.Index(fields=["status", "lease_expires_at"], name="training_run_status_lease"),
            models.Index(fields=["shop", "kind", "-created_at"], name="training_run_shop_recent"),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.kind}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status not in self.UNFINISHED


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        READY = "ready"  # artifact on disk, may be activated
        FAILED = "failed"  # artifact failed verification; never served
        ARCHIVED = "archived"  # artifact removed by retention; metrics kept

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="model_versions")
    kind = models.CharField(max_length=32)
    number = models.PositiveIntegerField()  # 1, 2, ... per shop and kind
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY)
    training_run = models.OneToOneField(
        TrainingRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="version"
    )
    config = models.JSONField(default=dict)  # the algorithm's full configuration (to_dict)
    data_from = models.DateTimeField(null=True, blank=True)  # first and last event trained on
    data_to = models.DateTimeField(null=True, blank=True)
    event_count = models.BigIntegerField(default=0)
    shopper_count = models.BigIntegerField(default=0)
    item_count = models.BigIntegerField(default=0)
    metrics = models.JSONField(default=dict)  # offline evaluation on the temporal hold-out
    durations = models.JSONField(default=dict)  # seconds per stage
    artifact_path = models.CharField(max_length=500)  # relative to settings.ARTIFACT_DIR
    artifact_bytes = models.BigIntegerField(default=0)
    artifact_sha256 = models.CharField(max_length=64)
    # Why it was, or was not, activated automatically (see registry.activation_decision).
    activation_note = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")  # why the version FAILED
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "kind", "number"], name="model_version_unique_number"),
        ]
        indexes = [models.Index(fields=["shop", "kind", "-number"], name="model_version_recent")]

    def __str__(self) -> str:
        return f"{self.kind} v{self.number}"


class ActiveModel(models.Model):
    """The version of one kind that serving uses for a shop.

    ``previous_version`` is the one active before, so a rollback is the same single
    UPDATE back (swapping the two columns).
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="active_models")
    kind = models.CharField(max_length=32)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    previous_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField()
    activated_by = models.CharField(max_length=200)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "kind"], name="active_model_unique_shop_kind")]

    def __str__(self) -> str:
        return f"active {self.kind} of shop {self.shop_id}: version {self.version_id}"


class ServedList(models.Model):
    """One recommendation list as it was served: what analytics attributes clicks and
    purchases to (events carry the ``request_id``) and counts experiment exposures by.

    Written by recommender.serving.log in batches off the request thread, never updated.
    ``shopper`` is nulled when the shopper is erased (SET_NULL), so erasure leaves no
    link; ``unit_hash`` is a keyed hash of the assignment unit (the shopper id the request
    named), distinct from ``Shopper.key_hash``, so exposures count units. ``items``: one
    entry per served position, ``{"product_id", "sku", "position" (1-based), "score",
    "sources": {source: raw score}, "promotion_ids": [...], "reasons": [...]}``;
    ``model_versions``: ``{kind: ModelVersion id}`` of the models the list came from.
    """

    request_id = models.UUIDField(unique=True)
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="served_lists")
    placement_slug = models.CharField(max_length=64)
    experiment_id = models.BigIntegerField(null=True, blank=True)
    experiment_version = models.IntegerField(null=True, blank=True)
    variant = models.CharField(max_length=64, blank=True, default="")
    shopper = models.ForeignKey(
        "catalog.Shopper", null=True, blank=True, on_delete=models.SET_NULL, related_name="served_lists"
    )
    unit_hash = models.CharField(max_length=64, blank=True, default="")
    session = models.CharField(max_length=128, blank=True, default="")
    context_skus = models.JSONField(default=list, blank=True)
    items = models.JSONField(default=list, blank=True)
    model_versions = models.JSONField(default=dict, blank=True)
    latency_ms = models.FloatField()
    served_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["shop", "served_at"], name="served_list_shop_time"),
            models.Index(fields=["shop", "placement_slug", "served_at"], name="served_list_placement_time"),
        ]

    def __str__(self) -> str:
        return f"served list {self.request_id} ({self.placement_slug})"
