"""Reads of the demo storefront. It stands in for a shop's own product pages, so it
reads the shop's catalog straight from recsite's database (a real shop has its own);
every read takes the shop."""

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet

from catalog.models import Category, Event, Product, Shop

PRODUCTS_PER_PAGE = 24


@dataclass(frozen=True)
class CategoryLink:
    id: int
    name: str
    path: str
    products: int


def _active(shop: Shop) -> QuerySet[Product]:
    return Product.objects.filter(shop=shop, active=True)


def top_categories(shop: Shop, limit: int = 30) -> list[CategoryLink]:
    """Categories that hold active products, the fullest first (at most ``limit``)."""
    rows = (
        Category.objects.filter(shop=shop)
        .annotate(products_count=Count("products", filter=Q(products__active=True)))
        .filter(products_count__gt=0)
        .order_by("-products_count", "path")[:limit]
    )
    return [CategoryLink(id=c.pk, name=c.name, path=c.path, products=c.products_count) for c in rows]


def category_by_id(shop: Shop, category_id: int) -> Category | None:
    return Category.objects.filter(shop=shop, pk=category_id).first()


def category_products(shop: Shop, category: Category, page_number: str | int | None) -> Page:
    """Active products of the category and of the categories below it, by title."""
    below = category.path + Category.PATH_SEPARATOR
    products = _active(shop).filter(Q(category=category) | Q(category__path__startswith=below)).order_by("title", "sku")
    return Paginator(products, PRODUCTS_PER_PAGE).get_page(page_number)


def newest_products(shop: Shop, limit: int = 12) -> list[Product]:
    return list(_active(shop).order_by("-created_at", "-id")[:limit])


def product_by_sku(shop: Shop, sku: str) -> Product | None:
    return _active(shop).filter(sku=sku).select_related("category").first()


def recent_events(shop: Shop, limit: int = 25) -> list[Event]:
    """The events recsite stored for the shop most recently (for the event log page)."""
    return list(Event.objects.filter(shop=shop).order_by("-received_at", "-id")[:limit])
