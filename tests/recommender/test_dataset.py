"""Building a shop's training arrays from its events (SQLite: fetchmany; Postgres: binary COPY)."""

import datetime as dt

import numpy as np
import pytest

from catalog import embedding
from catalog.models import Category, Event, Product, ProductEmbedding
from recommender.algorithms.data import ADD_TO_CART, CLICK, PURCHASE, VIEW
from recommender.dataset import dataset_build, dense_sessions
from tests.factories import ProductFactory, ShopFactory, ShopperFactory

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
T0_S = int(T0.timestamp())


def _event(shop, event_id, kind, shopper, product, seconds, session="", quantity=1):
    return Event.objects.create(
        shop=shop,
        event_id=event_id,
        type=kind,
        shopper=shopper,
        product=product,
        sku=product.sku if product else "GONE",
        session=session,
        ts=T0 + dt.timedelta(seconds=seconds),
        quantity=quantity,
    )


@pytest.fixture
def tiny_shop(db):
    """Given 3 products (two categorised, two embedded), 2 shoppers and 8 events, of
    which 5 count: one impression, one unknown product and another shop's event do not."""
    shop = ShopFactory()
    shoes = Category.objects.create(shop=shop, name="Shoes", path="Shoes")
    hats = Category.objects.create(shop=shop, name="Hats", path="Hats")
    p1 = ProductFactory(shop=shop, category=shoes)
    p2 = ProductFactory(shop=shop, category=None)
    p3 = ProductFactory(shop=shop, category=hats)
    Product.objects.filter(pk=p1.pk).update(created_at=T0 - dt.timedelta(days=3))
    Product.objects.filter(pk=p2.pk).update(created_at=T0 - dt.timedelta(days=2))
    Product.objects.filter(pk=p3.pk).update(created_at=T0 - dt.timedelta(days=1))
    for product, value in ((p1, 1.0), (p3, -1.0)):
        vector = np.zeros(embedding.DIMENSIONS, dtype=np.float32)
        vector[0] = value
        ProductEmbedding.objects.create(
            product=product,
            shop=shop,
            model_name=embedding.MODEL_NAME,
            text_hash="x",
            vector=embedding.vector_to_bytes(vector),
        )
    s1 = ShopperFactory(shop=shop)
    s2 = ShopperFactory(shop=shop)
    _event(shop, "e1", "view", s1, p2, 10, session="a")
    _event(shop, "e2", "purchase", s1, p1, 20, session="a", quantity=7)
    _event(shop, "e3", "click", s2, p3, 5)
    _event(shop, "e4", "impression", s2, p1, 6)
    _event(shop, "e5", "view", s2, None, 7)
    _event(shop, "e6", "add_to_cart", s2, p3, 5 + 3600)
    _event(shop, "e7", "view", s1, p3, 10, session="b")
    other = ShopFactory()
    _event(other, "x1", "view", ShopperFactory(shop=other), ProductFactory(shop=other), 1)
    return shop, (p1, p2, p3), (s1, s2)


def test_dataset_arrays_are_exact(tiny_shop):
    shop, (p1, p2, p3), (s1, s2) = tiny_shop

    data = dataset_build(shop=shop)

    events = data.interactions
    # Ordered by time, then event id (e1 before e7 at the same second).
    assert events.user.tolist() == [1, 0, 0, 0, 1]
    assert events.item.tolist() == [2, 1, 2, 0, 2]
    assert events.event_type.tolist() == [CLICK, VIEW, VIEW, PURCHASE, ADD_TO_CART]
    assert events.weight.tolist() == [1.0, 1.0, 1.0, 5.0, 1.0]  # quantity 7 capped at 5
    assert events.ts.tolist() == [T0_S + 5, T0_S + 10, T0_S + 10, T0_S + 20, T0_S + 3605]
    # Sessions the shop named are (shopper, id) pairs; unnamed ones are cut by an hour's gap.
    session = events.session.tolist()
    assert session[1] == session[3] and session[2] != session[1]
    assert {session[1], session[2]} == {0, 1}
    assert (session[0], session[4]) == (2, 3)
    assert (events.n_users, events.n_items) == (2, 3)
    assert data.items.all_ids == (str(p1.pk), str(p2.pk), str(p3.pk))
    assert data.shopper_ids.tolist() == [s1.pk, s2.pk]
    assert [data.categories.id(i) for i in data.features.category if i >= 0] == [
        str(p1.category_id),
        str(p3.category_id),
    ]
    assert data.features.category.tolist() == [0, -1, 1]
    assert data.features.created_ts.tolist() == [T0_S - 3 * 86400, T0_S - 2 * 86400, T0_S - 86400]
    text = data.features.text_embeddings
    assert text.shape == (3, embedding.DIMENSIONS)
    assert (text[0, 0], text[2, 0]) == (1.0, -1.0)
    assert not text[1].any()
    assert (data.event_count, data.shopper_count, data.item_count) == (5, 2, 3)
    assert (data.data_from, data.data_to) == (T0 + dt.timedelta(seconds=5), T0 + dt.timedelta(seconds=3605))


def test_event_types_the_shop_weights_zero_are_left_out(tiny_shop):
    shop, _, _ = tiny_shop
    shop.event_weights = {**shop.event_weights, "view": 0.0}
    shop.save()

    data = dataset_build(shop=shop)

    assert data.interactions.event_type.tolist() == [CLICK, PURCHASE, ADD_TO_CART]


def test_a_shop_without_events_or_embeddings_has_empty_arrays(db):
    shop = ShopFactory()
    ProductFactory(shop=shop)

    data = dataset_build(shop=shop)

    assert (len(data.interactions), data.interactions.n_items, data.interactions.n_users) == (0, 1, 0)
    assert data.features.text_embeddings is None
    assert data.data_from is None


def test_dense_sessions_number_named_sessions_first_then_inactivity_sessions():
    user = np.array([0, 0, 1, 1, 1])
    ts = np.array([0, 10, 0, 100, 5000])
    session_hash = np.array([7, 7, -1, -1, -1])

    assert dense_sessions(user, ts, session_hash).tolist() == [0, 0, 1, 1, 2]
