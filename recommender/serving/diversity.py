"""Step 7 of the request path: diversity, around the items a promotion pinned.

- ``mmr_order``: maximal marginal relevance, ``(1 - lambda) * relevance - lambda *
  max similarity to what is already chosen``; similarity is the cosine of the items'
  vectors (text embeddings when the shop has them, else collaborative vectors), or 1 for
  two items of the same category and 0 otherwise when neither is known.
- ``CategoryCap``: at most ``max_per_category`` items of one category (products
  without a category are not capped).
- ``arrange``: the final list, pinned items at their slots and the others in order
  around them (a pin beyond the list's end comes right after its last item).

Pure functions over the request's objects: thread-safe.
"""

from collections.abc import Callable

import numpy as np

from campaigns.candidates import Candidate


class CategoryCap:
    def __init__(self, cap: int | None, category_of: np.ndarray) -> None:
        self._cap = cap
        self._category_of = category_of
        self._counts: dict[int, int] = {}

    def count(self, index: int) -> None:
        category = int(self._category_of[index])
        if category:
            self._counts[category] = self._counts.get(category, 0) + 1

    def admit(self, index: int) -> bool:
        """Whether one more item of this product's category fits; counts it if so."""
        if self._cap is None:
            return True
        category = int(self._category_of[index])
        if category and self._counts.get(category, 0) >= self._cap:
            return False
        self.count(index)
        return True


def prefix_filling(items: np.ndarray, category_of: np.ndarray, cap: int | None, size: int) -> int:
    """The length of the shortest prefix of ``items`` (ranked snapshot indices) holding
    ``size`` items that a fresh CategoryCap admits in order (all of them when it never
    does): what the cap reads to fill a list of ``size``."""
    admit = CategoryCap(cap, category_of)
    taken = 0
    for position, index in enumerate(items.tolist(), start=1):
        taken += admit.admit(index)
        if taken == size:
            return position
    return len(items)


def mmr_order(
    candidates: list[Candidate],
    lam: float,
    vectors_of: Callable[[np.ndarray], np.ndarray | None],
    category_of: np.ndarray,
    limit: int,
) -> list[Candidate]:
    """The first ``limit`` candidates in MMR order, then the rest in their order.

    ``vectors_of(indices)`` returns normalised vectors for the snapshot indices (rows of
    zeros where unknown), or None when there are none."""
    if lam <= 0 or len(candidates) < 2:
        return candidates
    indices = np.array([c.index for c in candidates], dtype=np.int64)
    relevance = np.array([c.score for c in candidates], dtype=np.float64)
    top = relevance.max()
    relevance = relevance / top if top > 0 else relevance
    categories = category_of[indices]
    similarity = (categories[:, None] == categories[None, :]) & (categories[:, None] != 0)
    vectors = vectors_of(indices)
    sim = similarity.astype(np.float64)
    if vectors is not None:
        known = np.any(vectors != 0, axis=1)
        cosine = vectors @ vectors.T
        both = known[:, None] & known[None, :]
        sim = np.where(both, cosine, sim)
    chosen: list[int] = []
    remaining = list(range(len(candidates)))
    best_sim = np.full(len(candidates), -np.inf)
    while remaining and len(chosen) < limit:
        values = (1 - lam) * relevance[remaining] - lam * np.where(
            np.isfinite(best_sim[remaining]), best_sim[remaining], 0.0
        )
        pick = remaining[int(np.argmax(values))]
        chosen.append(pick)
        remaining.remove(pick)
        best_sim = np.maximum(best_sim, sim[pick])
    return [candidates[i] for i in chosen] + [candidates[i] for i in remaining]


def arrange(pinned: dict[int, Candidate], others: list[Candidate], size: int) -> list[Candidate]:
    """Pinned items at their slots (1-based), the others filling the free slots in order."""
    result: list[Candidate] = []
    rest = iter(others)
    while len(result) < size:
        slot = len(result) + 1
        if slot in pinned:
            result.append(pinned[slot])
            continue
        following = next(rest, None)
        if following is None:
            break
        result.append(following)
    placed = {id(c) for c in result}
    for slot in sorted(pinned):
        if id(pinned[slot]) not in placed and len(result) < size:
            result.append(pinned[slot])
    return result
