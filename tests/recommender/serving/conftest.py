"""Every serving test runs with an isolated serving registry: the autouse fixture in tests/conftest.py."""
