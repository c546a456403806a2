"""Which products of a CatalogSnapshot a Target matches, fast enough for the request path.

A ``SnapshotIndex`` wraps one snapshot with inverted indexes (brand, tag, attribute
value -> product indices), each built on first use, and memoises the products each
target matches. ``snapshot_index`` keeps one per shop and builds a new one when the
shop's snapshot object changes (a refreshed snapshot is a new object), so a target is
matched once per snapshot, not once per request or per compile.
"""

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import numpy as np

from campaigns.targets import Target, match_key
from catalog.snapshot import CatalogSnapshot

_EMPTY = np.zeros(0, dtype=np.intp)
MAX_MEMOISED_TARGETS = 5000


def _as_indices(positions: Iterable[int]) -> np.ndarray:
    return np.fromiter(positions, dtype=np.intp)


class SnapshotIndex:
    """Inverted indexes and memoised target matches over one snapshot (read-only after
    build; the memo is a plain dict, safe to race on under the GIL: both writers store
    the same value)."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.snapshot = snapshot
        self.size = len(snapshot)
        self._brands: dict[str, np.ndarray] | None = None
        self._tags: dict[str, np.ndarray] | None = None
        self._attributes: dict[tuple[str, str], np.ndarray] | None = None
        self._category_ids_by_path = {path: cid for cid, path in snapshot.categories.path.items()}
        children: dict[int, list[int]] = defaultdict(list)
        for child, parent in snapshot.categories.parent.items():
            if parent is not None:
                children[parent].append(child)
        self._children = dict(children)
        self._max_category_id = int(snapshot.category_ids.max()) if self.size else 0
        self._memo: dict[Target, np.ndarray] = {}
        self._unions: dict[tuple[Target, ...], np.ndarray] = {}

    # --- inverted indexes, built on first use ------------------------------------

    def _brand_index(self) -> dict[str, np.ndarray]:
        if self._brands is None:
            self._brands = _group(
                _keyed((position, brand) for position, brand in enumerate(self.snapshot.brands) if brand)
            )
        return self._brands

    def _tag_index(self) -> dict[str, np.ndarray]:
        if self._tags is None:
            pairs = ((position, tag) for position, tags in enumerate(self.snapshot.tags) for tag in tags)
            self._tags = _group(_keyed(pairs))
        return self._tags

    def _attribute_index(self) -> dict[tuple[str, str], np.ndarray]:
        if self._attributes is None:
            found: dict[tuple[str, str], list[int]] = defaultdict(list)
            keys: dict[tuple[type, Any], str] = {}
            for position, attributes in enumerate(self.snapshot.attributes):
                for name, value in attributes.items():
                    for item in value if isinstance(value, list) else (value,):
                        if not _is_scalar(item):
                            continue
                        key = keys.get((type(item), item))
                        if key is None:
                            key = keys[(type(item), item)] = match_key(item)
                        positions = found[(name, key)]
                        if not positions or positions[-1] != position:  # "Red" and "red" in one list
                            positions.append(position)
            self._attributes = {key: np.array(value, dtype=np.intp) for key, value in found.items()}
        return self._attributes

    # --- matching ------------------------------------------------------------------

    def category_ids(self, paths: Iterable[str]) -> list[int]:
        """Ids of the categories at these paths and of all their descendants."""
        found: set[int] = set()
        stack = [cid for cid in (self._category_ids_by_path.get(p) for p in paths) if cid is not None]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self._children.get(current, ()))
        return sorted(found)

    def _mask_of(self, target: Target) -> np.ndarray | None:
        """Boolean mask of the products matching every criterion of a timeless target;
        None when the target has no criterion (matches everything)."""
        snapshot, size = self.snapshot, self.size
        masks: list[np.ndarray] = []
        if target.skus:
            mask = np.zeros(size, dtype=bool)
            mask[snapshot.indices_of_skus(target.skus)] = True
            masks.append(mask)
        if target.categories:
            lookup = np.zeros(self._max_category_id + 1, dtype=bool)
            ids = [cid for cid in self.category_ids(target.categories) if cid <= self._max_category_id]
            lookup[ids] = True
            lookup[0] = False  # 0: the product has no category
            masks.append(lookup[snapshot.category_ids])
        if target.brands:
            masks.append(self._union(self._brand_index(), (match_key(b) for b in target.brands)))
        if target.tags:
            masks.append(self._union(self._tag_index(), (match_key(t) for t in target.tags)))
        for name, values in target.attributes:
            masks.append(self._union(self._attribute_index(), ((name, match_key(v)) for v in values)))
        if target.price_min is not None:
            masks.append(snapshot.prices >= target.price_min)
        if target.price_max is not None:
            masks.append(snapshot.prices <= target.price_max)
        if not masks:
            return None
        combined = masks[0]
        for mask in masks[1:]:
            combined = combined & mask
        return combined

    def _union(self, index: dict[Any, np.ndarray], keys: Iterable[Any]) -> np.ndarray:
        mask = np.zeros(self.size, dtype=bool)
        for key in keys:
            mask[index.get(key, _EMPTY)] = True
        return mask

    def indices_any(self, targets: tuple[Target, ...], at: datetime) -> np.ndarray:
        """Sorted indices of the products matching at least one of ``targets`` (timeless
        targets only: the union is memoised)."""
        if len(targets) == 1:
            return self.indices(targets[0], at)
        found = self._unions.get(targets)
        if found is None:
            mask = np.zeros(self.size, dtype=bool)
            for target in targets:
                mask[self.indices(target, at)] = True
            found = self._unions[targets] = np.flatnonzero(mask)
        return found

    def indices(self, target: Target, at: datetime) -> np.ndarray:
        """Sorted indices of the products ``target`` matches at instant ``at``."""
        timeless = target.timeless
        found = self._memo.get(timeless)
        if found is None:
            mask = self._mask_of(timeless)
            found = np.arange(self.size, dtype=np.intp) if mask is None else np.flatnonzero(mask)
            if len(self._memo) >= MAX_MEMOISED_TARGETS:
                self._memo.clear()
            self._memo[timeless] = found
        if target.new_within_days is not None:
            cutoff = at.timestamp() - target.new_within_days * 86400.0
            found = found[self.snapshot.created_ts[found] >= cutoff]
        return found


def _keyed(pairs: Iterable[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """(position, match key) for (position, text) pairs; each distinct text is keyed once."""
    keys: dict[str, str] = {}
    for position, text in pairs:
        key = keys.get(text)
        if key is None:
            key = keys[text] = match_key(text)
        yield position, key


def _group(pairs: Iterable[tuple[int, str]]) -> dict[str, np.ndarray]:
    """key -> sorted distinct positions, from pairs in ascending position order."""
    found: dict[str, list[int]] = defaultdict(list)
    for position, key in pairs:
        positions = found[key]
        if not positions or positions[-1] != position:
            positions.append(position)
    return {key: np.array(value, dtype=np.intp) for key, value in found.items()}


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float))  # bool is an int


_lock = threading.Lock()
_indexes: dict[int, SnapshotIndex] = {}  # shop id -> index of the newest snapshot seen


def snapshot_index(snapshot: CatalogSnapshot) -> SnapshotIndex:
    """The SnapshotIndex of this snapshot object, shared per shop within the process
    (one per shop: an index of an older snapshot is replaced, not kept)."""
    index = _indexes.get(snapshot.shop_id)
    if index is not None and index.snapshot is snapshot:
        return index
    with _lock:
        index = _indexes.get(snapshot.shop_id)
        if index is None or index.snapshot is not snapshot:
            index = SnapshotIndex(snapshot)
            _indexes[snapshot.shop_id] = index
        return index
