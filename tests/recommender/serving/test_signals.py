"""What a request knows about the shopper: history in snapshot indices and the live session."""

from catalog.selectors import NO_HISTORY, ShopperHistory
from catalog.services import products_upsert
from catalog.snapshot import snapshot_load
from recommender.serving.signals import SESSION_GAP_S, signals_build

NOW = 1_800_000_000.0


def _snapshot(shop):
    products_upsert(shop=shop, records=[{"sku": s, "title": s, "price": 1} for s in ("A", "B", "C")])
    return snapshot_load(shop.pk)


def test_named_live_session_is_the_latest_events_session(shop):
    snapshot = _snapshot(shop)
    a, b, c = (int(p) for p in snapshot.product_ids)
    history = ShopperHistory.from_rows(
        [(c, "view", NOW - 60, "now"), (999_999, "view", NOW - 90, "now"), (b, "purchase", NOW - 120, "old"),
         (a, "view", NOW - 180, "now")]
    )  # fmt: skip
    signals = signals_build(snapshot, ["B", "nope"], history, NOW)
    assert signals.history.tolist() == [0, 1, 2]  # oldest first, the unknown product dropped
    assert signals.context.tolist() == [1]
    assert signals.in_session.tolist() == [True, False, True]
    assert signals.session_id == "now"
    assert signals.purchased.tolist() == [1]


def test_unnamed_session_is_the_last_run_of_events_without_long_gaps(shop):
    snapshot = _snapshot(shop)
    a, b, c = (int(p) for p in snapshot.product_ids)
    history = ShopperHistory.from_rows(
        [(c, "view", NOW - 10, ""), (b, "click", NOW - 100, ""), (a, "view", NOW - 100 - 2 * SESSION_GAP_S, "")]
    )
    signals = signals_build(snapshot, [], history, NOW)
    assert signals.in_session.tolist() == [False, True, True]
    assert signals.session_id == ""
    # An old latest event: history, no live session.
    assert not signals_build(snapshot, [], history, NOW + 2 * SESSION_GAP_S).in_session.any()
    assert len(signals_build(snapshot, [], NO_HISTORY, NOW).history) == 0
