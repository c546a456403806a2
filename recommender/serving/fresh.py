"""Product text embeddings newer than the loaded text model: products created or changed
since its training, so they are similar-to-context candidates (and, projected through
the cold-start map, personal candidates) within seconds, long before the next retrain.

A product is *fresh* when its ProductEmbedding row was written at or after the text
model's data was read (``cutoff``; minus an overlap for late commits), or in the last
``WINDOW_WITHOUT_MODEL`` when no text model is loaded. At most ``MAX_FRESH`` of them,
the newest, are kept: they are scored by brute force on every request that asks for
similar items, and a retrain takes them into the model anyway.

``FreshEmbeddings`` is immutable. ``fresh_refresh`` returns a new one with the rows
written since the last read (one indexed query), or the same object when nothing moved.
The refresher thread calls it; requests only read.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType

import numpy as np
from django.utils import timezone

from catalog import embedding
from recommender.selectors import product_embeddings_since

MAX_FRESH = 5_000
OVERLAP = timedelta(seconds=60)  # a row committed late can carry an older updated_at
WINDOW_WITHOUT_MODEL = timedelta(days=7)


@dataclass(frozen=True, eq=False)
class FreshEmbeddings:
    shop_id: int
    cutoff: datetime | None  # rows written at or after this are fresh; None: the last WINDOW_WITHOUT_MODEL
    watermark: datetime | None  # newest updated_at read so far
    vectors: MappingProxyType[int, np.ndarray] = field(default_factory=lambda: MappingProxyType({}))  # product id ->

    @property
    def product_ids(self) -> np.ndarray:
        return np.fromiter(self.vectors.keys(), dtype=np.int64, count=len(self.vectors))

    def matrix(self) -> np.ndarray:
        """float32 (fresh products, 384), rows in ``product_ids`` order."""
        if not self.vectors:
            return np.zeros((0, embedding.DIMENSIONS), dtype=np.float32)
        return np.stack(list(self.vectors.values())).astype(np.float32, copy=False)


def fresh_load(shop_id: int, cutoff: datetime | None) -> FreshEmbeddings:
    """The fresh embeddings of the shop for a text model whose data was read at ``cutoff``."""
    since = (cutoff - OVERLAP) if cutoff is not None else timezone.now() - WINDOW_WITHOUT_MODEL
    return _with_rows(FreshEmbeddings(shop_id=shop_id, cutoff=cutoff, watermark=None), since)


def fresh_refresh(fresh: FreshEmbeddings) -> FreshEmbeddings:
    """``fresh`` plus the embeddings written since its watermark (same object if none)."""
    if fresh.watermark is None:
        return fresh_load(fresh.shop_id, fresh.cutoff)
    return _with_rows(fresh, fresh.watermark - OVERLAP)


def _with_rows(fresh: FreshEmbeddings, since: datetime) -> FreshEmbeddings:
    rows = product_embeddings_since(fresh.shop_id, since, limit=MAX_FRESH)
    if fresh.watermark is not None and all(
        updated <= fresh.watermark and product_id in fresh.vectors for product_id, _, updated in rows
    ):
        return fresh
    vectors = dict(fresh.vectors)
    watermark = fresh.watermark
    for product_id, data, updated in reversed(rows):  # oldest first: the newest write wins
        vectors.pop(product_id, None)
        vectors[product_id] = embedding.vector_from_bytes(data)
        if watermark is None or updated > watermark:
            watermark = updated
    while len(vectors) > MAX_FRESH:  # dicts keep insertion order: drop the oldest writes
        vectors.pop(next(iter(vectors)))
    return FreshEmbeddings(
        shop_id=fresh.shop_id,
        cutoff=fresh.cutoff,
        watermark=watermark or timezone.now(),
        vectors=MappingProxyType(vectors),
    )
