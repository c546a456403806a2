from collections.abc import Callable
from pathlib import Path

from catalog.importing import ImportResult, import_events
from catalog.management.commands._importing import ImportCommand
from catalog.models import Shop


class Command(ImportCommand):
    help = (
        "Import events from a CSV file (header: event_id,type,shopper,sku,ts[,session,request_id,quantity,price]) "
        "or JSON lines. Idempotent by event_id; bad rows are kept as rejections with their line numbers."
    )
    what = "events"

    def run_import(
        self, *, shop: Shop, path: Path, file_format: str | None, on_progress: Callable[[int], None]
    ) -> ImportResult:
        return import_events(shop=shop, path=path, file_format=file_format, on_progress=on_progress)
