"""BM25 postings stored column-major on disk and memory-mapped, so loading an index builds no matrix.

A generation's rows (written by a rebuild or a compaction) are stored as each term's posting list:
``bm25_cols.i64`` (where each term's postings start), ``bm25_rows.i32`` (the rows), ``bm25_tf.f32``
(the term counts) and ``bm25_imp.f32`` (each posting's BM25 weight before idf,
``tf·(k1+1) / (tf + k1·(1 − b + b·len/avgdl))``, computed once when written), plus ``bm25_len.f32``
(each row's length). These files are a scipy CSC matrix as they are: a query is one sparse product
over its terms' columns (C loops, no Python arithmetic per posting), weighted by idf from the current
document frequencies. Rows appended by later commits are held in memory as a small matrix
(``DiskBM25.extended``) and weighed with the current statistics. The stored weights keep the
generation's average row length until the next compaction or rebuild (appends move it little), so
scores equal the in-memory scorer's (``BM25Index.score``) up to that drift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse

from assistant.stores.lexical import B, K1, BM25Index

POSTING_FILES = ("bm25_cols.i64", "bm25_rows.i32", "bm25_tf.f32", "bm25_imp.f32", "bm25_len.f32")


def write_postings(folder: Path, matrix: sparse.csr_matrix, live: np.ndarray) -> tuple[dict[str, int], float]:
    """Write ``matrix``'s rows (term counts) as posting files into ``folder``; their sizes by name and
    the average row length the weights were computed with."""
    m = sparse.csr_matrix(matrix)
    lengths = np.asarray(m.sum(axis=1), dtype=np.float32).ravel()
    csc = sparse.csc_matrix(m)
    csc.sort_indices()
    rows, tf, cols = csc.indices.astype("<i4"), csc.data.astype("<f4"), csc.indptr.astype("<i8")
    live_len = lengths[live] if len(live) == len(lengths) else lengths
    avgdl = float(live_len.sum() / max(int((live_len > 0).sum()), 1)) or 1.0
    norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)
    impact = (tf * np.float32(K1 + 1) / (tf + norm[rows])).astype("<f4")
    sizes = {}
    for name, array in zip(POSTING_FILES, (cols, rows, tf, impact, lengths.astype("<f4"))):
        path = folder / name
        with open(path, "wb") as fh:
            fh.write(array.tobytes())
            fh.flush()
            import os

            os.fsync(fh.fileno())
        sizes[name] = path.stat().st_size
    return sizes, avgdl


def _map(path: Path, dtype: str, count: int) -> np.ndarray:
    """The ``count`` values ``path`` holds, memory-mapped."""
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
        self.impact = _map(folder / "bm25_imp.f32", "<f4", n_postings)
        self.base_len = np.asarray(_map(folder / "bm25_len.f32", "<f4", base_rows), dtype=np.float32)
        # The weights as a CSC matrix over the mapped files (scipy keeps the arrays as they are: int32
        # indices and pointers, float32 data; nothing is copied).
        self.weights = sparse.csc_matrix((self.impact, self.rows, self.cols.astype(np.int32 if n_postings < 2**31 else np.int64)),
                                         shape=(base_rows, base_terms), copy=False)
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
        out.cols, out.rows, out.tf, out.impact, out.base_len = self.cols, self.rows, self.tf, self.impact, self.base_len
        out.weights = self.weights
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
            all_live = bool(live.all())
            stats = (norm, live, n_live, tail_csc, all_live, {})
            self._stats = stats
        return stats

    def _df(self, term_id: int) -> int:
        """Live rows holding the term (cached for the current live mask)."""
        _, live, _, tail, all_live, cache = self._statistics()
        df = cache.get(term_id)
        if df is None:
            df = 0
            if term_id < self.base_terms:
                lo, hi = int(self.cols[term_id]), int(self.cols[term_id + 1])
                df = hi - lo if all_live else int(live[self.rows[lo:hi]].sum())
            if term_id < tail.shape[1]:
                lo, hi = tail.indptr[term_id], tail.indptr[term_id + 1]
                df += int(live[tail.indices[lo:hi] + self.base_rows].sum()) if hi > lo else 0
            cache[term_id] = df
        return df

    def score(self, weighted_terms: dict[str, float], live: np.ndarray | None = None) -> np.ndarray:
        if live is not None and (self._live is None or len(self._live) != len(live) or not np.array_equal(self._live, live)):
            self.set_live(live)
        norm, live_rows, n_live, tail, all_live, _ = self._statistics()
        columns, idfs = [], []
        for term, weight in weighted_terms.items():
            idx = self.vocab.get(term)
            if idx is None:
                continue
            df = self._df(idx)
            if df:
                columns.append(idx)
                idfs.append(np.log(1 + (n_live - df + 0.5) / (df + 0.5)) * weight)
        if not columns:
            return np.zeros(self.n_rows, dtype=np.float32)
        idf = np.asarray(idfs, dtype=np.float32)
        base = [i for i, c in enumerate(columns) if c < self.base_terms]
        if base and not tail.shape[0]:
            scores = np.asarray(self.weights[:, [columns[i] for i in base]] @ idf[base], dtype=np.float32)
        else:
            scores = np.zeros(self.n_rows, dtype=np.float32)
            if base:
                scores[: self.base_rows] = self.weights[:, [columns[i] for i in base]] @ idf[base]
        if tail.shape[0]:
            part = tail[:, columns]  # term counts of the appended rows, weighed with the current statistics
            counts = part.data
            part.data = counts * np.float32(K1 + 1) / (counts + norm[self.base_rows + part.indices])
            scores[self.base_rows :] = part @ idf
        if not all_live:
            scores[~live_rows] = 0
        return scores

    def document_frequency(self, term: str) -> int:
        idx = self.vocab.get(term)
        return 0 if idx is None else self._df(idx)
