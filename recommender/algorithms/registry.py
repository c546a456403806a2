"""Every algorithm kind by name: build one from a stored configuration, load an artifact."""

from pathlib import Path
from typing import Any

from recommender.algorithms.als import Als
from recommender.algorithms.base import Algorithm
from recommender.algorithms.cold_start import ColdStartHybrid
from recommender.algorithms.cooccurrence import CoOccurrence
from recommender.algorithms.item_knn import ItemKNN
from recommender.algorithms.persistence import read_artifact
from recommender.algorithms.sasrec import SasRec
from recommender.algorithms.text_similarity import TextSimilarity
from recommender.algorithms.trending import Trending

ALGORITHMS: dict[str, type[Algorithm[Any]]] = {
    algorithm.kind: algorithm
    for algorithm in (Trending, CoOccurrence, ItemKNN, Als, TextSimilarity, ColdStartHybrid, SasRec)
}


def algorithm_class(kind: str) -> type[Algorithm[Any]]:
    try:
        return ALGORITHMS[kind]
    except KeyError:
        raise ValueError(f"unknown algorithm kind {kind!r}; known: {', '.join(sorted(ALGORITHMS))}") from None


def new_algorithm(kind: str, config: dict[str, Any] | None = None) -> Algorithm[Any]:
    """An unfitted algorithm of ``kind`` with a configuration from ``to_dict`` output
    (defaults when None)."""
    cls = algorithm_class(kind)
    return cls(cls.config_class.from_dict(config or {}))


def load_algorithm(directory: str | Path) -> Algorithm[Any]:
    """Load an artifact written by ``Algorithm.save`` whatever its kind."""
    return algorithm_class(read_artifact(directory).kind).load(directory)
