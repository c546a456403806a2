"""Analytics fixtures: the console's members and clients (tests/console/conftest.py),
for the analytics pages and the experiment results region."""

from tests.console.conftest import _fast_passwords, admin, members, merchandiser, outsider, viewer

__all__ = ["_fast_passwords", "admin", "members", "merchandiser", "outsider", "viewer"]
