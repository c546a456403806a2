"""The demo's synthetic shop (catalog.demo) at scale, as the arrays a training run builds.

catalog.demo draws the products and events of ``load_demo --synthetic`` as import
tables (power-law popularity, sessions that keep mostly to one category, a shop's
funnel of event types). Here they become what ``recommender.dataset`` would read from
the database: dense item indices in SKU order, shoppers by id, event type codes,
unix seconds, sessions, quantities (capped as the dataset caps them); impressions
are left out, as the dataset leaves out every event type of weight 0.

Text embeddings are not computed (100k products take the encoder about an hour on
two cores): each product gets a unit vector near its category's, which gives the text
models the same shapes and the same kind of structure to learn from.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recommender.algorithms.data import EVENT_TYPES, Interactions, ItemFeatures
from recommender.dataset import QUANTITY_CAP

# Fixed, so the same arguments give the same events (catalog.demo ends them at ``now``).
NOW = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass(frozen=True, eq=False)
class SyntheticShop:
    interactions: Interactions
    features: ItemFeatures
    products: pa.Table  # catalog.demo's product table (titles, descriptions, ... for the embedding benchmark)


def _trailing_int(column: pa.ChunkedArray, prefix: str) -> np.ndarray:
    """The integer after ``prefix`` in every value (ids such as ``syn-shopper-42``)."""
    return pc.cast(pc.utf8_slice_codeunits(column, len(prefix)), pa.int64()).to_numpy()


def demo_synthetic_shop(
    *, n_items: int = 100_000, n_events: int = 5_000_000, seed: int = 7, embedding_dimensions: int = 384
) -> SyntheticShop:
    from catalog.demo import synthetic_catalog, synthetic_events

    catalog = synthetic_catalog(n_items, seed=seed)
    table = synthetic_events(catalog, n_events, seed=seed, now=NOW)
    table = table.filter(pc.not_equal(table.column("type"), "impression"))
    item = _trailing_int(table.column("sku"), "SYN-") - 1
    event_type = pc.index_in(table.column("type"), value_set=pa.array(EVENT_TYPES)).to_numpy()
    shopper = _trailing_int(table.column("shopper"), "syn-shopper-")
    shopper_ids, user = np.unique(shopper, return_inverse=True)
    session = _trailing_int(table.column("session"), f"syn-{seed}-s")
    ts = pc.cast(pc.strptime(table.column("ts"), format="%Y-%m-%dT%H:%M:%SZ", unit="s"), pa.int64()).to_numpy()
    raw_quantity = table.column("quantity").to_numpy(zero_copy_only=False)
    quantity = np.ones(len(raw_quantity), dtype=np.float32)
    given = raw_quantity != ""
    quantity[given] = np.minimum(raw_quantity[given].astype(np.int64), QUANTITY_CAP)
    del table

    rng = np.random.default_rng(seed)
    category = catalog.category_of.astype(np.int64)
    centres = rng.standard_normal((int(category.max()) + 1, embedding_dimensions)).astype(np.float32)
    text = centres[category] + 0.7 * rng.standard_normal((n_items, embedding_dimensions), dtype=np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    interactions = Interactions(
        user=user,
        item=item,
        event_type=event_type,
        weight=quantity,
        ts=ts,
        session=np.unique(session, return_inverse=True)[1],
        n_users=len(shopper_ids),
        n_items=n_items,
    )
    features = ItemFeatures(
        category=category,
        created_ts=np.full(n_items, int(NOW.timestamp()) - 365 * 86_400),
        text_embeddings=text,
    )
    return SyntheticShop(interactions=interactions.sorted_by_time(), features=features, products=catalog.products)
