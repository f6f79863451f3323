"""The on-disk index: a directory of versioned snapshots over append-only logs.

Layout::

    index/
      CURRENT            name of the live snapshot, replaced atomically (os.replace)
      .lock              held (flock) by the one process that writes
      snap-<time>-<id>/
        manifest.json    format, embedder, chunking, normalizer, counts, the document table, and the
                         committed length of every log below
        documents.jsonl  log: one Document per line (a replaced document's older line stays until compaction)
        chunks.jsonl     log: one chunk per row (offsets only: the text is the document's text[start:end])
        vectors.f32      log: float32 rows, L2-normalized; row i is chunk row i
        bm25_*           logs: BM25 term counts per row (values, term ids, entries per row) and vocabulary
        dead.i32         rows whose document was removed or replaced (until compaction)
        ann.faiss        HNSW graph over rows [0, ann_rows), present once the index is large

**Commits cost what they add.** A writer makes the new snapshot folder by hard-linking the live
snapshot's logs, appending the new rows past each log's committed length, and writing a new
``dead.i32`` and manifest; then it points CURRENT at it. A log file is shared by several snapshots,
each reading only its committed prefix, so appending never changes what an older snapshot holds and a
crash at any moment leaves the live snapshot complete (bytes a killed writer appended past the prefix
are ignored, and cut by the next writer). Rebuilds and compactions write fresh logs (a new
"generation"). Adding one article to a 100k-passage index writes a few kilobytes instead of the
whole index (BENCHMARKS.md).

**Vectors.** Below ``HNSW_THRESHOLD`` rows every search is exact (flat inner product, built in memory
from ``vectors.f32`` at load). Past it, ``ann.faiss`` holds an HNSW graph over the first rows and the
rows appended since (at most ``TAIL_MAX_ROWS``) are searched exactly; a commit that would exceed that
extends the graph. Removed rows are filtered out inside FAISS (an ID selector).

**Readers** load a snapshot once and then follow commits incrementally (``IndexStore.refresh``): the
rows appended since are read from the logs; nothing already loaded is read again.

Before use, a snapshot is validated: CURRENT must name a snapshot folder of this index, every file must
be at least as long as the manifest's committed length (exactly as long for ``dead.i32``,
``ann.faiss``), every log byte read must match the manifest's CRC-32 of the committed prefix (chained
across appends, so a reader following commits checks only the new bytes; the vector rows held by the
HNSW graph are not re-read), arrays are read as raw little-endian numbers (nothing is ever unpickled),
``ann.faiss`` must be an HNSW FAISS index, and chunks, vectors, BM25 rows, documents and the manifest
must agree (``consistency_problems``). A snapshot that fails any check raises ``IndexCorruptError``
naming the problem. Snapshots of format 1 (one file per part, before the logs) are still read; the
first commit rewrites them as logs (``IndexStore.writer``).

Test hook: ``ASSISTANT_TEST_SLOW_SAVE=SECONDS`` makes ``save`` sleep after each step (logs appended,
snapshot folder renamed, new pointer written), so the crash tests can kill a writer mid-save.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from assistant.stores.base import DocInfo, IndexSettings, check_settings
from assistant.stores.lexical import BM25Index, encode_rows
from assistant.errors import IndexCorruptError, IndexLockedError, IndexMismatchError
from assistant.records import Chunk, Document

log = logging.getLogger("assistant")

FORMAT_VERSION = 2
# Format 1 (one file per part, rewritten by every commit) is still read; the first commit upgrades it.
READABLE_FORMATS = (1, 2)
# Exact search of N vectors costs ~0.11 ms per 1,000 on one core; HNSW32 answers in < 1 ms with
# recall@10 ≈ 0.98 at efSearch 256. The switch-over is where exact search reaches 5 ms, a quarter of
# the 20 ms retrieval budget: ≈ 50k vectors (BENCHMARKS.md, "Index type").
HNSW_THRESHOLD = int(os.environ.get("ASSISTANT_HNSW_THRESHOLD", "50000"))
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
# Rows appended after the HNSW graph are searched exactly; past this many the commit extends the graph.
TAIL_MAX_ROWS = int(os.environ.get("ASSISTANT_TAIL_MAX_ROWS", "20000"))
# Compact (drop removed rows, write fresh logs) once this share of rows is dead.
COMPACT_DEAD_SHARE = 0.2
KEEP_OLD_SNAPSHOTS = 2
# A reader following many small commits merges its in-memory exact parts past this many.
MAX_FLAT_PARTS = 8
LOG_FILES = ("documents.jsonl", "chunks.jsonl", "vectors.f32", "bm25_data.f32", "bm25_indices.i32",
             "bm25_rownnz.i32", "bm25_vocab.txt")
DEAD_FILE = "dead.i32"
ANN_FILE = "ann.faiss"
_SNAPSHOT_NAME = re.compile(r"snap-[0-9A-Za-z]+-[0-9a-f]{8}")
# The FAISS index types ann.faiss may hold (their four-byte tags): HNSW over float16 rows (what this
# version writes: half the memory of float32 for the same recall, BENCHMARKS.md) or over float32 rows.
_FAISS_TAGS = {b"IHNs": "IndexHNSWSQ", b"IHNf": "IndexHNSWFlat"}
# A reader that loses the race with a fast writer several times in a row (each commit deletes an old
# snapshot) starts over, with a short growing pause, up to this many times.
_LOAD_ATTEMPTS = 30
LOCK_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class _OnDisk:
    """Which snapshot an ``IndexData`` mirrors, and how much of each log it has read."""

    generation: str
    logs: dict[str, int]
    crc: dict[str, int]
    rows: int
    ann_rows: int
    n_terms: int


@dataclass(frozen=True)
class _Part:
    """A FAISS index over rows ``[start, start + index.ntotal)``; never changed once built."""

    start: int
    index: Any

    @property
    def end(self) -> int:
        return self.start + self.index.ntotal

    @property
    def is_hnsw(self) -> bool:
        return hasattr(self.index, "hnsw")


def _faiss():
    import faiss  # imported lazily: it is heavy and not needed to read metadata

    # One query at a time is searched: on 2 cores OpenMP threads only add overhead and stalls
    # (exact search of 10k vectors: 15 ms on two threads, 0.48 ms on one; BENCHMARKS.md).
    faiss.omp_set_num_threads(1)
    return faiss


def _flat(vectors: np.ndarray, dim: int):
    index = _faiss().IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim))
    return index


def build_hnsw(vectors: np.ndarray, dim: int, base: Any = None):
    """HNSW over ``vectors`` stored as float16; with ``base``, that graph extended (in place) by ``vectors``.

    float16 rows halve the graph's memory and file (172 → 99 MB at 100k passages) at the same recall@10
    (0.981 vs 0.983 at efSearch 256) and a little faster; the rows read back differ by < 1e-4.
    """
    faiss = _faiss()
    if base is None:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.train(np.zeros((1, dim), dtype=np.float32))  # float16 needs no training; FAISS wants the call
    else:
        index = base
    index.hnsw.efSearch = HNSW_EF_SEARCH
    if len(vectors):
        # Building is a batch job: let it use every core (queries run on one thread).
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(1)
    return index


def build_faiss_index(vectors: np.ndarray, dim: int):
    """Exact inner-product index below ``HNSW_THRESHOLD`` rows, HNSW from there on."""
    return build_hnsw(vectors, dim) if len(vectors) >= HNSW_THRESHOLD else _flat(vectors, dim)


def _doc_line(doc: Document) -> str:
    row = {"doc_id": doc.doc_id, "title": doc.title, "source": doc.source, "text": doc.text,
           "content_hash": doc.content_hash, "pages": [list(p) for p in doc.pages],
           "added_at": doc.added_at, "kind": doc.kind}
    # Written only when set, so documents without them keep the bytes older versions wrote (and read).
    for name in ("published", "author", "site"):
        if getattr(doc, name):
            row[name] = getattr(doc, name)
    if doc.ocr_pages:
        row["ocr_pages"] = list(doc.ocr_pages)
    return json.dumps(row, ensure_ascii=False) + "\n"


def _chunk_line(chunk: Chunk | None) -> str:
    if chunk is None:
        return "null\n"
    return json.dumps({"chunk_id": chunk.chunk_id, "doc_id": chunk.doc_id, "start": chunk.start, "end": chunk.end,
                       "sentences": [list(s) for s in chunk.sentences], "page": chunk.page}, ensure_ascii=False) + "\n"


class ChunkRows(Sequence):
    """The chunk rows of an index, held as arrays; ``rows[i]`` makes the ``Chunk`` (or None for a
    removed row) on access, its text sliced from its document's text.

    100k ``Chunk`` objects with their own copy of the text take ~90 MB; these arrays ~10 MB, and a
    query only ever makes the few chunks it returns.
    """

    def __init__(self, documents: dict[str, Document]) -> None:
        self.documents = documents
        self.ids: list[str | None] = []
        self.doc_ids: list[str] = []
        self._bounds = array("q")     # start, end per row
        self._pages = array("i")      # page per row, -1 for none
        self._sent_ptr = array("q", [0])
        self._sents = array("q")      # sentence start, end pairs, all rows one after the other

    @classmethod
    def of(cls, chunks: Iterable[Chunk | None], documents: dict[str, Document]) -> "ChunkRows":
        rows = cls(documents)
        rows.extend(chunks)
        return rows

    def copy(self, documents: dict[str, Document]) -> "ChunkRows":
        """An independent copy reading its texts from ``documents``."""
        out = ChunkRows(documents)
        out.ids, out.doc_ids = list(self.ids), list(self.doc_ids)
        out._bounds, out._pages = array("q", self._bounds), array("i", self._pages)
        out._sent_ptr, out._sents = array("q", self._sent_ptr), array("q", self._sents)
        return out

    def append_row(self, chunk_id: str | None, doc_id: str, start: int, end: int,
                   sentences: Iterable[Iterable[int]] = (), page: int | None = None) -> None:
        """Append one row (``chunk_id`` None: a removed row). Offsets must fall inside the document."""
        if chunk_id is not None:
            doc = self.documents.get(doc_id)
            if doc is None:
                raise ValueError(f"chunk {chunk_id} belongs to unknown document {doc_id!r}")
            if not 0 <= start < end <= len(doc.text):
                raise ValueError(f"chunk {chunk_id} offsets {start}..{end} fall outside its document")
        self.ids.append(chunk_id)
        self.doc_ids.append(doc_id)
        self._bounds.extend((start, end))
        self._pages.append(-1 if page is None else int(page))
        for pair in sentences:
            a, b = pair
            self._sents.extend((int(a), int(b)))
        self._sent_ptr.append(len(self._sents))

    def append(self, chunk: Chunk | None) -> None:
        if chunk is None:
            self.append_row(None, "", 0, 0)
            return
        doc = self.documents.get(chunk.doc_id)
        if doc is not None and doc.text[chunk.start : chunk.end] != chunk.text:
            raise ValueError(f"chunk {chunk.chunk_id} text does not match its document offsets")
        self.append_row(chunk.chunk_id, chunk.doc_id, chunk.start, chunk.end, chunk.sentences, chunk.page)

    def extend(self, chunks: Iterable[Chunk | None]) -> None:
        for chunk in chunks:
            self.append(chunk)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        chunk_id = self.ids[i]
        if chunk_id is None:
            return None
        if i < 0:
            i += len(self.ids)
        doc_id = self.doc_ids[i]
        start, end = self._bounds[2 * i], self._bounds[2 * i + 1]
        lo, hi = self._sent_ptr[i], self._sent_ptr[i + 1]
        sents = self._sents
        page = self._pages[i]
        return Chunk(chunk_id=chunk_id, doc_id=doc_id, start=start, end=end, text=self.documents[doc_id].text[start:end],
                     sentences=tuple((sents[j], sents[j + 1]) for j in range(lo, hi, 2)), page=None if page < 0 else page)

    def __setitem__(self, i: int, value: None) -> None:
        if value is not None:
            raise TypeError("a chunk row can only be removed (set to None)")
        self.ids[i] = None

    def __iter__(self) -> Iterator[Chunk | None]:
        for i in range(len(self.ids)):
            yield self[i]


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
                 bm25: BM25Index | None = None, *, parts: list[_Part] | None = None, snapshot: str = "",
                 on_disk: _OnDisk | None = None) -> None:
        self.settings = settings
        self.documents: dict[str, Document] = documents if documents is not None else {}
        self.chunks = chunks if chunks is not None else []  # type: ignore[assignment]
        self.bm25 = bm25 if bm25 is not None else BM25Index()
        if parts is None:
            vectors = np.zeros((0, settings.dim), dtype=np.float32) if vectors is None else vectors
            parts = [_Part(0, _flat(vectors, settings.dim))]
        self.parts: list[_Part] = parts
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

    # -- the ChunkBackend protocol (see assistant/backend.py) -------------------------------------
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

    def _search_params(self, number: int, part: _Part, k: int):
        """FAISS search parameters for one part: efSearch for HNSW, and a selector skipping dead rows."""
        cached = self._params.get(number)
        if cached is None:
            faiss = _faiss()
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
            found.extend((float(s), part.start + int(r)) for s, r in zip(scores[0], rows[0]) if r >= 0)
        found.sort(key=lambda sr: -sr[0])
        out = []
        ids = self.chunks.ids
        for score, row in found:
            chunk_id = ids[row] if row < len(ids) else None
            if chunk_id is not None:
                out.append((chunk_id, score))
                if len(out) == n:
                    break
        return out

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

    def dense_scores(self, chunk_ids: list[str], vector: np.ndarray) -> dict[str, float]:
        rows = self._row_of()
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
            self.parts = self.parts + [_Part(start, _flat(vectors, self.settings.dim))]
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
        merged = _flat(np.vstack([p.index.reconstruct_n(0, p.index.ntotal) for p in flat]), self.settings.dim)
        self.parts = hnsw + [_Part(flat[0].start, merged)]
        self._params = {}

    def build_vector_index(self) -> None:
        """One FAISS index over every row: exact below ``HNSW_THRESHOLD``, HNSW from there on."""
        single = len(self.parts) == 1 and self.parts[0].index.ntotal == len(self.chunks)
        want_hnsw = len(self.chunks) >= HNSW_THRESHOLD
        if single and self.parts[0].is_hnsw == want_hnsw:
            return
        self.parts = [_Part(0, build_faiss_index(self.vectors, self.settings.dim))]
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

    # -- copying (assistant migrate: ChunkBackend.export_batches; append_rows is above) -------------------------
    def export_batches(self, max_chunks: int = 2000) -> Iterator[tuple[list[Document], list[Chunk], np.ndarray, list[list[str]]]]:
        """Everything the index holds, ``(docs, chunks, vectors, terms)`` batches of whole documents in id
        order (``stores.base.Batch``); vectors and BM25 terms as stored (nothing is embedded again)."""
        matrix = self.bm25.matrix.tocsr()
        vocab_terms = self.bm25.terms

        def batch(docs: list[Document], rows: list[int]) -> tuple[list[Document], list[Chunk], np.ndarray, list[list[str]]]:
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


class IndexWriter:
    """Changes to an index folder, made without loading it: ``IndexStore.save`` appends them.

    Knows the documents (id, content hash, source, rows) from the manifest; new documents are kept
    here until the commit. Obtain one with ``IndexStore.writer`` while holding the lock.
    """

    def __init__(self, settings: IndexSettings, base: str | None, manifest: dict[str, Any] | None,
                 dead: Iterable[int] = (), opened_on: str | None = None) -> None:
        self.settings = settings
        self.base = base
        # The live snapshot when this writer was made (base, or the one a rebuild replaces).
        self.opened_on = base if opened_on is None else opened_on
        self.manifest = manifest
        self.table: dict[str, DocInfo] = _doc_table(manifest) if manifest else {}
        self.rows = int(manifest["counts"]["rows"]) if manifest else 0
        self.dead: set[int] = {int(r) for r in dead}
        self.pending_docs: list[Document] = []
        self.pending_chunks: list[Chunk] = []
        self.pending_vectors: list[np.ndarray] = []
        self.pending_terms: list[list[str]] = []

    @property
    def n_rows(self) -> int:
        return self.rows + len(self.pending_chunks)

    @property
    def n_live(self) -> int:
        return self.n_rows - len(self.dead)

    def get_document(self, doc_id: str) -> DocInfo | None:
        return self.table.get(doc_id)

    def add_documents(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Add (or replace) documents; each document's chunks must be consecutive in ``chunks``."""
        if len(chunks) != len(vectors) or len(chunks) != len(terms):
            raise ValueError(f"{len(chunks)} chunks, {len(vectors)} vectors and {len(terms)} term lists")
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        counts: dict[str, int] = {}
        for i, chunk in enumerate(chunks):
            first.setdefault(chunk.doc_id, i)
            last[chunk.doc_id] = i
            counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        for doc in docs:  # check everything before changing anything
            if doc.doc_id not in counts:
                raise ValueError(f"document {doc.doc_id!r} has no chunks")
            if last[doc.doc_id] - first[doc.doc_id] + 1 != counts[doc.doc_id]:
                raise ValueError(f"the chunks of {doc.doc_id!r} are not consecutive")
        unknown = set(counts) - {d.doc_id for d in docs}
        if unknown:
            raise ValueError(f"chunks of documents not given: {sorted(unknown)[:3]}")
        start = self.n_rows
        for doc in docs:
            self.remove_document(doc.doc_id)
            self.table[doc.doc_id] = DocInfo(doc.doc_id, doc.content_hash, doc.source, start + first[doc.doc_id], counts[doc.doc_id])
        self.pending_docs.extend(docs)
        self.pending_chunks.extend(chunks)
        self.pending_vectors.append(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.settings.dim))
        self.pending_terms.extend(terms)

    def remove_document(self, doc_id: str) -> int:
        info = self.table.pop(doc_id, None)
        if info is None:
            return 0
        self.dead.update(range(info.first_row, info.first_row + info.n_rows))
        return info.n_rows


