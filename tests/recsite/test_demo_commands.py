"""The demo's commands: load_demo --train trains the quick kinds in-process; run_demo's
DemoModels requests every other kind from the workers as soon as it can train."""

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from catalog.models import Product, ProductEmbedding, Shop
from recommender.models import ActiveModel, TrainingRun
from recsite.management.commands.load_demo import QUICK_KINDS
from recsite.management.commands.run_demo import DemoModels


@pytest.fixture
def demo_dirs(settings: Any, tmp_path: Any) -> Any:
    settings.VAR_DIR = tmp_path
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    return tmp_path


def small_demo(*extra: str) -> str:
    out = StringIO()
    call_command("load_demo", "--synthetic", "--products", "40", "--events", "3000", *extra, stdout=out)
    return out.getvalue()


@pytest.mark.slow
def test_load_demo_train_activates_a_version_of_each_quick_kind(db: None, demo_dirs: Any) -> None:
    # When the demo is loaded with --train
    out = small_demo("--train")

    # Then each quick kind has an active first version, trained here (no run left for a worker)
    shop = Shop.objects.get(slug="demo")
    active = dict(ActiveModel.objects.filter(shop=shop).values_list("kind", "version__number"))
    assert active == {kind: 1 for kind in QUICK_KINDS}
    runs = TrainingRun.objects.filter(shop=shop)
    assert sorted(runs.values_list("kind", "status")) == sorted((kind, "succeeded") for kind in QUICK_KINDS)
    for kind in QUICK_KINDS:
        assert f"    {kind}: v1 in " in out


def test_load_demo_without_train_leaves_every_kind_to_the_workers(db: None, demo_dirs: Any) -> None:
    small_demo()
    shop = Shop.objects.get(slug="demo")
    assert not ActiveModel.objects.filter(shop=shop).exists()
    assert not TrainingRun.objects.filter(shop=shop).exists()


def test_demo_models_requests_untrained_kinds_then_the_text_kinds_once_every_product_is_embedded(
    db: None, demo_dirs: Any
) -> None:
    # Given the demo shop as load_demo --train leaves it, its embeddings not computed yet
    small_demo()
    shop = Shop.objects.get(slug="demo")
    for kind in QUICK_KINDS:
        TrainingRun.objects.create(shop=shop, kind=kind, status=TrainingRun.Status.SUCCEEDED)
    watcher = DemoModels("demo")

    # When it polls: the session model is requested, the text kinds wait
    assert watcher.poll() is False
    queued = TrainingRun.objects.filter(shop=shop, status=TrainingRun.Status.QUEUED)
    assert sorted(queued.values_list("kind", flat=True)) == ["sasrec"]
    assert watcher.poll() is False
    assert queued.count() == 1  # nothing twice

    # ... still while one product has no embedding
    products = list(Product.objects.filter(shop=shop, active=True).order_by("pk"))
    for product in products[1:]:
        ProductEmbedding.objects.create(product=product, shop=shop, model_name="m", text_hash="h", vector=b"")
    assert watcher.poll() is False
    assert queued.count() == 1

    # When every product is embedded: the text kinds are requested, and the watcher is done
    ProductEmbedding.objects.create(product=products[0], shop=shop, model_name="m", text_hash="h", vector=b"")
    assert watcher.poll() is True
    assert sorted(queued.values_list("kind", flat=True)) == ["cold_start", "sasrec", "text_similarity"]


def test_demo_models_is_done_at_once_without_the_shop(db: None) -> None:
    assert DemoModels("no-such-shop").poll() is True
    assert not TrainingRun.objects.exists()
