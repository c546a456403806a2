"""Catalog tasks: embedding new and changed products (queue ``embedding``)."""

import logging

from celery import shared_task
from celery.signals import worker_process_init
from django.conf import settings
from django.db import transaction
from django.db.models import F

from catalog import embedding
from catalog.models import Product, ProductEmbedding, Shop

logger = logging.getLogger(__name__)


@worker_process_init.connect
def _preload_embedding_model(**_: object) -> None:
    """Load the model when a worker process starts, so the first new product of the
    day is embedded in milliseconds rather than after a multi-second model load."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    embedding.load_model(settings.EMBEDDING_THREADS)


@shared_task(
    name="catalog.tasks.products_embed",
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    max_retries=5,
)
def products_embed(shop_id: int, product_ids: list[int]) -> int:
    """Embed these products' text. Idempotent (may be redelivered): a product whose
    text is unchanged since its last embedding is skipped. Returns how many were embedded."""
    return products_embed_now(shop_id=shop_id, product_ids=product_ids)


def products_embed_now(*, shop_id: int, product_ids: list[int]) -> int:
    products = list(Product.objects.filter(shop_id=shop_id, pk__in=product_ids).select_related("category", "embedding"))
    if not products:
        logger.info("products_embed: none of %d products of shop %s exist any more", len(product_ids), shop_id)
        return 0
    texts = {p.pk: _text_of(p) for p in products}
    hashes = {pk: embedding.text_hash(text) for pk, text in texts.items()}
    todo = [p for p in products if getattr(_embedding_of(p), "text_hash", None) != hashes[p.pk]]
    if not todo:
        return 0
    vectors = embedding.encode([texts[p.pk] for p in todo], threads=settings.EMBEDDING_THREADS)
    rows = [
        ProductEmbedding(
            product=p,
            shop_id=shop_id,
            model_name=embedding.MODEL_NAME,
            text_hash=hashes[p.pk],
            vector=embedding.vector_to_bytes(vector),
        )
        for p, vector in zip(todo, vectors, strict=True)
    ]
    with transaction.atomic():
        ProductEmbedding.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["product"],
            update_fields=["model_name", "text_hash", "vector", "updated_at"],
        )
        Shop.objects.filter(pk=shop_id).update(catalog_version=F("catalog_version") + 1)
    return len(rows)


def _embedding_of(product: Product) -> ProductEmbedding | None:
    try:
        return product.embedding
    except ProductEmbedding.DoesNotExist:
        return None


def _text_of(product: Product) -> str:
    return embedding.product_text(
        title=product.title,
        category=product.category.path if product.category else "",
        brand=product.brand,
        tags=product.tags,
        attributes=product.attributes,
        description=product.description,
    )
