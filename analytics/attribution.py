"""Attribution: which served list an impression, click, add-to-cart or purchase came from.

The rules (``attribute``):

1. An event whose ``request_id`` names a served list of the same shop belongs to that
   list ("request_id" attribution). The widget sends it with impressions, clicks and
   add-to-carts, and with purchases of items clicked in the session.
2. A purchase without one belongs to the list of the *latest* click by the same shopper
   on the same product (same product id; same SKU when the product was unknown) that
   itself belongs to a list, if the click happened at most the shop's
   ``attribution_window_hours`` before the purchase: ``click.ts <= purchase.ts <=
   click.ts + window`` ("window" attribution, last click wins; ties go to the later event).
   A purchase later than that, or before any such click, is not attributed.
3. Everything else (views; events whose request id is unknown, malformed or another
   shop's) is not attributed.

Revenue of an attributed purchase is ``price x quantity``; a purchase sent without a
price is valued at the product's current catalog price (0 when the product is unknown).

``attribute`` is a pure function over the loaded facts; the loaders below read the event
and served-list logs, always scoped by shop.
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL

from analytics.models import AttributionKind
from catalog.models import Event, EventType, Product
from recommender.models import ServedList


def any_of(values: Sequence[Any], db_type: str) -> Any:
    """The right side of an ``__in`` lookup over many values: on Postgres one array
    parameter (``unnest(%s::bigint[])``) - binding thousands of separate parameters costs
    more than the query itself -, elsewhere the plain list (callers keep lists to 1,000)."""
    if connection.vendor == "postgresql":
        return RawSQL(f"SELECT unnest(%s::{db_type}[])", (list(values),))
    return list(values)


ATTRIBUTED_TYPES = (EventType.IMPRESSION, EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE)
ZERO = Decimal("0.00")
_CHUNK = 1000  # ids per IN (...) query


@dataclass(frozen=True, slots=True)
class ServedItem:
    product_id: int | None
    sku: str
    position: int
    promotion_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ServedListFacts:
    """What analytics needs of one served list."""

    request_id: uuid.UUID
    placement_slug: str
    experiment_id: int  # 0: not in an experiment
    experiment_version: int
    variant: str
    unit_hash: str
    shopper_id: int | None
    served_at: datetime
    items: tuple[ServedItem, ...]
    model_versions: tuple[tuple[str, int], ...]  # (kind, version id), sorted by kind

    def item_for(self, product_id: int | None, sku: str) -> ServedItem | None:
        """The served item an event refers to (by product id, else by SKU)."""
        for item in self.items:
            if (product_id is not None and item.product_id == product_id) or (product_id is None and item.sku == sku):
                return item
        return None


@dataclass(frozen=True, slots=True)
class EventFacts:
    id: int
    type: str
    shopper_id: int
    product_id: int | None
    sku: str
    ts: datetime
    quantity: int
    price: Decimal | None
    request_id: str


@dataclass(frozen=True, slots=True)
class Attribution:
    event: EventFacts
    served: ServedListFacts
    kind: str
    via_event_id: int | None
    item: ServedItem | None
    revenue: Decimal


@lru_cache(maxsize=65536)
def parse_request_id(text: str) -> uuid.UUID | None:
    """The served list id an event names, or None when it is empty or not a UUID."""
    if not text:
        return None
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        return None


def same_product(a: EventFacts, b: EventFacts) -> bool:
    if a.product_id is not None or b.product_id is not None:
        return a.product_id == b.product_id
    return a.sku == b.sku


def attribute(
    events: Iterable[EventFacts],
    served: Mapping[uuid.UUID, ServedListFacts],
    clicks: Sequence[EventFacts],
    window: timedelta,
    catalog_prices: Mapping[int, Decimal],
) -> list[Attribution]:
    """Attribute ``events`` (rules in the module docstring).

    ``served`` must hold every list named by the events and by ``clicks``; ``clicks``
    every click with a request id by the purchasing shoppers in ``[first purchase -
    window, last purchase]`` (more is harmless). ``catalog_prices`` by product id, for
    purchases sent without a price.
    """
    clicks_by_shopper: dict[int, list[EventFacts]] = defaultdict(list)
    for click in clicks:
        request_id = parse_request_id(click.request_id)
        if click.type == EventType.CLICK and request_id is not None and request_id in served:
            clicks_by_shopper[click.shopper_id].append(click)
    attributions = []
    for event in events:
        if event.type not in ATTRIBUTED_TYPES:
            continue
        request_id = parse_request_id(event.request_id)
        served_list = served.get(request_id) if request_id is not None else None
        kind, via = AttributionKind.REQUEST_ID, None
        if served_list is None and event.type == EventType.PURCHASE:
            last_click = _last_click(event, clicks_by_shopper.get(event.shopper_id, ()), window)
            if last_click is not None:
                served_list = served[parse_request_id(last_click.request_id)]  # type: ignore[index]
                kind, via = AttributionKind.WINDOW, last_click.id
        if served_list is None:
            continue
        attributions.append(
            Attribution(
                event=event,
                served=served_list,
                kind=kind,
                via_event_id=via,
                item=served_list.item_for(event.product_id, event.sku),
                revenue=purchase_revenue(event, catalog_prices) if event.type == EventType.PURCHASE else ZERO,
            )
        )
    return attributions


def _last_click(purchase: EventFacts, clicks: Iterable[EventFacts], window: timedelta) -> EventFacts | None:
    best = None
    for click in clicks:
        if not same_product(click, purchase) or not click.ts <= purchase.ts <= click.ts + window:
            continue
        if best is None or (click.ts, click.id) > (best.ts, best.id):
            best = click
    return best


def purchase_revenue(event: EventFacts, catalog_prices: Mapping[int, Decimal]) -> Decimal:
    """``price x quantity``; without a price, the product's catalog price."""
    price = event.price
    if price is None:
        price = catalog_prices.get(event.product_id, ZERO) if event.product_id is not None else ZERO
    return (price * event.quantity).quantize(Decimal("0.01"))


