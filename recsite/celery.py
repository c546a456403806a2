"""The Celery app. Its configuration lives in settings.py under ``CELERY_*``:
queues by workload (default, training, embedding) and the reliability settings
of CONVENTIONS.md (acks_late, reject_on_worker_lost, prefetch 1, a short
visibility timeout, time limits, leases for long work)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "recsite.settings")

app = Celery("recsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
