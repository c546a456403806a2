"""What a promotion applies to: a typed, validated target, stored as JSON on Promotion.target.

    {"skus": ["SKU-1"], "categories": ["Home > Kitchen"], "brands": ["Acme"],
     "tags": ["gift"], "attributes": {"color": ["red", "blue"]},
     "price_min": 10, "price_max": 50, "new_within_days": 14}

Matching (``campaigns.rules`` compiles it over a catalog snapshot): the criteria that
are given must all hold (AND across kinds); within one kind any value may match (OR):
``{"brands": ["Acme"], "categories": ["Toys", "Games"]}`` is "Acme products in Toys or
Games". A category includes its descendants. Brands, tags and attribute values are
compared case-insensitively; attribute values are compared as text, and a product
attribute holding a list matches when any element matches. ``price_max`` is inclusive.
``new_within_days``: created at most that many days before the evaluated instant. A
target needs at least one criterion; SKUs and categories that do not exist (yet) simply
match nothing.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_VALUES = 1000


class TargetError(ValueError):
    """Invalid target data. ``problems`` maps a field path to a reason."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(self.messages()))

    def messages(self) -> list[str]:
        """One line per problem; a problem of the whole object (path "") has no prefix."""
        return [f"{path}: {reason}" if path else reason for path, reason in self.problems.items()]


@dataclass(frozen=True)
class Target:
    skus: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, accepted values), sorted by name
    price_min: float | None = None
    price_max: float | None = None
    new_within_days: int | None = None

    @property
    def timeless(self) -> "Target":
        """This target without its time-dependent part (``new_within_days``)."""
        if self.new_within_days is None:
            return self
        return Target(
            skus=self.skus,
            categories=self.categories,
            brands=self.brands,
            tags=self.tags,
            attributes=self.attributes,
            price_min=self.price_min,
            price_max=self.price_max,
        )

    @classmethod
    def from_dict(cls, data: Any) -> "Target":
        problems: dict[str, str] = {}
        if not isinstance(data, Mapping):
            raise TargetError({"": f"must be an object, got {type(data).__name__}"})
        allowed = {"skus", "categories", "brands", "tags", "attributes", "price_min", "price_max", "new_within_days"}
        for key in sorted(set(data) - allowed, key=str):
            problems[str(key)] = f"unknown field; expected {', '.join(sorted(allowed))}"
        lists = {
            name: _strings(data.get(name, []), name, problems) for name in ("skus", "categories", "brands", "tags")
        }
        attributes = _attributes(data.get("attributes", {}), problems)
        prices: dict[str, float | None] = {}
        for name in ("price_min", "price_max"):
            value = data.get(name)
            if value is not None and (not _is_number(value) or value < 0):
                problems[name] = "must be a number of at least 0, or null"
                value = None
            prices[name] = None if value is None else float(value)
        low, high = prices["price_min"], prices["price_max"]
        if low is not None and high is not None and low > high:
            problems["price_max"] = "must be at least price_min"
        days = data.get("new_within_days")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365):
            problems["new_within_days"] = "must be a whole number of days from 1 to 365, or null"
            days = None
        target = cls(
            skus=lists["skus"],
            categories=lists["categories"],
            brands=lists["brands"],
            tags=lists["tags"],
            attributes=attributes,
            price_min=prices["price_min"],
            price_max=prices["price_max"],
            new_within_days=days,
        )
        if not problems and target == cls():
            problems[""] = "needs at least one criterion (skus, categories, brands, tags, attributes, price, new)"
        if problems:
            raise TargetError(problems)
        return target

    def to_dict(self) -> dict[str, Any]:
        return {
            "skus": list(self.skus),
            "categories": list(self.categories),
            "brands": list(self.brands),
            "tags": list(self.tags),
            "attributes": {name: list(values) for name, values in self.attributes},
            "price_min": self.price_min,
            "price_max": self.price_max,
            "new_within_days": self.new_within_days,
        }

    def describe(self) -> str:
        """A short human description, e.g. ``brands Acme; categories Toys``."""
        parts = [
            f"{name} {', '.join(values)}"
            for name, values in (
                ("SKUs", self.skus),
                ("categories", self.categories),
                ("brands", self.brands),
                ("tags", self.tags),
            )
            if values
        ]
        parts += [f"{name} {', '.join(values)}" for name, values in self.attributes]
        if self.price_min is not None or self.price_max is not None:
            parts.append(
                f"price {self.price_min or 0:g} to {'any' if self.price_max is None else f'{self.price_max:g}'}"
            )
        if self.new_within_days is not None:
            parts.append(f"new within {self.new_within_days} days")
        return "; ".join(parts)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _strings(raw: Any, name: str, problems: dict[str, str]) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and v.strip() for v in raw):
        problems[name] = "must be a list of non-empty strings"
        return ()
    if len(raw) > MAX_VALUES:
        problems[name] = f"at most {MAX_VALUES} values"
        return ()
    return tuple(dict.fromkeys(v.strip() for v in raw))


def _attributes(raw: Any, problems: dict[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(raw, Mapping):
        problems["attributes"] = "must be an object of attribute name to a list of values"
        return ()
    pairs = []
    for name in sorted(raw, key=str):
        values = raw[name]
        if not isinstance(name, str) or not name.strip():
            problems["attributes"] = "attribute names must be non-empty strings"
            continue
        if _is_scalar(values):
            values = [values]
        if not isinstance(values, list) or not values or not all(_is_scalar(v) for v in values):
            problems[f"attributes.{name}"] = "must be a non-empty list of strings, numbers or booleans"
            continue
        pairs.append((name.strip(), tuple(dict.fromkeys(_as_text(v) for v in values))))
    return tuple(pairs)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, bool)) or _is_number(value)


def _as_text(value: Any) -> str:
    """Attribute values are kept as text: 42, 42.0 and "42" are the same value; true is "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def match_key(value: Any) -> str:
    """The form in which brands, tags and attribute values are compared (both sides)."""
    return _as_text(value).casefold()
