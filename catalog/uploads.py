"""Product and event files uploaded from the console: stored under UPLOAD_DIR, imported
by a Celery task (default queue) through the catalog import service, with progress
in the UploadJob row that the console polls.

The task is idempotent and may be redelivered: it claims the job by compare-and-swap
(QUEUED -> RUNNING), counts attempts in the row and gives up after TASK_MAX_ATTEMPTS.
"""

import logging
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from catalog import importing
from catalog.models import Shop, UploadJob

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
# A running import reports progress at least this often; a job silent for longer lost
# its worker (killed, redeployed) and may be claimed again by the redelivered task.
STALE_AFTER = timedelta(minutes=2)
IMPORT_SOFT_TIME_LIMIT_S = 1800


def upload_path(job: UploadJob) -> Path:
    return Path(settings.UPLOAD_DIR) / job.stored_name


def upload_job_create(*, shop: Shop, kind: str, upload: UploadedFile, user: Any) -> UploadJob:
    """Store the file (temp name, fsync, rename) and queue its import when the row commits."""
    suffix = Path(upload.name or "").suffix.lower()
    stored_name = f"{shop.pk}/{uuid.uuid4().hex}{suffix}"
    target = Path(settings.UPLOAD_DIR) / stored_name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    with partial.open("wb") as out:
        for chunk in upload.chunks(CHUNK_BYTES):
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    partial.rename(target)
    with transaction.atomic():
        job = UploadJob.objects.create(
            shop=shop,
            kind=UploadJob.Kind(kind),
            file_name=Path(upload.name or "upload").name[:255],
            stored_name=stored_name,
            bytes_total=target.stat().st_size,
            created_by=user,
        )
        transaction.on_commit(lambda: upload_process.delay(job.pk))
    return job


@shared_task(
    name="catalog.uploads.upload_process",
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
    soft_time_limit=IMPORT_SOFT_TIME_LIMIT_S,
    time_limit=IMPORT_SOFT_TIME_LIMIT_S + 60,
)
def upload_process(job_id: int) -> None:
    upload_job_process(job_id=job_id)


def upload_job_process(*, job_id: int) -> None:
    """Import the job's file. Claims the job first: a queued job, or a running one whose
    worker stopped reporting progress (so a redelivered task takes over, never a second one)."""
    now = timezone.now()
    claimable = Q(status=UploadJob.Status.QUEUED) | Q(
        status=UploadJob.Status.RUNNING, heartbeat_at__lt=now - STALE_AFTER
    )
    claimed = UploadJob.objects.filter(claimable, pk=job_id, attempts__lt=settings.TASK_MAX_ATTEMPTS).update(
        status=UploadJob.Status.RUNNING, started_at=now, heartbeat_at=now, attempts=F("attempts") + 1
    )
    if claimed != 1:
        _give_up_if_poisoned(job_id, claimable)
        return
    job = UploadJob.objects.select_related("shop").get(pk=job_id)
    path = upload_path(job)
    try:
        result = _run_import(job, path)
    except importing.ImportFileError as error:
        _finish(job, UploadJob.Status.FAILED, error=str(error))
        return
    except Exception:
        # Back to the queue state so a redelivery can retry; attempts stop a poison job.
        UploadJob.objects.filter(pk=job.pk).update(status=UploadJob.Status.QUEUED)
        raise
    _finish(job, UploadJob.Status.DONE, result=result)
    path.unlink(missing_ok=True)


def _run_import(job: UploadJob, path: Path) -> importing.ImportResult:
    def on_progress(bytes_done: int) -> None:
        UploadJob.objects.filter(pk=job.pk).update(
            bytes_done=min(bytes_done, job.bytes_total), heartbeat_at=timezone.now()
        )

    if job.kind == UploadJob.Kind.PRODUCTS:
        return importing.import_products(shop=job.shop, path=path, on_progress=on_progress)
    return importing.import_events(shop=job.shop, path=path, on_progress=on_progress)


def _finish(job: UploadJob, status: str, *, error: str = "", result: importing.ImportResult | None = None) -> None:
    values: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error[:5000]}
    if result is not None:
        values.update(
            bytes_done=job.bytes_total,
            records_accepted=result.accepted,
            records_unchanged=result.unchanged,
            records_rejected=result.rejected,
        )
    UploadJob.objects.filter(pk=job.pk).update(**values)


def _give_up_if_poisoned(job_id: int, claimable: Q) -> None:
    """A claimable job out of attempts failed that often: mark it failed instead of retrying forever."""
    poisoned = UploadJob.objects.filter(claimable, pk=job_id, attempts__gte=settings.TASK_MAX_ATTEMPTS).update(
        status=UploadJob.Status.FAILED,
        finished_at=timezone.now(),
        error=f"The import failed {settings.TASK_MAX_ATTEMPTS} times; see the worker log.",
    )
    if not poisoned:
        logger.info("upload_process: job %s is gone or already claimed", job_id)
