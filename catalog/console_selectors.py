"""Reads behind the console's catalog, data, audit and dashboard pages. Every read takes the shop.

Lists return querysets the views paginate; aggregates are one SQL query each, so a
page costs a fixed number of queries however much data the shop has.
"""

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.expressions import RawSQL

from catalog.models import AuditEntry, Category, Event, Product, ProductEmbedding, Rejection, Shop, Shopper, UploadJob

INGESTION_CHART_DAYS = 7


@dataclass(frozen=True)
class ProductFilters:
    query: str = ""
    category: str = ""  # a category path; its subcategories match too
    status: str = ""  # "", "active", "inactive", "out_of_stock"
    embedding: str = ""  # "", "ready", "pending"
    cold_start: bool = False


def product_search(shop: Shop, filters: ProductFilters) -> QuerySet[Product]:
    """Products matching the filters, newest first, each annotated with ``has_events``
    (False: cold start) and ``has_embedding``."""
    products = (
        Product.objects.filter(shop=shop)
        .select_related("category")
        .annotate(
            has_events=Exists(Event.objects.filter(shop=shop, product=OuterRef("pk"))),
            has_embedding=Exists(ProductEmbedding.objects.filter(product=OuterRef("pk"))),
        )
        .order_by("-updated_at", "-id")
    )
    if filters.query:
        products = products.filter(Q(sku__icontains=filters.query) | Q(title__icontains=filters.query))
    if filters.category:
        products = products.filter(
            Q(category__path=filters.category)
            | Q(category__path__startswith=filters.category + Category.PATH_SEPARATOR)
        )
    if filters.status == "active":
        products = products.filter(active=True)
    elif filters.status == "inactive":
        products = products.filter(active=False)
    elif filters.status == "out_of_stock":
        products = products.filter(in_stock=False)
    if filters.embedding == "ready":
        products = products.filter(has_embedding=True)
    elif filters.embedding == "pending":
        products = products.filter(has_embedding=False)
    if filters.cold_start:
        products = products.filter(has_events=False)
    return products


def category_paths(shop: Shop) -> list[str]:
    return list(Category.objects.filter(shop=shop).order_by("path").values_list("path", flat=True))


@dataclass(frozen=True)
class ProductActivity:
    events_by_type: dict[str, int]
    total_events: int
    last_event_at: datetime | None


def product_activity(shop: Shop, product: Product) -> ProductActivity:
    rows = list(
        Event.objects.filter(shop=shop, product=product).values("type").annotate(n=Count("id")).order_by("type")
    )
    last = (
        Event.objects.filter(shop=shop, product=product).order_by("-ts").values_list("ts", flat=True).first()
        if rows
        else None
    )
    by_type = {row["type"]: row["n"] for row in rows}
    return ProductActivity(events_by_type=by_type, total_events=sum(by_type.values()), last_event_at=last)


def product_recent_events(shop: Shop, product: Product, limit: int = 20) -> list[Event]:
    return list(Event.objects.filter(shop=shop, product=product).order_by("-ts", "-id")[:limit])


@dataclass(frozen=True)
class HourCount:
    hour: datetime  # start of the hour, in the shop's time zone
    events: int


