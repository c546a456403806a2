"""An in-memory, read-only picture of one shop's catalog, for the request path.

Serving and the rules engine read products from a ``CatalogSnapshot`` instead of the
database: a product is a dense index ``0..n-1`` into column arrays. A snapshot is
never changed in place; ``snapshot_refresh`` returns a new one with the products
written since, so a request holding the old one keeps a consistent view while the
process swaps in the new one.
"""

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from catalog.models import Category, Product, Shop

# A product written by a transaction that committed late can carry an updated_at a
# little older than the newest one already seen; refreshes look back this far.
REFRESH_OVERLAP = timedelta(seconds=60)

_COLUMNS = (
    "id",
    "sku",
    "title",
    "url",
    "image_url",
    "price",
    "brand",
    "category_id",
    "tags",
    "attributes",
    "in_stock",
    "active",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class CategoryTree:
    """The shop's categories: id -> parent id and path, with descendant look-up."""

    parent: dict[int, int | None] = field(default_factory=dict)
    path: dict[int, str] = field(default_factory=dict)

    def descendants(self, category_id: int) -> set[int]:
        """``category_id`` and every category below it."""
        children: dict[int, list[int]] = {}
        for child, parent in self.parent.items():
            if parent is not None:
                children.setdefault(parent, []).append(child)
        found, stack = set(), [category_id]
        while stack:
            current = stack.pop()
            if current in found:
                continue
            found.add(current)
            stack.extend(children.get(current, ()))
        return found

    def ancestors(self, category_id: int) -> list[int]:
        """``category_id`` and its parents up to the root, nearest first."""
        chain: list[int] = []
        current: int | None = category_id
        while current is not None and current not in chain:
            chain.append(current)
            current = self.parent.get(current)
        return chain


@dataclass(frozen=True)
class CatalogSnapshot:
    shop_id: int
    version: int  # Shop.catalog_version when this snapshot was read
    loaded_through: datetime | None  # newest updated_at included
    product_ids: np.ndarray  # int64
    skus: list[str]
    titles: list[str]
    urls: list[str]
    image_urls: list[str]
    prices: np.ndarray  # float64
    brands: list[str]
    category_ids: np.ndarray  # int64, 0 = none
    tags: list[tuple[str, ...]]
    attributes: list[dict[str, Any]]
    in_stock: np.ndarray  # bool
    active: np.ndarray  # bool
    created_ts: np.ndarray  # float64, Unix seconds
    categories: CategoryTree
    index_by_sku: dict[str, int]
    index_by_product_id: dict[int, int]

    def __len__(self) -> int:
        return len(self.skus)

    @property
    def recommendable(self) -> np.ndarray:
        """Products that may be shown: active and in stock."""
        return self.active & self.in_stock

    def indices_of_skus(self, skus: Iterable[str]) -> list[int]:
        """Indices of the known SKUs, in order; unknown ones are skipped."""
        return [i for i in (self.index_by_sku.get(s) for s in skus) if i is not None]

    def indices_of_product_ids(self, product_ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Index per product id, -1 where the product is not in the snapshot (vectorised:
        a binary search in the ids sorted once per snapshot)."""
        ids = np.asarray(product_ids if isinstance(product_ids, np.ndarray) else list(product_ids), dtype=np.int64)
        sorted_ids, order = self._sorted_product_ids
        if not len(sorted_ids) or not len(ids):
            return np.full(len(ids), -1, dtype=np.int64)
        position = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[position] == ids, order[position], -1)

    @functools.cached_property
    def _sorted_product_ids(self) -> tuple[np.ndarray, np.ndarray]:
        """(the product ids ascending, the index of each): computed on first use."""
        order = np.argsort(self.product_ids, kind="stable")
        return self.product_ids[order], order

    def category_path(self, index: int) -> str:
        return self.categories.path.get(int(self.category_ids[index]), "")


def _empty(shop_id: int, version: int) -> CatalogSnapshot:
    return CatalogSnapshot(
        shop_id=shop_id,
        version=version,
        loaded_through=None,
        product_ids=np.zeros(0, dtype=np.int64),
        skus=[],
        titles=[],
        urls=[],
        image_urls=[],
        prices=np.zeros(0, dtype=np.float64),
        brands=[],
        category_ids=np.zeros(0, dtype=np.int64),
        tags=[],
        attributes=[],
        in_stock=np.zeros(0, dtype=bool),
        active=np.zeros(0, dtype=bool),
        created_ts=np.zeros(0, dtype=np.float64),
        categories=CategoryTree(),
        index_by_sku={},
        index_by_product_id={},
    )


def _category_tree(shop_id: int) -> CategoryTree:
    rows = Category.objects.filter(shop_id=shop_id).values_list("id", "parent_id", "path")
    parent: dict[int, int | None] = {}
    path: dict[int, str] = {}
    for category_id, parent_id, category_path in rows:
        parent[category_id] = parent_id
        path[category_id] = category_path
    return CategoryTree(parent=parent, path=path)


def _apply(base: CatalogSnapshot, rows: Sequence[tuple[Any, ...]], version: int) -> CatalogSnapshot:
    """A new snapshot: ``base`` with ``rows`` (in _COLUMNS order) added or replaced."""
    skus = list(base.skus)
    titles = list(base.titles)
    urls = list(base.urls)
    image_urls = list(base.image_urls)
    brands = list(base.brands)
    tags = list(base.tags)
    attributes = list(base.attributes)
    index_by_sku = dict(base.index_by_sku)
    index_by_product_id = dict(base.index_by_product_id)
    new_ids = [row[0] for row in rows if row[0] not in index_by_product_id]
    size = len(skus) + len(new_ids)
    product_ids = np.concatenate([base.product_ids, np.array(new_ids, dtype=np.int64)])
    prices = np.resize(base.prices, size)
    category_ids = np.resize(base.category_ids, size)
    in_stock = np.resize(base.in_stock, size)
    active = np.resize(base.active, size)
    created_ts = np.resize(base.created_ts, size)
    loaded_through = base.loaded_through
    for (
        product_id,
        sku,
        title,
        url,
        image_url,
        price,
        brand,
        category_id,
        tag_list,
        attrs,
        stock,
        act,
        created,
        updated,
    ) in rows:
        index = index_by_product_id.get(product_id)
        if index is None:
            index = len(skus)
            index_by_product_id[product_id] = index
            for column in (skus, titles, urls, image_urls, brands, tags, attributes):
                column.append(None)  # type: ignore[arg-type]
        else:
            old_sku = skus[index]
            if old_sku != sku and index_by_sku.get(old_sku) == index:
                del index_by_sku[old_sku]
        skus[index] = sku
        index_by_sku[sku] = index
        titles[index] = title
        urls[index] = url
        image_urls[index] = image_url
        brands[index] = brand
        tags[index] = tuple(tag_list or ())
        attributes[index] = attrs or {}
        prices[index] = float(price)
        category_ids[index] = category_id or 0
        in_stock[index] = stock
        active[index] = act
        created_ts[index] = created.timestamp()
        if loaded_through is None or updated > loaded_through:
            loaded_through = updated
    return CatalogSnapshot(
        shop_id=base.shop_id,
        version=version,
        loaded_through=loaded_through,
        product_ids=product_ids,
        skus=skus,
        titles=titles,
        urls=urls,
        image_urls=image_urls,
        prices=prices,
        brands=brands,
        category_ids=category_ids,
        tags=tags,
        attributes=attributes,
        in_stock=in_stock,
        active=active,
        created_ts=created_ts,
        categories=_category_tree(base.shop_id),
        index_by_sku=index_by_sku,
        index_by_product_id=index_by_product_id,
    )


def shop_catalog_version(shop_id: int) -> int | None:
    """The shop's current catalog version: one indexed read, cheap enough to poll."""
    return Shop.objects.filter(pk=shop_id).values_list("catalog_version", flat=True).first()


def snapshot_load(shop_id: int) -> CatalogSnapshot:
    """Every product of the shop (active or not), ordered by id."""
    version = shop_catalog_version(shop_id) or 0
    rows = list(Product.objects.filter(shop_id=shop_id).order_by("id").values_list(*_COLUMNS))
    return _apply(_empty(shop_id, version), rows, version)


def snapshot_refresh(snapshot: CatalogSnapshot) -> CatalogSnapshot:
    """The snapshot with every product written since it was read (the same object if
    nothing changed). Reads only the recently updated rows."""
    version = shop_catalog_version(snapshot.shop_id)
    if version is None or version == snapshot.version:
        return snapshot
    if snapshot.loaded_through is None:
        return snapshot_load(snapshot.shop_id)
    rows = list(
        Product.objects.filter(shop_id=snapshot.shop_id, updated_at__gte=snapshot.loaded_through - REFRESH_OVERLAP)
        .order_by("id")
        .values_list(*_COLUMNS)
    )
    return _apply(snapshot, rows, version)
