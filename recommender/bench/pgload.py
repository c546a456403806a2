"""Load a synthetic shop into the connected (Postgres) database, to time building its dataset.

Products and shoppers go in through the ORM in batches; the events through one
``COPY ... FROM STDIN`` streamed in chunks (the ingestion path is benchmarked by
catalog.bench.ingest; here only the resulting rows matter). Ids are assigned densely
from the arrays (product i has pk ``i + 1`` and so on), so the database must be empty.
"""

import datetime as dt
import io

import numpy as np
import pandas as pd
from django.db import connection, transaction

from catalog.models import Category, Event, Product, Shop, Shopper
from recommender.algorithms.data import EVENT_TYPES
from recommender.bench.synthetic import SyntheticShop

_COPY_CHUNK = 500_000
_EVENT_COLUMNS = ("shop_id", "event_id", "type", "shopper_id", "product_id", "sku", "session", "ts", "quantity")


def load_synthetic_shop(synthetic: SyntheticShop, *, slug: str = "bench-train") -> Shop:
    """Create the shop with every product, shopper and event of ``synthetic``."""
    interactions, features = synthetic.interactions, synthetic.features
    shop = Shop.objects.create(name="Training benchmark", slug=slug, retrain_every_hours=0)
    n_categories = int(features.category.max()) + 1
    Category.objects.bulk_create(
        Category(pk=c + 1, shop=shop, name=f"Category {c}", path=f"Category {c}") for c in range(n_categories)
    )
    created = pd.to_datetime(features.created_ts, unit="s", utc=True)
    skus = synthetic.products.column("sku").to_pylist()
    titles = synthetic.products.column("title").to_pylist()
    Product.objects.bulk_create(
        (
            Product(
                pk=i + 1,
                shop=shop,
                sku=skus[i],
                title=titles[i],
                category_id=int(features.category[i]) + 1 if features.category[i] >= 0 else None,
                created_at=created[i].to_pydatetime(),
            )
            for i in range(features.n_items)
        ),
        batch_size=5000,
    )
    Shopper.objects.bulk_create(
        (Shopper(pk=u + 1, shop=shop, key_hash=f"{u:064x}") for u in range(interactions.n_users)), batch_size=5000
    )
    _copy_events(shop, synthetic)
    with connection.cursor() as cursor:
        for model in (Category, Product, Shopper):
            table = model._meta.db_table
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        cursor.execute(f"ANALYZE {Event._meta.db_table}")
    return shop


def _copy_events(shop: Shop, synthetic: SyntheticShop) -> None:
    events = synthetic.interactions
    skus = np.array(synthetic.products.column("sku").to_pylist(), dtype=object)
    types = np.array(EVENT_TYPES, dtype=object)
    columns = ", ".join([*_EVENT_COLUMNS, "request_id", "received_at"])
    received = dt.datetime.now(dt.UTC).isoformat()
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for start in range(0, len(events), _COPY_CHUNK):
            part = slice(start, start + _COPY_CHUNK)
            item = events.item[part]
            frame = pd.DataFrame(
                {
                    "shop_id": shop.pk,
                    "event_id": "e" + pd.Series(np.arange(start, start + len(item))).astype(str),
                    "type": types[events.event_type[part]],
                    "shopper_id": events.user[part] + 1,
                    "product_id": item + 1,
                    "sku": skus[item],
                    "session": "s" + pd.Series(events.session[part]).astype(str),
                    "ts": pd.to_datetime(events.ts[part], unit="s", utc=True),
                    "quantity": 1,
                    "request_id": "",
                    "received_at": received,
                }
            )
            buffer = io.StringIO()
            frame.to_csv(buffer, sep="\t", header=False, index=False)
            copy.write(buffer.getvalue())
