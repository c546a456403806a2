"""A shop's training data as the arrays of recommender.algorithms, read straight into numpy.

Events are read column-wise without building a Python object per row where it
matters: on Postgres through ``COPY ... TO STDOUT (FORMAT BINARY)`` parsed with a
fixed-width numpy record type, on SQLite through ``fetchmany`` chunks turned into
arrays. Only events on known products and of types whose shop weight is above zero
are read (impressions, by default, do not count).

Indices: item ``i`` is the i-th product of the shop by ascending id (every product,
active or not, with or without events), so ``features`` and ``items`` line up; users
are the shoppers with at least one such event, by ascending id; sessions are dense
ids of (shopper, session id) pairs, or cut by 30 minutes of inactivity where the shop
sent no session id. The temporal hold-out split for evaluation is
``recommender.algorithms.evaluation.temporal_split`` (see recommender.offline).
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from django.db import connection

from catalog import embedding
from catalog.models import Category, Event, Product, ProductEmbedding, Shop
from recommender.algorithms.data import EVENT_TYPES, Interactions, ItemFeatures, sessions_by_inactivity
from recommender.algorithms.vocabulary import Vocabulary

logger = logging.getLogger(__name__)

# An event's own weight is its quantity, capped: one wholesale order of 500 pieces
# should not outweigh everything else a shopper did.
QUANTITY_CAP = 5
_NO_SESSION = -1
_SQLITE_CHUNK = 100_000
_COPY_PARSE_BYTES = 16 << 20

# One row of the binary COPY: field count, then (length, value) per column, big-endian.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("id_len", ">i4"),
        ("id", ">i8"),
        ("shopper_len", ">i4"),
        ("shopper", ">i8"),
        ("product_len", ">i4"),
        ("product", ">i8"),
        ("type_len", ">i4"),
        ("type", ">i2"),
        ("ts_len", ">i4"),
        ("ts", ">i8"),
        ("quantity_len", ">i4"),
        ("quantity", ">i2"),
        ("session_len", ">i4"),
        ("session", ">i8"),
    ]
)
_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_COPY_LENGTHS = {"id": 8, "shopper": 8, "product": 8, "type": 2, "ts": 8, "quantity": 2, "session": 8}


@dataclass(frozen=True, eq=False)
class EventColumns:
    """Raw event columns as read from the database (unordered, unmapped)."""

    event_id: np.ndarray  # int64, Event.pk
    shopper_id: np.ndarray  # int64
    product_id: np.ndarray  # int64
    event_type: np.ndarray  # int8 code (position in EVENT_TYPES)
    ts: np.ndarray  # int64 unix seconds
    quantity: np.ndarray  # int16
    session_hash: np.ndarray  # int64, a 32-bit hash of the session id, -1 when none was sent

    def __len__(self) -> int:
        return len(self.event_id)


@dataclass(frozen=True, eq=False)
class ShopDataset:
    """Everything a model kind is trained on, for one shop."""

    shop_id: int
    interactions: Interactions  # ordered by (ts, event id)
    features: ItemFeatures
    items: Vocabulary  # str(product id); index i <-> features row i
    categories: Vocabulary  # str(category id); features.category indexes it (-1 none)
    shopper_ids: np.ndarray  # int64 Shopper.pk per user index

    @property
    def data_from(self) -> datetime | None:
        return _to_datetime(int(self.interactions.ts.min())) if len(self.interactions) else None

    @property
    def data_to(self) -> datetime | None:
        return _to_datetime(int(self.interactions.ts.max())) if len(self.interactions) else None

    @property
    def event_count(self) -> int:
        return len(self.interactions)

    @property
    def shopper_count(self) -> int:
        return self.interactions.n_users

    @property
    def item_count(self) -> int:
        return self.interactions.n_items


def _to_datetime(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def counted_event_types(shop: Shop) -> list[str]:
    """The event types that carry weight for this shop (weight > 0), in code order."""
    return [name for name in EVENT_TYPES if float(shop.event_weights.get(name, 0.0)) > 0]


def _type_case_sql() -> str:
    # Codes are positions in EVENT_TYPES, which are fixed identifiers (no user input).
    branches = " ".join(f"WHEN '{name}' THEN {code}" for code, name in enumerate(EVENT_TYPES))
    return f"CASE type {branches} END"


def read_event_columns(shop_id: int, event_types: list[str]) -> EventColumns:
    """The shop's events on known products of ``event_types``, straight into arrays."""
    unknown = set(event_types) - set(EVENT_TYPES)
    if unknown:
        raise ValueError(f"unknown event types {sorted(unknown)}")
    if not event_types:
        return _columns_from_chunks([])
    if connection.vendor == "postgresql":
        return _read_postgres(int(shop_id), event_types)
    return _read_sqlite(int(shop_id), event_types)


