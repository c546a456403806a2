"""Campaigns tasks: seasonal suggestions (daily) and experiment schedules (every minute)."""

import logging
import zoneinfo

from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from campaigns.services import experiments_advance, seasonal_suggestions_update
from catalog.models import Shop

logger = logging.getLogger(__name__)


@shared_task(
    name="campaigns.tasks.seasonal_suggestions_refresh",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def seasonal_suggestions_refresh(shop_id: int) -> int:
    """Measure last year's seasonal lift for the shop and store suggestions. Idempotent
    (may be redelivered): one row per category and window. Returns how many are new."""
    shop = Shop.objects.filter(pk=shop_id).first()
    if shop is None:
        logger.info("seasonal_suggestions_refresh: shop %s is gone", shop_id)
        return 0
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(shop.timezone)).date()
    return seasonal_suggestions_update(shop=shop, today=today)


@shared_task(name="campaigns.tasks.seasonal_suggestions_refresh_all")
def seasonal_suggestions_refresh_all() -> int:
    """Queue one refresh per shop (beat, daily). Returns how many were queued."""
    shop_ids = list(Shop.objects.order_by("id").values_list("id", flat=True))
    for shop_id in shop_ids:
        seasonal_suggestions_refresh.delay(shop_id)
    return len(shop_ids)


@shared_task(
    name="campaigns.tasks.experiments_advance",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=3,
)
def experiments_advance_task() -> tuple[int, int]:
    """Flip scheduled experiments to running and expired ones to stopped (beat, every
    minute). Serving already honours the times itself; this keeps stored statuses true."""
    return experiments_advance()
