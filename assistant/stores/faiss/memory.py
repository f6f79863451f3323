"""``IndexData``: the in-memory contents of one snapshot (or of an index built in memory) and its
exact, HNSW and BM25 searches; ``compact`` drops its removed rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from assistant.records import Chunk, Document
from assistant.stores.base import Batch, IndexSettings
from assistant.stores.faiss.chunk_rows import ChunkRows
from assistant.stores.faiss.vectors import HNSW_EF_SEARCH, Part, build_faiss_index, flat_index, load_faiss, wants_hnsw
from assistant.stores.lexical import BM25Index

# A reader following many small commits merges its in-memory exact parts past this many.
MAX_FLAT_PARTS = 8


@dataclass(frozen=True)
class OnDisk:
    """Which snapshot an ``IndexData`` mirrors, and how much of each log it has read."""

    generation: str
    logs: dict[str, int]
    crc: dict[str, int]
    rows: int
    ann_rows: int
    n_terms: int


class IndexData:
    """The in-memory contents of one snapshot (or of an index being built in memory).

    Args:
        settings: What the index is built with.
        documents: Documents by id.
        chunks: One entry per row; None for a removed row not yet compacted.
        vectors: The rows' vectors (an exact FAISS index is built over them), or give ``parts``.
        bm25: Term counts of the same rows.
    """

    def __init__(self, settings: IndexSettings, documents: dict[str, Document] | None = None,
                 chunks: list[Chunk | None] | None = None, vectors: np.ndarray | None = None,
                 bm25: BM25Index | None = None, *, parts: list[Part] | None = None, snapshot: str = "",
                 on_disk: OnDisk | None = None) -> None:
        self.settings = settings
        self.documents: dict[str, Document] = documents if documents is not None else {}
        self.chunks = chunks if chunks is not None else []  # type: ignore[assignment]
        self.bm25 = bm25 if bm25 is not None else BM25Index()
        if parts is None:
            vectors = np.zeros((0, settings.dim), dtype=np.float32) if vectors is None else vectors
            parts = [Part(0, flat_index(vectors, settings.dim))]
        self.parts: list[Part] = parts
        self.snapshot = snapshot
        self.on_disk = on_disk
        self._changed()

    @property
    def chunks(self) -> ChunkRows:
        """One entry per row: the ``Chunk``, or None for a removed row not yet compacted."""
        return self._chunks

    @chunks.setter
    def chunks(self, value: Iterable[Chunk | None]) -> None:
        self._chunks = value if isinstance(value, ChunkRows) else ChunkRows.of(value, self.documents)

    def _changed(self) -> None:
        self._rows: dict[str, int] | None = None
        self._live_cache: np.ndarray | None = None
        self._dead_cache: np.ndarray | None = None
        self._params: dict[int, tuple] = {}
        self._bm25_last: tuple | None = None

    # -- the ChunkBackend protocol (see assistant/stores/base.py) ----------------------------------
    @property
    def live(self) -> np.ndarray:
        """Mask of rows whose chunk is still indexed (cached; reset by every change)."""
        live = self._live_cache
        if live is None or len(live) != len(self.chunks):
            live = np.fromiter((c is not None for c in self.chunks.ids), dtype=bool, count=len(self.chunks))
            self._live_cache = live
        return live

    @property
    def n_live(self) -> int:
        return int(self.live.sum())

    @property
    def vocabulary(self) -> BM25Index:
        return self.bm25

    @property
    def n_vectors(self) -> int:
        return sum(p.index.ntotal for p in self.parts)

    @property
    def faiss_type(self) -> str:
        """``IndexHNSWSQ`` (or ``IndexHNSWFlat``) when an HNSW graph serves (part of) the rows, else ``IndexFlatIP``."""
        hnsw = [p for p in self.parts if p.is_hnsw]
        return type(hnsw[0].index).__name__ if hnsw else "IndexFlatIP"

    def _row_of(self) -> dict[str, int]:
        rows = self._rows
        if rows is None:
            rows = {c: i for i, c in enumerate(self.chunks.ids) if c is not None}
            self._rows = rows
        return rows

    def _dead_rows(self) -> np.ndarray:
        dead = self._dead_cache
        if dead is None:
            dead = np.flatnonzero(~self.live).astype(np.int64)
            self._dead_cache = dead
        return dead

    def _search_params(self, number: int, part: Part, k: int):
        """FAISS search parameters for one part: efSearch for HNSW, and a selector skipping dead rows."""
        cached = self._params.get(number)
        if cached is None:
            faiss = load_faiss()
            dead = self._dead_rows()
            local = dead[(dead >= part.start) & (dead < part.end)] - part.start
            params = faiss.SearchParametersHNSW() if part.is_hnsw else faiss.SearchParameters()
            keep: tuple = ()
            if len(local):
                batch = faiss.IDSelectorBatch(np.ascontiguousarray(local, dtype=np.int64))
                selector = faiss.IDSelectorNot(batch)
                params.sel = selector
                keep = (batch, selector)  # the C++ objects must outlive the parameters
            cached = (params, len(local), keep)
            self._params[number] = cached
        params, n_dead, _ = cached
        if part.is_hnsw:
            params.efSearch = max(HNSW_EF_SEARCH, k)
        return params, n_dead

    def dense_search(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Top ``n`` live chunks by cosine: ``(chunk_id, score)``."""
        if not self.chunks or n < 1:
            return []
        query = np.ascontiguousarray(np.asarray(vector, dtype=np.float32).reshape(1, -1))
        found: list[tuple[float, int]] = []
        for number, part in enumerate(self.parts):
            if part.index.ntotal == 0:
                continue
            params, n_dead = self._search_params(number, part, n)
            k = min(n, part.index.ntotal - n_dead)
            if k <= 0:
                continue
            scores, rows = part.index.search(query, k, params=params)
            found.extend((s, part.start + r) for s, r in zip(scores[0].tolist(), rows[0].tolist()) if r >= 0)
        found.sort(key=lambda sr: -sr[0])
        ids = self._ids_of(r for _, r in found)
        return [(ids[r], s) for s, r in found if r in ids][:n]

    def _ids_of(self, rows: Iterable[int]) -> dict[int, str]:
        """Chunk ids of the live ones of these rows."""
        ids = self.chunks.ids
        return {r: ids[r] for r in rows if r < len(ids) and ids[r] is not None}

    def _bm25_all(self, terms: dict[str, float]) -> np.ndarray:
        """BM25 of every row; the last query's array is kept, since a hybrid search asks twice."""
        if not terms or not self.chunks:
            return np.zeros(len(self.chunks), dtype=np.float32)
        key = tuple(sorted(terms.items()))
        last = self._bm25_last
        if last is not None and last[0] == key:
            return last[1]
        scores = self.bm25.score(terms, self.live)
        self._bm25_last = (key, scores)
        return scores

    def lexical_search(self, terms: dict[str, float], n: int) -> list[tuple[str, float]]:
        """Top ``n`` live chunks by BM25 over the weighted terms (only rows sharing a term)."""
        if n <= 0:
            return []
        rows, scores = BM25Index.top(self._bm25_all(terms), n)
        ids = self.chunks.ids
        return [(ids[r], float(s)) for r, s in zip(rows, scores)]  # type: ignore[misc]

    def vectors_of(self, rows: Iterable[int]) -> np.ndarray:
        """The stored vectors of these rows (read back from the FAISS parts)."""
        rows = np.asarray(list(rows), dtype=np.int64)
        out = np.zeros((len(rows), self.settings.dim), dtype=np.float32)
        for part in self.parts:
            mask = (rows >= part.start) & (rows < part.end)
            if mask.any():
                out[mask] = part.index.reconstruct_batch(np.ascontiguousarray(rows[mask] - part.start))
        return out

    @property
    def vectors(self) -> np.ndarray:
        """Every row's vector as one matrix (a copy: for saving and exporting, not for queries)."""
        blocks = [p.index.reconstruct_n(0, p.index.ntotal) for p in self.parts if p.index.ntotal]
        if not blocks:
            return np.zeros((0, self.settings.dim), dtype=np.float32)
        return np.ascontiguousarray(np.vstack(blocks), dtype=np.float32)

    def _rows_for(self, chunk_ids: Iterable[str]) -> dict[str, int]:
        """The live row of each of these chunk ids (unknown or removed ones left out)."""
        rows = self._row_of()
        return {c: rows[c] for c in chunk_ids if c in rows}

    def dense_scores(self, chunk_ids: list[str], vector: np.ndarray) -> dict[str, float]:
        rows = self._rows_for(chunk_ids)
        known = [c for c in chunk_ids if c in rows]
        if not known:
            return {}
        cosines = self.vectors_of(rows[c] for c in known) @ np.asarray(vector, dtype=np.float32)
        return {c: float(v) for c, v in zip(known, cosines)}

    def lexical_scores(self, chunk_ids: list[str], terms: dict[str, float]) -> dict[str, float]:
        rows = self._row_of()
        scores = self._bm25_all(terms)
        return {c: float(scores[rows[c]]) for c in chunk_ids if c in rows and scores[rows[c]] > 0}

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        rows = self._row_of()
        return {c: self.chunks[rows[c]] for c in chunk_ids if c in rows}  # type: ignore[misc]

    def get_document(self, doc_id: str) -> Document | None:
        return self.documents.get(doc_id)

    def list_documents(self) -> list[Document]:
        return sorted(self.documents.values(), key=lambda d: d.doc_id)

    def n_documents(self) -> int:
        return len(self.documents)

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chunk_id, doc_id in zip(self.chunks.ids, self.chunks.doc_ids):
            if chunk_id is not None:
                counts[doc_id] = counts.get(doc_id, 0) + 1
        return counts

    # -- changes in memory (migrations, benchmarks, compaction; ingestion uses IndexWriter) ------------
    def add_documents(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Add (or replace) documents with their chunks, vectors and BM25 terms, in memory."""
        for doc in docs:
            self.remove_document(doc.doc_id)
        self.append_rows(docs, chunks, vectors, terms)

    def append_rows(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Append new documents' rows (ids not in the index yet: no replacement scan)."""
        if len(chunks) != len(vectors) or len(chunks) != len(terms):
            raise ValueError(f"{len(chunks)} chunks, {len(vectors)} vectors and {len(terms)} term lists")
        for doc in docs:
            self.documents[doc.doc_id] = doc
        start = len(self.chunks)
        self.chunks.extend(chunks)
        if len(chunks):
            self.parts = self.parts + [Part(start, flat_index(vectors, self.settings.dim))]
            self._merge_flat_parts()
        self.bm25.add(terms)
        self._changed()

    def _merge_flat_parts(self) -> None:
        """Past ``MAX_FLAT_PARTS`` exact parts, copy them into one (new object: readers keep the old)."""
        flat = [p for p in self.parts if not p.is_hnsw and p.index.ntotal]
        if len(flat) <= MAX_FLAT_PARTS:
            self.parts = [p for p in self.parts if p.is_hnsw or p.index.ntotal] or self.parts[:1]
            self._params = {}
            return
        hnsw = [p for p in self.parts if p.is_hnsw]
        merged = flat_index(np.vstack([p.index.reconstruct_n(0, p.index.ntotal) for p in flat]), self.settings.dim)
        self.parts = hnsw + [Part(flat[0].start, merged)]
        self._params = {}

    def build_vector_index(self) -> None:
        """One FAISS index over every row: exact below ``HNSW_THRESHOLD``, HNSW from there on."""
        single = len(self.parts) == 1 and self.parts[0].index.ntotal == len(self.chunks)
        want_hnsw = wants_hnsw(len(self.chunks))
        if single and self.parts[0].is_hnsw == want_hnsw:
            return
        self.parts = [Part(0, build_faiss_index(self.vectors, self.settings.dim))]
        self._params = {}

    def remove_document(self, doc_id: str) -> int:
        """Remove a document and its chunks, in memory; returns the number of chunks removed."""
        removed = 0
        rows = self.chunks
        for i, (chunk_id, owner) in enumerate(zip(rows.ids, rows.doc_ids)):
            if chunk_id is not None and owner == doc_id:
                rows[i] = None
                removed += 1
        self.documents.pop(doc_id, None)
        if removed:
            self._changed()
            self.bm25.set_live(self.live)  # document statistics changed
        return removed

    def export_batches(self, max_chunks: int = 2000) -> Iterator[Batch]:
        """Everything the index holds, ``(docs, chunks, vectors, terms)`` batches of whole documents in id
        order (``stores.base.Batch``); vectors and BM25 terms as stored (nothing is embedded again)."""
        matrix = self.bm25.matrix.tocsr()
        vocab_terms = self.bm25.terms

        def batch(docs: list[Document], rows: list[int]) -> Batch:
            terms = []
            for row in rows:
                lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
                terms.append([vocab_terms[i] for i, c in zip(matrix.indices[lo:hi], matrix.data[lo:hi]) for _ in range(int(c))])
            vectors = self.vectors_of(rows) if rows else np.zeros((0, self.settings.dim), dtype=np.float32)
            return docs, [self.chunks[r] for r in rows], np.ascontiguousarray(vectors, dtype=np.float32), terms  # type: ignore[misc]

        rows_of: dict[str, list[int]] = {}
        for row, chunk in enumerate(self.chunks):
            if chunk is not None:
                rows_of.setdefault(chunk.doc_id, []).append(row)
        docs: list[Document] = []
        rows: list[int] = []
        for doc in sorted(self.documents.values(), key=lambda d: d.doc_id):
            docs.append(doc)
            rows.extend(rows_of.get(doc.doc_id, []))
            if len(rows) >= max_chunks:
                yield batch(docs, rows)
                docs, rows = [], []
        if docs:
            yield batch(docs, rows)


def compact(data: IndexData) -> None:
    """Drop removed rows from vectors, chunks and BM25; the exact index is rebuilt over the rest."""
    live = data.live.copy()
    vectors = data.vectors_of(np.flatnonzero(live))
    data.chunks = [c for c in data.chunks if c is not None]  # becomes ChunkRows again
    data.parts = [Part(0, flat_index(vectors, data.settings.dim))]
    data.bm25.keep_rows(live)
    data._changed()
