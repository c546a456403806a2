"""The shopper history the request path reads: newest first, cached as arrays."""

from datetime import UTC, datetime, timedelta

import numpy as np

from catalog.selectors import NO_HISTORY, ShopperHistory, shopper_history
from catalog.services import EventRow, events_insert, products_upsert, shopper_key_hash, shoppers_ensure


def _row(event_id: str, shopper_id: int, sku: str, kind: str, ts: datetime, session: str = "") -> EventRow:
    return EventRow(
        event_id=event_id, type=kind, shopper_id=shopper_id, sku=sku, session=session, ts=ts,
        quantity=1, price=None, request_id="",
    )  # fmt: skip


def test_history_is_newest_first_without_impressions_or_unknown_products(shop):
    products_upsert(shop=shop, records=[{"sku": s, "title": s, "price": 1} for s in ("A", "B")])
    shopper_id = shoppers_ensure(shop, [shopper_key_hash(shop, "s-1")])[shopper_key_hash(shop, "s-1")]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    rows = [
        _row("e1", shopper_id, "A", "view", start, "visit-1"),
        _row("e2", shopper_id, "B", "purchase", start + timedelta(minutes=1), "visit-1"),
        _row("e3", shopper_id, "A", "impression", start + timedelta(minutes=2), "visit-2"),
        _row("e4", shopper_id, "GONE", "view", start + timedelta(minutes=3), "visit-2"),
        _row("e5", shopper_id, "B", "click", start + timedelta(minutes=4), ""),
    ]
    events_insert(shop=shop, rows=rows, received_at=start)
    history = shopper_history(shop, "s-1")
    assert history.types == ["click", "purchase", "view"]
    assert history.rows()[1][1:] == ("purchase", (start + timedelta(minutes=1)).timestamp(), "visit-1")
    # The cached copy (read back the second time) is the same history.
    again = shopper_history(shop, "s-1")
    assert again.rows() == history.rows()
    assert history.until((start + timedelta(minutes=1)).timestamp()).types == ["purchase", "view"]
    assert len(shopper_history(shop, "nobody")) == 0


def test_cache_encoding_round_trips():
    history = ShopperHistory.from_rows([(7, "view", 1.5, "s"), (9, "add_to_cart", 0.25, ""), (7, "purchase", 0.0, "s")])
    copy = ShopperHistory.from_cache(history.to_cache())
    assert copy.rows() == history.rows()
    assert copy.sessions == ("s", "")
    assert np.array_equal(copy.session_codes, [0, 1, 0])
    assert NO_HISTORY.rows() == [] and len(ShopperHistory.from_cache(NO_HISTORY.to_cache())) == 0
