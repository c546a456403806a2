"""The catalog and behaviour store. Every row belongs to a Shop, the tenant."""

import secrets
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models


def default_event_weights() -> dict[str, float]:
    return {"view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 8.0, "impression": 0.0}


def new_shopper_secret() -> str:
    return secrets.token_hex(32)


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Berlin)") from None


class Shop(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    currency = models.CharField(max_length=3, default="EUR")
    # Key of the HMAC that turns the shop's shopper ids into Shopper.key_hash.
    shopper_secret = models.CharField(max_length=64, default=new_shopper_secret, editable=False)
    # Merchandiser-tunable model settings (see recommender): how much each event type
    # counts and how fast behaviour ages.
    event_weights = models.JSONField(default=default_event_weights)
    decay_half_life_days = models.FloatField(default=14.0, validators=[MinValueValidator(0.1)])
    attribution_window_hours = models.PositiveIntegerField(default=24)
    retrain_every_hours = models.PositiveIntegerField(default=24)
    # Bumped on every product write; serving processes reload catalog state when it moves.
    catalog_version = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        weights = self.event_weights
        if not isinstance(weights, dict) or set(weights) != set(EventType.values):
            raise ValidationError({"event_weights": f"needs one weight for each of {', '.join(EventType.values)}"})
        for name, weight in weights.items():
            if not isinstance(weight, (int, float)) or weight < 0 or weight > 1000:
                raise ValidationError({"event_weights": f"weight of {name} must be a number from 0 to 1000"})


class Category(models.Model):
    """A node of the shop's category tree; ``path`` is the full name, e.g. ``Home > Kitchen``."""

    PATH_SEPARATOR = " > "

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="categories")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    name = models.CharField(max_length=200)
    path = models.CharField(max_length=1000)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "path"], name="category_unique_path_per_shop")]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.path


class Product(models.Model):
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="products")
    sku = models.CharField(max_length=128)
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True, default="")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products")
    brand = models.CharField(max_length=200, blank=True, default="")
    price = models.DecimalField(max_digits=12, decimal_places=2, default=Decimal("0.00"))
    url = models.URLField(max_length=2000, blank=True, default="")
    image_url = models.URLField(max_length=2000, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    in_stock = models.BooleanField(default=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "sku"], name="product_unique_sku_per_shop")]
        indexes = [
            models.Index(fields=["shop", "updated_at"], name="product_shop_updated"),
            models.Index(fields=["shop", "created_at"], name="product_shop_created"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.title}"


class ProductEmbedding(models.Model):
    """The text embedding of a product (title, category, brand, tags, attributes, description).

    ``text_hash`` is the hash of the text that was embedded, so an unchanged product is
    never embedded twice.
    """

    product = models.OneToOneField(Product, on_delete=models.CASCADE, primary_key=True, related_name="embedding")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="+")
    model_name = models.CharField(max_length=100)
    text_hash = models.CharField(max_length=64)
    vector = models.BinaryField()  # float32, little-endian, L2-normalised
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "updated_at"], name="embedding_shop_updated")]


