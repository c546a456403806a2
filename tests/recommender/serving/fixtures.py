"""Helpers of the serving tests: shops with trained model versions (trained in-process
by the training service). Every test gets an isolated serving registry from the
autouse fixture in tests/conftest.py."""

from collections.abc import Sequence
from typing import Any

from django.test import override_settings

from catalog.audit import Actor
from catalog.models import Shop
from recommender import training
from recommender.models import ModelVersion, TrainingRun
from recommender.serving.state import registry

SYSTEM = Actor.system("tests")
# The session model trains for seconds instead of a minute on the tiny test shops.
QUICK_SASREC = {"epochs": 3, "max_steps": 30}
FAST_KINDS = ("trending", "also_viewed", "bought_together", "item_knn", "als", "text_similarity", "cold_start")


def train(shop: Shop, kinds: Sequence[str], config: dict[str, Any] | None = None) -> list[ModelVersion]:
    """Train these kinds now, in this process, through the training service; returns
    the versions (activated automatically when they are the first of their kind)."""
    versions = []
    for kind in kinds:
        overrides = QUICK_SASREC if kind == "sasrec" and config is None else config
        (requested,) = training.training_run_request(
            shop=shop, kinds=[kind], actor=SYSTEM, config=overrides, enqueue=False
        )
        # The lease's heartbeat thread has its own connection, which cannot see a run
        # created inside a test's transaction: a lease longer than any test run keeps it
        # from beating (and from declaring the lease lost) while the model trains.
        with override_settings(TRAINING_LEASE_S=3600):
            run = training.training_run_execute(run_id=requested.run.pk)
        assert run is not None and run.status == TrainingRun.Status.SUCCEEDED, (kind, run and run.error)
        versions.append(ModelVersion.objects.get(training_run=run))
    return versions


def placement(shop: Shop, slug: str, config: dict[str, Any], *, promotions: bool = True, kind: str = "home") -> Any:
    """A placement serving ``config`` (a strategy's JSON), created through the campaigns services."""
    from campaigns.services import placement_create, strategy_create

    strategy = strategy_create(shop=shop, actor=SYSTEM, fields={"name": f"{slug} strategy", "config": config})
    created = placement_create(
        shop=shop,
        actor=SYSTEM,
        fields={
            "slug": slug,
            "name": slug,
            "kind": kind,
            "default_strategy": strategy,
            "promotions_enabled": promotions,
        },
    )
    registry.refresh(shop.pk)  # a serving state built before sees the new placement now
    return created


def serve(shop: Shop, slug: str, **request: Any) -> Any:
    """``recommendations_serve`` for a placement (keyword arguments: RecommendationRequest fields)."""
    from recommender.serving.service import RecommendationRequest, recommendations_serve

    return recommendations_serve(shop=shop, request=RecommendationRequest(placement_slug=slug, **request))


def skus(served: Any) -> list[str]:
    return [served.snapshot.skus[item.index] for item in served.items]
