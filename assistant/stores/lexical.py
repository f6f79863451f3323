"""BM25 over folded, stemmed terms, stored as sparse arrays (no pickle).

Rows are chunk positions (the same positions as the FAISS rows); a row can be dead (its document was
removed) until the index is compacted. Appending rows never renumbers terms, so adding one article
to a large index is an append, not a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse

from assistant.text.normalize import edit_distance_at_most_one, is_arabic_token, skeleton
from assistant.text.translit import latin_name_stem, same_short_name

# Standard Okapi constants (Robertson & Zaragoza); news chunks are short and even, so the usual
# b=0.75 length normalization is fine.
K1 = 1.2
B = 0.75
_IMPACT_BLOCK = 1 << 22
_VARIANTS_KEPT = 50_000  # terms whose spelling variants are kept (questions repeat their words)  # postings per step when precomputing impacts (bounds the temporary arrays)


def idf(n_docs: int, df: int) -> float:
    """Okapi BM25 idf of a term found in ``df`` of ``n_docs`` rows (the formula ``_prepare`` vectorizes)."""
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


class BM25Index:
    """Term-frequency matrix plus vocabulary, with BM25 scoring and name-variant expansion."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.terms: list[str] = []
        self._rows: list[sparse.csr_matrix] = []
        self._matrix: sparse.csr_matrix | None = sparse.csr_matrix((0, 0), dtype=np.float32)
        self._csc: _Prepared | None = None
        self._skeletons: dict[str, set[int]] | None = None
        # ``variants`` found with the skeleton table they were looked up in (a new table drops them).
        self._variants: tuple[object, dict[tuple[str, int], list[tuple[str, float]]]] = (None, {})
        self._live: np.ndarray | None = None

    def set_live(self, live: np.ndarray | None) -> None:
        """Which rows count (removed documents' rows stay until compaction but must not count)."""
        self._live = live
        self._csc = None

    # -- building -----------------------------------------------------------------------------------
    def add(self, term_lists: Iterable[Sequence[str]]) -> None:
        """Append one row per term list."""
        data, indices, nnz = encode_rows(term_lists, self.vocab, self.terms)
        indptr = np.concatenate([[0], np.cumsum(nnz, dtype=np.int64)])
        self._append(sparse.csr_matrix((data, indices, indptr), shape=(len(nnz), len(self.terms))))

    def extended(self, new_terms: Sequence[str], data: np.ndarray, indices: np.ndarray, nnz: np.ndarray) -> "BM25Index":
        """A new index: this one's rows plus rows given as arrays (``encode_rows``), with ``new_terms``
        appended to the vocabulary. This index is left unchanged (readers may still be using it)."""
        out = BM25Index()
        out.terms = self.terms + list(new_terms)
        out.vocab = dict(self.vocab)
        for i, term in enumerate(new_terms, len(self.terms)):
            out.vocab[term] = i
        if len(indices) and int(indices.max()) >= len(out.terms):
            raise ValueError("BM25 rows use term ids past the vocabulary")
        out._matrix = _resize(self.matrix, len(out.terms))
        if len(nnz):
            indptr = np.concatenate([[0], np.cumsum(nnz, dtype=np.int64)])
            out._append(sparse.csr_matrix((data, indices, indptr), shape=(len(nnz), len(out.terms))))
        return out

    @classmethod
    def from_arrays(cls, terms: list[str], data: np.ndarray, indices: np.ndarray, nnz: np.ndarray) -> "BM25Index":
        """Rows stored as per-row term counts (``encode_rows``): values, term ids and entries per row."""
        index = cls()
        index.terms = list(terms)
        index.vocab = {t: i for i, t in enumerate(index.terms)}
        if len(index.vocab) != len(index.terms):
            raise ValueError("the BM25 vocabulary lists a term twice")
        indptr = np.concatenate([[0], np.cumsum(nnz, dtype=np.int64)])
        if indptr[-1] != len(indices) or len(indices) != len(data):
            raise ValueError("BM25 arrays disagree with each other")
        if len(indices) and (int(indices.max()) >= len(index.terms) or int(indices.min()) < 0):
            raise ValueError("BM25 rows use term ids outside the vocabulary")
        index._matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(nnz), len(index.terms)))
        return index

    def _append(self, block: sparse.csr_matrix) -> None:
        current = self.matrix
        width = len(self.terms)
        current = _resize(current, width)
        block = _resize(block, width)
        self._matrix = sparse.vstack([current, block], format="csr") if current.shape[0] else block
        if self._live is not None:
            self._live = np.concatenate([self._live, np.ones(block.shape[0], dtype=bool)])
        self._csc = None
        self._skeletons = None

    def keep_rows(self, keep: np.ndarray) -> None:
        """Drop rows where ``keep`` is False (compaction)."""
        self._matrix = self.matrix[np.flatnonzero(keep)]
        self._live = None
        self._csc = None

    @property
    def matrix(self) -> sparse.csr_matrix:
        assert self._matrix is not None
        return self._matrix

    @property
    def n_rows(self) -> int:
        return self.matrix.shape[0]

    # -- scoring ------------------------------------------------------------------------------------
    def _prepare(self) -> "_Prepared":
        """Column-major matrix and per-row/term statistics, built once and published in one
        assignment, so concurrent readers never see half of them."""
        state = self._csc
        if state is None:
            m = self.matrix
            live = self._live if self._live is not None and len(self._live) == m.shape[0] else None
            if live is not None and not live.all():
                m = sparse.diags(live.astype(np.float32)) @ m  # dead rows count for nothing
                m.eliminate_zeros()
            lengths = np.asarray(m.sum(axis=1)).ravel()
            n_live = max(int((lengths > 0).sum()), 1)
            avgdl = float(lengths.sum() / n_live) if lengths.sum() else 1.0
            csc = sparse.csc_matrix(m)
            df = np.diff(csc.indptr)
            norm = (K1 * (1 - B + B * lengths / avgdl)).astype(np.float32)
            idf = np.log(1 + (n_live - df + 0.5) / (df + 0.5)).astype(np.float32)
            # Each posting's whole BM25 contribution, computed once here instead of per query: a
            # query is then one scipy sparse product over its terms' columns (C loops, no Python
            # arithmetic per posting). Stored in place of the counts: no extra memory.
            impact = csc.data.astype(np.float32, copy=True)  # the term counts, turned into impacts in place
            # In blocks of whole columns: at 1M rows the postings are ~45M, and the temporaries stay small.
            bounds = np.unique(np.searchsorted(csc.indptr, np.arange(0, len(impact), _IMPACT_BLOCK), side="right") - 1)
            for c0, c1 in zip(bounds, list(bounds[1:]) + [csc.shape[1]]):
                lo, hi = csc.indptr[c0], csc.indptr[c1]
                tf = impact[lo:hi]
                denominator = norm[csc.indices[lo:hi]]
                denominator += tf
                tf /= denominator
                tf *= np.repeat(idf[c0:c1] * (K1 + 1), df[c0:c1])
            csc = sparse.csc_matrix((impact, csc.indices, csc.indptr), shape=csc.shape)
            state = _Prepared(csc=csc, norm=norm, df=df, idf=idf)
            self._csc = state
        return state

    def variants(self, term: str, max_edits: int = 1) -> list[tuple[str, float]]:
        """Vocabulary terms that spell the same name differently, with a weight below 1.

        Two terms are variants when their consonant skeletons (``normalize.skeleton``) are equal
        (weight 0.8), or, with ``max_edits=1``, differ by one edit (weight 0.5). Short skeletons
        collide with unrelated words (القدم / القادمة), so an exact match needs four consonant
        classes and a one-edit match five.

        The lookup crosses scripts: an Arabic name finds its Latin spellings (ترهوني → tarhouni) and
        a Latin one its Arabic spellings, so a name matches whichever language the corpus is in. Within
        the Latin script only exact skeletons count (English words are not misspelled names), and the
        one-edit match stays within the Arabic script, where spellings really drift.
        """
        return list(self._remembered((term, max_edits), lambda: self._find_variants(term, max_edits)))

    def _remembered(self, key: tuple[str, int], find):
        """``find()``, kept per key while the skeleton table stays the same (questions repeat their words)."""
        table, kept = self._variants
        found = kept.get(key) if table is not None and table is self._skeletons else None
        if found is None:
            found = find()
            table, kept = self._variants
            if table is None or table is not self._skeletons or len(kept) >= _VARIANTS_KEPT:
                kept = {}
                self._variants = (self._skeletons, kept)
            kept[key] = found
        return found

    def _find_variants(self, term: str, max_edits: int) -> list[tuple[str, float]]:
        """``variants`` looked up in the skeleton table (built on first use)."""
        if len(term) < 4:
            return []
        key = skeleton(term)
        if len(key) < 4:
            return []
        self._skeleton_table()
        out: dict[str, float] = {}
        arabic = is_arabic_token(term)
        probes = [key] + (_with_deletions(key)[1:] if arabic and len(key) >= 5 and max_edits else [])
        for probe in probes:
            for idx in self._skeletons.get(probe, ()):
                vocab_term = self.terms[idx]
                if vocab_term == term:
                    continue
                vkey = skeleton(vocab_term)
                if vkey == key:
                    weight = 0.8
                elif max_edits and len(key) >= 5 and len(vkey) >= 5 and edit_distance_at_most_one(key, vkey):
                    weight = 0.5
                else:
                    continue
                out[vocab_term] = max(out.get(vocab_term, 0.0), weight)
        for idx in self._skeletons.get(_LATIN_KEY + key, ()):
            vocab_term = self.terms[idx]
            if vocab_term != term and not vocab_term.startswith(term) and not term.startswith(vocab_term):
                out[vocab_term] = max(out.get(vocab_term, 0.0), 0.8)
        return sorted(out.items())

    def _skeleton_table(self) -> dict[str, set[int]]:
        """The skeleton lookup table of the vocabulary, built on first use."""
        if self._skeletons is None:
            # Symmetric-deletion table: a skeleton and each of its one-letter deletions point at the
            # vocabulary ids, so an edit-distance-1 lookup is a handful of dict hits, not a scan.
            # Latin terms are keyed by their exact skeleton only, prefixed to keep the scripts apart.
            table: dict[str, set[int]] = {}
            # Arabic terms of two or three classes are keyed apart, for ``short_spellings``.
            for idx, vocab_term in enumerate(self.terms):
                if len(vocab_term) < 3:
                    continue
                if is_arabic_token(vocab_term):
                    vkey = skeleton(vocab_term)
                    if len(vkey) >= 4 and len(vocab_term) >= 4:
                        for k in _with_deletions(vkey):
                            table.setdefault(k, set()).add(idx)
                    elif 2 <= len(vkey) <= 3:
                        table.setdefault(_SHORT_KEY + vkey, set()).add(idx)
                elif len(vocab_term) < 4:
                    continue
                elif vocab_term.isascii() and vocab_term.isalpha():
                    vkey = skeleton(vocab_term)
                    if len(vkey) >= 4:
                        table.setdefault(_LATIN_KEY + vkey, set()).add(idx)
            self._skeletons = table
        return self._skeletons

    def short_spellings(self, name: str) -> tuple[str, ...]:
        """Arabic terms of the vocabulary that may spell a short Latin name (Umar / عمر, Hudhaifah /
        حذيفة, Hurairah / هريرة). Two or three consonant classes are too few for ``variants``, so the
        Arabic long vowels must also stand where the Latin spelling has vowels
        (``translit.same_short_name``). Common words still pass (Malik / الملك, the king): these
        terms count for the ranking's coverage only (``Concept.spellings``); they are not search terms."""
        stem = latin_name_stem(name)
        key = skeleton(stem)
        if is_arabic_token(name) or not 2 <= len(key) <= 3:
            return ()
        self._skeleton_table()

        def find() -> tuple[str, ...]:
            return tuple(sorted(self.terms[idx] for idx in self._skeletons.get(_SHORT_KEY + key, ())
                                if same_short_name(stem, self.terms[idx], strict=len(key) == 2)))

        return self._remembered((stem, -1), find)

    def score(self, weighted_terms: dict[str, float], live: np.ndarray | None = None) -> np.ndarray:
        """BM25 score of every row for the weighted query terms (dead rows score 0)."""
        if live is not None and (self._live is None or len(self._live) != len(live) or not np.array_equal(self._live, live)):
            self.set_live(live)
        csc = self._prepare().csc
        columns, weights = [], []
        for term, weight in weighted_terms.items():
            idx = self.vocab.get(term)
            if idx is not None and idx < csc.shape[1]:
                columns.append(idx)
                weights.append(weight)
        if not columns:
            return np.zeros(csc.shape[0], dtype=np.float32)
        # Dead rows were zeroed when the matrix was prepared for this ``live``.
        return np.asarray(csc[:, columns] @ np.asarray(weights, dtype=np.float32), dtype=np.float32).ravel()

    @staticmethod
    def top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best rows of ``score``'s result with a score above 0, best first, and their scores.

        Selects among the rows that share a term with the query, not among every row: at 1M rows a
        partition of the whole array cost more than the scoring. Ties: the earlier row first, also
        at the ``n``-th place (a partition alone would pick any of the rows tied there)."""
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > n:
            theta = scores[candidates[np.argpartition(-scores[candidates], n - 1)[:n]]].min()
            candidates = candidates[scores[candidates] >= theta]
        rows = candidates[np.lexsort((candidates, -scores[candidates]))][:n]
        return rows, scores[rows]

    def document_frequency(self, term: str) -> int:
        """Number of live rows containing ``term``."""
        df = self._prepare().df
        idx = self.vocab.get(term)
        return int(df[idx]) if idx is not None and idx < len(df) else 0


@dataclass(frozen=True)
class _Prepared:
    csc: sparse.csc_matrix
    norm: np.ndarray
    df: np.ndarray
    idf: np.ndarray


def encode_rows(term_lists: Iterable[Sequence[str]], vocab: dict[str, int], terms: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Term counts of each list as flat arrays (values, term ids, entries per row); new terms are
    appended to ``terms`` and ``vocab`` (in place)."""
    indices: list[int] = []
    data: list[float] = []
    nnz: list[int] = []
    for row in term_lists:
        counts = Counter(row)
        for term, count in counts.items():
            idx = vocab.get(term)
            if idx is None:
                idx = vocab[term] = len(terms)
                terms.append(term)
            indices.append(idx)
            data.append(float(count))
        nnz.append(len(counts))
    return np.asarray(data, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(nnz, dtype=np.int32)


_LATIN_KEY = "latin:"
_SHORT_KEY = "short:"


def _with_deletions(key: str) -> list[str]:
    return [key] + [key[:i] + key[i + 1 :] for i in range(len(key))] if len(key) >= 5 else [key]


def _resize(matrix: sparse.csr_matrix, width: int) -> sparse.csr_matrix:
    if matrix.shape[1] == width:
        return matrix
    return sparse.csr_matrix((matrix.data, matrix.indices, matrix.indptr), shape=(matrix.shape[0], width))