class Shopper(models.Model):
    """A shopper of one shop, known only by a keyed hash of the shop's own id for them.

    No raw id, name, e-mail or IP address is stored: lookups and erasure hash the id
    the shop sends with the shop's secret and find the row by that hash.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="shoppers")
    key_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "key_hash"], name="shopper_unique_hash_per_shop")]


class EventType(models.TextChoices):
    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    PURCHASE = "purchase"
    IMPRESSION = "impression"


class Event(models.Model):
    """One thing a shopper did. ``event_id`` is the shop's id for it: a replay is a no-op.

    ``product`` is null when the SKU was unknown at ingestion (``sku`` keeps what was sent).

    This is the append-only log that bulk imports write at high rates, so its foreign
    keys carry no database constraint (the per-row check of a deferred constraint cost
    as much as the insert itself) and no single-column index (each is the leading
    column of a composite index below, or of the unique constraint). The writers,
    catalog.services.events_ingest and catalog.event_copy, take the shopper and product
    ids in the same transaction, under the shop's event-write lock that shopper_erase
    takes exclusively (catalog.services.shop_events_lock), so an erasure never leaves
    events behind. Deletes cascade in Django as before. Products are deactivated, never
    deleted, by the app; an operator hard-deleting a product or a shop while it is
    ingesting could leave events that point nowhere.
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False)
    event_id = models.CharField(max_length=128)
    type = models.CharField(max_length=16, choices=EventType.choices)
    shopper = models.ForeignKey(
        Shopper, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    product = models.ForeignKey(
        Product,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="events",
        db_index=False,
        db_constraint=False,
    )
    sku = models.CharField(max_length=128)
    session = models.CharField(max_length=128, blank=True, default="")
    ts = models.DateTimeField()
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    request_id = models.CharField(max_length=64, blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shop", "event_id"], name="event_unique_id_per_shop")]
        indexes = [
            # A shopper and a product belong to one shop, so these need no shop column.
            models.Index(fields=["shopper", "-ts"], name="event_shopper_recent"),
            models.Index(fields=["product", "type", "ts"], name="event_product_counts"),
            models.Index(fields=["shop", "ts"], name="event_shop_ts"),
            models.Index(fields=["shop", "received_at"], name="event_shop_received"),
        ]

    @property
    def unknown_product(self) -> bool:
        return self.product_id is None


class Rejection(models.Model):
    """Something a shop sent that could not be accepted, kept whole for inspection.

    ``payload`` is the raw record as text (it may not even be valid JSON); ``reasons`` is
    a list of ``{"field", "reason"}``; ``line`` is the line number for file imports.
    """

    class Kind(models.TextChoices):
        EVENT = "event"
        PRODUCT = "product"

    class Source(models.TextChoices):
        API = "api"
        IMPORT = "import"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="rejections")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    payload = models.TextField()
    reasons = models.JSONField(default=list)
    record_id = models.CharField(max_length=200, blank=True, default="")
    line = models.PositiveIntegerField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "kind", "-received_at"], name="rejection_recent")]


class ApiKey(models.Model):
    """A key a shop's widget or server uses. Only a hash of the secret part is stored.

    The full key reads ``pk_<prefix>_<secret>`` or ``sk_<prefix>_<secret>``; ``prefix``
    finds the row, the SHA-256 of the whole key is compared in constant time.
    """

    class Kind(models.TextChoices):
        PUBLISHABLE = "publishable"
        SECRET = "secret"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    prefix = models.CharField(max_length=32, unique=True)
    key_hash = models.CharField(max_length=64)
    allowed_origins = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.kind} key {self.prefix}"

    @property
    def is_secret(self) -> bool:
        return self.kind == self.Kind.SECRET


class Membership(models.Model):
    """A console user's role in one shop."""

    class Role(models.TextChoices):
        VIEWER = "viewer"
        MERCHANDISER = "merchandiser"
        ADMIN = "admin"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "shop"], name="membership_unique_user_shop")]


class AuditEntry(models.Model):
    """One change made through the console or the API: who, when, what, before and after.

    Written by the service that makes the change, in the same transaction, exactly once
    per change (bulk paths write one entry per object they change).
    """

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="audit_entries")
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=200)  # kept when the user or key is gone
    action = models.CharField(max_length=32)  # create, update, delete, publish, pause, start, stop, promote, ...
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "-at"], name="audit_recent")]
        ordering = ["-at", "-id"]


class UploadJob(models.Model):
    """A product or event file uploaded from the console, imported by a Celery task.

    The file lies under ``settings.UPLOAD_DIR`` at ``stored_name`` until the import
    finishes. ``bytes_done`` / ``bytes_total`` is the progress the console polls;
    the counters are what the import service reported.
    """

    class Kind(models.TextChoices):
        PRODUCTS = "products"
        EVENTS = "events"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    shop = models.ForeignKey(Shop, on_delete=models.CASCADE, related_name="upload_jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    file_name = models.CharField(max_length=255)  # as the user's browser named it, for display only
    stored_name = models.CharField(max_length=255)
    bytes_total = models.PositiveBigIntegerField(default=0)
    bytes_done = models.PositiveBigIntegerField(default=0)
    records_accepted = models.PositiveIntegerField(default=0)
    records_unchanged = models.PositiveIntegerField(default=0)
    records_rejected = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # last progress report of the running import
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "-created_at"], name="upload_job_recent")]

    def __str__(self) -> str:
        return f"{self.kind} upload {self.file_name}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def percent_done(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        if not self.bytes_total:
            return 0
        return min(100, self.bytes_done * 100 // self.bytes_total)
