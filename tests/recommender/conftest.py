"""Fixtures of the training pipeline and registry tests."""

from pathlib import Path
from typing import Any

import pytest

from tests.factories import ShopFactory


@pytest.fixture(autouse=True)
def artifact_dir(settings: Any, tmp_path: Path) -> Path:
    """Every test writes its artifacts under its own tmp dir."""
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    return settings.ARTIFACT_DIR


@pytest.fixture
def quiet_shop(db: Any) -> Any:
    """A shop that is retrained on demand only (no cadence), with default event weights."""
    return ShopFactory(retrain_every_hours=0)
