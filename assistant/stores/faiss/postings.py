"""BM25 postings stored column-major on disk and memory-mapped, so loading an index builds no matrix.

A generation's rows (written by a rebuild or a compaction) are stored as each term's posting list:
``bm25_cols.i64`` (where each term's postings start), ``bm25_rows.i32`` (the rows) and ``bm25_tf.f32``
(the term counts), plus ``bm25_len.f32`` (each row's length). Rows appended by later commits are held
in memory as a small column-major matrix (``DiskBM25.extended``). A query scores only its terms'
posting lists: each posting's BM25 contribution is computed from its count and row length with the
live statistics, so scores equal the in-memory scorer's (``BM25Index.score``).

Very long posting lists (a term in more than ``LONG_POSTINGS`` rows) are stored in descending order of
their contribution at write time and only their first ``LONG_POSTINGS`` postings are scored: such a
term's other rows hold it with a lower count in a longer row, and a term that common carries little
weight (BENCHMARKS.md measures hit@k against the exact scorer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse

from assistant.stores.lexical import B, K1, BM25Index

POSTING_FILES = ("bm25_cols.i64", "bm25_rows.i32", "bm25_tf.f32", "bm25_len.f32")
LONG_POSTINGS = 50_000


def write_postings(folder: Path, matrix: sparse.csr_matrix, live: np.ndarray) -> dict[str, int]:
    """Write ``matrix``'s rows (term counts) as posting files into ``folder``; their sizes by name."""
    m = sparse.csr_matrix(matrix)
    lengths = np.asarray(m.sum(axis=1), dtype=np.float32).ravel()
    csc = sparse.csc_matrix(m)
    csc.sort_indices()
    rows, tf, cols = csc.indices.astype("<i4"), csc.data.astype("<f4"), csc.indptr.astype("<i8")
    live_len = lengths[live] if len(live) == len(lengths) else lengths
    avgdl = float(live_len.sum() / max(int((live_len > 0).sum()), 1)) or 1.0
    norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)
    for c in np.flatnonzero(np.diff(cols) > LONG_POSTINGS):
        lo, hi = cols[c], cols[c + 1]
        r, t = rows[lo:hi], tf[lo:hi]
        order = np.lexsort((r, -(t / (t + norm[r]))))  # best contribution first; ties by row
        rows[lo:hi], tf[lo:hi] = r[order], t[order]
    sizes = {}
    for name, array in zip(POSTING_FILES, (cols, rows, tf, lengths.astype("<f4"))):
        path = folder / name
        with open(path, "wb") as fh:
            fh.write(array.tobytes())
            fh.flush()
            import os

            os.fsync(fh.fileno())
        sizes[name] = path.stat().st_size
    return sizes


def _map(path: Path, dtype: str, count: int) -> np.ndarray:
    if path.stat().st_size != count * np.dtype(dtype).itemsize:
        raise ValueError(f"{path.name} has {path.stat().st_size} bytes, expected {count} {np.dtype(dtype).name} values")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