def _read_postgres(shop_id: int, event_types: list[str]) -> EventColumns:
    from psycopg import sql

    query = sql.SQL(
        "COPY (SELECT id, shopper_id, product_id, ({type_case})::int2, floor(extract(epoch FROM ts))::int8,"
        " least(quantity, 32767)::int2,"
        " CASE WHEN session = '' THEN -1 ELSE hashtext(session)::int8 & 4294967295 END"
        " FROM {table} WHERE shop_id = {shop} AND product_id IS NOT NULL AND type IN ({types}))"
        " TO STDOUT (FORMAT BINARY)"
    ).format(
        type_case=sql.SQL(_type_case_sql()),
        table=sql.Identifier(Event._meta.db_table),
        shop=sql.Literal(shop_id),
        types=sql.SQL(", ").join(sql.Literal(name) for name in event_types),
    )
    connection.ensure_connection()
    raw = connection.connection
    parser = _CopyParser()
    with raw.cursor() as cursor, cursor.copy(query) as copy:
        for data in copy:
            parser.feed(data)
    return _columns_from_chunks(parser.finish())


class _CopyParser:
    """Incremental parser of a binary COPY stream of fixed-width rows (no NULLs)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._header_done = False
        self._chunks: list[dict[str, np.ndarray]] = []

    def feed(self, data: bytes | memoryview) -> None:
        self._buffer += data
        if not self._header_done:
            if len(self._buffer) < 19:
                return
            if bytes(self._buffer[:11]) != _COPY_SIGNATURE:
                raise ValueError("not a binary COPY stream")
            extension = int.from_bytes(self._buffer[15:19], "big")
            if len(self._buffer) < 19 + extension:
                return
            del self._buffer[: 19 + extension]
            self._header_done = True
        if len(self._buffer) >= _COPY_PARSE_BYTES:
            self._parse(trailer=False)

    def _parse(self, *, trailer: bool) -> None:
        usable = len(self._buffer) - (2 if trailer else 0)
        count = usable // _COPY_ROW.itemsize
        if count:
            rows = np.frombuffer(self._buffer, dtype=_COPY_ROW, count=count)
            if np.any(rows["fields"] != len(_COPY_LENGTHS)) or any(
                np.any(rows[f"{name}_len"] != size) for name, size in _COPY_LENGTHS.items()
            ):
                raise ValueError("unexpected row layout in the COPY stream")
            self._chunks.append(
                {
                    "event_id": rows["id"].astype(np.int64),
                    "shopper_id": rows["shopper"].astype(np.int64),
                    "product_id": rows["product"].astype(np.int64),
                    "event_type": rows["type"].astype(np.int8),
                    "ts": rows["ts"].astype(np.int64),
                    "quantity": rows["quantity"].astype(np.int16),
                    "session_hash": rows["session"].astype(np.int64),
                }
            )
            del rows
            del self._buffer[: count * _COPY_ROW.itemsize]

    def finish(self) -> list[dict[str, np.ndarray]]:
        if not self._header_done:
            raise ValueError("the COPY stream ended before its header")
        self._parse(trailer=True)
        if bytes(self._buffer) != b"\xff\xff":
            raise ValueError(f"the COPY stream ended with {len(self._buffer)} unexpected bytes")
        return self._chunks


def _read_sqlite(shop_id: int, event_types: list[str]) -> EventColumns:
    placeholders = ", ".join(["%s"] * len(event_types))
    query = (
        f"SELECT id, shopper_id, product_id, {_type_case_sql()}, CAST(strftime('%%s', ts) AS INTEGER),"
        f" min(quantity, 32767), session FROM {Event._meta.db_table}"
        f" WHERE shop_id = %s AND product_id IS NOT NULL AND type IN ({placeholders})"
    )
    chunks: list[dict[str, np.ndarray]] = []
    with connection.cursor() as cursor:
        cursor.execute(query, [shop_id, *event_types])
        while rows := cursor.fetchmany(_SQLITE_CHUNK):
            event_id, shopper, product, event_type, ts, quantity, session = zip(*rows, strict=True)
            sessions = np.array(session, dtype=object)
            # A 32-bit hash groups a shopper's events of one session id; collisions
            # within one shopper's sessions are negligible and only merge two visits.
            hashed = (pd.util.hash_array(sessions) & 0xFFFFFFFF).astype(np.int64)
            hashed[sessions == ""] = _NO_SESSION
            chunks.append(
                {
                    "event_id": np.array(event_id, dtype=np.int64),
                    "shopper_id": np.array(shopper, dtype=np.int64),
                    "product_id": np.array(product, dtype=np.int64),
                    "event_type": np.array(event_type, dtype=np.int8),
                    "ts": np.array(ts, dtype=np.int64),
                    "quantity": np.array(quantity, dtype=np.int16),
                    "session_hash": hashed,
                }
            )
    return _columns_from_chunks(chunks)


def _columns_from_chunks(chunks: list[dict[str, np.ndarray]]) -> EventColumns:
    dtypes = {
        "event_id": np.int64,
        "shopper_id": np.int64,
        "product_id": np.int64,
        "event_type": np.int8,
        "ts": np.int64,
        "quantity": np.int16,
        "session_hash": np.int64,
    }
    columns = {
        name: (np.concatenate([chunk[name] for chunk in chunks]) if chunks else np.zeros(0, dtype=dtype))
        for name, dtype in dtypes.items()
    }
    return EventColumns(**columns)


def dense_sessions(user: np.ndarray, ts: np.ndarray, session_hash: np.ndarray) -> np.ndarray:
    """Dense session ids: one per (user, session id) pair where the shop sent one; else cut
    by inactivity (ids after those)."""
    sessions = np.empty(len(user), dtype=np.int64)
    has = session_hash >= 0
    key = (user[has].astype(np.int64) << 32) | session_hash[has]
    _, inverse = np.unique(key, return_inverse=True)
    sessions[has] = inverse
    offset = int(inverse.max()) + 1 if len(inverse) else 0
    if np.any(~has):
        sessions[~has] = sessions_by_inactivity(user[~has], ts[~has]) + offset
    return sessions


def interactions_from_columns(columns: EventColumns, item_ids: np.ndarray) -> tuple[Interactions, np.ndarray]:
    """Interactions over the items ``item_ids`` (sorted product ids), ordered by (ts, event
    id), and the shopper id of each user index. Events of products not in ``item_ids`` are
    dropped (a product deleted or moved since)."""
    order = np.lexsort((columns.event_id, columns.ts))
    product = columns.product_id[order]
    position = np.searchsorted(item_ids, product)
    known = position < len(item_ids)
    known[known] = item_ids[position[known]] == product[known]
    if not known.all():
        logger.warning("dataset: dropped %d events of products not in the vocabulary", int((~known).sum()))
        order, position = order[known], position[known]
    shopper_ids, user = np.unique(columns.shopper_id[order], return_inverse=True)
    ts = columns.ts[order]
    interactions = Interactions(
        user=user,
        item=position,
        event_type=columns.event_type[order],
        weight=np.minimum(columns.quantity[order], QUANTITY_CAP).astype(np.float32),
        ts=ts,
        session=dense_sessions(user, ts, columns.session_hash[order]),
        n_users=len(shopper_ids),
        n_items=len(item_ids),
    )
    return interactions, shopper_ids.astype(np.int64)


def item_features(shop_id: int) -> tuple[np.ndarray, ItemFeatures, Vocabulary]:
    """(sorted product ids, their features, the category vocabulary) of the shop.

    Text embeddings are the stored ProductEmbedding vectors of the current model; a
    product not embedded yet gets a zero row. None when no product is embedded.
    """
    rows = list(Product.objects.filter(shop_id=shop_id).order_by("id").values_list("id", "category_id", "created_at"))
    product_ids = np.array([row[0] for row in rows], dtype=np.int64)
    category_ids = np.array(sorted(Category.objects.filter(shop_id=shop_id).values_list("id", flat=True)), np.int64)
    categories = Vocabulary(str(category_id) for category_id in category_ids)
    raw_category = np.array([row[1] if row[1] is not None else -1 for row in rows], dtype=np.int64)
    category = np.full(len(rows), -1, dtype=np.int32)
    has_category = raw_category >= 0
    category[has_category] = np.searchsorted(category_ids, raw_category[has_category])
    created_ts = np.array([int(row[2].timestamp()) for row in rows], dtype=np.int64)
    text = _text_embeddings(shop_id, product_ids)
    return product_ids, ItemFeatures(category=category, created_ts=created_ts, text_embeddings=text), categories


def _text_embeddings(shop_id: int, product_ids: np.ndarray) -> np.ndarray | None:
    vectors = (
        ProductEmbedding.objects.filter(shop_id=shop_id, model_name=embedding.MODEL_NAME)
        .values_list("product_id", "vector")
        .iterator(chunk_size=5000)
    )
    matrix: np.ndarray | None = None
    for product_id, vector in vectors:
        position = int(np.searchsorted(product_ids, product_id))
        if position >= len(product_ids) or product_ids[position] != product_id:
            continue
        if matrix is None:
            matrix = np.zeros((len(product_ids), embedding.DIMENSIONS), dtype=np.float32)
        matrix[position] = embedding.vector_from_bytes(bytes(vector))
    return matrix


def dataset_build(*, shop: Shop) -> ShopDataset:
    """The shop's dataset now: every product, every counted event on a known product."""
    product_ids, features, categories = item_features(shop.pk)
    columns = read_event_columns(shop.pk, counted_event_types(shop))
    interactions, shopper_ids = interactions_from_columns(columns, product_ids)
    return ShopDataset(
        shop_id=shop.pk,
        interactions=interactions,
        features=features,
        items=Vocabulary(str(product_id) for product_id in product_ids),
        categories=categories,
        shopper_ids=shopper_ids,
    )
