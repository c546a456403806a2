"""The lease a worker holds on a running training run, kept alive by a heartbeat thread.

A run is RUNNING under ``lease_owner`` until ``lease_expires_at``. The holder renews the
lease every third of ``TRAINING_LEASE_S`` from a background thread (fitting a model can
take minutes without returning to Python code that could do it), and with every stage
change. Every write is conditional on ``status=RUNNING, lease_owner=<me>``: once a
renewal finds nothing to update, the run was taken over (the lease had expired) or
cancelled, and the holder stops at its next check without writing anything else.
"""

import logging
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone

from recommender.models import TrainingRun
from recommender.registry import LeaseLost

logger = logging.getLogger(__name__)


def lease_expiry() -> datetime:
    return timezone.now() + timedelta(seconds=settings.TRAINING_LEASE_S)


class Lease:
    """Use as a context manager around the work of one claimed run (starts and stops the heartbeat)."""

    def __init__(self, *, run_id: int, owner: str) -> None:
        self.run_id = run_id
        self.owner = owner
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Lease":
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=settings.TRAINING_LEASE_S)

    def _held(self) -> QuerySet[TrainingRun]:
        return TrainingRun.objects.filter(pk=self.run_id, status=TrainingRun.Status.RUNNING, lease_owner=self.owner)

    def renew(self) -> bool:
        """Extend the lease; False (and the lease counts as lost) if this worker no longer holds it."""
        now = timezone.now()
        if self._held().update(lease_expires_at=lease_expiry(), heartbeat_at=now) == 1:
            return True
        self._lost.set()
        return False

    def _beat(self) -> None:
        interval = settings.TRAINING_LEASE_S / 3
        try:
            while not self._stop.wait(interval):
                try:
                    if not self.renew():
                        logger.warning("training run %s: lease of %s lost", self.run_id, self.owner)
                        return
                except Exception:
                    # A database hiccup: try again next beat; if it lasts, the lease
                    # expires and another worker takes the run over, as it should.
                    logger.exception("training run %s: heartbeat failed", self.run_id)
        finally:
            connection.close()  # this thread's own connection

    def check(self) -> None:
        """Raise LeaseLost if a renewal found the run no longer ours."""
        if self._lost.is_set():
            raise LeaseLost(f"training run {self.run_id} is no longer held by {self.owner}")

    def stage(self, stage: str, progress: int) -> None:
        """Record the stage and progress (0-100), renewing the lease; LeaseLost if not ours."""
        self.check()
        now = timezone.now()
        updated = self._held().update(
            stage=stage, progress=max(0, min(100, progress)), lease_expires_at=lease_expiry(), heartbeat_at=now
        )
        if updated != 1:
            self._lost.set()
            raise LeaseLost(f"training run {self.run_id} is no longer held by {self.owner}")
