"""factory_boy factories for the catalog, and helpers to mint keys."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import factory

from catalog.api_keys import api_key_create
from catalog.audit import Actor
from catalog.models import Category, Event, Product, Rejection, Shop, Shopper


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop

    name = factory.Sequence(lambda n: f"Shop {n}")
    slug = factory.Sequence(lambda n: f"shop-{n}")
    timezone = "Europe/Berlin"
    currency = "EUR"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Category {n}")
    path = factory.LazyAttribute(lambda c: c.name)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    shop = factory.SubFactory(ShopFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n}")
    title = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    url = factory.LazyAttribute(lambda p: f"https://shop.example/p/{p.sku}")
    image_url = factory.LazyAttribute(lambda p: f"https://shop.example/img/{p.sku}.jpg")


class ShopperFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shopper

    shop = factory.SubFactory(ShopFactory)
    key_hash = factory.Sequence(lambda n: f"{n:064x}")


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    shop = factory.SubFactory(ShopFactory)
    event_id = factory.Sequence(lambda n: f"ev-{n}")
    type = "view"
    shopper = factory.SubFactory(ShopperFactory, shop=factory.SelfAttribute("..shop"))
    product = factory.SubFactory(ProductFactory, shop=factory.SelfAttribute("..shop"))
    sku = factory.LazyAttribute(lambda e: e.product.sku if e.product else "UNKNOWN")
    ts = factory.Faker("date_time_this_year", tzinfo=__import__("datetime").UTC)


def make_key(shop: Shop, kind: str, **kwargs: Any) -> str:
    return api_key_create(shop=shop, kind=kind, actor=Actor.system("tests"), **kwargs).raw


# --- campaigns ------------------------------------------------------------------------
# Models by label, so this block needs no import of its own (other blocks append too).
# These write rows directly; tests of behaviour that needs the campaigns version to move
# or an audit entry go through campaigns.services instead.


class StrategyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Strategy"

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Strategy {n}")
    config = factory.LazyFunction(lambda: {"sources": {"personal": 1.0, "trending": 0.5}, "size": 10})


class PlacementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Placement"

    shop = factory.SubFactory(ShopFactory)
    slug = factory.Sequence(lambda n: f"placement-{n}")
    name = factory.LazyAttribute(lambda p: p.slug.title())
    kind = "home"
    default_strategy = factory.SubFactory(StrategyFactory, shop=factory.SelfAttribute("..shop"))


class PromotionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.Promotion"

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Promotion {n}")
    target = factory.LazyFunction(lambda: {"skus": ["SKU-1"]})
    action = "boost"
    factor = 2.0
    status = "draft"


class SeasonalBoostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "campaigns.SeasonalBoost"

    shop = factory.SubFactory(ShopFactory)
    name = factory.Sequence(lambda n: f"Season {n}")
    categories = factory.LazyFunction(lambda: ["Gifts"])
    factor = 1.5
    recurrence = "yearly"
    yearly_from = "11-20"
    yearly_until = "12-24"


class RejectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rejection

    shop = factory.SubFactory(ShopFactory)
    kind = Rejection.Kind.EVENT
    source = Rejection.Source.API
    payload = '{"event_id": "e-1"}'
    reasons = factory.LazyFunction(lambda: [{"field": "type", "reason": "is required"}])
    record_id = "e-1"


def event_payload(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """One event as the API takes it: valid, five minutes old, for shopper s-1 and SKU-A."""
    body: dict[str, Any] = {
        "event_id": f"e-{n}",
        "type": "view",
        "shopper": "s-1",
        "sku": "SKU-A",
        "ts": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    body.update(overrides)
    return body


def product_payload(sku: str = "SKU-A", **overrides: Any) -> dict[str, Any]:
    """One product as the API takes it."""
    body: dict[str, Any] = {"sku": sku, "title": f"Product {sku}", "price": "12.50", "category": "Home > Kitchen"}
    body.update(overrides)
    return body
