"""Precomputed top-k neighbour lists per item, and the sparse product that builds them."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recommender.algorithms.ranking import Ranking, top_k_per_row

# Upper bound on the pair products one block of item rows may create (about 12 bytes
# each in scipy's result), so peak memory stays bounded whatever the catalog size.
MAX_PAIRS_PER_BLOCK = 20_000_000


@dataclass(frozen=True, eq=False)
class NeighbourLists:
    """Item ``i``'s neighbours are ``indices[indptr[i]:indptr[i+1]]`` with ``scores`` at
    the same positions, best first (int64 indptr, int32 indices, float32 scores)."""

    indptr: np.ndarray
    indices: np.ndarray
    scores: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.indptr) - 1

    @classmethod
    def from_csr(cls, matrix: sp.csr_matrix) -> "NeighbourLists":
        """From a CSR matrix whose rows are stored best first (see ``top_k_per_row``)."""
        return cls(
            indptr=np.asarray(matrix.indptr, dtype=np.int64),
            indices=np.asarray(matrix.indices, dtype=np.int32),
            scores=np.asarray(matrix.data, dtype=np.float32),
        )

    def of(self, item: int) -> Ranking:
        start, end = self.indptr[item], self.indptr[item + 1]
        return Ranking(items=self.indices[start:end], scores=self.scores[start:end])

    def aggregate(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """float32 ``sum_h weights[h] * score(items[h] -> j)`` for every item j, ``-inf``
        for items in no list of ``items``."""
        starts, ends = self.indptr[items], self.indptr[items + 1]
        lengths = ends - starts
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        neighbour = self.indices[positions]
        contribution = self.scores[positions] * np.repeat(weights, lengths)
        total = np.bincount(neighbour, weights=contribution, minlength=self.n_items)
        reached = np.bincount(neighbour, minlength=self.n_items) > 0
        return np.where(reached, total, -np.inf).astype(np.float32)

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}indptr": self.indptr, f"{prefix}indices": self.indices, f"{prefix}scores": self.scores}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> "NeighbourLists":
        return cls(
            indptr=arrays[f"{prefix}indptr"], indices=arrays[f"{prefix}indices"], scores=arrays[f"{prefix}scores"]
        )


def top_k_cooccurrence(
    source: sp.csr_matrix,
    target: sp.csr_matrix,
    *,
    k: int,
    source_norm: np.ndarray,
    target_norm: np.ndarray,
    min_count: int = 1,
) -> NeighbourLists:
    """Top-k lists of ``C = source.T @ target`` (groups x items each, e.g. sessions or
    users), scored ``C[i, j] / (source_norm[i] * target_norm[j])``, without ``i == j``.

    Pairs that occur together in fewer than ``min_count`` groups are dropped. Rows are
    computed in blocks sized by their number of pair products, so memory is bounded.
    """
    n_items = source.shape[1]
    source_by_item = source.T.tocsr()
    source_pattern = _binary(source_by_item)
    target_pattern = _binary(target)
    # Exact number of pair products each row creates: sum of the sizes of its groups.
    group_sizes = np.diff(target.indptr).astype(np.float64)
    products_per_row = source_pattern @ group_sizes
    blocks = _blocks(products_per_row, MAX_PAIRS_PER_BLOCK)
    inverse_target_norm = sp.diags(1.0 / np.maximum(target_norm, 1e-12).astype(np.float64))
    pieces = []
    for start, end in blocks:
        rows = source_by_item[start:end]
        products = (rows @ target) @ inverse_target_norm
        products = sp.diags(1.0 / np.maximum(source_norm[start:end], 1e-12)) @ products
        products = sp.csr_matrix(products)
        if min_count > 1:
            counts = sp.csr_matrix(source_pattern[start:end] @ target_pattern)
            counts.data = (counts.data >= min_count).astype(np.float64)
            products = sp.csr_matrix(products.multiply(counts))
        _zero_diagonal(products, start)
        pieces.append(top_k_per_row(products, k))
    return _stack(pieces, n_items)


def _stack(pieces: list[sp.csr_matrix], n_items: int) -> NeighbourLists:
    """Row blocks (each stored best first within rows) as one set of lists, keeping the
    stored order (a sparse vstack may not)."""
    if not pieces:
        empty = sp.csr_matrix((n_items, n_items), dtype=np.float32)
        return NeighbourLists.from_csr(empty)
    indptr = np.zeros(sum(piece.shape[0] for piece in pieces) + 1, dtype=np.int64)
    np.cumsum(np.concatenate([np.diff(piece.indptr) for piece in pieces]), out=indptr[1:])
    return NeighbourLists(
        indptr=indptr,
        indices=np.concatenate([piece.indices for piece in pieces]).astype(np.int32),
        scores=np.concatenate([piece.data for piece in pieces]).astype(np.float32),
    )


def _zero_diagonal(block: sp.csr_matrix, first_row: int) -> None:
    """Zero the entries (r, first_row + r) in place: an item is not its own neighbour."""
    rows = np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
    block.data[block.indices == rows + first_row] = 0


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    pattern = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    pattern.data[:] = 1.0
    return pattern


def _blocks(cost_per_row: np.ndarray, budget: float) -> list[tuple[int, int]]:
    """Consecutive row ranges whose summed cost stays within ``budget`` (a single row
    over budget gets a block of its own)."""
    blocks = []
    start, n = 0, len(cost_per_row)
    cumulative = np.concatenate([[0.0], np.cumsum(cost_per_row)])
    while start < n:
        end = int(np.searchsorted(cumulative, cumulative[start] + budget, side="right")) - 1
        end = max(end, start + 1)
        blocks.append((start, min(end, n)))
        start = end
    return blocks
