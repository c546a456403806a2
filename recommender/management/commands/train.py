"""``manage.py train --shop demo [--kind als ...] [--queue [--wait]]``.

By default the runs are trained here, one after the other, through the same claim,
lease, evaluation and registry as a worker (for the demo and benchmarks). With
``--queue`` they are only queued for the workers; ``--wait`` then follows their
progress until they end.
"""

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.audit import Actor
from catalog.selectors import shop_by_slug
from recommender import training
from recommender.kinds import KINDS, UnknownKind
from recommender.models import TrainingRun


class Command(BaseCommand):
    help = "Train a shop's models now (in this process), or queue them for the workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, help="shop slug")
        parser.add_argument(
            "--kind", action="append", choices=sorted(KINDS), help="model kind (repeatable; default: all it can train)"
        )
        parser.add_argument("--config", default="{}", help="JSON of configuration overrides for every kind given")
        parser.add_argument("--queue", action="store_true", help="queue for the Celery workers instead")
        parser.add_argument("--wait", action="store_true", help="with --queue: wait until the runs end")
        parser.add_argument("--timeout", type=float, default=3600.0, help="with --wait: give up after this many s")

    def handle(self, *args: Any, **options: Any) -> None:
        shop = shop_by_slug(options["shop"])
        if shop is None:
            raise CommandError(f"no shop {options['shop']!r}")
        try:
            config = json.loads(options["config"])
            if not isinstance(config, dict):
                raise ValueError("--config must be a JSON object of configuration overrides")
            requested = training.training_run_request(
                shop=shop,
                kinds=options["kind"],
                actor=Actor.system("manage.py train"),
                config=config or None,
                enqueue=options["queue"],
            )
        except (ValueError, UnknownKind) as error:
            raise CommandError(str(error)) from None
        run_ids = [item.run.pk for item in requested]
        for item in requested:
            note = "" if item.created else " (already queued or running)"
            self.stdout.write(f"run {item.run.pk}: {item.run.kind}{note}")
        if options["queue"]:
            if options["wait"]:
                self._wait(run_ids, options["timeout"])
            return
        for run_id in run_ids:
            if training.training_run_execute(run_id=run_id) is None:
                self.stdout.write(f"run {run_id}: taken by a worker; waiting for it")
                self._wait([run_id], options["timeout"])
        self._report(run_ids)

    def _wait(self, run_ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        shown: dict[int, tuple[str, str, int]] = {}
        while time.monotonic() < deadline:
            runs = list(TrainingRun.objects.filter(pk__in=run_ids).order_by("pk"))
            for run in runs:
                state = (run.status, run.stage, run.progress)
                if shown.get(run.pk) != state:
                    shown[run.pk] = state
                    self.stdout.write(f"run {run.pk} {run.kind}: {run.status} {run.stage} {run.progress}%")
            if all(run.is_finished for run in runs):
                self._report(run_ids)
                return
            time.sleep(1.0)
        raise CommandError(f"runs {run_ids} did not finish within {timeout:.0f} s")

    def _report(self, run_ids: list[int]) -> None:
        failed = 0
        for run in TrainingRun.objects.filter(pk__in=run_ids).select_related("version").order_by("pk"):
            version = getattr(run, "version", None)
            if run.status == TrainingRun.Status.SUCCEEDED and version is not None:
                total = version.durations.get("total", 0.0)
                ndcg = version.metrics.get("ndcg_at_10")
                self.stdout.write(
                    f"{run.kind}: v{version.number} in {total:.1f} s, ndcg@10 {ndcg:.4f}; {version.activation_note}"
                )
            else:
                failed += 1
                self.stdout.write(f"{run.kind}: {run.status} {run.error}")
        if failed:
            raise CommandError(f"{failed} of {len(run_ids)} runs did not succeed")