def _doc_table(manifest: dict[str, Any]) -> dict[str, DocInfo]:
    table = manifest.get("documents")
    if not isinstance(table, dict):
        raise ValueError("the manifest's document table is not a mapping")
    out = {}
    for doc_id, entry in table.items():
        if not (isinstance(entry, list) and len(entry) == 4 and isinstance(entry[0], str) and isinstance(entry[1], str)
                and all(isinstance(x, int) and x >= 0 for x in entry[2:])):
            raise ValueError(f"the manifest's entry for document {doc_id!r} is malformed")
        out[doc_id] = DocInfo(doc_id, entry[0], entry[1], entry[2], entry[3])
    return out


def _fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, payload: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def writer_lock(lock_file: Path, label: str, wait_seconds: float | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file``, waited for up to ``wait_seconds`` (default
    ``$ASSISTANT_LOCK_WAIT_SECONDS`` or 30), then ``IndexLockedError`` naming ``label`` and the holder's pid.

    The kernel releases the lock when the holder exits or is killed, so a crashed writer never leaves
    the index locked; each call opens its own file description, so threads serialize too. Only the
    pid is written into the file (command lines can hold passwords).
    """
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("ASSISTANT_LOCK_WAIT_SECONDS") or LOCK_WAIT_SECONDS)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_file, "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = ""
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        holder = f" (pid {int(lock_file.read_text().split()[0])} holds the lock)"
                    raise IndexLockedError(
                        f"Another process is writing to the index {label}{holder}; waited {wait_seconds:g} s. "
                        "Try again when it has finished."
                    ) from None
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _test_pause() -> None:
    """Test hook: sleep ``$ASSISTANT_TEST_SLOW_SAVE`` seconds between the steps of ``save``."""
    delay = os.environ.get("ASSISTANT_TEST_SLOW_SAVE")
    if delay:
        time.sleep(float(delay))


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith(".") or not name:
        raise ValueError(f"the manifest lists an invalid file name {name!r}")
    return name


def _file_problems(snap: Path, manifest: dict[str, Any]) -> list[str]:
    """Files missing from a snapshot, shorter than their committed log length, or of another size."""
    problems = []
    logs, files = manifest.get("logs"), manifest.get("files")
    if not isinstance(logs, dict) or not isinstance(files, dict):
        return ["the manifest's file lists are missing or not mappings"]
    if set(logs) != set(LOG_FILES):
        return [f"the manifest lists the logs {sorted(logs)}, expected {sorted(LOG_FILES)}"]
    crcs = manifest.get("crc32")
    if not isinstance(crcs, dict) or set(crcs) != set(LOG_FILES) or not all(isinstance(v, int) for v in crcs.values()):
        return ["the manifest's checksums are missing or malformed"]
    for table, exact in ((logs, False), (files, True)):
        for name, size in table.items():
            try:
                _check_name(name)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if not isinstance(size, int) or size < 0:
                problems.append(f"the manifest gives {name} the size {size!r}")
                continue
            try:
                actual = (snap / name).stat().st_size
            except OSError:
                problems.append(f"{name} is missing")
                continue
            if actual < size or (exact and actual != size):
                problems.append(f"{name} has {actual} bytes, the manifest says {size} (truncated or replaced?)")
    return problems


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(start)
        payload = fh.read(end - start)
    if len(payload) != end - start:
        raise ValueError(f"{path.name} ends before the manifest's length {end}")
    return payload


def _array(payload: bytes, dtype: str, what: str) -> np.ndarray:
    """Raw little-endian numbers (never a pickle: these files have no header to trust)."""
    size = np.dtype(dtype).itemsize
    if len(payload) % size:
        raise ValueError(f"{what} holds {len(payload)} bytes, not a whole number of {np.dtype(dtype).name} values")
    return np.frombuffer(payload, dtype=dtype).astype(dtype[1:], copy=True)


def _lines(payload: bytes, what: str) -> list[str]:
    if payload and not payload.endswith(b"\n"):
        raise ValueError(f"{what} does not end with a complete line")
    text = payload.decode("utf-8")
    return text.split("\n")[:-1] if text else []


class _LogReader:
    """Reads bytes ``[lo, hi)`` of a log in pieces, and checks their CRC-32 once all are read
    (``crc0``: the checksum of everything before ``lo``, or None when it is not known)."""

    def __init__(self, path: Path, lo: int, hi: int, crc0: int | None, expected: int) -> None:
        self.path, self.lo, self.hi, self.crc0, self.expected = path, lo, hi, crc0, expected
        self.crc = crc0 or 0
        self.fh = None

    def __enter__(self) -> "_LogReader":
        self.fh = open(self.path, "rb")
        self.fh.seek(self.lo)
        self.left = self.hi - self.lo
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.fh.close()
        if kind is None:
            if self.left:
                raise ValueError(f"{self.path.name} was not read to its committed length")
            if self.crc0 is not None and self.crc != self.expected:
                raise ValueError(f"{self.path.name} does not match its checksum (changed after it was written?)")

    def _take(self, n: int) -> bytes:
        payload = self.fh.read(min(n, self.left))
        if not payload and self.left:
            raise ValueError(f"{self.path.name} ends before the manifest's length {self.hi}")
        self.left -= len(payload)
        self.crc = zlib.crc32(payload, self.crc)
        return payload

    def read_all(self) -> bytes:
        parts = []
        while self.left:
            parts.append(self._take(self.left))
        return b"".join(parts)

    def lines(self, block: int = 1 << 24) -> Iterator[str]:
        """Complete lines, decoded, read ``block`` bytes at a time."""
        rest = b""
        while self.left:
            rest += self._take(block)
            cut = rest.rfind(b"\n") + 1
            if cut:
                yield from rest[:cut].decode("utf-8").split("\n")[:-1]
                rest = rest[cut:]
        if rest:
            raise ValueError(f"{self.path.name} does not end with a complete line")

    def arrays(self, dtype: str, values: int) -> Iterator[np.ndarray]:
        """Raw little-endian numbers (never a pickle: these files have no header to trust), in blocks."""
        size = np.dtype(dtype).itemsize
        if self.left % size:
            raise ValueError(f"{self.path.name} holds {self.left} bytes, not a whole number of {np.dtype(dtype).name} values")
        while self.left:
            yield np.frombuffer(self._take(values * size), dtype=dtype).astype(dtype[1:])

    def array(self, dtype: str) -> np.ndarray:
        blocks = list(self.arrays(dtype, max(1, self.left // np.dtype(dtype).itemsize)))
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks) if blocks else np.zeros(0, dtype=dtype[1:])


def _read_faiss(path: Path, dim: int):
    """Read ``ann.faiss`` after checking it is the index type a snapshot holds."""
    with open(path, "rb") as fh:
        tag = fh.read(4)
    if tag not in _FAISS_TAGS:
        raise ValueError(f"{path.name} is not an HNSW FAISS index (it starts with {tag!r})")
    index = _faiss().read_index(str(path))
    if index.d != dim:
        raise ValueError(f"{path.name} has dimension {index.d}, the manifest says {dim}")
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def _append(path: Path, committed: int, payload: bytes) -> int:
    """Cut ``path`` back to its committed length, append ``payload``, flush; the new length."""
    with open(path, "r+b") as fh:
        fh.truncate(committed)
        fh.seek(committed)
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())
    return committed + len(payload)


class IndexStore:
    """Reads and writes snapshots of one index directory (the FAISS store)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def uri(self) -> str:
        return str(self.root)

    def stored_settings(self) -> dict[str, Any] | None:
        """The settings the existing index was built with, or None when there is none."""
        if not self.exists():
            return None
        return self.read_manifest().get("settings")

    def empty(self, settings: IndexSettings) -> IndexData:
        return IndexData(settings)

    def version(self) -> str | None:
        """Changes whenever another process commits (used to reload)."""
        return self.current_snapshot()

    def open(self, settings: IndexSettings) -> IndexData:
        """The live contents, or an empty index when there is none yet."""
        return self.load(settings) if self.exists() else self.empty(settings)

    def writer(self, settings: IndexSettings, rebuild: bool = False) -> IndexWriter:
        """An ``IndexWriter`` over the live snapshot (or a new, empty index with ``rebuild``).

        Reads only the manifest and the list of removed rows. Call with the lock held.
        """
        name = self.current_snapshot()
        if name is None or rebuild:
            return IndexWriter(settings, None, None, opened_on=name)
        manifest = self.read_manifest(name)
        self.check_settings(manifest, settings)
        if manifest.get("format_version") == 1:
            # Upgrade once: everything rewritten as logs, then appended to like any other index.
            log.info("upgrading the index in %s from format 1 to %s", self.root, FORMAT_VERSION)
            name = self._save_full(self._load_v1(self.root / name, manifest))
            manifest = self.read_manifest(name)
        try:
            dead = _array((self.root / name / DEAD_FILE).read_bytes(), "<i4", DEAD_FILE)
            return IndexWriter(IndexSettings(**manifest["settings"]), name, manifest, dead.tolist())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(
                f"The index snapshot {self.root / name} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc

    # -- reading ------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / "CURRENT").is_file()

    def current_snapshot(self) -> str | None:
        """The live snapshot's folder name, or None when there is no index yet.

        Raises:
            IndexCorruptError: CURRENT names something other than a snapshot folder of this index
                (a path, ``..``, garbage).
        """
        try:
            raw = (self.root / "CURRENT").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"{self.root / 'CURRENT'} cannot be read: {exc}") from exc
        name = raw.decode("utf-8", errors="replace").strip()
        if not name:
            return None
        if not _SNAPSHOT_NAME.fullmatch(name):
            raise IndexCorruptError(
                f"{self.root / 'CURRENT'} names {name[:80]!r}, which is not a snapshot of this index. "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        return name

    def read_manifest(self, name: str | None = None) -> dict[str, Any]:
        """The manifest of snapshot ``name`` (default: the live one)."""
        name = name or self.current_snapshot()
        if name is None:
            raise IndexCorruptError(f"{self.root} holds no index (no CURRENT file)")
        try:
            manifest = json.loads((self.root / name / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"{self.root / name / 'manifest.json'} cannot be read: {exc}") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
            raise IndexCorruptError(f"{self.root / name / 'manifest.json'} is not an index manifest (no settings)")
        return manifest

    def check_settings(self, manifest: dict[str, Any], wanted: IndexSettings) -> None:
        """Raise ``IndexMismatchError`` naming the fix when the snapshot was built differently."""
        if manifest.get("format_version") not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"The index in {self.root} has format version {manifest.get('format_version')!r}; this version of the "
                f"assistant reads formats {', '.join(map(str, READABLE_FORMATS))}. Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        check_settings(str(self.root), manifest.get("settings", {}), wanted)

    def load(self, wanted: IndexSettings | None = None) -> IndexData:
        """Load the live snapshot, validating every file against the manifest.

        A writer in another process may commit and delete the snapshot being read (it keeps only the
        newest few); the load then starts over from the new CURRENT instead of reporting damage.
        """
        return self._follow(None, wanted)

    def refresh(self, data: IndexData, wanted: IndexSettings | None = None) -> IndexData:
        """The live snapshot, reading only what was committed after ``data``'s snapshot when it is
        the same generation (else a full load). ``data`` itself is never changed."""
        if data.on_disk is None or not self.exists():
            return self.open(wanted or data.settings)
        return self._follow(data, wanted)

    def _follow(self, base: IndexData | None, wanted: IndexSettings | None) -> IndexData:
        for attempt in range(_LOAD_ATTEMPTS):
            name = self.current_snapshot()
            if name is None:
                raise IndexCorruptError(f"{self.root} holds no index (no CURRENT file)")
            if base is not None and name == base.snapshot:
                return base
            try:
                return self._load_snapshot(name, wanted, base)
            except IndexCorruptError:
                if attempt + 1 < _LOAD_ATTEMPTS and self.current_snapshot() != name:
                    time.sleep(min(0.01 * attempt, 0.2))
                    continue
                raise
        raise AssertionError("unreachable")

    def _load_snapshot(self, name: str, wanted: IndexSettings | None, base: IndexData | None = None) -> IndexData:
        manifest = self.read_manifest(name)
        if wanted is not None:
            self.check_settings(manifest, wanted)
        snap = self.root / name
        if manifest.get("format_version") == 1:
            return self._load_v1(snap, manifest)
        problems = _file_problems(snap, manifest)
        if problems:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged: {'; '.join(problems)}. "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        try:
            table = _doc_table(manifest)
            data = self._read(snap, manifest, base, table)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc
        problems = consistency_problems(data, manifest, table)
        if problems:
            raise IndexCorruptError(f"The index snapshot {snap} is inconsistent: {'; '.join(problems)}")
        return data

    def _load_v1(self, snap: Path, manifest: dict[str, Any]) -> IndexData:
        """A format-1 snapshot: documents.jsonl, chunks.jsonl (with text; null for removed rows),
        vectors.npy, BM25 .npy arrays and vocabulary (index.faiss is rebuilt from the vectors)."""
        try:
            for fname, size in (manifest.get("files") or {}).items():
                actual = (snap / _check_name(fname)).stat().st_size
                if actual != size:
                    raise ValueError(f"{fname} has {actual} bytes, the manifest says {size} (truncated or replaced?)")
            settings = IndexSettings(**manifest["settings"])
            documents: dict[str, Document] = {}
            for line in (snap / "documents.jsonl").read_text(encoding="utf-8").splitlines():
                doc = Document.from_dict(json.loads(line))
                documents[doc.doc_id] = doc
            rows = [json.loads(line) for line in (snap / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
            chunks = [None if row is None else Chunk.from_dict(row) for row in rows]
            vectors = np.load(snap / "vectors.npy", allow_pickle=False)  # never pickle: refuses object arrays
            if vectors.dtype != np.float32 or vectors.ndim != 2 or len(vectors) != len(chunks):
                raise ValueError(f"vectors.npy holds {vectors.dtype} {vectors.shape} for {len(chunks)} chunk rows")
            arrays = [np.load(snap / f"bm25_{part}.npy", allow_pickle=False) for part in ("data", "indices", "indptr")]
            terms = json.loads((snap / "bm25_vocab.json").read_text(encoding="utf-8"))
            bm25 = BM25Index.from_arrays(terms, arrays[0].astype(np.float32), arrays[1].astype(np.int32), np.diff(arrays[2]))
            data = IndexData(settings, documents, chunks, vectors, bm25, snapshot=snap.name)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc
        bm25.set_live(data.live)
        problems = consistency_problems(data)
        listed = manifest.get("documents")
        if not isinstance(listed, dict) or set(listed) != set(documents):
            problems.append("manifest document list differs from documents.jsonl")
        if problems:
            raise IndexCorruptError(f"The index snapshot {snap} is inconsistent: {'; '.join(problems)}")
        return data

    def _read(self, snap: Path, manifest: dict[str, Any], base: IndexData | None, table: dict[str, DocInfo]) -> IndexData:
        settings = IndexSettings(**manifest["settings"])
        dim = settings.dim
        logs: dict[str, int] = manifest["logs"]
        rows, ann_rows, n_terms = int(manifest["counts"]["rows"]), int(manifest["ann_rows"]), int(manifest["n_terms"])
        generation = str(manifest["generation"])
        old = base.on_disk if base is not None else None
        if old is not None and (old.generation != generation or old.rows > rows or old.n_terms > n_terms
                                or any(old.logs[f] > logs[f] for f in LOG_FILES)):
            base, old = None, None  # compacted or rebuilt since: read everything
        start = old.logs if old is not None else dict.fromkeys(LOG_FILES, 0)
        first_row = old.rows if old is not None else 0
        crcs: dict[str, int] = manifest["crc32"]

        def checked(fname: str, lo: int | None = None) -> _LogReader:
            """Bytes ``[lo, committed)`` of a log, checked against the manifest's CRC-32 when they run
            on from a checked point (the start, or what ``base`` read)."""
            lo = start[fname] if lo is None else lo
            crc0 = (old.crc[fname] if old is not None else 0) if lo == start[fname] else None
            return _LogReader(snap / fname, lo, logs[fname], crc0, crcs[fname])

        def read_log(fname: str) -> bytes:
            with checked(fname) as log:
                return log.read_all()

        def read_array(fname: str, dtype: str) -> np.ndarray:
            with checked(fname) as log:
                return log.array(dtype)

        dead = _array((snap / DEAD_FILE).read_bytes(), "<i4", DEAD_FILE)
        if len(dead) and (int(dead.min()) < 0 or int(dead.max()) >= rows):
            raise ValueError(f"{DEAD_FILE} names rows outside 0..{rows - 1}")
        dead_set = set(dead.tolist())

        documents = dict(base.documents) if base is not None else {}
        with checked("documents.jsonl") as log:
            for line in log.lines():
                doc = Document.from_dict(json.loads(line))
                info = table.get(doc.doc_id)
                if info is not None and info.content_hash == doc.content_hash:
                    documents[doc.doc_id] = doc
        missing = [d for d in table if d not in documents]
        if missing:
            raise ValueError(f"documents.jsonl holds no line for {missing[0]!r} with the manifest's content hash")
        documents = {d: documents[d] for d in table}

        chunks = base.chunks.copy(documents) if base is not None else ChunkRows(documents)
        with checked("chunks.jsonl") as log:
            for row, line in enumerate(log.lines(), first_row):
                if row in dead_set:
                    chunks.append(None)
                    continue
                if line == "null":
                    raise ValueError(f"chunk row {row} is empty but not listed as removed")
                d = json.loads(line)
                chunks.append_row(str(d["chunk_id"]), str(d["doc_id"]), int(d["start"]), int(d["end"]),
                                  d.get("sentences", ()), d.get("page"))
        if len(chunks) != rows:
            raise ValueError(f"chunks.jsonl holds {len(chunks)} rows, the manifest says {rows}")
        for row in dead.tolist():
            if row < first_row:
                chunks[row] = None

        def vectors(lo: int):
            """An exact index over rows ``lo..rows``, filled block by block (one copy in memory)."""
            index = _flat(np.zeros((0, dim), dtype=np.float32), dim)
            with checked("vectors.f32", lo * dim * 4) as log:
                for block in log.arrays("<f4", 8192 * dim):
                    index.add(block.reshape(-1, dim))
            return index

        if logs["vectors.f32"] != rows * dim * 4:
            raise ValueError(f"vectors.f32 holds {logs['vectors.f32']} bytes for {rows} rows of dimension {dim}")
        if base is not None and old is not None and old.ann_rows == ann_rows:
            parts = list(base.parts)
            if rows > first_row:
                parts.append(_Part(first_row, vectors(first_row)))
        else:
            parts = []
            if ann_rows:
                ann = _read_faiss(snap / ANN_FILE, dim)
                if ann.ntotal != ann_rows:
                    raise ValueError(f"{ANN_FILE} holds {ann.ntotal} rows, the manifest says {ann_rows}")
                parts.append(_Part(0, ann))
            parts.append(_Part(ann_rows, vectors(ann_rows)))

        nnz = read_array("bm25_rownnz.i32", "<i4")
        values = read_array("bm25_data.f32", "<f4")
        ids = read_array("bm25_indices.i32", "<i4")
        new_terms = _lines(read_log("bm25_vocab.txt"), "bm25_vocab.txt")
        if (old.n_terms if old else 0) + len(new_terms) != n_terms:
            raise ValueError(f"bm25_vocab.txt holds {(old.n_terms if old else 0) + len(new_terms)} terms, the manifest says {n_terms}")
        if first_row + len(nnz) != rows:
            raise ValueError(f"BM25 holds {first_row + len(nnz)} rows, the manifest says {rows}")
        if base is not None:
            bm25 = base.bm25.extended(new_terms, values, ids, nnz)
        else:
            bm25 = BM25Index.from_arrays(new_terms, values, ids, nnz)
        data = IndexData(settings, documents, chunks, bm25=bm25, parts=parts, snapshot=snap.name,
                         on_disk=_OnDisk(generation, dict(logs), dict(crcs), rows, ann_rows, n_terms))
        data._merge_flat_parts()
        bm25.set_live(data.live)
        return data

    # -- writing ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, wait_seconds: float | None = None) -> Iterator[None]:
        """Hold the writer lock; another writer waits up to ``wait_seconds`` then gets a clear error.

        ``wait_seconds`` defaults to ``$ASSISTANT_LOCK_WAIT_SECONDS`` or 30.

        The lock is ``writer_lock`` on ``.lock`` in the index folder.
        """
        with writer_lock(self.root / ".lock", str(self.root), wait_seconds):
            yield

    def save(self, data: IndexData | IndexWriter) -> str:
        """Commit and make live: an ``IndexWriter``'s changes as appends, an ``IndexData`` as a whole
        new generation. Call with the lock held."""
        if isinstance(data, IndexWriter):
            return self._commit(data)
        return self._save_full(data)

    def _new_snapshot(self) -> tuple[str, Path]:
        name = f"snap-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = self.root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        return name, tmp

    def _save_full(self, data: IndexData) -> str:
        """Write ``data`` as fresh logs (a new generation) and make it live."""
        if data.chunks and len(data.chunks) - data.n_live > COMPACT_DEAD_SHARE * len(data.chunks):
            compact(data)
        if data.n_vectors != len(data.chunks):
            raise ValueError(f"{data.n_vectors} vectors for {len(data.chunks)} chunk rows")
        data.build_vector_index()
        name, tmp = self._new_snapshot()
        try:
            live_rows: dict[str, list[int]] = {}
            for row, (chunk_id, doc_id) in enumerate(zip(data.chunks.ids, data.chunks.doc_ids)):
                if chunk_id is not None:
                    live_rows.setdefault(doc_id, []).append(row)
            table = {}
            for doc in data.documents.values():
                rows = live_rows.get(doc.doc_id, [])
                if not rows or rows[-1] - rows[0] + 1 != len(rows):
                    raise ValueError(f"document {doc.doc_id!r} has {'no' if not rows else 'non-consecutive'} chunk rows")
                table[doc.doc_id] = [doc.content_hash, doc.source, rows[0], len(rows)]
            m = data.bm25.matrix
            payloads = {
                "documents.jsonl": "".join(_doc_line(d) for d in data.documents.values()).encode("utf-8"),
                "chunks.jsonl": "".join(_chunk_line(c) for c in data.chunks).encode("utf-8"),
                "vectors.f32": data.vectors.astype("<f4").tobytes(),
                "bm25_data.f32": m.data.astype("<f4").tobytes(),
                "bm25_indices.i32": m.indices.astype("<i4").tobytes(),
                "bm25_rownnz.i32": np.diff(m.indptr).astype("<i4").tobytes(),
                "bm25_vocab.txt": "".join(_vocab_line(t) for t in data.bm25.terms).encode("utf-8"),
            }
            logs, crcs = {}, {}
            for fname in LOG_FILES:
                (tmp / fname).touch()
                payload = payloads.pop(fname)
                logs[fname], crcs[fname] = _append(tmp / fname, 0, payload), zlib.crc32(payload)
                _test_pause()
            dead = np.flatnonzero(~data.live).astype("<i4")
            ann_rows = 0
            hnsw = [p for p in data.parts if p.is_hnsw]
            if hnsw:
                _faiss().write_index(hnsw[0].index, str(tmp / ANN_FILE))
                ann_rows = hnsw[0].index.ntotal
            manifest = self._manifest(data.settings, uuid.uuid4().hex, logs, crcs, table, len(data.chunks), data.n_live,
                                      len(data.bm25.terms), ann_rows)
            self._publish(name, tmp, manifest, dead)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        data.snapshot = name
        data.on_disk = _OnDisk(manifest["generation"], dict(logs), dict(crcs), len(data.chunks), ann_rows, len(data.bm25.terms))
        if ann_rows and not (len(data.parts) == 1 and data.parts[0].is_hnsw):
            data.parts = [p for p in data.parts if p.is_hnsw]
        self._collect_garbage(keep=name)
        return name

    def _commit(self, w: IndexWriter) -> str:
        """Append a writer's changes to the live snapshot's logs in a new snapshot."""
        if w.opened_on != self.current_snapshot():
            raise IndexLockedError(f"The index {self.root} changed since this writer opened it; hold the lock while writing.")
        name, tmp = self._new_snapshot()
        try:
            dim = w.settings.dim
            if w.base is None:
                generation, logs, n_terms, ann_rows = uuid.uuid4().hex, dict.fromkeys(LOG_FILES, 0), 0, 0
                crcs = dict.fromkeys(LOG_FILES, 0)
                terms: list[str] = []
                for fname in LOG_FILES:
                    (tmp / fname).touch()
            else:
                assert w.manifest is not None
                generation, logs, crcs = w.manifest["generation"], dict(w.manifest["logs"]), dict(w.manifest["crc32"])
                n_terms, ann_rows = int(w.manifest["n_terms"]), int(w.manifest["ann_rows"])
                for fname in LOG_FILES:
                    os.link(self.root / w.base / fname, tmp / fname)
                terms = []
                if w.pending_terms:
                    terms = _lines(_read_range(tmp / "bm25_vocab.txt", 0, logs["bm25_vocab.txt"]), "bm25_vocab.txt")
                    if len(terms) != n_terms:
                        raise IndexCorruptError(f"{self.root / w.base / 'bm25_vocab.txt'} holds {len(terms)} terms, the manifest says {n_terms}")
            vocab = {t: i for i, t in enumerate(terms)}
            values, ids, nnz = encode_rows(w.pending_terms, vocab, terms)
            vectors = np.vstack(w.pending_vectors) if w.pending_vectors else np.zeros((0, dim), dtype=np.float32)
            payloads = {
                "documents.jsonl": "".join(_doc_line(d) for d in w.pending_docs).encode("utf-8"),
                "chunks.jsonl": "".join(_chunk_line(c) for c in w.pending_chunks).encode("utf-8"),
                "vectors.f32": vectors.astype("<f4").tobytes(),
                "bm25_data.f32": values.astype("<f4").tobytes(),
                "bm25_indices.i32": ids.astype("<i4").tobytes(),
                "bm25_rownnz.i32": nnz.astype("<i4").tobytes(),
                "bm25_vocab.txt": "".join(_vocab_line(t) for t in terms[n_terms:]).encode("utf-8"),
            }
            for fname in LOG_FILES:
                logs[fname] = _append(tmp / fname, logs[fname], payloads[fname])
                crcs[fname] = zlib.crc32(payloads[fname], crcs[fname])
            _test_pause()
            rows = w.n_rows
            if rows >= HNSW_THRESHOLD and rows - ann_rows > TAIL_MAX_ROWS:
                self._extend_ann(tmp, w, ann_rows, rows)
                ann_rows = rows
            elif ann_rows:
                os.link(self.root / str(w.base) / ANN_FILE, tmp / ANN_FILE)
            table = {d.doc_id: [d.content_hash, d.source, d.first_row, d.n_rows] for d in w.table.values()}
            manifest = self._manifest(w.settings, generation, logs, crcs, table, rows, w.n_live, len(terms) if w.pending_terms or w.base is None else n_terms, ann_rows)
            self._publish(name, tmp, manifest, np.asarray(sorted(w.dead), dtype="<i4"))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        w.base, w.opened_on, w.manifest, w.rows = name, name, manifest, rows
        w.pending_docs, w.pending_chunks, w.pending_vectors, w.pending_terms = [], [], [], []
        self._collect_garbage(keep=name)
        if rows and len(w.dead) > COMPACT_DEAD_SHARE * rows:
            data = self._load_snapshot(name, w.settings)
            self._save_full(data)  # compacts
            fresh = self.writer(w.settings)
            w.base, w.opened_on, w.manifest, w.rows, w.table, w.dead = fresh.base, fresh.base, fresh.manifest, fresh.rows, fresh.table, fresh.dead
            name = str(fresh.base)
        return name

    def _extend_ann(self, tmp: Path, w: IndexWriter, ann_rows: int, rows: int) -> None:
        """Write ``ann.faiss`` covering every row: the live graph extended by the rows after it."""
        dim = w.settings.dim
        payload = _read_range(tmp / "vectors.f32", ann_rows * dim * 4, rows * dim * 4)
        tail = _array(payload, "<f4", "vectors.f32").reshape(-1, dim)
        base = _read_faiss(self.root / str(w.base) / ANN_FILE, dim) if ann_rows else None  # a private copy
        _faiss().write_index(build_hnsw(tail, dim, base), str(tmp / ANN_FILE))

    def _manifest(self, settings: IndexSettings, generation: str, logs: dict[str, int], crcs: dict[str, int], table: dict[str, list],
                  rows: int, live: int, n_terms: int, ann_rows: int) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": settings.to_dict(),
            "generation": generation,
            "counts": {"documents": len(table), "rows": rows, "live_chunks": live},
            "n_terms": n_terms,
            "ann_rows": ann_rows,
            "faiss": "IndexHNSWSQ" if ann_rows else "IndexFlatIP",
            "logs": logs,
            "crc32": crcs,
            "files": {},
            "documents": table,
        }

    def _publish(self, name: str, tmp: Path, manifest: dict[str, Any], dead: np.ndarray) -> None:
        """Write the removed-row list and the manifest, then make the snapshot live."""
        _write_file(tmp / DEAD_FILE, dead.astype("<i4").tobytes())
        for fname in (DEAD_FILE, ANN_FILE):
            if (tmp / fname).exists():
                if fname == ANN_FILE:
                    _fsync(tmp / fname)
                manifest["files"][fname] = (tmp / fname).stat().st_size
        # Compact: the document table has a line per document otherwise (460k documents at 1M passages).
        _write_file(tmp / "manifest.json", json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        _fsync(tmp)
        os.replace(tmp, self.root / name)
        _test_pause()
        pointer = self.root / f".CURRENT-{name}"
        _write_file(pointer, name.encode("utf-8"))
        _test_pause()
        os.replace(pointer, self.root / "CURRENT")
        _fsync(self.root)

    def _collect_garbage(self, keep: str) -> None:
        """Delete unfinished temporaries and all but the newest few old snapshots."""
        snaps = sorted(p for p in self.root.glob("snap-*") if p.is_dir() and p.name != keep)
        for old in snaps[: max(0, len(snaps) - (KEEP_OLD_SNAPSHOTS - 1))]:
            shutil.rmtree(old, ignore_errors=True)
        for tmp in self.root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        for pointer in self.root.glob(".CURRENT-*"):
            with contextlib.suppress(OSError):
                pointer.unlink()



def _vocab_line(term: str) -> str:
    # Terms come from \w+ tokens; a line break would shift every later id, so none may get through.
    return term.replace("\n", " ").replace("\r", " ") + "\n"


def compact(data: IndexData) -> None:
    """Drop removed rows from vectors, chunks and BM25; the exact index is rebuilt over the rest."""
    live = data.live.copy()
    vectors = data.vectors_of(np.flatnonzero(live))
    data.chunks = [c for c in data.chunks if c is not None]  # becomes ChunkRows again
    data.parts = [_Part(0, _flat(vectors, data.settings.dim))]
    data.bm25.keep_rows(live)
    data._changed()


def consistency_problems(data: IndexData, manifest: dict[str, Any] | None = None,
                         table: dict[str, DocInfo] | None = None) -> list[str]:
    """Every way the parts of a snapshot disagree (empty when consistent); ``table``: the manifest's
    document table when the caller has parsed it already."""
    problems = []
    n = len(data.chunks)
    if data.n_vectors != n:
        problems.append(f"FAISS holds {data.n_vectors} rows for {n} chunk rows")
    expected = 0
    for part in data.parts:
        if part.start != expected and part.index.ntotal:
            problems.append(f"a FAISS part starts at row {part.start}, expected {expected}")
            break
        if part.index.d != data.settings.dim:
            problems.append(f"FAISS has dimension {part.index.d}, manifest says {data.settings.dim}")
            break
        expected = part.end if part.index.ntotal else expected
    if data.bm25.n_rows != n:
        problems.append(f"BM25 holds {data.bm25.n_rows} rows for {n} chunk rows")
    ids, owners = data.chunks.ids, data.chunks.doc_ids
    live_rows = [i for i, c in enumerate(ids) if c is not None]
    live_ids = {ids[i] for i in live_rows}
    rows_of: dict[str, list[int]] = {}
    if len(live_ids) != len(live_rows):
        seen: set[str] = set()
        twice = next(ids[i] for i in live_rows if ids[i] in seen or seen.add(ids[i]))  # type: ignore[func-returns-value]
        problems.append(f"chunk id {twice} appears twice")
    else:
        unknown = {owners[i] for i in live_rows} - data.documents.keys()
        if unknown:
            doc_id = min(unknown)
            problems.append(f"chunk {next(ids[i] for i in live_rows if owners[i] == doc_id)} belongs to unknown document {doc_id}")
        else:
            for i in live_rows:
                rows_of.setdefault(owners[i], []).append(i)
            orphans = sorted(data.documents.keys() - rows_of.keys())
            if orphans:
                problems.append(f"{len(orphans)} document(s) without chunks (e.g. {orphans[0]})")
    if manifest is not None:
        try:
            table = _doc_table(manifest) if table is None else table
        except ValueError as exc:
            problems.append(str(exc))
            table = {}
        if set(table) != set(data.documents):
            problems.append("manifest document list differs from documents.jsonl")
        else:
            for doc_id, info in table.items():
                rows = rows_of.get(doc_id, [])
                if data.documents[doc_id].content_hash != info.content_hash:
                    problems.append(f"manifest content hash of {doc_id} differs from documents.jsonl")
                    break
                if rows and (rows[0] != info.first_row or len(rows) != info.n_rows):
                    problems.append(f"manifest rows of {doc_id} ({info.first_row}, {info.n_rows}) differ from the chunks "
                                    f"({rows[0]}, {len(rows)})")
                    break
        counts = manifest.get("counts")
        if isinstance(counts, dict):
            wanted = {"documents": len(data.documents), "rows": n, "live_chunks": data.n_live}
            for key, value in wanted.items():
                if key in counts and counts[key] != value:
                    problems.append(f"manifest counts {counts[key]} {key.replace('_', ' ')}, the snapshot holds {value}")
    return problems
