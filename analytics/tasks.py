"""Analytics tasks: keep every shop's rollups current (beat, every minute).

``rollups_refresh_all`` queues one ``rollups_refresh`` per shop. Each run works for at
most ROLLUP_BUDGET_S (under the default soft time limit) and leaves the rest to the next
minute. Both may be redelivered or run twice at once: every step holds the shop's
rollup lock row and writes absolute values (analytics.rollups), so nothing is counted
twice and a second worker on the same shop steps aside.
"""

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from analytics.experiments import experiment_results
from analytics.rollups import rollups_run
from campaigns.models import Experiment
from catalog.models import Shop

logger = logging.getLogger(__name__)

ROLLUP_BUDGET_S = 40.0


@shared_task(
    name="analytics.tasks.rollups_refresh",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def rollups_refresh(shop_id: int) -> dict[str, int | bool]:
    """Bring one shop's rollups up to date (bounded in time), then take a look at each of
    its running experiments so that their sequential results move with the data."""
    if not Shop.objects.filter(pk=shop_id).exists():
        logger.info("rollups_refresh: shop %s is gone", shop_id)
        return {"steps": 0}
    report = rollups_run(shop_id, budget_s=ROLLUP_BUDGET_S)
    if report.recomputed_hours and not report.busy:
        for experiment in Experiment.objects.filter(shop_id=shop_id, status=Experiment.Status.RUNNING):
            experiment_results(experiment)
    return {
        "steps": report.steps,
        "marked_hours": report.marked_hours,
        "recomputed_hours": report.recomputed_hours,
        "busy": report.busy,
        "finished": report.finished,
    }


@shared_task(name="analytics.tasks.rollups_refresh_all")
def rollups_refresh_all() -> int:
    """Queue one refresh per shop (beat, every minute). Returns how many were queued."""
    shop_ids = list(Shop.objects.order_by("id").values_list("id", flat=True))
    for shop_id in shop_ids:
        rollups_refresh.delay(shop_id)
    return len(shop_ids)
