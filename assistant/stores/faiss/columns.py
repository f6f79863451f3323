"""Lookups over one BM25 posting list (a column, rows in increasing order) that scoring a few rows
and pruning need, built once per column from the mapped postings and kept in memory.

* ``RankBitmap``: which rows a long list holds and at which position, in a few array operations
  per row asked about, whatever the list's length (a bit per row plus the count of set bits before
  each 64-row word: Jacobson's rank directory, as in succinct data structures). A binary search of
  16,000 rows in a list of 680,000 postings costs ~1.1 ms in numpy; the same lookup here ~0.2 ms,
  for 12 bytes per 64 rows of the index (190 kB a column at 1M rows).
* ``best_postings``: a list's postings with the largest weights, best first (the prefix of an
  impact-ordered list, Anh and Moffat 2006), for bounding what the rest of the list can add.
"""

from __future__ import annotations

import numpy as np

_ONE = np.uint64(1)


class RankBitmap:
    """The rows of one sorted posting list as a bitmap with a rank directory.

    Args:
        rows: The list's rows, strictly increasing.
        n_rows: Rows of the index (the bitmap's length).
    """

    __slots__ = ("words", "before")

    def __init__(self, rows: np.ndarray, n_rows: int) -> None:
        bits = np.zeros(((n_rows + 63) >> 6) << 6, dtype=bool)
        bits[rows] = True
        # Row 64·w + i is bit i of word w: bytes packed lowest bit first, read as little-endian words.
        words = np.packbits(bits, bitorder="little").view("<u8").astype(np.uint64, copy=False)
        before = np.zeros(len(words), dtype=np.int32)
        if len(words) > 1:
            np.cumsum(np.bitwise_count(words[:-1]), dtype=np.int32, out=before[1:])
        self.words, self.before = words, before

    @property
    def nbytes(self) -> int:
        return self.words.nbytes + self.before.nbytes

    def find(self, needles: "RankQuery") -> tuple[np.ndarray, np.ndarray]:
        """For the rows of ``needles``: the indexes of the rows the list holds, and their positions in the list."""
        words = self.words[needles.word]
        hit = np.flatnonzero(words & needles.bit)
        if not len(hit):
            return hit, hit
        return hit, self.before[needles.word[hit]] + np.bitwise_count(words[hit] & needles.below[hit])


class RankQuery:
    """Rows to look up in several ``RankBitmap``: their word and bit, worked out once.

    Args:
        rows: The rows (each below the bitmaps' ``n_rows``).
    """

    __slots__ = ("word", "bit", "below")

    def __init__(self, rows: np.ndarray) -> None:
        rows = np.asarray(rows)
        self.word = rows >> 6
        self.bit = _ONE << (rows & 63).astype(np.uint64)
        self.below = self.bit - _ONE  # the bits of the rows before it in its word


def best_postings(rows: np.ndarray, weights: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` postings of a list with the largest weights (all of them if it holds no more), best
    first, ties by row: ``(rows, weights)``."""
    if len(rows) > k:
        picked = np.argpartition(weights, len(rows) - k)[len(rows) - k :]
    else:
        picked = np.arange(len(rows))
    picked_rows, picked_weights = np.asarray(rows[picked]), np.asarray(weights[picked])
    order = np.lexsort((picked_rows, -picked_weights))
    return picked_rows[order], picked_weights[order]
