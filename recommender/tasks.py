"""Training tasks (queue ``training``) and the beat tasks that keep training going (queue ``default``).

Tasks take ids, fetch, and call one service (recommender.training). Long training
outlives the Redis visibility timeout, so a message may be delivered again while its
first delivery is still training: the run's lease makes the duplicate a no-op.
``soft_time_limit < time_limit`` as usual; unlike short tasks, ``time_limit`` is far
above the visibility timeout, which is what the lease is for.
"""

import logging

from celery import shared_task
from django.conf import settings

from recommender import training

logger = logging.getLogger(__name__)


@shared_task(
    name="recommender.tasks.training_run_execute",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.TRAINING_SOFT_TIME_LIMIT_S,
    time_limit=settings.TRAINING_SOFT_TIME_LIMIT_S + 60,
)
def training_run_execute(run_id: int) -> str | None:
    """Train one run. May be redelivered, also while another delivery is training it:
    only the worker that claims the run trains; the others log and return."""
    run = training.training_run_execute(run_id=run_id)
    if run is None:
        return None
    logger.info("training run %s ended %s (attempt %s)", run.pk, run.status, run.attempts)
    return str(run.status)


@shared_task(name="recommender.tasks.training_runs_reap")
def training_runs_reap() -> dict[str, list[int]]:
    """Requeue runs whose worker died and re-send lost messages (beat, every TRAINING_REAP_INTERVAL_S)."""
    report = training.training_runs_reap()
    return {"requeued": report.requeued, "failed": report.failed, "resent": report.resent}


@shared_task(name="recommender.tasks.training_schedule_due")
def training_schedule_due() -> int:
    """Request the retraining that is due by each shop's cadence (beat). Returns how many runs were queued."""
    return sum(1 for requested in training.training_schedule_due() if requested.created)
