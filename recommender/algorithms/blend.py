"""Normalised score fusion: the one function that blends candidate sources by weights.

Offline evaluation and the serving layer both call :func:`blend`, with each source's
top candidates (a :class:`~recommender.algorithms.ranking.Ranking`) and a strategy's
weights. Raw scores of different sources are not comparable (a trending count, an ALS
dot product, a cosine), so each source's candidate scores are first normalised on
their own, then summed by weight. The default weights, tuned on a validation split, are
data: ``default_blend.json`` next to this module.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from recommender.algorithms.base import Algorithm
from recommender.algorithms.data import Query
from recommender.algorithms.ranking import Ranking

Normalisation = Literal["minmax", "reciprocal_rank"]
DEFAULT_BLEND_FILE = Path(__file__).with_name("default_blend.json")
# Reciprocal-rank fusion's usual constant (Cormack et al., 2009).
RECIPROCAL_RANK_OFFSET = 60


@dataclass(frozen=True)
class BlendConfig:
    """Source name -> weight, how scores are normalised, and how many candidates each
    source contributes."""

    weights: dict[str, float]
    normalisation: Normalisation = "minmax"
    candidates_per_source: int = 100
    notes: str = ""

    def __post_init__(self) -> None:
        if self.normalisation not in ("minmax", "reciprocal_rank"):
            raise ValueError("normalisation must be minmax or reciprocal_rank")
        if any(weight < 0 for weight in self.weights.values()):
            raise ValueError("blend weights must be >= 0")
        if self.candidates_per_source < 1:
            raise ValueError("candidates_per_source must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "normalisation": self.normalisation,
            "candidates_per_source": self.candidates_per_source,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "BlendConfig":
        return cls(
            weights={str(name): float(weight) for name, weight in values["weights"].items()},
            normalisation=values.get("normalisation", "minmax"),
            candidates_per_source=int(values.get("candidates_per_source", 100)),
            notes=str(values.get("notes", "")),
        )


def default_blend() -> BlendConfig:
    """The product's default blend (``default_blend.json``)."""
    return BlendConfig.from_dict(json.loads(DEFAULT_BLEND_FILE.read_text()))


@dataclass(frozen=True, eq=False)
class BlendResult:
    """Blended items best first and their fused scores. (What each source proposed, with
    its raw score, stays in the rankings blended: serving's provenance reads it there.)"""

    items: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.items)

    def as_scores(self, n_items: int) -> np.ndarray:
        """float32 scores over all items: the fused score, ``-inf`` where no source proposed."""
        scores = np.full(n_items, -np.inf, dtype=np.float32)
        scores[self.items] = self.scores
        return scores


def normalise(scores: np.ndarray, normalisation: Normalisation) -> np.ndarray:
    """Scores of one source's candidates (best first) mapped into (0, 1].

    ``minmax``: ``(s - min) / (max - min)`` lifted so the worst candidate keeps a small
    positive share (it was proposed, unlike items the source left out); all equal -> 1.
    ``reciprocal_rank``: ``(c + 1) / (c + 1 + rank)`` with rank 0 for the first candidate.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) == 0:
        return scores
    if normalisation == "reciprocal_rank":
        ranks = np.arange(len(scores), dtype=np.float64)
        return (RECIPROCAL_RANK_OFFSET + 1) / (RECIPROCAL_RANK_OFFSET + 1 + ranks)
    low, high = scores.min(), scores.max()
    if high == low:
        return np.ones_like(scores)
    candidates = len(scores)
    # The lift is half a rank step, so the worst candidate is above "not proposed" (0).
    floor = 0.5 / candidates
    return floor + (1.0 - floor) * (scores - low) / (high - low)


def blend(
    sources: Mapping[str, Ranking],
    weights: Mapping[str, float],
    *,
    normalisation: Normalisation = "minmax",
    k: int | None = None,
) -> BlendResult:
    """Fuse candidate lists: ``score(i) = sum_s weights[s] * normalise(s)(i)``.

    ``sources`` maps a source name to its candidates, best first, with raw scores
    (non-finite scores are dropped). Sources without a positive weight are ignored.
    Returns the ``k`` best items (all when None), ties broken by lower item index.
    """
    items_of, weighted_of = [], []
    for name, ranking in sources.items():
        weight = weights.get(name, 0.0)
        if weight <= 0 or not len(ranking):
            continue
        finite = np.isfinite(ranking.scores)
        items_of.append(ranking.items[finite])
        weighted_of.append(weight * normalise(ranking.scores[finite], normalisation))
    if not items_of:
        return BlendResult(items=np.zeros(0, dtype=np.int32), scores=np.zeros(0, dtype=np.float32))
    # One pass over every (item, weighted score): bincount adds them per item in the
    # sources' order, the sum the formula above writes.
    distinct, inverse = np.unique(np.concatenate(items_of), return_inverse=True)
    total = np.bincount(inverse, weights=np.concatenate(weighted_of), minlength=len(distinct))
    order = np.lexsort((distinct, -total))[:k]
    return BlendResult(items=distinct[order].astype(np.int32), scores=total[order].astype(np.float32))


def candidates(
    algorithms: Mapping[str, Algorithm[Any]], query: Query, *, per_source: int, exclude: np.ndarray | None = None
) -> dict[str, Ranking]:
    """Each algorithm's top ``per_source`` items for a query (without ``exclude``): the
    input of :func:`blend` when the sources are algorithms in memory."""
    return {name: algorithm.recommend(query, per_source, exclude=exclude) for name, algorithm in algorithms.items()}
