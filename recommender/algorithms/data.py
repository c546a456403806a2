"""The arrays algorithms train and answer on: events, item features, one shopper's query.

Everything is indexed densely: users ``0..n_users-1`` and items ``0..n_items-1``, mapped
from the shop's ids by :class:`recommender.algorithms.vocabulary.Vocabulary`. Arrays are
coerced to fixed dtypes on construction so every algorithm can rely on them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

# The event types of the public API, in the order of their codes (code = position).
EVENT_TYPES: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "impression")
VIEW, CLICK, ADD_TO_CART, PURCHASE, IMPRESSION = range(len(EVENT_TYPES))

# A new session starts after this much inactivity when the shop sends no session ids.
DEFAULT_SESSION_GAP_SECONDS = 30 * 60


def event_type_code(name: str) -> int:
    """The code of an event type name, e.g. ``"purchase"`` -> 3; ValueError if unknown."""
    try:
        return EVENT_TYPES.index(name)
    except ValueError:
        raise ValueError(f"unknown event type {name!r}; known: {', '.join(EVENT_TYPES)}") from None


def event_type_codes(weights: Mapping[str, float]) -> np.ndarray:
    """A per-code float32 lookup table from a ``{event type name: value}`` mapping.

    Event types missing from the mapping get 0 (they do not count)."""
    unknown = set(weights) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event types {sorted(unknown)}; known: {', '.join(EVENT_TYPES)}")
    return np.array([float(weights.get(name, 0.0)) for name in EVENT_TYPES], dtype=np.float32)


def sessions_by_inactivity(
    user: np.ndarray, ts: np.ndarray, gap_seconds: float = DEFAULT_SESSION_GAP_SECONDS
) -> np.ndarray:
    """Session ids (int64, dense from 0) for events without them: a shopper's session ends
    after ``gap_seconds`` without an event. Events may come in any order."""
    user = np.asarray(user)
    ts = np.asarray(ts)
    if len(user) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((ts, user))
    sorted_user, sorted_ts = user[order], ts[order]
    starts = np.ones(len(order), dtype=bool)
    starts[1:] = (sorted_user[1:] != sorted_user[:-1]) | (np.diff(sorted_ts) > gap_seconds)
    sessions = np.empty(len(order), dtype=np.int64)
    sessions[order] = np.cumsum(starts) - 1
    return sessions


@dataclass(frozen=True, eq=False)
class Interactions:
    """Events of many shoppers: one entry per event, in any order.

    ``weight`` multiplies the event type's weight (e.g. a quantity; 1 by default). ``ts``
    is unix seconds. ``session`` ids group events of one visit (dense ints >= 0).
    """

    user: np.ndarray
    item: np.ndarray
    event_type: np.ndarray
    weight: np.ndarray
    ts: np.ndarray
    session: np.ndarray
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        coerced: dict[str, np.ndarray] = {
            "user": np.ascontiguousarray(self.user, dtype=np.int32),
            "item": np.ascontiguousarray(self.item, dtype=np.int32),
            "event_type": np.ascontiguousarray(self.event_type, dtype=np.int8),
            "weight": np.ascontiguousarray(self.weight, dtype=np.float32),
            "ts": np.ascontiguousarray(self.ts, dtype=np.int64),
            "session": np.ascontiguousarray(self.session, dtype=np.int64),
        }
        for name, array in coerced.items():
            object.__setattr__(self, name, array)
        object.__setattr__(self, "n_users", int(self.n_users))
        object.__setattr__(self, "n_items", int(self.n_items))
        n = len(self.user)
        if any(array.ndim != 1 or len(array) != n for array in coerced.values()):
            raise ValueError("all event arrays must be one-dimensional and of the same length")
        _check_range("user", self.user, self.n_users)
        _check_range("item", self.item, self.n_items)
        _check_range("event_type", self.event_type, len(EVENT_TYPES))
        if n and self.session.min() < 0:
            raise ValueError("session ids must be >= 0 (see sessions_by_inactivity)")

    @classmethod
    def from_arrays(
        cls,
        *,
        user: np.ndarray,
        item: np.ndarray,
        ts: np.ndarray,
        event_type: np.ndarray | None = None,
        weight: np.ndarray | None = None,
        session: np.ndarray | None = None,
        n_users: int | None = None,
        n_items: int | None = None,
    ) -> "Interactions":
        """Interactions with defaults: views, weight 1, sessions cut by 30 minutes of
        inactivity, and sizes one past the largest index."""
        user = np.asarray(user)
        item = np.asarray(item)
        n = len(user)
        return cls(
            user=user,
            item=item,
            event_type=np.full(n, VIEW) if event_type is None else event_type,
            weight=np.ones(n) if weight is None else weight,
            ts=ts,
            session=sessions_by_inactivity(user, np.asarray(ts)) if session is None else session,
            n_users=(int(user.max()) + 1 if n else 0) if n_users is None else n_users,
            n_items=(int(item.max()) + 1 if n else 0) if n_items is None else n_items,
        )

    def __len__(self) -> int:
        return len(self.user)

    def select(self, mask: np.ndarray) -> "Interactions":
        """The events where ``mask`` (boolean, or integer positions) holds; same sizes."""
        return Interactions(
            user=self.user[mask],
            item=self.item[mask],
            event_type=self.event_type[mask],
            weight=self.weight[mask],
            ts=self.ts[mask],
            session=self.session[mask],
            n_users=self.n_users,
            n_items=self.n_items,
        )

    def sorted_by_time(self) -> "Interactions":
        """The same events ordered by time; events at the same second keep their order."""
        return self.select(np.argsort(self.ts, kind="stable"))

    def user_history(self, user: int) -> "History":
        """All events of one user as a chronological :class:`History`."""
        mine = np.flatnonzero(self.user == user)
        mine = mine[np.argsort(self.ts[mine], kind="stable")]
        return History(
            item=self.item[mine], event_type=self.event_type[mine], ts=self.ts[mine], weight=self.weight[mine]
        )

    def save(self, path: str | PathLike[str]) -> None:
        """Write to an ``.npz`` file (no pickle)."""
        np.savez(
            path,
            user=self.user,
            item=self.item,
            event_type=self.event_type,
            weight=self.weight,
            ts=self.ts,
            session=self.session,
            sizes=np.array([self.n_users, self.n_items], dtype=np.int64),
        )

    @classmethod
    def load(cls, path: str | PathLike[str]) -> "Interactions":
        with np.load(path, allow_pickle=False) as data:
            n_users, n_items = (int(size) for size in data["sizes"])
            return cls(
                user=data["user"],
                item=data["item"],
                event_type=data["event_type"],
                weight=data["weight"],
                ts=data["ts"],
                session=data["session"],
                n_users=n_users,
                n_items=n_items,
            )


@dataclass(frozen=True, eq=False)
class ItemFeatures:
    """What is known about each item apart from behaviour.

    ``category``: int32 category index per item, -1 for none. ``created_ts``: int64 unix
    seconds the item was added, 0 if unknown. ``text_embeddings``: float32 (n_items, d),
    L2-normalised rows (a zero row for an item without text), or None when not computed.
    """

    category: np.ndarray
    created_ts: np.ndarray
    text_embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "category", np.ascontiguousarray(self.category, dtype=np.int32))
        object.__setattr__(self, "created_ts", np.ascontiguousarray(self.created_ts, dtype=np.int64))
        if self.category.ndim != 1 or self.created_ts.shape != self.category.shape:
            raise ValueError("category and created_ts must be one-dimensional, one entry per item")
        if self.text_embeddings is not None:
            embeddings = np.ascontiguousarray(self.text_embeddings, dtype=np.float32)
            if embeddings.ndim != 2 or len(embeddings) != len(self.category):
                raise ValueError("text_embeddings must be (n_items, dimensions)")
            object.__setattr__(self, "text_embeddings", embeddings)

    @property
    def n_items(self) -> int:
        return len(self.category)

    @classmethod
    def empty(cls, n_items: int) -> "ItemFeatures":
        """No categories, no creation times, no text."""
        return cls(category=np.full(n_items, -1), created_ts=np.zeros(n_items))

    def select(self, items: np.ndarray) -> "ItemFeatures":
        """The features of ``items`` (integer positions), in that order."""
        embeddings = None if self.text_embeddings is None else self.text_embeddings[items]
        return ItemFeatures(
            category=self.category[items], created_ts=self.created_ts[items], text_embeddings=embeddings
        )

    def save(self, path: str | PathLike[str]) -> None:
        """Write to an ``.npz`` file (no pickle)."""
        arrays: dict[str, Any] = {"category": self.category, "created_ts": self.created_ts}
        if self.text_embeddings is not None:
            arrays["text_embeddings"] = self.text_embeddings
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | PathLike[str]) -> "ItemFeatures":
        with np.load(path, allow_pickle=False) as data:
            embeddings = data["text_embeddings"] if "text_embeddings" in data.files else None
            return cls(category=data["category"], created_ts=data["created_ts"], text_embeddings=embeddings)


def _empty(dtype: type) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True, eq=False)
class History:
    """One shopper's events, oldest first: what serving knows about them at request time."""

    item: np.ndarray = field(default_factory=lambda: _empty(np.int32))
    event_type: np.ndarray = field(default_factory=lambda: _empty(np.int8))
    ts: np.ndarray = field(default_factory=lambda: _empty(np.int64))
    weight: np.ndarray = field(default_factory=lambda: _empty(np.float32))

    def __post_init__(self) -> None:
        object.__setattr__(self, "item", np.ascontiguousarray(self.item, dtype=np.int32))
        object.__setattr__(self, "event_type", np.ascontiguousarray(self.event_type, dtype=np.int8))
        object.__setattr__(self, "ts", np.ascontiguousarray(self.ts, dtype=np.int64))
        object.__setattr__(self, "weight", np.ascontiguousarray(self.weight, dtype=np.float32))
        n = len(self.item)
        if not (len(self.event_type) == len(self.ts) == len(self.weight) == n):
            raise ValueError("history arrays must have the same length")
        if n > 1 and np.any(np.diff(self.ts) < 0):
            raise ValueError("history must be in chronological order")

    @classmethod
    def of_items(cls, items: np.ndarray | list[int], *, event_type: int = VIEW, ts: int = 0) -> "History":
        """A history of events of one type, all at ``ts``, in the given order."""
        items = np.asarray(items, dtype=np.int32)
        n = len(items)
        return cls(item=items, event_type=np.full(n, event_type), ts=np.full(n, ts), weight=np.ones(n))

    def __len__(self) -> int:
        return len(self.item)

    def last(self, n: int) -> "History":
        """The most recent ``n`` events."""
        if len(self) <= n:
            return self  # immutable: the whole history is its own last n
        start = len(self) - n
        return History(
            item=self.item[start:], event_type=self.event_type[start:], ts=self.ts[start:], weight=self.weight[start:]
        )


@dataclass(frozen=True, eq=False)
class Query:
    """What a recommendation is asked for: the shopper's history and/or a context.

    ``context_items`` are the items on the page now (the product viewed, the cart).
    ``category`` (-1 none) narrows category-aware sources such as trending. ``now`` is
    the request time (unix seconds); None means the time of the last history event.
    Item indices the model does not know (>= its n_items) are ignored by every algorithm.
    """

    history: History = field(default_factory=History)
    context_items: np.ndarray = field(default_factory=lambda: _empty(np.int32))
    category: int = -1
    now: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "context_items", np.ascontiguousarray(self.context_items, dtype=np.int32))

    def reference_time(self) -> int:
        """``now``, else the time of the last history event, else 0."""
        if self.now is not None:
            return int(self.now)
        return int(self.history.ts[-1]) if len(self.history) else 0


def _check_range(name: str, values: np.ndarray, size: int) -> None:
    if len(values) and (values.min() < 0 or values.max() >= size):
        raise ValueError(f"{name} indices must lie in [0, {size})")
