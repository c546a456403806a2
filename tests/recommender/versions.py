"""Registered versions with real (tiny) artifacts, for registry tests."""

from pathlib import Path
from typing import Any

import numpy as np

from catalog.models import Shop
from recommender import artifacts, registry
from recommender.algorithms.data import Interactions, ItemFeatures
from recommender.algorithms.trending import Trending
from recommender.algorithms.vocabulary import Vocabulary
from recommender.models import ModelVersion


def tiny_trending() -> Trending:
    interactions = Interactions.from_arrays(
        user=np.array([0, 0, 1]), item=np.array([0, 1, 1]), ts=np.array([100, 200, 300]), n_items=3
    )
    return Trending().fit(interactions, ItemFeatures.empty(3))


def make_version(
    shop: Shop, number: int, *, kind: str = "trending", metrics: dict[str, Any] | None = None
) -> ModelVersion:
    model = tiny_trending()

    def write(directory: Path) -> None:
        model.save(directory / registry.MODEL_DIR)
        Vocabulary(["10", "11", "12"]).save(directory / registry.ITEMS_FILE)
        Vocabulary([]).save(directory / registry.CATEGORIES_FILE)

    written = artifacts.artifact_write(shop_id=shop.pk, kind=kind, number=number, write=write)
    return ModelVersion.objects.create(
        shop=shop,
        kind=kind,
        number=number,
        metrics=metrics if metrics is not None else {"ndcg_at_10": 0.2, "cases": 10},
        artifact_path=written.relative_path,
        artifact_bytes=written.size_bytes,
        artifact_sha256=written.sha256,
    )
