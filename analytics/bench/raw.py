"""The same numbers as the dashboard queries, computed by scanning the raw event and
served-list logs (Postgres SQL): what the rollups spare every page view, and a check
that they agree.

Attribution is done in SQL exactly as analytics.attribution does it: an event joins the
served list its request id names (same shop); a purchase without one takes the list of
the shopper's latest click with a request id on the same product within the window
before it. Revenue is ``round(price x quantity, 2)`` (the catalog price when the event
has none).
"""

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

UUID_PATTERN = "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"

# Events with the served list (l) they are attributed to.
_ATTRIBUTED = f"""
WITH ev AS (
    SELECT e.id, e.type, e.shopper_id, e.product_id, e.ts, e.quantity, e.price,
           CASE WHEN e.request_id ~ '{UUID_PATTERN}' THEN e.request_id::uuid END AS rid
    FROM catalog_event e
    WHERE e.shop_id = %(shop)s AND e.ts >= %(start)s AND e.ts < %(end)s
      AND e.type IN ('impression', 'click', 'add_to_cart', 'purchase')
),
attributed AS (
    SELECT ev.*, l.request_id AS list_id
    FROM ev JOIN recommender_servedlist l ON l.shop_id = %(shop)s AND l.request_id = ev.rid
    UNION ALL
    SELECT ev.*, w.request_id AS list_id
    FROM ev CROSS JOIN LATERAL (
        SELECT l.request_id
        FROM catalog_event c
        JOIN recommender_servedlist l ON l.shop_id = %(shop)s
             AND l.request_id = CASE WHEN c.request_id ~ '{UUID_PATTERN}' THEN c.request_id::uuid END
        WHERE c.shopper_id = ev.shopper_id AND c.type = 'click' AND c.request_id <> ''
          AND c.product_id = ev.product_id AND c.ts <= ev.ts AND c.ts >= ev.ts - %(window)s
        ORDER BY c.ts DESC, c.id DESC
        LIMIT 1
    ) w
    WHERE ev.type = 'purchase'
      AND NOT EXISTS (
          SELECT 1 FROM recommender_servedlist l2 WHERE l2.shop_id = %(shop)s AND l2.request_id = ev.rid
      )
)
"""

_EVENT_SUMS = """
    count(*) FILTER (WHERE a.type = 'impression'),
    count(*) FILTER (WHERE a.type = 'click'),
    count(*) FILTER (WHERE a.type = 'add_to_cart'),
    count(*) FILTER (WHERE a.type = 'purchase'),
    COALESCE(sum(round(COALESCE(a.price, p.price) * a.quantity, 2)) FILTER (WHERE a.type = 'purchase'), 0)
"""

# (key, requests, item slots, impressions, clicks, add-to-carts, purchases, revenue)
Numbers = dict[tuple[Any, ...], tuple[int, int, int, int, int, int, Decimal]]


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _merge(served: Sequence[tuple[Any, ...]], events: Sequence[tuple[Any, ...]], width: int) -> Numbers:
    numbers: dict[tuple[Any, ...], list[Any]] = {}
    for row in served:
        numbers.setdefault(tuple(row[:width]), [0, 0, 0, 0, 0, 0, Decimal("0.00")])[0:2] = [row[width], row[width + 1]]
    for row in events:
        numbers.setdefault(tuple(row[:width]), [0, 0, 0, 0, 0, 0, Decimal("0.00")])[2:7] = list(row[width:])
    return {
        key: (int(v[0] or 0), int(v[1] or 0), int(v[2]), int(v[3]), int(v[4]), int(v[5]), Decimal(v[6]))
        for key, v in numbers.items()
    }


def grouped(
    shop_id: int,
    start: datetime,
    end: datetime,
    window: timedelta,
    *,
    list_key: Sequence[str],
    list_where: str = "",
    zone: str = "UTC",
) -> Numbers:
    """Counts grouped by expressions over the served list ``l`` (and ``{t}``: the list's
    ``served_at`` for served-side counts, the event's ``ts`` for the others)."""
    params = {"shop": shop_id, "start": start, "end": end, "window": window, "zone": zone}
    served_key = [k.replace("{t}", "l.served_at") for k in list_key]
    event_key = [k.replace("{t}", "a.ts") for k in list_key]
    served_select = ", ".join([*served_key, "count(*)", "sum(jsonb_array_length(l.items))"])
    group = ", ".join(str(i + 1) for i in range(len(list_key)))
    served = _fetch(
        f"SELECT {served_select} FROM recommender_servedlist l WHERE l.shop_id = %(shop)s "
        f"AND l.served_at >= %(start)s AND l.served_at < %(end)s {list_where}"
        + (f" GROUP BY {group}" if list_key else ""),
        params,
    )
    events = _fetch(
        _ATTRIBUTED + f"SELECT {', '.join([*event_key, _EVENT_SUMS])} FROM attributed a "
        "JOIN recommender_servedlist l ON l.shop_id = %(shop)s AND l.request_id = a.list_id "
        f"LEFT JOIN catalog_product p ON p.id = a.product_id WHERE TRUE {list_where}"
        + (f" GROUP BY {group}" if list_key else ""),
        params,
    )
    return _merge(served, events, len(list_key))


