"""A strategy as data: which candidate sources with which weights, filters, diversity, size.

Campaigns defines and validates it; recommender/serving interprets it. It is stored as
JSON on ``Strategy.config`` and read back with ``StrategyConfig.from_dict``, which is
the one validator (used by ``Strategy.clean`` and therefore by the API). The JSON shape:

    {
      "sources": {"personal": 1.0, "trending": 0.5},
      "filters": {"in_stock": true, "exclude_purchased": false,
                  "price_min": null, "price_max": null, "categories": ["Home > Kitchen"]},
      "diversity": {"max_per_category": 3, "mmr_lambda": 0.0},
      "size": 10
    }

``filters``, ``diversity`` and ``size`` may be left out (defaults below); ``sources``
may not. Unknown keys are errors, so a typo never silently does nothing.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("personal", "similar", "bought_together", "also_viewed", "trending", "new_arrivals", "session")
MAX_WEIGHT = 100.0
MAX_SIZE = 50
MAX_FILTER_CATEGORIES = 100


class StrategyError(ValueError):
    """Invalid strategy data. ``problems`` maps a field path (``sources.foo``) to a reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(self.messages()))

    def messages(self) -> list[str]:
        """One line per problem; a problem of the whole object (path "") has no prefix."""
        return [f"{path}: {reason}" if path else reason for path, reason in self.problems.items()]


@dataclass(frozen=True)
class Filters:
    in_stock: bool = True
    exclude_purchased: bool = False
    price_min: float | None = None
    price_max: float | None = None
    categories: tuple[str, ...] = ()  # category paths; each includes its descendants


@dataclass(frozen=True)
class Diversity:
    max_per_category: int | None = None  # None: no cap
    mmr_lambda: float = 0.0  # 0: MMR off; 1: diversity only


@dataclass(frozen=True)
class StrategyConfig:
    sources: tuple[tuple[str, float], ...]  # (source name, weight > 0), in SOURCES order
    filters: Filters = field(default_factory=Filters)
    diversity: Diversity = field(default_factory=Diversity)
    size: int = 10

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.sources)

    @classmethod
    def from_dict(cls, data: Any) -> "StrategyConfig":
        """The validated config; raises StrategyError listing every problem found."""
        problems: dict[str, str] = {}
        if not isinstance(data, Mapping):
            raise StrategyError({"": f"must be an object, got {type(data).__name__}"})
        _unknown_keys(data, {"sources", "filters", "diversity", "size"}, "", problems)
        sources = _sources(data.get("sources"), problems)
        filters = _filters(data.get("filters", {}), problems)
        diversity = _diversity(data.get("diversity", {}), problems)
        size = data.get("size", 10)
        if not _is_int(size) or not 1 <= size <= MAX_SIZE:
            problems["size"] = f"must be a whole number from 1 to {MAX_SIZE}"
        if problems:
            raise StrategyError(problems)
        return cls(sources=sources, filters=filters, diversity=diversity, size=size)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": dict(self.sources),
            "filters": {
                "in_stock": self.filters.in_stock,
                "exclude_purchased": self.filters.exclude_purchased,
                "price_min": self.filters.price_min,
                "price_max": self.filters.price_max,
                "categories": list(self.filters.categories),
            },
            "diversity": {
                "max_per_category": self.diversity.max_per_category,
                "mmr_lambda": self.diversity.mmr_lambda,
            },
            "size": self.size,
        }


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _unknown_keys(data: Mapping[str, Any], allowed: set[str], prefix: str, problems: dict[str, str]) -> None:
    for key in sorted(set(data) - allowed, key=str):
        problems[f"{prefix}{key}"] = f"unknown field; expected {', '.join(sorted(allowed))}"


def _sources(raw: Any, problems: dict[str, str]) -> tuple[tuple[str, float], ...]:
    if not isinstance(raw, Mapping) or not raw:
        problems["sources"] = "must be a non-empty object of source name to weight"
        return ()
    for name, weight in raw.items():
        if name not in SOURCES:
            problems[f"sources.{name}"] = f"unknown source; expected one of {', '.join(SOURCES)}"
        elif not _is_number(weight) or not 0 < weight <= MAX_WEIGHT:
            problems[f"sources.{name}"] = f"weight must be a number above 0 and at most {MAX_WEIGHT:g}"
    return tuple((name, float(raw[name])) for name in SOURCES if name in raw)


