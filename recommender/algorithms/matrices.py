"""Sparse group x item matrices (group = user or session) built from event arrays."""

import numpy as np
import scipy.sparse as sp


def group_item_matrix(
    group: np.ndarray,
    item: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    *,
    n_groups: int,
    n_items: int,
    max_items_per_group: int | None = None,
) -> sp.csr_matrix:
    """float32 CSR (n_groups x n_items): the summed ``values`` of each (group, item).

    With ``max_items_per_group``, only each group's most recently touched distinct items
    are kept, which bounds the pair products of co-occurrence counting per group.
    Pairs whose summed value is 0 are dropped.
    """
    if len(group) == 0:
        return sp.csr_matrix((n_groups, n_items), dtype=np.float32)
    key = np.asarray(group, dtype=np.int64) * n_items + np.asarray(item, dtype=np.int64)
    pairs, inverse = np.unique(key, return_inverse=True)
    summed = np.bincount(inverse, weights=values, minlength=len(pairs))
    pair_group, pair_item = pairs // n_items, pairs % n_items
    keep = summed != 0
    if max_items_per_group is not None:
        latest = np.full(len(pairs), np.iinfo(np.int64).min, dtype=np.int64)
        np.maximum.at(latest, inverse, np.asarray(ts, dtype=np.int64))
        order = np.lexsort((-latest, pair_group))
        group_starts = np.searchsorted(pair_group[order], pair_group[order], side="left")
        rank = np.empty(len(pairs), dtype=np.int64)
        rank[order] = np.arange(len(pairs)) - group_starts
        keep &= rank < max_items_per_group
    return sp.csr_matrix(
        (summed[keep].astype(np.float32), (pair_group[keep], pair_item[keep])), shape=(n_groups, n_items)
    )


def dense_ids(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Ids renumbered 0..n-1 (by sorted value) and n."""
    distinct, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64), len(distinct)
