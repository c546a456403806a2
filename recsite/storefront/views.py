"""Pages of the demo storefront. Each embeds the widget (loaded from the recsite API
origin) with the demo shop's publishable key; the cart lives in the browser
(static/storefront/shop.js), so no page posts anything back here."""

import json
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from catalog.models import Product, Shop
from catalog.selectors import shop_by_slug
from recsite.storefront import selectors
from recsite.storefront.config import (
    DEFAULT_API_ORIGIN,
    StorefrontConfig,
    StorefrontNotConfigured,
    keys_file,
    load_config,
)
from recsite.storefront.posters import poster_for

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥", "CHF": "CHF "}

View = Callable[..., HttpResponse]


def _setting(name: str, default: Any) -> Any:
    """A setting of recsite.storefront.settings (absent from recsite.settings)."""
    return getattr(settings, name, default)


def price_label(price: Decimal, currency: str) -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{symbol}{price:,.2f}" if symbol else f"{price:,.2f} {currency}"


def image_for(product: Product) -> str:
    """The product's own image when it is https (allowed by the page's img-src), else its
    generated poster from this storefront."""
    if product.image_url.startswith("https://"):
        return product.image_url
    return f"/img/{product.sku}.svg"


def storefront_page(view: View) -> View:
    """Loads the configuration and the shop; without them, a page that says how to set up."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            config = load_config(settings.VAR_DIR, _setting("STOREFRONT_API_ORIGIN", DEFAULT_API_ORIGIN))
        except StorefrontNotConfigured as problem:
            return _setup_page(request, problem.reason)
        shop = shop_by_slug(config.shop_slug)
        if shop is None:
            return _setup_page(request, f"There is no shop {config.shop_slug!r} in the database.")
        return view(request, *args, shop=shop, config=config, **kwargs)

    return wrapped


def _setup_page(request: HttpRequest, reason: str) -> HttpResponse:
    context = {"reason": reason, "keys_file": keys_file(settings.VAR_DIR)}
    return render(request, "storefront/setup.html", context, status=503)


def _page(
    request: HttpRequest, template: str, shop: Shop, config: StorefrontConfig, context: dict[str, Any]
) -> HttpResponse:
    base = {
        "shop": shop,
        "config": config,
        "widget_src": f"{config.api_origin}{settings.STATIC_URL}recsite/widget.js",
        "require_consent": bool(_setting("STOREFRONT_REQUIRE_CONSENT", False)),
        "categories": selectors.top_categories(shop, limit=8),
    }
    return render(request, template, {**base, **context})


def _cards(shop: Shop, products: Any) -> list[dict[str, Any]]:
    return [{"product": p, "image": image_for(p), "price": price_label(p.price, shop.currency)} for p in products]


@require_GET
@storefront_page
def home(request: HttpRequest, *, shop: Shop, config: StorefrontConfig) -> HttpResponse:
    return _page(
        request,
        "storefront/home.html",
        shop,
        config,
        {
            "newest": _cards(shop, selectors.newest_products(shop)),
            "all_categories": selectors.top_categories(shop),
        },
    )


@require_GET
@storefront_page
def category(request: HttpRequest, category_id: int, *, shop: Shop, config: StorefrontConfig) -> HttpResponse:
    found = selectors.category_by_id(shop, category_id)
    if found is None:
        raise Http404("No such category.")
    page = selectors.category_products(shop, found, request.GET.get("page"))
    cards = _cards(shop, page.object_list)
    return _page(
        request,
        "storefront/category.html",
        shop,
        config,
        {
            "category": found,
            "page": page,
            "cards": cards,
            # The category list is recommended in the context of what the page shows first.
            "context_items": json.dumps([card["product"].sku for card in cards[:3]]),
        },
    )


@require_GET
@storefront_page
def product(request: HttpRequest, sku: str, *, shop: Shop, config: StorefrontConfig) -> HttpResponse:
    found = selectors.product_by_sku(shop, sku)
    if found is None:
        raise Http404("No such product.")
    return _page(
        request,
        "storefront/product.html",
        shop,
        config,
        {"product": found, "image": image_for(found), "price": price_label(found.price, shop.currency)},
    )


@require_GET
@storefront_page
def cart(request: HttpRequest, *, shop: Shop, config: StorefrontConfig) -> HttpResponse:
    return _page(request, "storefront/cart.html", shop, config, {})


@require_GET
@storefront_page
def events(request: HttpRequest, *, shop: Shop, config: StorefrontConfig) -> HttpResponse:
    return _page(request, "storefront/events.html", shop, config, {"stored": selectors.recent_events(shop)})


@require_GET
@cache_control(public=True, max_age=3600)
@storefront_page
def poster(request: HttpRequest, sku: str, *, shop: Shop, config: StorefrontConfig) -> HttpResponse:
    found = selectors.product_by_sku(shop, sku)
    if found is None:
        raise Http404("No such product.")
    year = found.attributes.get("year") if isinstance(found.attributes, dict) else None
    poster = poster_for(found.sku, found.title, year)
    return render(request, "storefront/poster.svg", {"poster": poster}, content_type="image/svg+xml")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "storefront/404.html", {}, status=404)
