"""External ids (SKUs, shopper ids) <-> dense indices, the one mapping used everywhere."""

from collections.abc import Iterable, Sequence
from os import PathLike

import numpy as np

UNKNOWN = -1


class Vocabulary:
    """An ordered set of string ids; the index of an id is its position.

    Built once per trained version and saved with it, so serving maps a SKU to the same
    row of every artifact of that version. Unknown ids map to ``UNKNOWN`` (-1).
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self._ids: list[str] = [str(external_id) for external_id in ids]
        self._index: dict[str, int] = {external_id: index for index, external_id in enumerate(self._ids)}
        if len(self._index) != len(self._ids):
            raise ValueError("vocabulary ids must be unique")

    @classmethod
    def from_occurrences(cls, ids: Iterable[str]) -> "Vocabulary":
        """The distinct ids in order of first occurrence."""
        return cls(dict.fromkeys(str(external_id) for external_id in ids))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, external_id: object) -> bool:
        return external_id in self._index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self._ids == other._ids

    __hash__ = None  # type: ignore[assignment]  # mutable-looking value object: not hashable

    def index(self, external_id: str) -> int:
        """The index of one id, or ``UNKNOWN``."""
        return self._index.get(external_id, UNKNOWN)

    def indices(self, ids: Iterable[str]) -> np.ndarray:
        """int32 indices of many ids, ``UNKNOWN`` for ids not in the vocabulary."""
        return np.fromiter((self._index.get(str(external_id), UNKNOWN) for external_id in ids), dtype=np.int32)

    def id(self, index: int) -> str:
        return self._ids[index]

    def ids(self, indices: Iterable[int] | np.ndarray) -> list[str]:
        """The ids at ``indices`` (IndexError for an index out of range)."""
        return [self._ids[int(index)] for index in indices]

    @property
    def all_ids(self) -> Sequence[str]:
        return tuple(self._ids)

    def extended(self, ids: Iterable[str]) -> "Vocabulary":
        """A new vocabulary with the unknown ones of ``ids`` appended (existing indices kept)."""
        new_ids = [external_id for external_id in dict.fromkeys(map(str, ids)) if external_id not in self._index]
        return Vocabulary([*self._ids, *new_ids])

    def save(self, path: str | PathLike[str]) -> None:
        """Write to an ``.npz`` file as a unicode array (no pickle)."""
        np.savez(path, ids=np.array(self._ids, dtype=np.str_))

    @classmethod
    def load(cls, path: str | PathLike[str]) -> "Vocabulary":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["ids"].tolist())
