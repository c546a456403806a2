"""``manage.py evaluate --shop demo --kind als [--config JSON]``: the offline evaluation of a
training run, alone (temporal hold-out; nothing is saved or registered)."""

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.selectors import shop_by_slug
from recommender.dataset import dataset_build
from recommender.kinds import KINDS, kind_config, kind_spec
from recommender.offline import evaluate_holdout


class Command(BaseCommand):
    help = "Evaluate a model kind on a shop's temporal hold-out and print the metrics as JSON."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--shop", required=True, help="shop slug")
        parser.add_argument("--kind", action="append", required=True, choices=sorted(KINDS))
        parser.add_argument("--config", default="{}", help="JSON of configuration overrides")
        parser.add_argument("--train-fraction", type=float, help="default: TRAINING_TRAIN_FRACTION")
        parser.add_argument("--max-cases", type=int, help="default: TRAINING_EVAL_MAX_CASES")

    def handle(self, *args: Any, **options: Any) -> None:
        fraction, max_cases = options["train_fraction"], options["max_cases"]
        if fraction is not None and not 0 < fraction < 1:
            raise CommandError("--train-fraction must be between 0 and 1 (exclusive)")
        if max_cases is not None and max_cases < 1:
            raise CommandError("--max-cases must be at least 1")
        try:
            overrides = json.loads(options["config"])
        except ValueError as error:
            raise CommandError(f"--config is not JSON: {error}") from None
        if not isinstance(overrides, dict):
            raise CommandError("--config must be a JSON object of configuration overrides")
        shop = shop_by_slug(options["shop"])
        if shop is None:
            raise CommandError(f"no shop {options['shop']!r}")
        dataset = dataset_build(shop=shop)
        if dataset.event_count == 0:
            raise CommandError("the shop has no events to evaluate on")
        results = {}
        for kind in options["kind"]:
            spec = kind_spec(kind)
            try:
                config = kind_config(spec, shop, overrides)
            except ValueError as error:
                raise CommandError(str(error)) from None
            started = time.monotonic()
            result = evaluate_holdout(
                spec.algorithm_class,
                config,
                dataset.interactions,
                dataset.features,
                train_fraction=fraction,
                max_cases=max_cases,
            )
            results[kind] = {**result.metrics, "seconds": round(time.monotonic() - started, 2)}
        self.stdout.write(json.dumps(results, indent=2))
