from collections.abc import Callable
from pathlib import Path

from catalog.importing import ImportResult, import_products
from catalog.management.commands._importing import ImportCommand
from catalog.models import Shop


class Command(ImportCommand):
    help = (
        "Create or update products from a CSV file (header: sku and product fields; tags separated by '|', "
        "attributes as JSON) or JSON lines. Bad rows are kept as rejections with their line numbers."
    )
    what = "products"

    def run_import(
        self, *, shop: Shop, path: Path, file_format: str | None, on_progress: Callable[[int], None]
    ) -> ImportResult:
        return import_products(shop=shop, path=path, file_format=file_format, on_progress=on_progress)