def events_per_hour(shop: Shop, now: datetime, days: int = INGESTION_CHART_DAYS) -> list[HourCount]:
    """Events received per hour over the last ``days`` days, oldest first, zero-filled.

    One GROUP BY over the (shop, received_at) index, by whole hours since the window's
    start (a local hour boundary): plain integer arithmetic in SQL, because Django's
    TruncHour with a time zone runs a Python function per row on SQLite (about 1 s on
    the demo shop's 210k events).
    """
    tz = zoneinfo.ZoneInfo(shop.timezone)
    end = now.astimezone(tz).replace(minute=0, second=0, microsecond=0).astimezone(UTC) + timedelta(hours=1)
    start = end - timedelta(days=days)
    # Stepping in UTC from a local hour boundary gives the local hours: it never skips
    # or repeats an hour when daylight saving time changes.
    counts = {
        row["bucket"]: row["n"]
        for row in Event.objects.filter(shop=shop, received_at__gte=start, received_at__lt=end)
        .annotate(bucket=_hours_since(start))
        .values("bucket")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [
        HourCount(hour=(start + timedelta(hours=i)).astimezone(tz), events=counts.get(i, 0)) for i in range(days * 24)
    ]


def _hours_since(start: datetime) -> RawSQL:
    """Whole hours from ``start`` to the row's received_at (received_at >= start)."""
    epoch = int(start.timestamp())
    if connection.vendor == "postgresql":
        return RawSQL("(FLOOR(EXTRACT(EPOCH FROM received_at)) - %s)::bigint / 3600", (epoch,))
    return RawSQL("(CAST(strftime('%%s', received_at) AS INTEGER) - %s) / 3600", (epoch,))


@dataclass(frozen=True)
class IngestionHealth:
    events_last_hour: int
    events_last_day: int
    rejected_events_last_day: int
    rejected_products_last_day: int
    last_event_received_at: datetime | None
    products_total: int
    products_active: int
    products_without_embedding: int  # active products the text model has not embedded yet


def ingestion_health(shop: Shop, now: datetime) -> IngestionHealth:
    events = Event.objects.filter(shop=shop, received_at__gte=now - timedelta(days=1)).aggregate(
        day=Count("id"), hour=Count("id", filter=Q(received_at__gte=now - timedelta(hours=1)))
    )
    rejections = Rejection.objects.filter(shop=shop, received_at__gte=now - timedelta(days=1)).aggregate(
        events=Count("id", filter=Q(kind=Rejection.Kind.EVENT)),
        products=Count("id", filter=Q(kind=Rejection.Kind.PRODUCT)),
    )
    products = Product.objects.filter(shop=shop).aggregate(
        n_total=Count("id"),
        n_active=Count("id", filter=Q(active=True)),
        n_without_embedding=Count("id", filter=Q(active=True, embedding__isnull=True)),
    )
    last_received = (
        Event.objects.filter(shop=shop).order_by("-received_at").values_list("received_at", flat=True).first()
    )
    return IngestionHealth(
        events_last_hour=events["hour"],
        events_last_day=events["day"],
        rejected_events_last_day=rejections["events"],
        rejected_products_last_day=rejections["products"],
        last_event_received_at=last_received,
        products_total=products["n_total"],
        products_active=products["n_active"],
        products_without_embedding=products["n_without_embedding"],
    )


@dataclass(frozen=True)
class RejectionFilters:
    kind: str = ""  # "", "event", "product"
    source: str = ""  # "", "api", "import"
    query: str = ""  # in the record id or the reasons


def rejection_search(shop: Shop, filters: RejectionFilters) -> QuerySet[Rejection]:
    rejections = Rejection.objects.filter(shop=shop).order_by("-received_at", "-id")
    if filters.kind:
        rejections = rejections.filter(kind=filters.kind)
    if filters.source:
        rejections = rejections.filter(source=filters.source)
    if filters.query:
        rejections = rejections.filter(Q(record_id__icontains=filters.query) | Q(reasons__icontains=filters.query))
    return rejections


@dataclass(frozen=True)
class AuditFilters:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    date_from: date | None = None
    date_to: date | None = None  # inclusive


def audit_search(shop: Shop, filters: AuditFilters) -> QuerySet[AuditEntry]:
    entries = AuditEntry.objects.filter(shop=shop).order_by("-at", "-id")
    if filters.actor:
        entries = entries.filter(actor_label__icontains=filters.actor)
    if filters.action:
        entries = entries.filter(action=filters.action)
    if filters.object_type:
        entries = entries.filter(object_type=filters.object_type)
    tz = zoneinfo.ZoneInfo(shop.timezone)
    if filters.date_from:
        entries = entries.filter(at__gte=datetime.combine(filters.date_from, time.min, tzinfo=tz))
    if filters.date_to:
        entries = entries.filter(at__lt=datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=tz))
    return entries


@dataclass(frozen=True)
class AuditChoices:
    actions: list[str]
    object_types: list[str]


def audit_choices(shop: Shop) -> AuditChoices:
    """The actions and object types that occur in the shop's audit log, for the filter menus."""
    entries = AuditEntry.objects.filter(shop=shop).order_by()
    return AuditChoices(
        actions=sorted(entries.values_list("action", flat=True).distinct()),
        object_types=sorted(entries.values_list("object_type", flat=True).distinct()),
    )


def upload_jobs_recent(shop: Shop, limit: int = 20) -> list[UploadJob]:
    return list(UploadJob.objects.filter(shop=shop).select_related("created_by").order_by("-created_at")[:limit])


def product_has_embedding(product: Product) -> bool:
    return ProductEmbedding.objects.filter(product=product).exists()


@dataclass(frozen=True)
class ShopperSummary:
    key_hash_prefix: str  # enough to find the shopper's audit entries, not to identify them
    first_seen: datetime
    events_by_type: dict[str, int]
    total_events: int
    recent_events: list[Event]


SHOPPER_RECENT_EVENTS = 50


def shopper_summary(shop: Shop, shopper: Shopper) -> ShopperSummary:
    """What the store holds about one shopper: counts by type and the latest events."""
    counts = {
        row["type"]: row["n"]
        for row in Event.objects.filter(shop=shop, shopper=shopper).values("type").annotate(n=Count("id")).order_by()
    }
    recent = list(
        Event.objects.filter(shop=shop, shopper=shopper)
        .select_related("product")
        .order_by("-ts", "-id")[:SHOPPER_RECENT_EVENTS]
    )
    return ShopperSummary(
        key_hash_prefix=shopper.key_hash[:16],
        first_seen=shopper.created_at,
        events_by_type=dict(sorted(counts.items())),
        total_events=sum(counts.values()),
        recent_events=recent,
    )
