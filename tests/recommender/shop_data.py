"""A small shop with a history that has structure: shoppers keep to a few categories,
sessions browse within one, some browsing ends in a purchase; product text embeddings
cluster by category. Written with bulk inserts, so a few thousand events take well
under a second."""

import datetime as dt
from dataclasses import dataclass

import numpy as np

from catalog import embedding
from catalog.models import Category, Event, Product, ProductEmbedding, Shop, Shopper

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class ShopHistory:
    categories: list[Category]
    products: list[Product]
    shoppers: list[Shopper]
    events: int


def unit_vectors(rng: np.random.Generator, centres: np.ndarray, labels: np.ndarray, noise: float) -> np.ndarray:
    vectors = centres[labels] + noise * rng.standard_normal((len(labels), centres.shape[1]))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def build_shop_history(
    shop: Shop,
    *,
    n_categories: int = 4,
    n_products: int = 40,
    n_shoppers: int = 60,
    sessions_per_shopper: int = 4,
    events_per_session: int = 6,
    days: int = 30,
    with_embeddings: bool = True,
    seed: int = 7,
) -> ShopHistory:
    rng = np.random.default_rng(seed)
    categories = Category.objects.bulk_create(
        Category(shop=shop, name=f"Category {c}", path=f"Category {c}") for c in range(n_categories)
    )
    product_category = np.arange(n_products) % n_categories
    products = Product.objects.bulk_create(
        Product(shop=shop, sku=f"P{p:04d}", title=f"Product {p}", category=categories[int(product_category[p])])
        for p in range(n_products)
    )
    shoppers = Shopper.objects.bulk_create(Shopper(shop=shop, key_hash=f"{s:064x}") for s in range(n_shoppers))
    events = []
    for s, shopper in enumerate(shoppers):
        favourite = s % n_categories
        for session in range(sessions_per_shopper):
            start = START + dt.timedelta(seconds=int(rng.integers(0, days * 86400)))
            category = favourite if rng.random() < 0.8 else int(rng.integers(n_categories))
            pool = np.flatnonzero(product_category == category)
            for e in range(events_per_session):
                product = products[int(rng.choice(pool))]
                kind = "purchase" if e == events_per_session - 1 and rng.random() < 0.3 else "view"
                events.append(
                    Event(
                        shop=shop,
                        event_id=f"e-{s}-{session}-{e}",
                        type=kind,
                        shopper=shopper,
                        product=product,
                        sku=product.sku,
                        session=f"s-{s}-{session}",
                        ts=start + dt.timedelta(seconds=60 * e),
                    )
                )
    Event.objects.bulk_create(events, batch_size=2000)
    if with_embeddings:
        centres = rng.standard_normal((n_categories, embedding.DIMENSIONS))
        vectors = unit_vectors(rng, centres, product_category, noise=0.3)
        ProductEmbedding.objects.bulk_create(
            ProductEmbedding(
                product=product,
                shop=shop,
                model_name=embedding.MODEL_NAME,
                text_hash=f"{index:064x}",
                vector=embedding.vector_to_bytes(vectors[index]),
            )
            for index, product in enumerate(products)
        )
    return ShopHistory(categories=categories, products=products, shoppers=shoppers, events=len(events))