# --- loading ---------------------------------------------------------------------------------

_EVENT_FIELDS = ("id", "type", "shopper_id", "product_id", "sku", "ts", "quantity", "price", "request_id")
_SERVED_FIELDS = (
    "request_id",
    "placement_slug",
    "experiment_id",
    "experiment_version",
    "variant",
    "unit_hash",
    "shopper_id",
    "served_at",
    "items",
    "model_versions",
)


def events_between(shop_id: int, start: datetime, end: datetime) -> list[EventFacts]:
    """The shop's impressions, clicks, add-to-carts and purchases with ``start <= ts < end``
    (the (shop, ts) index), in time order."""
    rows = (
        Event.objects.filter(shop_id=shop_id, ts__gte=start, ts__lt=end, type__in=ATTRIBUTED_TYPES)
        .order_by("ts", "id")
        .values_list(*_EVENT_FIELDS)
    )
    return [EventFacts(*row) for row in rows]


def clicks_of(shop_id: int, shopper_ids: Iterable[int], start: datetime, end: datetime) -> list[EventFacts]:
    """Clicks that carry a request id, of these shoppers, with ``start <= ts <= end`` (the
    (shopper, ts) index)."""
    wanted = sorted(set(shopper_ids))
    found: list[EventFacts] = []
    for offset in range(0, len(wanted), _CHUNK):
        rows = (
            Event.objects.filter(
                shop_id=shop_id,
                shopper_id__in=any_of(wanted[offset : offset + _CHUNK], "bigint"),
                type=EventType.CLICK,
                ts__gte=start,
                ts__lte=end,
            )
            .exclude(request_id="")
            .values_list(*_EVENT_FIELDS)
        )
        found.extend(EventFacts(*row) for row in rows)
    return found


def served_lists_between(shop_id: int, start: datetime, end: datetime) -> list[ServedListFacts]:
    """The shop's lists with ``start <= served_at < end`` (the (shop, served_at) index)."""
    rows = ServedList.objects.filter(shop_id=shop_id, served_at__gte=start, served_at__lt=end).values_list(
        *_SERVED_FIELDS
    )
    return [served_list_facts(row) for row in rows]


def served_lists_by_id(shop_id: int, request_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, ServedListFacts]:
    """The shop's lists with these request ids (another shop's are not found)."""
    wanted = sorted(set(request_ids))
    found: dict[uuid.UUID, ServedListFacts] = {}
    for offset in range(0, len(wanted), _CHUNK):
        rows = ServedList.objects.filter(
            shop_id=shop_id, request_id__in=any_of(wanted[offset : offset + _CHUNK], "uuid")
        ).values_list(*_SERVED_FIELDS)
        for row in rows:
            facts = served_list_facts(row)
            found[facts.request_id] = facts
    return found


def catalog_prices(shop_id: int, product_ids: Iterable[int]) -> dict[int, Decimal]:
    wanted = sorted(set(product_ids))
    prices: dict[int, Decimal] = {}
    for offset in range(0, len(wanted), _CHUNK):
        prices.update(
            Product.objects.filter(
                shop_id=shop_id, pk__in=any_of(wanted[offset : offset + _CHUNK], "bigint")
            ).values_list("pk", "price")
        )
    return prices


def served_list_facts(row: Sequence[Any]) -> ServedListFacts:
    (request_id, placement, experiment_id, version, variant, unit_hash, shopper_id, served_at, items, models) = row
    return ServedListFacts(
        request_id=request_id if isinstance(request_id, uuid.UUID) else uuid.UUID(str(request_id)),
        placement_slug=placement,
        experiment_id=experiment_id or 0,
        experiment_version=(version or 0) if experiment_id else 0,
        variant=(variant or "") if experiment_id else "",
        unit_hash=unit_hash or "",
        shopper_id=shopper_id,
        served_at=served_at,
        items=tuple(_served_item(item, index) for index, item in enumerate(items or (), start=1)),
        model_versions=tuple(
            sorted(
                (str(kind), int(version_id)) for kind, version_id in (models or {}).items() if version_id is not None
            )
        ),
    )


def _served_item(item: Mapping[str, Any], index: int) -> ServedItem:
    product_id = item.get("product_id")
    return ServedItem(
        product_id=int(product_id) if product_id is not None else None,
        sku=str(item.get("sku", "")),
        position=int(item.get("position") or index),
        promotion_ids=tuple(sorted({int(p) for p in item.get("promotion_ids") or ()})),
    )
