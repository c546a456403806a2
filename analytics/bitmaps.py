"""Sets of served products as compressed bitmaps, for catalog coverage.

How many *distinct* products were served does not add up across hours or days, so each
rollup row keeps the set itself: bit ``i`` stands for the shop's product with
``ServedProductBit.bit == i`` (dense numbers given out as products are first served).
A set is stored zlib-compressed; the union of any number of rows is a byte-wise OR, so
"distinct items served over 90 days" costs one OR over 90 small arrays, not a scan.
"""

import zlib
from collections.abc import Iterable

import numpy as np

EMPTY = b""


def bitmap_encode(bits: Iterable[int]) -> bytes:
    """The stored form of a set of bit numbers (``b""`` for the empty set)."""
    numbers = np.fromiter(bits, dtype=np.int64)
    if numbers.size == 0:
        return EMPTY
    if numbers.min() < 0:
        raise ValueError("bit numbers cannot be negative")
    flags = np.zeros(int(numbers.max()) + 1, dtype=bool)
    flags[numbers] = True
    return zlib.compress(np.packbits(flags, bitorder="little").tobytes(), 1)


def bitmap_decode(stored: bytes | memoryview | None) -> np.ndarray:
    """The uint8 array of a stored bitmap (empty for ``b""`` or None)."""
    if not stored:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(zlib.decompress(bytes(stored)), dtype=np.uint8)


def bitmap_union(stored: Iterable[bytes | memoryview | None]) -> np.ndarray:
    """The OR of stored bitmaps, as an uint8 array."""
    arrays = [bitmap_decode(item) for item in stored]
    arrays = [array for array in arrays if array.size]
    if not arrays:
        return np.zeros(0, dtype=np.uint8)
    result = np.zeros(max(array.size for array in arrays), dtype=np.uint8)
    for array in arrays:
        result[: array.size] |= array
    return result


def bitmap_count(array: np.ndarray) -> int:
    """How many bits are set."""
    return int(np.bitwise_count(array).sum()) if array.size else 0


def bitmap_bits(array: np.ndarray) -> list[int]:
    """The set bit numbers, ascending."""
    if not array.size:
        return []
    return [int(i) for i in np.flatnonzero(np.unpackbits(array, bitorder="little"))]


def bitmap_merge(stored: Iterable[bytes | memoryview | None]) -> tuple[bytes, int]:
    """The stored form and size of the union of stored bitmaps."""
    union = bitmap_union(stored)
    count = bitmap_count(union)
    return (zlib.compress(union.tobytes(), 1) if count else EMPTY), count
