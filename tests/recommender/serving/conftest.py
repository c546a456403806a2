"""Every serving test runs with an isolated serving registry (tests.recommender.serving.fixtures)."""

import pytest

from tests.recommender.serving.fixtures import serving_isolated  # noqa: F401  (the fixture, used below)


@pytest.fixture(autouse=True)
def _serving(serving_isolated: None) -> None:
    """See fixtures.serving_isolated."""
