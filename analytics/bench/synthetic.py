"""A synthetic shop for ``make bench-analytics``, written straight into Postgres with COPY.

90 days of traffic on three placements: served lists (8 items each, some with promoted
items pinned first, an experiment on the product page for the last 30 days, two model
versions of one kind and one of another), and the behaviour that follows: impressions
of the first positions of most lists, clicks on a few, add-to-carts and purchases after
some clicks (half of them carrying the list's request id, the rest left to window
attribution, a tenth of those later than the window), purchases outside any
recommendation, and views up to exactly ``events`` events. Arrays are made with numpy
and copied in large chunks; the whole shop takes a few minutes at 10M events.
"""

import io
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from django.db import connection
from django.utils import timezone

from campaigns import services as campaigns_services
from campaigns.models import Experiment, Placement, Promotion, Strategy
from catalog.audit import Actor
from catalog.models import Shop
from recommender.models import ActiveModel, ModelVersion

DAYS = 90
PLACEMENTS = ("home", "pdp", "cart")
PLACEMENT_SHARES = (0.4, 0.4, 0.2)
ITEMS = 8
EXPERIMENT_DAYS = 30
PROMOTED = 30  # products 0..29 are promoted, by three promotions
SEED = 7
_ROWS_PER_COPY = 200_000


@dataclass
class BenchShop:
    shop: Shop
    start: datetime
    end: datetime
    products: int
    shoppers: int
    lists: int
    events: int
    event_counts: dict[str, int]
    experiment: Experiment
    seconds: float


def build_shop(*, events: int, lists: int, products: int, shoppers: int, log: Callable[[str], None]) -> BenchShop:
    """Create the shop and its data; returns what was made."""
    began = time.monotonic()
    rng = np.random.default_rng(SEED)
    end = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=DAYS)
    shop = Shop.objects.create(name="Bench shop", slug="bench-analytics", timezone="Europe/Berlin")
    product_ids, prices = _products(shop, products, start, rng)
    shopper_ids = _shoppers(shop, shoppers)
    log(f"catalog: {products:,} products, {shoppers:,} shoppers")
    experiment, promotions, versions = _campaigns(shop, end)
    with _indexes_built_after(("recommender_servedlist", "catalog_event")):
        lists_made = _served_lists(
            shop, lists, start, end, product_ids, shopper_ids, experiment, promotions, versions, rng
        )
        log(f"served lists: {lists:,} ({time.monotonic() - began:.0f} s so far)")
        counts = _events(shop, events, start, end, lists_made, product_ids, prices, shopper_ids, rng)
        log(f"events: {sum(counts.values()):,} copied ({time.monotonic() - began:.0f} s so far); building indexes")
    with connection.cursor() as cursor:
        for table in ("catalog_event", "recommender_servedlist", "catalog_product", "catalog_shopper"):
            cursor.execute(f"ANALYZE {table}")
    return BenchShop(
        shop=shop,
        start=start,
        end=end,
        products=products,
        shoppers=shoppers,
        lists=lists,
        events=sum(counts.values()),
        event_counts=counts,
        experiment=experiment,
        seconds=time.monotonic() - began,
    )


def _copy(table: str, columns: str, rows: Iterator[str]) -> None:
    """COPY text lines (tab-separated, ``\\N`` for NULL) into ``table`` (small tables)."""
    with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        copy.write("".join(rows))


