"""What import_products and import_events share: arguments, progress bar, summary."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from catalog.import_files import FORMATS
from catalog.importing import ImportFileError, ImportResult
from catalog.models import Shop
from catalog.selectors import shop_by_slug


class ImportCommand(BaseCommand):
    """Subclasses set ``what`` ("products" or "events") and implement ``run_import``."""

    what = ""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="a .csv file with a header row, or .jsonl / .ndjson")
        parser.add_argument("--shop", required=True, help="slug of the shop to import into")
        parser.add_argument("--format", choices=FORMATS, help="the file's format, when its extension does not say")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run_import(
        self, *, shop: Shop, path: Path, file_format: str | None, on_progress: Callable[[int], None]
    ) -> ImportResult:
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        shop = shop_by_slug(options["shop"])
        if shop is None:
            raise CommandError(f"No shop with slug {options['shop']!r}.")
        if not path.is_file():
            raise CommandError(f"No file at {str(path)!r}.")
        bar = tqdm(
            total=path.stat().st_size,
            unit="B",
            unit_scale=True,
            desc=f"{self.what} {path.name}",
            file=sys.stderr,
            disable=options["no_progress"],
        )
        done = 0

        def on_progress(offset: int) -> None:
            nonlocal done
            bar.update(offset - done)
            done = offset

        try:
            with bar:
                result = self.run_import(shop=shop, path=path, file_format=options["format"], on_progress=on_progress)
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        self.report(result)

    def report(self, result: ImportResult) -> None:
        for line, problem in result.problems_sample:
            self.stderr.write(f"line {line}: {problem}")
        if result.rejected > len({line for line, _ in result.problems_sample}):
            self.stderr.write("... the rest are kept as rejections (console: Data > Rejections).")
        unchanged = "duplicates" if self.what == "events" else "unchanged"
        self.stdout.write(
            f"{self.what}: {result.rows_read} rows read, {result.accepted} accepted, "
            f"{result.unchanged} {unchanged}, {result.rejected} rejected"
            + (f", {result.unknown_skus} with unknown SKU (kept)" if self.what == "events" else "")
            + f" in {result.seconds:.1f} s ({result.rows_per_second:,.0f} {self.what}/s)"
        )