class DiskBM25(BM25Index):
    """``BM25Index`` over memory-mapped posting files (rows ``[0, base_rows)``) plus rows appended
    since, in memory. Never changed once made: ``extended`` returns a new one."""

    def __init__(self, terms: list[str], folder: Path, base_rows: int, base_terms: int, n_postings: int) -> None:
        super().__init__()
        self.terms = list(terms)
        self.vocab = {t: i for i, t in enumerate(self.terms)}
        if len(self.vocab) != len(self.terms):
            raise ValueError("the BM25 vocabulary lists a term twice")
        self.base_rows, self.base_terms = base_rows, base_terms
        self.cols = np.asarray(_map(folder / "bm25_cols.i64", "<i8", base_terms + 1))
        if len(self.cols) and (self.cols[0] != 0 or self.cols[-1] != n_postings or np.any(np.diff(self.cols) < 0)):
            raise ValueError("bm25_cols.i64 does not describe the posting files")
        self.rows = _map(folder / "bm25_rows.i32", "<i4", n_postings)
        self.tf = _map(folder / "bm25_tf.f32", "<f4", n_postings)
        self.base_len = np.asarray(_map(folder / "bm25_len.f32", "<f4", base_rows), dtype=np.float32)
        self.tail = sparse.csr_matrix((0, len(self.terms)), dtype=np.float32)
        self._stats: tuple | None = None
        self._matrix = None

    # -- rows appended since the generation was written ------------------------------------------
    def extended(self, new_terms, data: np.ndarray, indices: np.ndarray, nnz: np.ndarray) -> "DiskBM25":
        out = DiskBM25.__new__(DiskBM25)
        BM25Index.__init__(out)
        out.terms = self.terms + list(new_terms)
        out.vocab = dict(self.vocab)
        for i, term in enumerate(new_terms, len(self.terms)):
            out.vocab[term] = i
        if len(indices) and (int(indices.max()) >= len(out.terms) or int(indices.min()) < 0):
            raise ValueError("BM25 rows use term ids past the vocabulary")
        indptr = np.concatenate([[0], np.cumsum(nnz, dtype=np.int64)])
        if indptr[-1] != len(indices) or len(indices) != len(data):
            raise ValueError("BM25 arrays disagree with each other")
        block = sparse.csr_matrix((data, indices, indptr), shape=(len(nnz), len(out.terms)))
        tail = sparse.csr_matrix((self.tail.data, self.tail.indices, self.tail.indptr), shape=(self.tail.shape[0], len(out.terms)))
        out.tail = sparse.vstack([tail, block], format="csr") if tail.shape[0] else block
        out.base_rows, out.base_terms = self.base_rows, self.base_terms
        out.cols, out.rows, out.tf, out.base_len = self.cols, self.rows, self.tf, self.base_len
        out._stats, out._matrix = None, None
        return out

    @property
    def n_rows(self) -> int:
        return self.base_rows + self.tail.shape[0]

    @property
    def matrix(self) -> sparse.csr_matrix:
        """Every row as one CSR matrix (built on demand: compaction, copying to another store)."""
        if self._matrix is None:
            n = self.cols[-1] if len(self.cols) else 0
            cols = np.repeat(np.arange(self.base_terms, dtype=np.int32), np.diff(self.cols))
            base = sparse.csr_matrix((np.asarray(self.tf[:n]), (np.asarray(self.rows[:n]), cols)),
                                     shape=(self.base_rows, len(self.terms)), dtype=np.float32)
            tail = sparse.csr_matrix((self.tail.data, self.tail.indices, self.tail.indptr), shape=(self.tail.shape[0], len(self.terms)))
            self._matrix = sparse.vstack([base, tail], format="csr") if tail.shape[0] else base
        return self._matrix

    def keep_rows(self, keep: np.ndarray) -> None:
        raise TypeError("a memory-mapped BM25 index is read-only; compact an IndexData instead")

    def set_live(self, live: np.ndarray | None) -> None:
        self._live = live
        self._stats = None

    def _statistics(self) -> tuple:
        """Row normalizers, live rows and the tail's columns for the current live mask (built once)."""
        stats = self._stats
        if stats is None:
            n = self.n_rows
            live = self._live if self._live is not None and len(self._live) == n else np.ones(n, dtype=bool)
            tail_len = np.asarray(self.tail.sum(axis=1), dtype=np.float32).ravel()
            lengths = np.concatenate([self.base_len, tail_len]) if len(tail_len) else self.base_len
            live_len = lengths[live]
            n_live = max(int((live_len > 0).sum()), 1)
            avgdl = float(live_len.sum() / n_live) if live_len.sum() else 1.0
            norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)
            tail_csc = sparse.csc_matrix(self.tail)
            stats = (norm, live, n_live, tail_csc)
            self._stats = stats
        return stats

    def _postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray, int]:
        """Live rows and counts of one term (a long list: its first ``LONG_POSTINGS``), and its df."""
        norm, live, n_live, tail = self._statistics()
        rows_out, tf_out, df = [], [], 0
        if term_id < self.base_terms:
            lo, hi = int(self.cols[term_id]), int(self.cols[term_id + 1])
            if hi - lo > LONG_POSTINGS:
                rows = np.asarray(self.rows[lo : lo + LONG_POSTINGS])
                tf = np.asarray(self.tf[lo : lo + LONG_POSTINGS])
                df += hi - lo  # removed rows still counted until compaction (a long list barely moves)
            else:
                rows = np.asarray(self.rows[lo:hi])
                tf = np.asarray(self.tf[lo:hi])
                keep = live[rows]
                rows, tf = rows[keep], tf[keep]
                df += len(rows)
            if hi - lo > LONG_POSTINGS:
                keep = live[rows]
                rows, tf = rows[keep], tf[keep]
            rows_out.append(rows)
            tf_out.append(tf)
        if term_id < tail.shape[1]:
            lo, hi = tail.indptr[term_id], tail.indptr[term_id + 1]
            if hi > lo:
                rows = tail.indices[lo:hi] + self.base_rows
                keep = live[rows]
                rows_out.append(rows[keep])
                tf_out.append(tail.data[lo:hi][keep])
                df += int(keep.sum())
        if not rows_out:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32), 0
        return (np.concatenate(rows_out) if len(rows_out) > 1 else rows_out[0],
                np.concatenate(tf_out) if len(tf_out) > 1 else tf_out[0], df)

    def score(self, weighted_terms: dict[str, float], live: np.ndarray | None = None) -> np.ndarray:
        if live is not None and (self._live is None or len(self._live) != len(live) or not np.array_equal(self._live, live)):
            self.set_live(live)
        norm, _, n_live, _ = self._statistics()
        scores = np.zeros(self.n_rows, dtype=np.float32)
        for term, weight in weighted_terms.items():
            idx = self.vocab.get(term)
            if idx is None:
                continue
            rows, tf, df = self._postings(idx)
            if not len(rows):
                continue
            idf = np.float32(np.log(1 + (n_live - df + 0.5) / (df + 0.5)) * (K1 + 1) * weight)
            scores[rows] += tf / (tf + norm[rows]) * idf
        return scores

    def document_frequency(self, term: str) -> int:
        idx = self.vocab.get(term)
        if idx is None:
            return 0
        return self._postings(idx)[2]