@contextmanager
def _indexes_built_after(tables: tuple[str, ...]) -> Iterator[None]:
    """Drop the tables' indexes and constraints (but the primary keys) for the bulk load and
    build them again after it: much faster than maintaining them row by row."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u', 'f')",
            [list(tables)],
        )
        constraints = cursor.fetchall()
        for table, name, _ in constraints:
            cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s) AND indexname NOT LIKE '%%_pkey'",
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for table, name, definition in constraints:
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            cursor.execute(definition)


def _text(part: Any, count: int) -> Any:
    return pa.array([part] * count, pa.string()) if isinstance(part, str) else part


def _timestamps(start: datetime, seconds: np.ndarray) -> pa.Array:
    micros = int(start.timestamp() * 1_000_000) + (seconds * 1_000_000).astype(np.int64)
    return pa.array(micros, pa.timestamp("us", tz="UTC"))


def _copy_table(table_name: str, table: pa.Table) -> None:
    """COPY an Arrow table (CSV: empty strings quoted, NULL unquoted)."""
    data = io.BytesIO()
    pacsv.write_csv(table, data, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY {table_name} ({', '.join(table.column_names)}) FROM STDIN (FORMAT csv)") as copy,
    ):
        copy.write(data.getbuffer())


def _products(shop: Shop, count: int, start: datetime, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    prices = np.round(rng.uniform(5, 200, count), 2)
    # A fifth of the catalog arrives during the 90 days: the new items.
    ages = np.where(rng.random(count) < 0.2, rng.uniform(0, DAYS, count), DAYS + rng.uniform(1, 400, count))
    created = [start + timedelta(days=DAYS) - timedelta(days=float(a)) for a in ages]
    _copy(
        "catalog_product",
        "shop_id, sku, title, description, brand, price, url, image_url, tags, attributes, in_stock, active, "
        "created_at, updated_at",
        (
            f"{shop.pk}\tB-{i}\tProduct {i}\t\t\t{prices[i]:.2f}\t\t\t[]\t{{}}\tt\tt\t{created[i].isoformat()}\t"
            f"{created[i].isoformat()}\n"
            for i in range(count)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, sku FROM catalog_product WHERE shop_id = %s", [shop.pk])
        ids = np.zeros(count, dtype=np.int64)
        for pk, sku in cursor.fetchall():
            ids[int(sku[2:])] = pk
    return ids, prices


def _shoppers(shop: Shop, count: int) -> np.ndarray:
    now = timezone.now().isoformat()
    _copy("catalog_shopper", "shop_id, key_hash, created_at", (f"{shop.pk}\t{i:064x}\t{now}\n" for i in range(count)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, key_hash FROM catalog_shopper WHERE shop_id = %s", [shop.pk])
        ids = np.zeros(count, dtype=np.int64)
        for pk, key_hash in cursor.fetchall():
            ids[int(key_hash, 16)] = pk
    return ids


def _campaigns(shop: Shop, end: datetime) -> tuple[Experiment, list[int], dict[str, list[int]]]:
    actor = Actor.system("bench-analytics")
    strategy = Strategy.objects.create(shop=shop, name="Bench", config={"sources": {"trending": 1.0}, "size": ITEMS})
    placements = {
        slug: Placement.objects.create(shop=shop, slug=slug, name=slug.title(), kind="home", default_strategy=strategy)
        for slug in PLACEMENTS
    }
    promotions = [
        Promotion.objects.create(
            shop=shop,
            name=f"Bench promotion {i}",
            target={"skus": [f"B-{i}"]},
            action="pin",
            slot=1,
            status="published",
        ).pk
        for i in range(3)
    ]
    experiment = campaigns_services.experiment_create(
        shop=shop,
        actor=actor,
        fields={"name": "Bench experiment", "placement": placements["pdp"]},
        variants=[
            campaigns_services.VariantSpec("control", 50, is_control=True),
            campaigns_services.VariantSpec("treatment", 50),
        ],
    )
    started = end - timedelta(days=EXPERIMENT_DAYS)
    experiment = campaigns_services.experiment_start(experiment=experiment, actor=actor, now=started)
    versions: dict[str, list[int]] = {}
    for kind, count in (("als", 2), ("item_knn", 1)):
        for number in range(1, count + 1):
            version = ModelVersion.objects.create(
                shop=shop,
                kind=kind,
                number=number,
                metrics={"ndcg_at_10": 0.05 + 0.01 * number, "recall_at_20": 0.1 + 0.02 * number},
                artifact_path=f"bench/{kind}/{number}",
                artifact_sha256="0" * 64,
            )
            versions.setdefault(kind, []).append(version.pk)
        ActiveModel.objects.create(
            shop=shop, kind=kind, version_id=versions[kind][-1], activated_at=end, activated_by="bench"
        )
    return experiment, promotions, versions


@dataclass
class ListsMade:
    request_ids: list[str]
    served_at: np.ndarray  # seconds since start
    placement: np.ndarray  # index into PLACEMENTS
    shopper: np.ndarray  # index
    items: np.ndarray  # (lists, ITEMS) product indices
    treatment: np.ndarray  # bool: the list was served to the treatment arm


def _served_lists(
    shop: Shop,
    count: int,
    start: datetime,
    end: datetime,
    product_ids: np.ndarray,
    shopper_ids: np.ndarray,
    experiment: Experiment,
    promotions: list[int],
    versions: dict[str, list[int]],
    rng: np.random.Generator,
) -> ListsMade:
    span = (end - start).total_seconds()
    served = np.sort(rng.uniform(0, span - 3600, count))
    placement = rng.choice(len(PLACEMENTS), count, p=PLACEMENT_SHARES)
    shoppers = len(shopper_ids)
    shopper = np.minimum((rng.pareto(1.2, count) * shoppers / 20).astype(np.int64), shoppers - 1)
    products = len(product_ids)
    popularity = 1.0 / np.arange(1, products + 1) ** 0.8
    base = rng.choice(products, count, p=popularity / popularity.sum())
    items = (base[:, None] + np.arange(ITEMS)[None, :] * 997) % products
    pinned = rng.random(count) < 0.3
    items[pinned, 0] = rng.integers(0, PROMOTED, pinned.sum())
    in_experiment = (placement == 1) & (served >= span - EXPERIMENT_DAYS * 86400)
    treatment = in_experiment & (shopper % 2 == 1)
    half = span / 2
    words = rng.integers(0, 2**63, (count, 2), dtype=np.int64)
    request_ids = [str(uuid.UUID(int=(int(hi) << 64) | int(lo))) for hi, lo in words]
    pid_text = pc.cast(pa.array(product_ids), pa.string())
    index_text = pc.cast(pa.array(np.arange(len(product_ids))), pa.string())
    promotion_of = np.full(len(product_ids), "", dtype=object)
    promotion_of[:PROMOTED] = [str(promotions[i % 3]) for i in range(PROMOTED)]
    promotion_text = pa.array(promotion_of.tolist(), pa.string())
    parts: list[Any] = ["["]
    for position in range(ITEMS):
        column = pa.array(items[:, position])
        parts += [
            '{"product_id": ' if position == 0 else ', {"product_id": ',
            pc.take(pid_text, column),
            ', "sku": "B-',
            pc.take(index_text, column),
            f'", "position": {position + 1}, "score": 0.5, "sources": {{"trending": 0.5}}, "promotion_ids": [',
            pc.take(promotion_text, column),
            '], "reasons": []}',
        ]
    parts.append("]")
    items_json = pc.binary_join_element_wise(*[_text(part, count) for part in parts], "")
    first_half = served < half
    model_versions = pa.array(
        np.where(
            first_half,
            f'{{"als": {versions["als"][0]}, "item_knn": {versions["item_knn"][0]}}}',
            f'{{"als": {versions["als"][1]}, "item_knn": {versions["item_knn"][0]}}}',
        ).tolist(),
        pa.string(),
    )
    table = pa.table(
        {
            "request_id": pa.array(request_ids, pa.string()),
            "shop_id": pa.array(np.full(count, shop.pk)),
            "placement_slug": pa.array(np.array(PLACEMENTS)[placement].tolist(), pa.string()),
            "experiment_id": pa.array(np.full(count, experiment.pk), mask=~in_experiment),
            "experiment_version": pa.array(np.ones(count, np.int64), mask=~in_experiment),
            "variant": pa.array(np.where(in_experiment, np.where(treatment, "treatment", "control"), "").tolist()),
            "shopper_id": pa.array(shopper_ids[shopper]),
            "unit_hash": pc.binary_join_element_wise("u", pc.cast(pa.array(shopper), pa.string()), ""),
            "session": pa.array([""] * count, pa.string()),
            "context_skus": pa.array(["[]"] * count, pa.string()),
            "items": items_json,
            "model_versions": model_versions,
            "latency_ms": pa.array(np.full(count, 5.0)),
            "served_at": _timestamps(start, served),
        }
    )
    _copy_table("recommender_servedlist", table)
    return ListsMade(request_ids, served, placement, shopper, items, treatment)


def _events(
    shop: Shop,
    total: int,
    start: datetime,
    end: datetime,
    lists: ListsMade,
    product_ids: np.ndarray,
    prices: np.ndarray,
    shopper_ids: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, int]:
    """Impressions, clicks, add-to-carts, purchases (attributed and not) and views."""
    count = len(lists.request_ids)
    span = (end - start).total_seconds()
    seen = rng.random(count) < 0.85
    depth = rng.integers(5, ITEMS + 1, count)
    list_index, position = np.nonzero(seen[:, None] & (np.arange(ITEMS)[None, :] < depth[:, None]))
    impression_ts = lists.served_at[list_index] + rng.uniform(1, 30, list_index.size)
    click_rate = 0.06 / (1 + position) * np.where(lists.treatment[list_index], 1.15, 1.0)
    clicked = rng.random(list_index.size) < click_rate
    c_list, c_position = list_index[clicked], position[clicked]
    click_ts = impression_ts[clicked] + rng.uniform(2, 60, c_list.size)
    carted = rng.random(c_list.size) < 0.3
    a_list, a_position = c_list[carted], c_position[carted]
    cart_ts = click_ts[carted] + rng.uniform(10, 600, a_list.size)
    bought = rng.random(a_list.size) < 0.5
    p_list, p_position = a_list[bought], a_position[bought]
    p_click_ts = click_ts[carted][bought]
    late = rng.random(p_list.size) < 0.1
    purchase_ts = np.where(
        late,
        p_click_ts + rng.uniform(25 * 3600, 48 * 3600, p_list.size),
        cart_ts[bought] + rng.uniform(60, 20 * 3600, p_list.size),
    )
    carries_request = (rng.random(p_list.size) < 0.5) & ~late
    quantity = rng.integers(1, 4, p_list.size)

    # (type, list index or -1, product index, shopper index, ts, quantity, carries the request id)
    blocks: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def product_of(index: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return lists.items[index, pos]

    ones = np.ones
    blocks.append(
        (
            "impression",
            list_index,
            product_of(list_index, position),
            lists.shopper[list_index],
            impression_ts,
            ones(list_index.size, np.int64),
            ones(list_index.size, bool),
        )
    )
    blocks.append(
        (
            "click",
            c_list,
            product_of(c_list, c_position),
            lists.shopper[c_list],
            click_ts,
            ones(c_list.size, np.int64),
            ones(c_list.size, bool),
        )
    )
    blocks.append(
        (
            "add_to_cart",
            a_list,
            product_of(a_list, a_position),
            lists.shopper[a_list],
            cart_ts,
            ones(a_list.size, np.int64),
            ones(a_list.size, bool),
        )
    )
    blocks.append(
        (
            "purchase",
            p_list,
            product_of(p_list, p_position),
            lists.shopper[p_list],
            purchase_ts,
            quantity,
            carries_request,
        )
    )
    organic = max(0, total // 100)
    blocks.append(
        (
            "purchase",
            -np.ones(organic, np.int64),
            rng.integers(0, len(product_ids), organic),
            rng.integers(0, len(shopper_ids), organic),
            rng.uniform(0, span, organic),
            rng.integers(1, 3, organic),
            np.zeros(organic, bool),
        )
    )
    kept = []
    for kind, index, product, shopper, ts, qty, carries in blocks:
        inside = ts < span
        kept.append((kind, index[inside], product[inside], shopper[inside], ts[inside], qty[inside], carries[inside]))
    views = total - sum(block[1].size for block in kept)
    if views < 0:
        raise ValueError(f"{total:,} events are too few for {count:,} served lists")
    kept.append(
        (
            "view",
            -np.ones(views, np.int64),
            rng.integers(0, len(product_ids), views),
            np.minimum((rng.pareto(1.2, views) * len(shopper_ids) / 20).astype(np.int64), len(shopper_ids) - 1),
            rng.uniform(0, span, views),
            np.ones(views, np.int64),
            np.zeros(views, bool),
        )
    )
    kinds = [block[0] for block in kept]
    code = np.concatenate([np.full(block[1].size, i, np.int8) for i, block in enumerate(kept)])
    index = np.concatenate([block[1] for block in kept])
    product = np.concatenate([block[2] for block in kept])
    shopper = np.concatenate([block[3] for block in kept])
    ts = np.concatenate([block[4] for block in kept])
    quantity = np.concatenate([block[5] for block in kept])
    carries = np.concatenate([block[6] for block in kept]) & (index >= 0)
    request_text = pa.array([*lists.request_ids, ""], pa.string())
    is_purchase = code == kinds.index("purchase")
    for first in range(0, total, _ROWS_PER_COPY * 5):
        part = slice(first, min(total, first + _ROWS_PER_COPY * 5))
        n = part.stop - part.start
        at = ts[part]
        table = pa.table(
            {
                "shop_id": pa.array(np.full(n, shop.pk)),
                "event_id": pc.binary_join_element_wise(
                    "b", pc.cast(pa.array(np.arange(part.start, part.stop)), pa.string()), ""
                ),
                "type": pc.take(pa.array(kinds, pa.string()), pa.array(code[part])),
                "shopper_id": pa.array(shopper_ids[shopper[part]]),
                "product_id": pa.array(product_ids[product[part]]),
                "sku": pc.binary_join_element_wise("B-", pc.cast(pa.array(product[part]), pa.string()), ""),
                "session": pa.array([""] * n, pa.string()),
                "ts": _timestamps(start, at),
                "quantity": pa.array(quantity[part]),
                "price": pa.array(np.round(prices[product[part]], 2), mask=~is_purchase[part]),
                "request_id": pc.take(
                    request_text, pa.array(np.where(carries[part], index[part], len(lists.request_ids)))
                ),
                "received_at": _timestamps(start, at + rng.uniform(0.2, 5.0, n)),
            }
        )
        _copy_table("catalog_event", table)
    counts: dict[str, int] = {}
    for kind, index, *_ in kept:
        counts[kind] = counts.get(kind, 0) + int(index.size)
    return counts
