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

from assistant.stores.faiss.columns import RankBitmap, RankQuery, best_postings
from assistant.stores.lexical import B, K1, BM25Index

# Max-score pruning (``DiskBM25._top_by_max_score``): round one scores the rows of head lists holding
# up to HEAD_POSTINGS postings (5,000: the fastest of 1,000-40,000 on the fit queries of
# bench/bm25_postings.py, at 100k and 1M rows); round two, if needed, up to MAX_HEAD_POSTINGS.
HEAD_POSTINGS = 5_000
MAX_HEAD_POSTINGS = 400_000
# Columns found out of order on disk are sorted once and kept, up to this many postings (8 bytes each).
SORTED_POSTINGS_KEPT = 16_000_000
# Rank bitmaps (``columns.RankBitmap``) are made for in-order columns of at least this many postings
# when at least RANK_MIN_ROWS rows are looked up in them (below, binary search is as cheap), up to
# RANK_BYTES_KEPT bytes in all (12 bytes per 64 rows a column: 340 columns at 1M rows).
RANK_MIN_POSTINGS = 4096
RANK_MIN_ROWS = 256
RANK_BYTES_KEPT = 64 << 20
# ``_base_scores`` of at least 1/DENSE_SHARE of the rows sums in an array over every row, adding lists
# up to SCATTER_RATIO × the rows asked about whole (a scatter costs ~5 ns a posting, a bitmap lookup ~12 ns a row).
DENSE_SHARE = 64
SCATTER_RATIO = 2
# Common-word queries (``DiskBM25._top_by_prefixes``): each list's best PREFIX_START postings, then
# four times more, up to PREFIX_POSTINGS (kept per column once used: 8 bytes each). On the benchmark's
# fit queries every common-word query settled at the first step (bench/bm25_postings.py).
PREFIX_START = 256
PREFIX_POSTINGS = 1 << 14
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
        # Plain arrays over the mapped files: a slice of an ``np.memmap`` goes through its Python-level
        # ``__getitem__`` and ``__array_wrap__`` at every operation (a tenth of a few-row lookup's time).
        self.rows = np.asarray(_map(folder / "bm25_rows.i32", "<i4", n_postings))
        self.tf = np.asarray(_map(folder / "bm25_tf.f32", "<f4", n_postings))
        self.impact = np.asarray(_map(folder / "bm25_imp.f32", "<f4", n_postings))
        self.base_len = np.asarray(_map(folder / "bm25_len.f32", "<f4", base_rows), dtype=np.float32)
        # The weights as a CSC matrix over the mapped files (scipy keeps the arrays as they are: int32
        # indices and pointers, float32 data; nothing is copied).
        self.weights = sparse.csc_matrix((self.impact, self.rows, self.cols.astype(np.int32 if n_postings < 2**31 else np.int64)),
                                         shape=(base_rows, base_terms), copy=False)
        self.tail = sparse.csr_matrix((0, len(self.terms)), dtype=np.float32)
        self._stats: tuple | None = None
        self._matrix = None
        self._column_cache: dict[int, tuple[np.ndarray, np.ndarray, float, bool]] = {}
        self._sorted = [0]  # postings held sorted in memory (a list: shared with ``extended`` copies)
        self._bitmaps: dict[int, RankBitmap] = {}
        self._kept = [0]  # bytes of the bitmaps
        self._best_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

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
        out._column_cache, out._sorted = self._column_cache, self._sorted
        out._bitmaps, out._kept, out._best_cache = self._bitmaps, self._kept, self._best_cache
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

    def _columns(self, weighted_terms: dict[str, float]) -> tuple[list[int], np.ndarray]:
        """The query's columns that live rows hold, and their weights (idf × the term's weight, float32)."""
        n_live = self._statistics()[2]
        columns, idfs = [], []
        for term, weight in weighted_terms.items():
            idx = self.vocab.get(term)
            if idx is None:
                continue
            df = self._df(idx)
            if df:
                columns.append(idx)
                idfs.append(np.log(1 + (n_live - df + 0.5) / (df + 0.5)) * weight)
        return columns, np.asarray(idfs, dtype=np.float32)

    def score(self, weighted_terms: dict[str, float], live: np.ndarray | None = None) -> np.ndarray:
        if live is not None and (self._live is None or len(self._live) != len(live) or not np.array_equal(self._live, live)):
            self.set_live(live)
        norm, live_rows, n_live, tail, all_live, _ = self._statistics()
        columns, idf = self._columns(weighted_terms)
        if not columns:
            return np.zeros(self.n_rows, dtype=np.float32)
        base = [i for i, c in enumerate(columns) if c < self.base_terms]
        if base and not tail.shape[0]:
            scores = np.asarray(self.weights[:, [columns[i] for i in base]] @ idf[base], dtype=np.float32)
        else:
            scores = np.zeros(self.n_rows, dtype=np.float32)
            if base:
                scores[: self.base_rows] = self.weights[:, [columns[i] for i in base]] @ idf[base]
        if tail.shape[0]:
            scores[self.base_rows :] = self._tail_scores(columns, idf)
        if not all_live:
            scores[~live_rows] = 0
        return scores

    def _tail_scores(self, columns: list[int], idf: np.ndarray) -> np.ndarray:
        """Scores of the rows appended since the generation (term counts weighed with the current statistics)."""
        norm, tail = self._statistics()[0], self._statistics()[3]
        out = np.zeros(tail.shape[0], dtype=np.float32)
        # Column by column in query order, as the sparse product sums (scipy's column selection
        # costs more than these few rows).
        for column, weight in zip(columns, idf):
            lo, hi = (tail.indptr[column], tail.indptr[column + 1]) if column < tail.shape[1] else (0, 0)
            if hi > lo:
                rows, counts = tail.indices[lo:hi], tail.data[lo:hi]
                out[rows] += counts * np.float32(K1 + 1) / (counts + norm[self.base_rows + rows]) * weight
        return out

    # -- exact top rows and scores of a few rows, without scoring every row ---------------------------
    def _column(self, column: int) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """A generation column's rows and weights, its largest weight and whether its rows are in
        order (cached per column: the files never change). ``write_postings`` writes every column in
        row order, but its versions from commits dda18c1 to 4009102 stored the columns past 50,000
        (later 10,000) postings best weight first, and indexes written then still hold them so (the
        benchmark indexes in bench/cache do): such a column is sorted once and kept in memory (up to
        ``SORTED_POSTINGS_KEPT`` postings; past that it is read through, never binary-searched)."""
        found = self._column_cache.get(column)
        if found is None:
            lo, hi = int(self.cols[column]), int(self.cols[column + 1])
            rows, weights = self.rows[lo:hi], self.impact[lo:hi]
            in_order = hi - lo < 2 or not bool((rows[1:] < rows[:-1]).any())
            if not in_order and self._sorted[0] + (hi - lo) <= SORTED_POSTINGS_KEPT:
                order = np.argsort(rows, kind="stable")
                rows, weights, in_order = rows[order], weights[order], True
                self._sorted[0] += hi - lo
            found = self._column_cache[column] = (rows, weights, float(weights.max()) if hi > lo else 0.0, in_order)
        return found

    def _base_scores(self, columns: list[int], idf: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Scores of these generation rows (sorted, distinct) over the generation columns, summed in
        float32 in column order as the sparse product does, so the scores are the same to the bit
        (a row a column lacks adds nothing, not even a +0.0).

        Many rows (at least ``1 / DENSE_SHARE`` of the generation's) are summed in an array over
        every row: a list up to ``SCATTER_RATIO`` × the rows asked about is added whole (the rows not
        asked about get sums nobody reads), a longer one is looked up. Fewer rows are summed in place:
        a list no longer than the rows is searched for in them, a longer one is looked up. A lookup
        uses the list's ``RankBitmap``, else a binary search."""
        out = np.zeros(len(rows), dtype=np.float32)
        if not len(rows):
            return out
        needles = rows.astype(self.rows.dtype)  # the lists' own type: searchsorted would copy them otherwise
        every = np.zeros(self.base_rows, dtype=np.float32) if len(needles) * DENSE_SHARE >= self.base_rows else None
        where: np.ndarray | None = None
        query: RankQuery | None = None
        for column, weight in zip(columns, idf):
            if column >= self.base_terms:
                continue
            postings, weights, _, in_order = self._column(column)
            if not len(postings):
                continue
            if every is not None and (not in_order or len(postings) <= SCATTER_RATIO * len(needles)):
                every[postings] += weights * weight  # a column's rows are distinct
            elif not in_order:  # a long column kept on disk out of order: read through
                if where is None:
                    where = np.zeros(self.base_rows, dtype=np.int32)  # position + 1 of each row asked about
                    where[needles] = np.arange(1, len(needles) + 1, dtype=np.int32)
                at = where[postings]
                hit = np.flatnonzero(at)
                if len(hit):
                    out[at[hit] - 1] += weights[hit] * weight
            elif every is None and len(postings) <= len(needles):
                at = np.minimum(np.searchsorted(needles, postings), len(needles) - 1)
                hit = np.flatnonzero(needles[at] == postings)
                if len(hit):
                    out[at[hit]] += weights[hit] * weight
            else:
                bitmap = self._bitmap(column) if len(needles) >= RANK_MIN_ROWS else None
                if bitmap is not None:
                    if query is None:
                        query = RankQuery(needles)
                    hit, at = bitmap.find(query)
                else:
                    at = np.minimum(np.searchsorted(postings, needles), len(postings) - 1)
                    hit = np.flatnonzero(postings[at] == needles)
                    at = at[hit]
                if not len(hit):
                    continue
                if every is not None:
                    every[needles[hit]] += weights[at] * weight
                else:
                    out[hit] += weights[at] * weight
        return every[needles] if every is not None else out

    def _bitmap(self, column: int) -> RankBitmap | None:
        """The column's ``RankBitmap`` (an in-order column of at least ``RANK_MIN_POSTINGS``; made
        once, while ``RANK_BYTES_KEPT`` allows), or None."""
        found = self._bitmaps.get(column)
        if found is None:
            rows, _, _, in_order = self._column(column)
            cost = 12 * ((self.base_rows + 63) >> 6)
            if not in_order or len(rows) < RANK_MIN_POSTINGS or self._kept[0] + cost > RANK_BYTES_KEPT:
                return None
            found = self._bitmaps[column] = RankBitmap(rows, self.base_rows)
            self._kept[0] += found.nbytes
        return found

    def _best(self, column: int) -> tuple[np.ndarray, np.ndarray]:
        """The column's ``PREFIX_POSTINGS + 1`` best postings, best first (made once per column)."""
        found = self._best_cache.get(column)
        if found is None:
            rows, weights, _, _ = self._column(column)
            found = self._best_cache[column] = best_postings(rows, weights, PREFIX_POSTINGS + 1)
        return found

    def scores_of(self, weighted_terms: dict[str, float], rows: np.ndarray) -> np.ndarray:
        """``score(weighted_terms)[rows]`` (rows distinct), reading only these rows' postings."""
        rows = np.asarray(rows, dtype=np.int64)
        _, live, _, tail, all_live, _ = self._statistics()
        columns, idf = self._columns(weighted_terms)
        out = np.zeros(len(rows), dtype=np.float32)
        if not columns or not len(rows):
            return out
        order = np.argsort(rows, kind="stable")
        in_base = rows[order] < self.base_rows
        sorted_rows = rows[order]
        out[order[in_base]] = self._base_scores(columns, idf, sorted_rows[in_base])
        if tail.shape[0] and not in_base.all():
            out[order[~in_base]] = self._tail_scores(columns, idf)[sorted_rows[~in_base] - self.base_rows]
        if not all_live:
            out[~live[rows]] = 0
        return out

    def top_rows(self, weighted_terms: dict[str, float], n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``top(score(weighted_terms), n)`` found without scoring every row, or None when pruning
        does not settle it (the caller then scores every row).

        Two exact methods, the second when the first does not settle: max-score pruning over the
        lists of the query's rarest terms (``_top_by_max_score``), then impact-ordered prefixes of
        every list (``_top_by_prefixes``), which settles queries made only of common words.
        """
        _, live, _, tail, all_live, _ = self._statistics()
        columns, idf = self._columns(weighted_terms)
        if n <= 0 or not columns:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)  # no row holds a term
        if float(idf.min()) <= 0:
            return None
        tail_rows = np.zeros(0, dtype=np.int64)
        tail_scores = np.zeros(0, dtype=np.float32)
        if tail.shape[0]:
            found = self._tail_scores(columns, idf)
            if not all_live:
                found[~live[self.base_rows :]] = 0
            tail_rows = np.flatnonzero(found > 0)
            tail_scores, tail_rows = found[tail_rows], tail_rows + self.base_rows
        if not any(c < self.base_terms for c in columns):  # only terms of rows added since the generation
            return _settle(tail_rows, tail_scores, n, None)
        found = self._top_by_max_score(columns, idf, n, tail_rows, tail_scores)
        return found if found is not None else self._top_by_prefixes(columns, idf, n, tail_rows, tail_scores)

    def _scored(self, heads: list[np.ndarray], columns: list[int], idf: np.ndarray, tail_rows: np.ndarray,
                tail_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The distinct live rows of ``heads`` (generation rows) and the tail's scored rows, with
        their exact scores, those above 0."""
        rows = np.sort(np.concatenate(heads)).astype(np.int64)
        if len(rows) > 1:  # distinct (np.unique hashes: slower than this)
            rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
        _, live, _, _, all_live, _ = self._statistics()
        if not all_live:
            rows = rows[live[rows]]
        scores = self._base_scores(columns, idf, rows)
        rows, scores = np.concatenate([rows, tail_rows]), np.concatenate([scores, tail_scores])
        keep = scores > 0
        return rows[keep], scores[keep]

    def _top_by_max_score(self, columns: list[int], idf: np.ndarray, n: int, tail_rows: np.ndarray,
                          tail_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Max-score pruning (Turtle and Flood 1995, as in Lucene and PISA): a row holding none of the
        "head" terms (the ones with the largest weight × largest stored weight, taken until their
        lists hold ``HEAD_POSTINGS``) scores at most the sum of the other terms' bounds. The rows of
        the head lists are scored exactly over every term; when their ``n``-th best score is above
        that bound, no other row can enter the top ``n`` (nor tie with it), so they are the exact
        answer, in the same order and with the same scores.
        """
        base = [(self._column(c)[2] * float(w), c, int(self.cols[c + 1] - self.cols[c]))
                for c, w in zip(columns, idf) if c < self.base_terms]
        base.sort(key=lambda b: -b[0])
        bounds = np.cumsum([b[0] for b in base][::-1])[::-1].tolist() + [0.0]  # bound of the terms from i on
        # Round one scores the rows of the terms with the largest bounds (lists up to HEAD_POSTINGS):
        # their n-th best score is a lower bound of the answer's, which says how many terms a row must
        # hold at least one of to reach it; round two scores the rows of those terms' lists, if needed.
        head, budget = 0, HEAD_POSTINGS
        for _ in range(2):
            postings = 0
            head_before, head = head, 0
            while head < len(base) and (head == 0 or postings + base[head][2] <= budget):
                postings += base[head][2]
                head += 1
            if head <= head_before or postings > MAX_HEAD_POSTINGS:
                return None
            rows, scores = self._scored([self._column(c)[0] for _, c, _ in base[:head]], columns, idf, tail_rows, tail_scores)
            if head == len(base):  # every row with a score is here
                return _settle(rows, scores, n, None)
            found = _settle(rows, scores, n, bounds[head])
            if found is not None or len(rows) < n:
                return found
            theta = float(np.partition(scores, len(scores) - n)[len(scores) - n])
            # The fewest terms whose remaining bound is below theta, and their postings.
            need = next(i for i in range(head, len(base) + 1) if theta > _margin(bounds[i]))
            budget = sum(b[2] for b in base[:need])
            if budget > MAX_HEAD_POSTINGS:
                return None
        return None

    def _top_by_prefixes(self, columns: list[int], idf: np.ndarray, n: int, tail_rows: np.ndarray,
                         tail_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Impact-ordered prefixes (Anh and Moffat 2006; Fagin's threshold algorithm): the rows of each
        list's ``p`` best postings (a shorter list: all of them) are scored exactly over every term. A
        row outside all of them holds, in each long list, at most that list's best weight past its
        prefix, so it scores at most the sum of those weights × the terms' weights; when the ``n``-th
        best scored row is above that bound, the scored rows hold the answer. ``p`` grows four-fold
        from ``PREFIX_START`` up to ``PREFIX_POSTINGS``."""
        base = [(c, float(w)) for c, w in zip(columns, idf) if c < self.base_terms]
        p = PREFIX_START
        while p <= PREFIX_POSTINGS:
            heads, bound = [], 0.0
            for c, w in base:
                rows = self._column(c)[0]
                if len(rows) <= p:
                    heads.append(rows)
                else:
                    best_rows, best_weights = self._best(c)
                    heads.append(best_rows[:p])
                    bound += w * float(best_weights[p])
            rows, scores = self._scored(heads, columns, idf, tail_rows, tail_scores)
            found = _settle(rows, scores, n, bound if bound > 0 else None)
            if found is not None:
                return found
            p *= 4
        return None

    def document_frequency(self, term: str) -> int:
        idx = self.vocab.get(term)
        return 0 if idx is None else self._df(idx)


def _margin(bound: float) -> float:
    """``bound`` raised a little: float32 sums may round above the exact bound."""
    return bound * (1 + 1e-4) + 1e-6


def _settle(rows: np.ndarray, scores: np.ndarray, n: int, bound: float | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The ``n`` best of these scored rows, best first, ties by row, when no other row can reach
    them: every row is here (``bound`` None), or their ``n``-th best score is above ``bound``, what
    any other row scores at most. Else None."""
    if bound is None:
        order = np.lexsort((rows, -scores))[:n]
        return rows[order], scores[order]
    if len(rows) < n:
        return None
    theta = float(np.partition(scores, len(scores) - n)[len(scores) - n])
    if theta <= _margin(bound):
        return None
    picked = np.flatnonzero(scores >= theta)
    order = picked[np.lexsort((rows[picked], -scores[picked]))][:n]
    return rows[order], scores[order]
