"""Top-k selection with one deterministic order: score descending, then item index ascending."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True, eq=False)
class Ranking:
    """Items (int32) best first, with their scores (float32)."""

    items: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def top_k(scores: np.ndarray, k: int, *, exclude: np.ndarray | None = None) -> Ranking:
    """The ``k`` best items of a score array, skipping ``-inf`` (no opinion), NaN and the
    item indices in ``exclude``. Ties go to the lower item index."""
    scores = np.asarray(scores, dtype=np.float32)
    candidates = np.isfinite(scores)
    if exclude is not None and len(exclude):
        excluded = np.asarray(exclude, dtype=np.int64)
        candidates[excluded[(excluded >= 0) & (excluded < len(scores))]] = False
    items = np.flatnonzero(candidates)
    values = scores[items]
    if k < len(items):
        # Keep every item tied with the k-th score so the tie-break below sees all of them.
        kth = np.partition(values, len(values) - k)[len(values) - k]
        keep = values >= kth
        items, values = items[keep], values[keep]
    order = np.lexsort((items, -values))[:k]
    return Ranking(items=items[order].astype(np.int32), scores=values[order])


def rank_all(scores: np.ndarray) -> np.ndarray:
    """All item indices in ranking order (score descending, index ascending)."""
    scores = np.asarray(scores)
    return np.lexsort((np.arange(len(scores)), -scores))


def top_k_per_row(matrix: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row, vectorised; ties go to the lower column.

    Explicit zeros and non-finite values are dropped first. Within each row of the result
    the entries are stored best first, so ``indices[indptr[r]:indptr[r + 1]]`` is row r's
    ranked list. Values closer than about 1e-10 of their row's range count as ties.
    """
    matrix = sp.csr_matrix(matrix, copy=True)
    matrix.sum_duplicates()  # also sorts each row's columns, which the stable sort keeps for ties
    matrix.data[~np.isfinite(matrix.data)] = 0
    matrix.eliminate_zeros()
    n_rows = matrix.shape[0]
    lengths = np.diff(matrix.indptr)
    rows = np.repeat(np.arange(n_rows), lengths)
    data = matrix.data.astype(np.float64)
    # One stable sort of a float key instead of a lexsort (several times faster on tens
    # of millions of pairs): the integer part is the row, the fraction the entry's place
    # in its row's range of values, 0 for the row's best.
    nonempty = lengths > 0
    high = np.zeros(n_rows)
    low = np.zeros(n_rows)
    if len(data):
        high[nonempty] = np.maximum.reduceat(data, matrix.indptr[:-1][nonempty])
        low[nonempty] = np.minimum.reduceat(data, matrix.indptr[:-1][nonempty])
    spread = np.maximum(high - low, np.finfo(np.float64).tiny)
    order = np.argsort(rows + 0.5 * (high[rows] - data) / spread[rows], kind="stable")
    rank_in_row = np.arange(len(rows)) - matrix.indptr[rows]
    keep = order[rank_in_row < k]
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.minimum(lengths, k), out=indptr[1:])
    return sp.csr_matrix((matrix.data[keep], matrix.indices[keep], indptr), shape=matrix.shape)