def by_model_version(shop_id: int, start: datetime, end: datetime, window: timedelta) -> Numbers:
    params = {"shop": shop_id, "start": start, "end": end, "window": window}
    served = _fetch(
        "SELECT mv.key, mv.value::bigint, count(*), sum(jsonb_array_length(l.items)) "
        "FROM recommender_servedlist l CROSS JOIN LATERAL jsonb_each_text(l.model_versions) mv "
        "WHERE l.shop_id = %(shop)s AND l.served_at >= %(start)s AND l.served_at < %(end)s GROUP BY 1, 2",
        params,
    )
    events = _fetch(
        _ATTRIBUTED + f"SELECT mv.key, mv.value::bigint, {_EVENT_SUMS} FROM attributed a "
        "JOIN recommender_servedlist l ON l.shop_id = %(shop)s AND l.request_id = a.list_id "
        "CROSS JOIN LATERAL jsonb_each_text(l.model_versions) mv "
        "LEFT JOIN catalog_product p ON p.id = a.product_id GROUP BY 1, 2",
        params,
    )
    return _merge(served, events, 2)


def by_promotion(shop_id: int, start: datetime, end: datetime, window: timedelta, *, per_item: bool) -> Numbers:
    """Per promotion (and product): slots its items took and what their events did."""
    params = {"shop": shop_id, "start": start, "end": end, "window": window}
    key = "promo.value::bigint" + (", (it->>'product_id')::bigint" if per_item else "")
    width = 2 if per_item else 1
    group = "1, 2" if per_item else "1"
    requests = "count(*)" if per_item else "count(DISTINCT l.id)"
    served = _fetch(
        f"SELECT {key}, {requests}, count(*) FROM recommender_servedlist l "
        "CROSS JOIN LATERAL jsonb_array_elements(l.items) it "
        "CROSS JOIN LATERAL jsonb_array_elements_text(it->'promotion_ids') promo "
        f"WHERE l.shop_id = %(shop)s AND l.served_at >= %(start)s AND l.served_at < %(end)s GROUP BY {group}",
        params,
    )
    events = _fetch(
        _ATTRIBUTED + f"SELECT {key}, {_EVENT_SUMS} FROM attributed a "
        "JOIN recommender_servedlist l ON l.shop_id = %(shop)s AND l.request_id = a.list_id "
        "CROSS JOIN LATERAL (SELECT x.value AS it FROM jsonb_array_elements(l.items) WITH ORDINALITY x(value, n) "
        "                    WHERE (x.value->>'product_id')::bigint = a.product_id ORDER BY n LIMIT 1) item "
        "CROSS JOIN LATERAL jsonb_array_elements_text(item.it->'promotion_ids') promo "
        f"LEFT JOIN catalog_product p ON p.id = a.product_id GROUP BY {group}",
        params,
    )
    return _merge(served, events, width)


def coverage(shop_id: int, start: datetime, end: datetime, new_days: int) -> tuple[int, int]:
    """Distinct products served, and item slots of products new at the time."""
    row = _fetch(
        "SELECT count(DISTINCT (it->>'product_id')::bigint), "
        "count(*) FILTER (WHERE p.created_at >= l.served_at - make_interval(days => %(days)s)) "
        "FROM recommender_servedlist l CROSS JOIN LATERAL jsonb_array_elements(l.items) it "
        "LEFT JOIN catalog_product p ON p.id = (it->>'product_id')::bigint "
        "WHERE l.shop_id = %(shop)s AND l.served_at >= %(start)s AND l.served_at < %(end)s",
        {"shop": shop_id, "start": start, "end": end, "days": new_days},
    )[0]
    return int(row[0]), int(row[1])
