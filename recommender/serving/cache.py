"""A bounded in-process cache of non-personal recommendation lists.

A list that depends on nothing about the shopper (no shopper id, or a strategy that
reads no history: no personal or session source, no purchase filter, and the context
items, not the history, as anchors) is the same for every request with the same
placement, resolution (strategy, promotions, model version, variant), context, limit
and minute. Such lists are kept here, keyed by exactly those.

Invalidation: each ``ServingState`` owns its cache and a new state (a new model version,
a catalog or campaigns change) starts with an empty one, so nothing computed from old
data is served after the swap. Personal lists are never cached (erasing a shopper
must leave nothing behind). Least recently used entries go first beyond ``max_entries``.
Thread-safe (one lock around the dictionary).
"""

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

MAX_ENTRIES = 4096


class ListCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
