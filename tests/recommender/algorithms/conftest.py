"""Tiny data sets whose right answers are known by construction."""

import numpy as np
import pytest

from recommender.algorithms.data import PURCHASE, VIEW, Interactions, ItemFeatures

DAY = 86_400
START = 1_700_000_000
GROUP_A = (0, 1, 2, 3)
GROUP_B = (4, 5, 6, 7)
COLD_TWIN_OF_3 = 8  # no events; its text is almost item 3's
NO_TEXT = 9  # no events, no text
N_ITEMS = 10
USERS_PER_GROUP = 6


def checkerboard() -> Interactions:
    """Shoppers 0-5 go through items 0, 1, 2, 3 in that order, shoppers 6-11 through 4,
    5, 6, 7; one session each, one minute apart, the first two events views and the last
    two purchases. A new shopper who had 0, 1, 2 must be offered 3 first (and 7 after 4,
    5, 6)."""
    user, item, event_type, ts, session = [], [], [], [], []
    for group_index, group in enumerate((GROUP_A, GROUP_B)):
        for member in range(USERS_PER_GROUP):
            shopper = group_index * USERS_PER_GROUP + member
            for position, product in enumerate(group):
                user.append(shopper)
                item.append(product)
                event_type.append(VIEW if position < 2 else PURCHASE)
                ts.append(START + shopper * DAY + position * 60)
                session.append(shopper)
    return Interactions(
        user=np.array(user),
        item=np.array(item),
        event_type=np.array(event_type),
        weight=np.ones(len(user)),
        ts=np.array(ts),
        session=np.array(session),
        n_users=2 * USERS_PER_GROUP,
        n_items=N_ITEMS,
    )


def checkerboard_features() -> ItemFeatures:
    """Text embeddings (12-d, L2-normalised): a group direction plus an own direction per
    item; item 8 is item 3 plus a little noise (its text twin); item 9 has no text. Items
    0-3 are in category 0, 4-7 in category 1."""
    embeddings = np.zeros((N_ITEMS, 12), dtype=np.float32)
    for product in range(8):
        embeddings[product, 0 if product in GROUP_A else 1] = 1.0
        embeddings[product, 2 + product] = 0.5
    embeddings[COLD_TWIN_OF_3] = embeddings[3]
    embeddings[COLD_TWIN_OF_3, 10] = 0.05
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    embeddings = np.divide(embeddings, norms, out=np.zeros_like(embeddings), where=norms > 0)
    category = np.array([0, 0, 0, 0, 1, 1, 1, 1, 0, -1])
    return ItemFeatures(category=category, created_ts=np.full(N_ITEMS, START), text_embeddings=embeddings)


@pytest.fixture(scope="session")
def tiny_interactions() -> Interactions:
    return checkerboard()


@pytest.fixture(scope="session")
def tiny_features() -> ItemFeatures:
    return checkerboard_features()