def _filters(raw: Any, problems: dict[str, str]) -> Filters:
    if not isinstance(raw, Mapping):
        problems["filters"] = "must be an object"
        return Filters()
    _unknown_keys(raw, {"in_stock", "exclude_purchased", "price_min", "price_max", "categories"}, "filters.", problems)
    for name in ("in_stock", "exclude_purchased"):
        if name in raw and not isinstance(raw[name], bool):
            problems[f"filters.{name}"] = "must be true or false"
    prices: dict[str, float | None] = {}
    for name in ("price_min", "price_max"):
        value = raw.get(name)
        if value is not None and (not _is_number(value) or value < 0):
            problems[f"filters.{name}"] = "must be a number of at least 0, or null"
            value = None
        prices[name] = None if value is None else float(value)
    low, high = prices["price_min"], prices["price_max"]
    if low is not None and high is not None and low > high:
        problems["filters.price_max"] = "must be at least price_min"
    categories = raw.get("categories", [])
    if not isinstance(categories, list) or not all(isinstance(c, str) and c.strip() for c in categories):
        problems["filters.categories"] = "must be a list of category paths such as 'Home > Kitchen'"
        categories = []
    elif len(categories) > MAX_FILTER_CATEGORIES:
        problems["filters.categories"] = f"at most {MAX_FILTER_CATEGORIES} categories"
    return Filters(
        in_stock=raw.get("in_stock", True) is True,
        exclude_purchased=raw.get("exclude_purchased", False) is True,
        price_min=low,
        price_max=high,
        categories=tuple(c.strip() for c in categories),
    )


def _diversity(raw: Any, problems: dict[str, str]) -> Diversity:
    if not isinstance(raw, Mapping):
        problems["diversity"] = "must be an object"
        return Diversity()
    _unknown_keys(raw, {"max_per_category", "mmr_lambda"}, "diversity.", problems)
    cap = raw.get("max_per_category")
    if cap is not None and (not _is_int(cap) or not 1 <= cap <= MAX_SIZE):
        problems["diversity.max_per_category"] = f"must be a whole number from 1 to {MAX_SIZE}, or null"
        cap = None
    mmr = raw.get("mmr_lambda", 0.0)
    if not _is_number(mmr) or not 0 <= mmr <= 1:
        problems["diversity.mmr_lambda"] = "must be a number from 0 (off) to 1"
        mmr = 0.0
    return Diversity(max_per_category=cap, mmr_lambda=float(mmr))


# The starting strategy of each placement kind, as data (validated at import by the
# tests through from_dict). Weights are relative; serving normalises each source's
# scores before blending.
DEFAULT_STRATEGIES: dict[str, dict[str, Any]] = {
    "home": {
        "sources": {"personal": 1.0, "trending": 0.6, "session": 0.8, "new_arrivals": 0.3},
        "filters": {"in_stock": True, "exclude_purchased": True},
        "diversity": {"max_per_category": 3, "mmr_lambda": 0.0},
        "size": 12,
    },
    "product": {
        "sources": {"similar": 1.0, "bought_together": 0.8, "also_viewed": 0.6, "personal": 0.3},
        "filters": {"in_stock": True, "exclude_purchased": False},
        "diversity": {"max_per_category": None, "mmr_lambda": 0.2},
        "size": 8,
    },
    "cart": {
        "sources": {"bought_together": 1.0, "similar": 0.5, "personal": 0.3},
        "filters": {"in_stock": True, "exclude_purchased": True},
        "diversity": {"max_per_category": 2, "mmr_lambda": 0.0},
        "size": 6,
    },
    "category": {
        "sources": {"trending": 1.0, "personal": 0.7},
        "filters": {"in_stock": True, "exclude_purchased": False},
        "diversity": {"max_per_category": None, "mmr_lambda": 0.0},
        "size": 12,
    },
    "email": {
        "sources": {"personal": 1.0, "trending": 0.4},
        "filters": {"in_stock": True, "exclude_purchased": True},
        "diversity": {"max_per_category": 2, "mmr_lambda": 0.0},
        "size": 6,
    },
}


def default_strategy(kind: str) -> StrategyConfig:
    """The default strategy of a placement kind (home, product, cart, category, email)."""
    return StrategyConfig.from_dict(DEFAULT_STRATEGIES[kind])
