"""The named sources a blend draws on, and the algorithm behind each name.

A strategy's weights (and ``default_blend.json``) refer to these names. Co-occurrence
appears twice, once per relation.
"""

from typing import Any

from recommender.algorithms.base import Algorithm
from recommender.algorithms.registry import new_algorithm

# name -> (algorithm kind, configuration overrides of that kind's defaults)
SOURCES: dict[str, tuple[str, dict[str, Any]]] = {
    "trending": ("trending", {}),
    "also_viewed": ("cooccurrence", {"relation": "also_viewed"}),
    "bought_together": ("cooccurrence", {"relation": "bought_together"}),
    "item_knn": ("item_knn", {}),
    "als": ("als", {}),
    "text_similarity": ("text_similarity", {}),
    "cold_start": ("cold_start", {}),
    "sasrec": ("sasrec", {}),
}


def new_source(name: str) -> Algorithm[Any]:
    """An unfitted algorithm for the source ``name``, with the product's defaults."""
    try:
        kind, overrides = SOURCES[name]
    except KeyError:
        raise ValueError(f"unknown blend source {name!r}; known: {', '.join(SOURCES)}") from None
    return new_algorithm(kind, overrides)
