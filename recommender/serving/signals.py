"""What one request knows about the shopper and the page, in snapshot indices.

Built from the shopper's recent events (catalog.selectors.shopper_history: the
cache, Redis in production, invalidated by ingestion on commit, so an event accepted a
moment ago is already there) and the context SKUs of the request. No database access.

The *live session* is the shopper's latest visit if it is still going: the events
that share the latest event's session id (or, where the shop sends no session ids,
that follow each other with gaps under ``SESSION_GAP_S``), provided the latest event
is less than ``SESSION_GAP_S`` old. A shopper returning after a day has history but
no live session.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from catalog.selectors import HISTORY_EVENT_TYPES, ShopperHistory
from catalog.snapshot import CatalogSnapshot
from recommender.algorithms.data import DEFAULT_SESSION_GAP_SECONDS, EVENT_TYPES, History

SESSION_GAP_S = DEFAULT_SESSION_GAP_SECONDS
_TYPE_CODE = {name: code for code, name in enumerate(EVENT_TYPES)}
_PURCHASE = _TYPE_CODE["purchase"]
# The history's type codes (catalog.selectors.HISTORY_EVENT_TYPES) as the models' codes.
_MODEL_TYPE_CODE = np.array([_TYPE_CODE[name] for name in HISTORY_EVENT_TYPES], dtype=np.int8)
_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Signals:
    """Events oldest first; indices into the request's CatalogSnapshot."""

    now: int  # unix seconds
    context: np.ndarray  # int64 snapshot indices of the known context SKUs, request order, distinct
    history: np.ndarray  # int64 snapshot index per event on a product of the snapshot
    history_type: np.ndarray  # int8 event type code per event
    history_ts: np.ndarray  # int64 unix seconds per event
    in_session: np.ndarray  # bool per event: part of the live session
    session_id: str  # the live session's id ("" when none or not sent)

    @property
    def has_history(self) -> bool:
        return len(self.history) > 0

    @functools.cached_property
    def purchased(self) -> np.ndarray:
        return np.unique(self.history[self.history_type == _PURCHASE])

    @property
    def session_items(self) -> np.ndarray:
        return self.history[self.in_session]

    def recent_items(self, count: int) -> np.ndarray:
        """The last ``count`` distinct products of the history, newest first."""
        newest_first = self.history[::-1]
        _, first = np.unique(newest_first, return_index=True)
        return newest_first[np.sort(first)][:count]

    def model_history(self, from_snapshot: np.ndarray, *, session_only: bool = False) -> History:
        """The history in a model's item space (-1 for products the model lacks; every
        algorithm ignores those)."""
        mask = self.in_session if session_only else slice(None)
        items = from_snapshot[self.history[mask]] if len(self.history) else _EMPTY
        return History(
            item=items,
            event_type=self.history_type[mask],
            ts=self.history_ts[mask],
            weight=np.ones(len(items), dtype=np.float32),
        )


def signals_build(
    snapshot: CatalogSnapshot, context_skus: Sequence[str], history: ShopperHistory, now: float
) -> Signals:
    """``history`` newest first (as the selector returns it); events on products the
    snapshot lacks and unknown context SKUs are dropped."""
    context = list(dict.fromkeys(snapshot.indices_of_skus(context_skus)))
    oldest_first = slice(None, None, -1)
    indices = snapshot.indices_of_product_ids(history.product_ids[oldest_first])
    known = indices >= 0
    ts = history.ts[oldest_first][known].astype(np.int64)
    session_codes = history.session_codes[oldest_first][known]
    in_session, session_id = _live_session(session_codes, history.sessions, ts, int(now))
    return Signals(
        now=int(now),
        context=np.array(context, dtype=np.int64),
        history=indices[known],
        history_type=_MODEL_TYPE_CODE[history.type_codes[oldest_first][known]],
        history_ts=ts,
        in_session=in_session,
        session_id=session_id,
    )


def _live_session(
    session_codes: np.ndarray, sessions: tuple[str, ...], ts: np.ndarray, now: int
) -> tuple[np.ndarray, str]:
    in_session = np.zeros(len(ts), dtype=bool)
    if not len(ts) or now - ts[-1] > SESSION_GAP_S:
        return in_session, ""
    latest = sessions[session_codes[-1]]
    if latest:
        return session_codes == session_codes[-1], latest
    unnamed = np.array([not session for session in sessions], dtype=bool)[session_codes]
    start = len(ts) - 1
    while start > 0 and ts[start] - ts[start - 1] <= SESSION_GAP_S and unnamed[start - 1]:
        start -= 1
    in_session[start:] = True
    return in_session, ""
