"""Trained versions as serving holds them, and their view over the current catalog snapshot.

``model_load(version, shop_id)`` verifies and loads one version (recommender.registry)
and derives what the request path needs from it, once: the product id of every model
item, the catalog category id of every model category, a vector index for the vector
kinds (``model_index``: exact or HNSW, cached on disk by version; the training run
builds it before it registers the version, so serving loads it in under a second), the
ranked trending lists. A ``ServingModel`` never changes after that.

``ModelView`` joins a set of models (one per kind) with a ``CatalogSnapshot`` and the
fresh embeddings: for every model the mapping between its item indices and the
snapshot's product indices (``ItemSpace``), and the fresh products' vectors in the text
space and, through the cold-start map, in the collaborative space. A view is rebuilt
(cheap, vectorised) whenever the snapshot, the fresh embeddings or a model changes, and
is immutable, so a request holding one sees a consistent whole.

Which kind serves which source (recommender.serving.sources): personal -> cold_start,
else als (collaborative, folded in per request); session -> sasrec; similar ->
text_similarity (text) + item_knn (behaviour); also_viewed / bought_together -> the
co-occurrence kinds of the same names; trending -> trending.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
from django.conf import settings

from catalog.snapshot import CatalogSnapshot
from recommender import registry
from recommender.algorithms.base import Algorithm, VectorAlgorithm
from recommender.algorithms.cold_start import ColdStartHybrid
from recommender.algorithms.data import History, Query
from recommender.algorithms.ranking import Ranking
from recommender.algorithms.trending import Trending
from recommender.selectors import ServableVersion
from recommender.serving.fresh import FreshEmbeddings
from recommender.serving.indexes import VectorIndex, vector_index

COLLABORATIVE_KINDS = ("cold_start", "als")  # the first one loaded serves "personal"
VECTOR_KINDS = frozenset({"cold_start", "als", "sasrec", "text_similarity"})
TRENDING_GLOBAL = 1000  # items kept in the global trending list
TRENDING_PER_CATEGORY = 200


@dataclass(frozen=True, eq=False)
class TrendingLists:
    """Trending items in model item space, best first: globally and per catalog category."""

    items: np.ndarray  # int64
    scores: np.ndarray  # float32
    by_category: Mapping[int, tuple[np.ndarray, np.ndarray]]  # catalog category id -> (items, scores)


@dataclass(frozen=True, eq=False)
class ServingModel:
    kind: str
    version_id: int
    number: int
    model: Algorithm[Any]
    product_ids: np.ndarray  # int64 product id per model item
    index: VectorIndex | None  # over the item vectors (vector kinds)
    trending: TrendingLists | None  # the trending kind


def model_load(version: ServableVersion, shop_id: int) -> ServingModel:
    """Verify, load and prepare one version (seconds to a minute for a large new ANN
    index; call it off the request path). Raises ArtifactCorrupt like the registry."""
    loaded = registry.model_version_load(
        version_id=version.version_id,
        kind=version.kind,
        number=version.number,
        artifact_path=version.artifact_path,
        sha256=version.artifact_sha256,
    )
    product_ids = np.array(loaded.items.all_ids, dtype=np.int64)
    index = model_index(
        loaded.model, shop_id=shop_id, kind=version.kind, number=version.number, sha256=version.artifact_sha256
    )
    trending = None
    if isinstance(loaded.model, Trending):
        category_ids = np.array(loaded.categories.all_ids, dtype=np.int64)
        trending = _trending_lists(loaded.model, category_ids)
    return ServingModel(
        kind=version.kind,
        version_id=version.version_id,
        number=version.number,
        model=loaded.model,
        product_ids=product_ids,
        index=index,
        trending=trending,
    )


def model_index(model: Algorithm[Any], *, shop_id: int, kind: str, number: int, sha256: str) -> VectorIndex | None:
    """The vector index over the item vectors of a version's model (None for kinds
    without vectors): exact below SERVING_ANN_MIN_ITEMS, else HNSW tuned on queries
    shaped like serving's, built once and cached on disk under the version's kind,
    number and artifact checksum (``indexes.index_caches_prune`` removes those of
    archived versions). Seconds to a minute for a large new index: never on the
    request path."""
    if kind not in VECTOR_KINDS or not isinstance(model, VectorAlgorithm):
        return None
    rows = np.flatnonzero(model.items_with_vectors())
    vectors = model.item_vectors()[rows]
    queries = tuning_queries(model, rows, vectors) if len(rows) >= settings.SERVING_ANN_MIN_ITEMS else None
    return vector_index(vectors, rows, key=index_key(shop_id, kind, number, sha256), queries=queries)


def index_key(shop_id: int, kind: str, number: int, sha256: str) -> str:
    """Where a version's index is cached, under SERVING_INDEX_DIR: ``<shop>/<kind>/<number>-<sha>``."""
    return f"{int(shop_id)}/{kind}/{int(number)}-{sha256[:16]}"


