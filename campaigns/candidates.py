"""The unit that flows from candidate generation through the rules engine to the response."""

from dataclasses import dataclass, field


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
