"""The unit that flows from candidate generation through the rules engine to the response."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np


@dataclass(slots=True)
class Candidate:
    """One item a request may serve.

    ``index`` is the product's index in the CatalogSnapshot the request uses. ``score``
    is the blended, normalised score (>= 0, higher is better; boosts multiply it).
    ``sources`` maps each source that proposed the item to its raw score; ``reasons``
    is the provenance shown to merchandisers, one human-readable line per rule or source.
    ``pinned_slot`` is set by the rules engine on an item a promotion pinned (1-based),
    so later passes (diversity) keep it in place, and ``pinned_by`` to that pin's rule;
    ``buried`` on an item a promotion buried.
    """

    index: int
    score: float
    sources: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    pinned_slot: int | None = None
    pinned_by: int | None = None  # the pin that placed it: its position in CompiledRules.rules
    buried: bool = False


class ScoredItems(Sequence[Candidate]):
    """Candidates as two arrays, before any provenance: what serving hands the rules
    engine. The engine reads the arrays; a Candidate is made only for an item it serves
    (``scored[i]``), not for each of the hundreds it ranks."""

    def __init__(self, items: np.ndarray, scores: np.ndarray) -> None:
        if len(items) != len(scores):
            raise ValueError(f"{len(items)} items but {len(scores)} scores")
        self.items = np.asarray(items, dtype=np.intp)
        self.scores = np.asarray(scores, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, position: int) -> Candidate: ...

    @overload
    def __getitem__(self, position: slice) -> list[Candidate]: ...

    def __getitem__(self, position: int | slice) -> Candidate | list[Candidate]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        return Candidate(index=int(self.items[position]), score=float(self.scores[position]))
