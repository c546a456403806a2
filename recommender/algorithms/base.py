"""The one interface every algorithm implements, and its configuration base class.

Contract of an :class:`Algorithm`:

- ``fit(interactions, features)`` trains on events and item features of the same item
  vocabulary (``features.n_items == interactions.n_items``); it returns the algorithm.
- ``score(query)`` is a float32 array over all items, higher is better; ``-inf`` marks an
  item the algorithm has no opinion on (it never proposes it). A shopper unseen at
  training is served from the events in the query (fold-in): no algorithm keeps per-user
  state, so serving needs no shopper vocabulary.
- ``recommend(query, k, exclude=...)`` and ``similar_items(item, k)`` return a
  :class:`~recommender.algorithms.ranking.Ranking`.
- ``save(directory)`` / ``load(directory)`` round-trip exactly (same scores), through
  JSON + ``.npz`` only.

Vector algorithms also expose ``item_vectors()`` and ``query_vector(query)`` with
``score(query) == item_vectors() @ query_vector(query)``, so serving can put the item
vectors in an ANN index and answer with one query vector.
"""

import dataclasses
import typing
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import numpy as np

from recommender.algorithms.data import Interactions, ItemFeatures, Query
from recommender.algorithms.persistence import read_artifact, write_artifact
from recommender.algorithms.ranking import Ranking, top_k


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
    """Base of the typed, frozen configurations stored with every trained version."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values; nested configurations become nested dicts."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """The configuration from :meth:`to_dict` output. Missing keys take their defaults
        (versions saved before a field existed still load); unknown keys are an error."""
        hints = typing.get_type_hints(cls)
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
        arguments: dict[str, Any] = {}
        for name, value in values.items():
            hint = hints[name]
            if isinstance(hint, type) and issubclass(hint, AlgorithmConfig) and isinstance(value, dict):
                value = hint.from_dict(value)
            arguments[name] = value
        return cls(**arguments)


ConfigT = TypeVar("ConfigT", bound=AlgorithmConfig)


class Algorithm(ABC, Generic[ConfigT]):
    """See the module docstring for the contract."""

    kind: ClassVar[str]
    config_class: ClassVar[type[AlgorithmConfig]]

    def __init__(self, config: ConfigT | None = None) -> None:
        self.config: ConfigT = config if config is not None else typing.cast(ConfigT, self.config_class())
        self._n_items: int | None = None

    @property
    def n_items(self) -> int:
        if self._n_items is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted")
        return self._n_items

    def fit(self, interactions: Interactions, features: ItemFeatures) -> Self:
        if features.n_items != interactions.n_items:
            raise ValueError(f"features cover {features.n_items} items, interactions {interactions.n_items}")
        self._fit(interactions, features)
        self._n_items = interactions.n_items
        return self

    @abstractmethod
    def _fit(self, interactions: Interactions, features: ItemFeatures) -> None: ...

    @abstractmethod
    def score(self, query: Query) -> np.ndarray:
        """float32 scores over all items; ``-inf`` where the algorithm has no opinion."""

    def recommend(self, query: Query, k: int, *, exclude: np.ndarray | None = None) -> Ranking:
        """The ``k`` best items for a query, without ``exclude`` and items without opinion."""
        return top_k(self.score(query), k, exclude=exclude)

    @abstractmethod
    def similar_items(self, item: int, k: int) -> Ranking:
        """Up to ``k`` items most like ``item``, never the item itself."""

    def save(self, directory: str | Path) -> None:
        write_artifact(
            directory,
            kind=self.kind,
            config=self.config.to_dict(),
            arrays=self._arrays(),
            meta={"n_items": self.n_items},
        )

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        artifact = read_artifact(directory)
        if artifact.kind != cls.kind:
            raise ValueError(f"{directory} holds a {artifact.kind!r} model, not {cls.kind!r}")
        model = cls(typing.cast(ConfigT, cls.config_class.from_dict(artifact.config)))
        model._n_items = int(artifact.meta["n_items"])
        model._restore(artifact.arrays)
        return model

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """Everything learned, as named numeric arrays."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the learned state from :meth:`_arrays` output (``n_items`` is already set)."""

    def _no_opinion(self) -> np.ndarray:
        return np.full(self.n_items, -np.inf, dtype=np.float32)


class VectorAlgorithm(Algorithm[ConfigT]):
    """An algorithm whose scores are dot products of one query vector with item vectors.

    An all-zero item vector means the model knows nothing of that item: it scores
    ``-inf`` and is never similar to anything (leave it out of an ANN index).
    Subclasses set their vectors with :meth:`_set_item_vectors` and implement
    :meth:`query_vector`.
    """

    _item_vectors: np.ndarray
    _has_vector: np.ndarray

    def _set_item_vectors(self, vectors: np.ndarray) -> None:
        self._item_vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._has_vector = np.any(self._item_vectors != 0, axis=1)

    def item_vectors(self) -> np.ndarray:
        """float32 (n_items, dimensions); the ANN index is built over these rows."""
        return self._item_vectors

    def items_with_vectors(self) -> np.ndarray:
        """Boolean per item: True where the item vector is not all zero."""
        return self._has_vector

    @abstractmethod
    def query_vector(self, query: Query) -> np.ndarray | None:
        """float32 (dimensions,), or None when the query holds nothing the model can use."""

    def score(self, query: Query) -> np.ndarray:
        vector = self.query_vector(query)
        if vector is None:
            return self._no_opinion()
        scores = self._item_vectors @ vector
        scores[~self._has_vector] = -np.inf
        return scores

    def similar_items(self, item: int, k: int) -> Ranking:
        """Nearest items by cosine similarity of item vectors."""
        return cosine_neighbours(self._item_vectors, item, k, valid=self._has_vector)


def cosine_neighbours(vectors: np.ndarray, item: int, k: int, *, valid: np.ndarray) -> Ranking:
    """The ``k`` rows most cosine-similar to row ``item`` (itself excluded), among the
    ``valid`` rows; empty when the item's own row is zero."""
    norms = np.linalg.norm(vectors, axis=1)
    if norms[item] == 0:
        return Ranking(items=np.zeros(0, dtype=np.int32), scores=np.zeros(0, dtype=np.float32))
    similarity = (vectors @ vectors[item]) / (np.maximum(norms, 1e-12) * norms[item])
    similarity[~valid] = -np.inf
    return top_k(similarity, k, exclude=np.array([item]))
