"""``manage.py train`` (in this process) and ``manage.py evaluate``: results and bad input."""

import json
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from recommender.models import ActiveModel, ModelVersion, TrainingRun
from tests.recommender.shop_data import build_shop_history


@pytest.fixture
def history_shop(quiet_shop: Any) -> Any:
    build_shop_history(quiet_shop, with_embeddings=False)
    return quiet_shop


def run_command(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_train_trains_here_and_reports_the_version(history_shop: Any) -> None:
    output = run_command("train", "--shop", history_shop.slug, "--kind", "trending")

    run = TrainingRun.objects.get(shop=history_shop)
    version = ModelVersion.objects.get(shop=history_shop, kind="trending")
    assert (run.status, run.attempts, version.number) == (TrainingRun.Status.SUCCEEDED, 1, 1)
    assert ActiveModel.objects.get(shop=history_shop, kind="trending").version_id == version.pk
    assert f"run {run.pk}: trending\n" in output
    assert f"trending: v1 in {version.durations['total']:.1f} s" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shop", "nope"], "no shop 'nope'"),
        (["--config", "{not json"], "Expecting property name"),
        (["--config", "[1]"], "--config must be a JSON object"),
        (["--kind", "trending", "--config", '{"no_such_setting": 1}'], "no_such_setting"),
    ],
)
def test_train_refuses_bad_input_with_a_clear_error(history_shop: Any, args: list[str], message: str) -> None:
    arguments = ["--shop", history_shop.slug, *args] if args[0] != "--shop" else args
    with pytest.raises(CommandError, match=message.replace("[", r"\[").replace("{", r"\{")):
        run_command("train", *arguments)
    assert not TrainingRun.objects.exists()


def test_train_fails_loudly_when_a_run_fails(quiet_shop: Any) -> None:
    with pytest.raises(CommandError, match="1 of 1 runs did not succeed"):
        run_command("train", "--shop", quiet_shop.slug, "--kind", "trending")
    run = TrainingRun.objects.get(shop=quiet_shop)
    assert run.status == TrainingRun.Status.FAILED
    assert run.error.startswith("NothingToTrain: the shop has no counted events on known products yet")


def test_evaluate_prints_the_hold_out_metrics_and_saves_nothing(history_shop: Any) -> None:
    output = run_command("evaluate", "--shop", history_shop.slug, "--kind", "trending", "--max-cases", "50")

    metrics = json.loads(output)["trending"]
    assert metrics["cases"] == 25  # every shopper of the test period with a new relevant item
    assert metrics["max_cases"] == 50
    assert metrics["train_fraction"] == 0.8
    assert 0 <= metrics["ndcg_at_10"] <= 1
    assert not ModelVersion.objects.exists() and not TrainingRun.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--train-fraction", "1.5"], "--train-fraction must be between 0 and 1"),
        (["--max-cases", "0"], "--max-cases must be at least 1"),
        (["--config", "nope"], "--config is not JSON"),
        (["--config", '"text"'], "--config must be a JSON object"),
    ],
)
def test_evaluate_refuses_bad_input_with_a_clear_error(history_shop: Any, args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        run_command("evaluate", "--shop", history_shop.slug, "--kind", "trending", *args)
