"""BM25 postings stored column-major on disk and memory-mapped, so loading an index builds no matrix.

A generation's rows (written by a rebuild or a compaction) are stored as each term's posting list:
``bm25_cols.i64`` (where each term's postings start), ``bm25_rows.i32`` (the rows), ``bm25_tf.f32``
(the term counts) and ``bm25_imp.f32`` (each posting's BM25 weight before idf,
``tf·(k1+1) / (tf + k1·(1 − b + b·len/avgdl))``, computed once when written), plus ``bm25_len.f32``
(each row's length). Rows appended by later commits are held in memory as a small column-major
matrix (``DiskBM25.extended``) and weighed with the current statistics. A query scores only its
terms' posting lists, one multiply-add per posting, with idf from the current document frequencies;
the stored weights keep the generation's average row length until the next compaction or rebuild
(appends move it little), so scores match the in-memory scorer (``BM25Index.score``) up to that drift
(BENCHMARKS.md measures the top rows against it).

Very long posting lists (a term in more than ``LONG_POSTINGS`` rows) are stored in descending order of
weight and only their first ``LONG_POSTINGS`` postings are scanned; then the best ``RESCORE`` rows get
those terms' exact weights from their own term counts (the row-major BM25 logs, memory-mapped). A row
is missed only when the cut parts of the long lists alone would lift it into the top (BENCHMARKS.md
measures the top rows against the exact scorer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse

from assistant.stores.lexical import B, K1, BM25Index

POSTING_FILES = ("bm25_cols.i64", "bm25_rows.i32", "bm25_tf.f32", "bm25_imp.f32", "bm25_len.f32")
LONG_POSTINGS = 10_000
RESCORE = 2_000


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
    for c in np.flatnonzero(np.diff(cols) > LONG_POSTINGS):
        lo, hi = cols[c], cols[c + 1]
        order = np.lexsort((rows[lo:hi], -impact[lo:hi]))  # best contribution first; ties by row
        rows[lo:hi], tf[lo:hi], impact[lo:hi] = rows[lo:hi][order], tf[lo:hi][order], impact[lo:hi][order]
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


def _map(path: Path, dtype: str, count: int, exact: bool = True) -> np.ndarray:
    """The first ``count`` values of ``path``, memory-mapped (``exact``: the file holds exactly those)."""
    size = path.stat().st_size
    if size < count * np.dtype(dtype).itemsize or (exact and size != count * np.dtype(dtype).itemsize):
        raise ValueError(f"{path.name} has {path.stat().st_size} bytes, expected {count} {np.dtype(dtype).name} values")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


class DiskBM25(BM25Index):
    """``BM25Index`` over memory-mapped posting files (rows ``[0, base_rows)``) plus rows appended
    since, in memory. Never changed once made: ``extended`` returns a new one."""

    def __init__(self, terms: list[str], folder: Path, base_rows: int, base_terms: int, n_postings: int,
                 avgdl: float) -> None:
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
        # The generation's rows, row-major (the logs' first postings): for rescoring the best rows.
        self.row_terms = _map(folder / "bm25_indices.i32", "<i4", n_postings, exact=False)
        self.row_tf = _map(folder / "bm25_data.f32", "<f4", n_postings, exact=False)
        self.row_nnz = _map(folder / "bm25_rownnz.i32", "<i4", base_rows, exact=False)
        self.avgdl = float(avgdl)
        self._row_ptr: np.ndarray | None = None
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
        out.row_terms, out.row_tf, out.row_nnz, out.avgdl = self.row_terms, self.row_tf, self.row_nnz, self.avgdl
        out._row_ptr = self._row_ptr
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

    def _postings(self, term_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """One term's postings: the generation's rows and weights (a long list: its first
        ``LONG_POSTINGS``), the appended rows and counts, and its document frequency. Removed rows are
        left in (``score`` zeroes them); the df leaves them out except in a long list (it barely moves)."""
        norm, live, n_live, tail, all_live, _ = self._statistics()
        empty_i, empty_f = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        rows, weights, tail_rows, tail_tf, df = empty_i, empty_f, empty_i, empty_f, 0
        if term_id < self.base_terms:
            lo, hi = int(self.cols[term_id]), int(self.cols[term_id + 1])
            long = hi - lo > LONG_POSTINGS
            rows = self.rows[lo : lo + LONG_POSTINGS if long else hi]
            weights = self.impact[lo : lo + LONG_POSTINGS if long else hi]
            df += hi - lo if long or all_live else int(live[rows].sum())
        if term_id < tail.shape[1]:
            lo, hi = tail.indptr[term_id], tail.indptr[term_id + 1]
            if hi > lo:
                tail_rows = tail.indices[lo:hi] + self.base_rows
                tail_tf = tail.data[lo:hi]
                df += int(live[tail_rows].sum())
        return rows, weights, tail_rows, tail_tf, df

    def score(self, weighted_terms: dict[str, float], live: np.ndarray | None = None) -> np.ndarray:
        if live is not None and (self._live is None or len(self._live) != len(live) or not np.array_equal(self._live, live)):
            self.set_live(live)
        norm, live_rows, n_live, _, all_live, _ = self._statistics()
        scores = np.zeros(self.n_rows, dtype=np.float32)
        scanned: np.ndarray | None = None  # what the scanned parts of cut lists added
        cut: dict[int, np.float32] = {}    # term id of a cut list -> its weighted idf
        for term, weight in weighted_terms.items():
            idx = self.vocab.get(term)
            if idx is None:
                continue
            rows, weights, tail_rows, tail_tf, df = self._postings(idx)
            if not df:
                continue
            idf = np.float32(np.log(1 + (n_live - df + 0.5) / (df + 0.5)) * weight)
            if len(rows) and idx < self.base_terms and self.cols[idx + 1] - self.cols[idx] > len(rows):
                if scanned is None:
                    scanned = np.zeros(self.n_rows, dtype=np.float32)
                scanned[rows] += weights * idf
                cut[idx] = cut.get(idx, np.float32(0)) + idf
            elif len(rows):
                scores[rows] += weights * idf
            if len(tail_rows):
                scores[tail_rows] += tail_tf * np.float32(K1 + 1) / (tail_tf + norm[tail_rows]) * idf
        if scanned is not None:
            self._rescore(scores, scanned, cut)
        if not all_live:
            scores[~live_rows] = 0
        return scores

    def _rescore(self, scores: np.ndarray, scanned: np.ndarray, cut: dict[int, np.float32]) -> None:
        """Add the cut lists' weights to ``scores``: exact for the best ``RESCORE`` generation rows
        (from their own term counts), as scanned for the others."""
        total = scanned
        total += scores
        base = total[: self.base_rows]
        candidates = np.flatnonzero(base)
        if len(candidates) > RESCORE:
            candidates = candidates[np.argpartition(-base[candidates], RESCORE - 1)[:RESCORE]]
        if self._row_ptr is None:
            self._row_ptr = np.concatenate([[0], np.cumsum(self.row_nnz, dtype=np.int64)])
        starts = self._row_ptr[candidates]
        counts = self._row_ptr[candidates + 1] - starts
        n = int(counts.sum())
        at = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(n)
        owner = np.repeat(np.arange(len(candidates)), counts)
        terms = np.asarray(self.row_terms[at])
        ids = np.fromiter(cut, dtype=np.int64, count=len(cut))
        order = np.argsort(ids)
        ids, idfs = ids[order], np.fromiter(cut.values(), dtype=np.float32, count=len(cut))[order]
        pos = np.minimum(np.searchsorted(ids, terms), len(ids) - 1)
        hit = ids[pos] == terms
        tf, owner, idf = np.asarray(self.row_tf[at])[hit], owner[hit], idfs[pos[hit]]
        norm = np.float32(K1) * (1 - B + B * self.base_len[candidates[owner]] / np.float32(self.avgdl))
        exact = np.zeros(len(candidates), dtype=np.float32)
        np.add.at(exact, owner, tf * np.float32(K1 + 1) / (tf + norm) * idf)
        total[candidates] = scores[candidates] + exact
        scores[:] = total

    def document_frequency(self, term: str) -> int:
        idx = self.vocab.get(term)
        if idx is None:
            return 0
        cache = self._statistics()[5]
        df = cache.get(idx)
        if df is None:
            df = cache[idx] = self._postings(idx)[4]
        return df
