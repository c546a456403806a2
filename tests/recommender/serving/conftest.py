"""Every serving test runs with an isolated serving registry (tests.recommender.serving.fixtures)."""

import pytest

from tests.recommender.serving import fixtures

serving_isolated = fixtures.serving_isolated  # the fixture, made visible to this directory


@pytest.fixture(autouse=True)
def _serving(serving_isolated: None) -> None:
    """See fixtures.serving_isolated."""