def tuning_queries(model: VectorAlgorithm[Any], rows: np.ndarray, vectors: np.ndarray, count: int = 200) -> np.ndarray:
    """Queries shaped like the ones serving sends: the model's own query vectors of
    sample histories (2 to 15 items, drawn in proportion to the length of their vectors,
    which tracks how much behaviour the model saw of them). For an ANN index to be
    tuned on (indexes.vector_index)."""
    rng = np.random.default_rng(0)
    norms = np.linalg.norm(vectors, axis=1).astype(np.float64)
    weights = norms / norms.sum() if norms.sum() > 0 else None
    found = []
    for _ in range(count * 3):
        items = rows[rng.choice(len(rows), int(rng.integers(2, 16)), p=weights)]
        vector = model.query_vector(Query(history=History.of_items(items, ts=0), now=0))
        if vector is not None and np.isfinite(vector).all() and vector.any():
            found.append(vector)
        if len(found) == count:
            break
    return np.array(found, dtype=np.float32).reshape(len(found), vectors.shape[1])


def _trending_lists(model: Trending, category_ids: np.ndarray) -> TrendingLists:
    """The ranked lists once (trending order does not change until the next training)."""
    scores = model.scores()
    ranked = model.top(TRENDING_GLOBAL)
    categories = model._item_category  # model category index per item (-1 none)
    finite = np.flatnonzero(np.isfinite(scores) & (categories >= 0))
    order = finite[np.lexsort((finite, -scores[finite], categories[finite]))]
    by_category: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if len(order):
        cats = categories[order]
        starts = np.flatnonzero(np.r_[True, cats[1:] != cats[:-1]])
        ends = np.r_[starts[1:], len(order)]
        for start, end in zip(starts, ends, strict=True):
            members = order[start : min(end, start + TRENDING_PER_CATEGORY)]
            by_category[int(category_ids[cats[start]])] = (members.astype(np.int64), scores[members])
    return TrendingLists(
        items=ranked.items.astype(np.int64), scores=ranked.scores, by_category=MappingProxyType(by_category)
    )


@dataclass(frozen=True, eq=False)
class ItemSpace:
    """Model item index <-> snapshot product index, for one model and one snapshot."""

    to_snapshot: np.ndarray  # int64 per model item: snapshot index, -1 if the product is gone
    from_snapshot: np.ndarray  # int64 per snapshot index: model item, -1 if the model lacks it

    def rankings_to_snapshot(self, items: np.ndarray, scores: np.ndarray) -> Ranking:
        """A model-space list as a snapshot-space Ranking (products gone are dropped)."""
        mapped = self.to_snapshot[items]
        keep = mapped >= 0
        return Ranking(items=mapped[keep].astype(np.int32), scores=np.asarray(scores, dtype=np.float32)[keep])


def item_space(model: ServingModel, snapshot: CatalogSnapshot) -> ItemSpace:
    to_snapshot = snapshot.indices_of_product_ids(model.product_ids)
    found = to_snapshot >= 0
    from_snapshot = np.full(len(snapshot), -1, dtype=np.int64)
    from_snapshot[to_snapshot[found]] = np.flatnonzero(found)
    return ItemSpace(to_snapshot=to_snapshot, from_snapshot=from_snapshot)


@dataclass(frozen=True, eq=False)
class FreshVectors:
    """Fresh products (snapshot indices) with their vectors in one model's space."""

    indices: np.ndarray  # int64 snapshot indices
    vectors: np.ndarray  # float32 (len(indices), dimensions)

    def __len__(self) -> int:
        return len(self.indices)


NO_FRESH = FreshVectors(indices=np.zeros(0, dtype=np.int64), vectors=np.zeros((0, 0), dtype=np.float32))


@dataclass(frozen=True, eq=False)
class ModelView:
    """Models by kind over one snapshot: what a request's sources read."""

    models: Mapping[str, ServingModel]
    spaces: Mapping[str, ItemSpace]
    fresh_text: FreshVectors  # fresh products in the text space (normalised embeddings)
    fresh_collaborative: FreshVectors  # fresh products not in the collaborative model, projected
    fresh_sorted: np.ndarray  # int64 snapshot indices of fresh_text, sorted (for membership tests)

    @property
    def collaborative(self) -> str | None:
        return next((kind for kind in COLLABORATIVE_KINDS if kind in self.models), None)

    def version_ids(self) -> dict[str, int]:
        return {kind: model.version_id for kind, model in sorted(self.models.items())}


def model_view(models: Mapping[str, ServingModel], snapshot: CatalogSnapshot, fresh: FreshEmbeddings) -> ModelView:
    spaces = {kind: item_space(model, snapshot) for kind, model in models.items()}
    fresh_ids = fresh.product_ids
    indices = snapshot.indices_of_product_ids(fresh_ids)
    known = indices >= 0
    text = FreshVectors(indices=indices[known], vectors=fresh.matrix()[known]) if known.any() else NO_FRESH
    collaborative = NO_FRESH
    kind = next((k for k in COLLABORATIVE_KINDS if k in models), None)
    if kind is not None and len(text):
        model = models[kind].model
        outside = spaces[kind].from_snapshot[text.indices] < 0
        if isinstance(model, ColdStartHybrid) and outside.any():
            collaborative = FreshVectors(indices=text.indices[outside], vectors=model.project(text.vectors[outside]))
    return ModelView(
        models=MappingProxyType(dict(models)),
        spaces=MappingProxyType(spaces),
        fresh_text=text,
        fresh_collaborative=collaborative,
        fresh_sorted=np.sort(text.indices),
    )
