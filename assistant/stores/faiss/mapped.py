"""Loaded snapshots of index format 3: documents and chunk rows answered from SQLite, vectors and
BM25 postings memory-mapped (``read_mapped``, ``TableIndexData``).

Loading reads no per-row table: the HNSW graph's vectors and the postings are mapped from disk, the
documents and chunk rows stay in SQLite and are read when a query returns them, so a load costs
about the same at 1M passages as at 10k. A reader following commits reads only the rows added.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assistant.records import Chunk, Document
from assistant.stores.base import Batch, IndexSettings
from assistant.stores.faiss.chunk_rows import ChunkRows
from assistant.stores.faiss.logs import DEAD_FILE, LOG_FILES, LogReader, raw_array, split_lines
from assistant.stores.faiss.memory import MAX_FLAT_PARTS, IndexData, OnDisk
from assistant.stores.faiss.postings import DiskBM25
from assistant.stores.faiss.tables import DocumentView, Tables
from assistant.stores.faiss.vectors import Part, flat_index, snapshot_parts
from assistant.stores.lexical import BM25Index

BM25_LOGS = ("bm25_data.f32", "bm25_indices.i32", "bm25_rownnz.i32")


class TableRows(Sequence):
    """``Sequence[Chunk | None]`` over a snapshot's chunk table (rows made on access); ``ids`` and
    ``doc_ids`` read the whole table (for compaction and tests, not for queries)."""

    def __init__(self, tables: Tables, live: np.ndarray) -> None:
        self.tables, self._live = tables, live
        self._all: tuple[list, list] | None = None

    def __len__(self) -> int:
        return self.tables.rows

    def __bool__(self) -> bool:
        return self.tables.rows > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        if not self._live[i]:
            return None
        return self.tables.chunks([i]).get(i)

    def __iter__(self) -> Iterator[Chunk | None]:
        docs: dict[str, Document | None] = {}
        for row, chunk_id, doc_id, start, stop, sentences, page in self.tables.chunk_rows():
            if not self._live[row]:
                yield None
                continue
            doc = docs.get(doc_id) or self.tables.document(doc_id)
            docs = {doc_id: doc}
            yield Chunk(chunk_id=chunk_id, doc_id=doc_id, start=start, end=stop, text=doc.text[start:stop] if doc else "",
                        sentences=sentences, page=page)

    def _columns(self) -> tuple[list, list]:
        if self._all is None:
            ids: list[str | None] = []
            owners: list[str] = []
            for row, chunk_id, doc_id, *_ in self.tables.chunk_rows():
                ids.append(chunk_id if self._live[row] else None)
                owners.append(doc_id if self._live[row] else "")
            self._all = (ids, owners)
        return self._all

    @property
    def ids(self) -> list[str | None]:
        return self._columns()[0]

    @property
    def doc_ids(self) -> list[str]:
        return self._columns()[1]


class TableIndexData(IndexData):
    """A loaded format-3 snapshot: the ``ChunkBackend`` answered from SQLite, mapped vectors and postings.

    Read-only: changes go through ``IndexStore.writer``; ``to_memory`` makes an ``IndexData`` copy
    (compaction, copying to another store).
    """

    def __init__(self, settings: IndexSettings, tables: Tables, live: np.ndarray, parts: list, bm25: DiskBM25,
                 snapshot: str, on_disk: Any, n_documents: int) -> None:
        self.settings = settings
        self.tables = tables
        self._live_mask = live
        self._n_live = int(live.sum())
        self.documents = DocumentView(tables)  # type: ignore[assignment]
        self._chunks = TableRows(tables, live)  # type: ignore[assignment]
        self.bm25 = bm25
        self.parts = parts
        self.snapshot = snapshot
        self.on_disk = on_disk
        self._n_documents = n_documents
        self._rows = None
        self._live_cache = live
        self._dead_cache = None
        self._params = {}
        self._bm25_last = None
        self._known: dict[str, int] = {}  # chunk id -> live row, of rows this snapshot has returned

    @property
    def chunks(self):  # type: ignore[override]
        return self._chunks

    @chunks.setter
    def chunks(self, value) -> None:
        raise TypeError("a loaded format-3 index is read-only; use IndexStore.writer")

    @property
    def live(self) -> np.ndarray:
        return self._live_mask

    @property
    def n_live(self) -> int:
        return self._n_live

    def _changed(self) -> None:
        raise TypeError("a loaded format-3 index is read-only; use IndexStore.writer")

    def _merge_flat_parts(self) -> None:
        flat = [p for p in self.parts if not p.is_hnsw and p.index.ntotal]
        if len(flat) > MAX_FLAT_PARTS:
            hnsw = [p for p in self.parts if p.is_hnsw]
            merged = flat_index(np.vstack([p.index.reconstruct_n(0, p.index.ntotal) for p in flat]), self.settings.dim)
            self.parts = hnsw + [Part(flat[0].start, merged)]
        else:
            self.parts = [p for p in self.parts if p.is_hnsw or p.index.ntotal] or self.parts[:1]
        self._params = {}

    # -- rows <-> chunk ids --------------------------------------------------------------------------
    def _ids_of(self, rows: Iterable[int]) -> dict[int, str]:
        """Chunk ids of the live ones of these rows (remembered: a search's results are asked about next)."""
        live = self._live_mask
        found = self.tables.chunk_ids(r for r in rows if 0 <= r < len(live) and live[r])
        if len(self._known) > 100_000:
            self._known.clear()
        self._known.update((chunk_id, row) for row, chunk_id in found.items())
        return found

    def _rows_for(self, chunk_ids: Iterable[str]) -> dict[str, int]:
        """The live row of each of these chunk ids (unknown or removed ones left out)."""
        live, known = self._live_mask, self._known
        chunk_ids = list(chunk_ids)
        out = {c: known[c] for c in chunk_ids if c in known}
        missing = [c for c in chunk_ids if c not in out]
        for chunk_id, rows in (self.tables.rows_of(missing).items() if missing else ()):
            alive = [r for r in rows if live[r]]
            if alive:
                out[chunk_id] = known[chunk_id] = alive[-1]
        return out

    def lexical_search(self, terms: dict[str, float], n: int) -> list[tuple[str, float]]:
        if n <= 0:
            return []
        found = self.bm25.top_rows(terms, n) if terms else None
        rows, scores = found if found is not None else self.bm25.top(self._bm25_all(terms), n)
        ids = self._ids_of(rows.tolist())
        return [(ids[r], float(s)) for r, s in zip(rows.tolist(), scores) if r in ids]

    def lexical_scores(self, chunk_ids: list[str], terms: dict[str, float]) -> dict[str, float]:
        rows = self._rows_for(chunk_ids)
        known = [c for c in chunk_ids if c in rows]
        if not known or not terms:
            return {}
        # Only these rows' postings are read (the whole score array only if the last search built it).
        last = self._bm25_last
        if last is not None and last[0] == tuple(sorted(terms.items())):
            scores = last[1][[rows[c] for c in known]]
        else:
            scores = self.bm25.scores_of(terms, np.asarray([rows[c] for c in known], dtype=np.int64))
        return {c: float(s) for c, s in zip(known, scores) if s > 0}

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        rows = self._rows_for(chunk_ids)
        made = self.tables.chunks(rows.values())
        return {c: made[r] for c, r in rows.items() if r in made}

    def get_document(self, doc_id: str) -> Document | None:
        return self.tables.document(doc_id)

    def n_documents(self) -> int:
        return self._n_documents

    def list_documents(self) -> list[Document]:
        return sorted(self.tables.documents(), key=lambda d: d.doc_id)

    def chunk_counts(self) -> dict[str, int]:
        return {info.doc_id: info.n_rows for info in self.tables.infos()}

    def add_documents(self, *args, **kwargs) -> None:
        raise TypeError("a loaded format-3 index is read-only; use IndexStore.writer")

    append_rows = add_documents

    def remove_document(self, doc_id: str) -> int:
        raise TypeError("a loaded format-3 index is read-only; use IndexStore.writer")

    def to_memory(self) -> IndexData:
        """An in-memory ``IndexData`` copy (every row read): for compaction and copying."""
        documents = {d.doc_id: d for d in self.tables.documents()}
        chunks = ChunkRows(documents)
        for row, chunk_id, doc_id, start, stop, sentences, page in self.tables.chunk_rows():
            if self._live_mask[row]:
                chunks.append_row(chunk_id, doc_id, start, stop, sentences, page)
            else:
                chunks.append_row(None, "", 0, 0)
        m = self.bm25.matrix
        bm25 = BM25Index.from_arrays(self.bm25.terms, m.data.astype(np.float32), m.indices.astype(np.int32), np.diff(m.indptr))
        data = IndexData(self.settings, documents, chunks, self.vectors, bm25)
        bm25.set_live(data.live)
        return data

    def export_batches(self, max_chunks: int = 2000) -> Iterator[Batch]:
        return self.to_memory().export_batches(max_chunks)


def read_mapped(root: Path, snap: Path, manifest: dict[str, Any], base: IndexData | None) -> TableIndexData:
    """Load a format-3 snapshot (following ``base``, a loaded snapshot of the same generation, when given)."""
    settings = IndexSettings(**manifest["settings"])
    dim = settings.dim
    logs: dict[str, int] = manifest["logs"]
    crcs: dict[str, int] = manifest["crc32"]
    rows, ann_rows, n_terms = int(manifest["counts"]["rows"]), int(manifest["ann_rows"]), int(manifest["n_terms"])
    n_documents = int(manifest["counts"]["documents"])
    generation, commit = str(manifest["generation"]), int(manifest["commit"])
    gen = manifest["base"]
    base_rows, base_terms, base_postings = int(gen["rows"]), int(gen["terms"]), int(gen["postings"])
    old = base.on_disk if isinstance(base, TableIndexData) else None
    if old is not None and (old.generation != generation or old.rows > rows or old.n_terms > n_terms
                            or any(old.logs[f] > logs[f] for f in LOG_FILES)):
        base, old = None, None
    if old is None:
        base = None

    def reader(fname: str, lo: int, crc0: int | None):
        return LogReader(snap / fname, lo, logs[fname], crc0, crcs[fname])

    dead = raw_array((snap / DEAD_FILE).read_bytes(), "<i4", DEAD_FILE)
    if len(dead) and (int(dead.min()) < 0 or int(dead.max()) >= rows):
        raise ValueError(f"{DEAD_FILE} names rows outside 0..{rows - 1}")
    live = np.ones(rows, dtype=bool)
    live[dead] = False

    if base is not None:
        tables = base.tables.at(commit, rows)
    else:
        tables = Tables(root / str(manifest["tables"]), commit, rows)
        problems = tables.check(n_documents)
        if problems:
            raise ValueError("; ".join(problems))
    first_row = old.rows if old is not None else 0

    def flat_from(lo: int):
        index = flat_index(np.zeros((0, dim), dtype=np.float32), dim)
        offset = lo * dim * 4  # checked against the CRC when it runs on from a checked point
        crc0 = 0 if offset == 0 else old.crc["vectors.f32"] if old is not None and offset == old.logs["vectors.f32"] else None
        with reader("vectors.f32", offset, crc0) as log:
            for block in log.arrays("<f4", 8192 * dim):
                index.add(block.reshape(-1, dim))
        return index

    parts = snapshot_parts(snap, dim, rows, ann_rows, logs["vectors.f32"], flat_from,
                           base.parts if base is not None and old.ann_rows == ann_rows else None, first_row, mapped=True)

    # BM25: the generation's postings are mapped; rows after them come from the logs.
    if base is not None:
        start = {f: old.logs[f] for f in LOG_FILES}
        start_crc = {f: old.crc[f] for f in LOG_FILES}
        known_terms = old.n_terms
    else:
        start = {f: int(gen["logs"][f]) for f in BM25_LOGS}
        start_crc = {f: int(gen["crc32"][f]) for f in BM25_LOGS}
        start["bm25_vocab.txt"], start_crc["bm25_vocab.txt"] = 0, 0
        known_terms = 0
    arrays = {}
    for fname, dtype in (("bm25_rownnz.i32", "<i4"), ("bm25_data.f32", "<f4"), ("bm25_indices.i32", "<i4")):
        with reader(fname, start[fname], start_crc[fname]) as log:
            arrays[fname] = log.array(dtype)
    with reader("bm25_vocab.txt", start["bm25_vocab.txt"], start_crc["bm25_vocab.txt"]) as log:
        new_terms = split_lines(log.read_all(), "bm25_vocab.txt")
    if known_terms + len(new_terms) != n_terms:
        raise ValueError(f"bm25_vocab.txt holds {known_terms + len(new_terms)} terms, the manifest says {n_terms}")
    nnz = arrays["bm25_rownnz.i32"]
    if base is not None:
        if first_row + len(nnz) != rows:
            raise ValueError(f"BM25 holds {first_row + len(nnz)} rows, the manifest says {rows}")
        bm25 = base.bm25.extended(new_terms, arrays["bm25_data.f32"], arrays["bm25_indices.i32"], nnz)
    else:
        if base_rows + len(nnz) != rows:
            raise ValueError(f"BM25 holds {base_rows + len(nnz)} rows, the manifest says {rows}")
        disk = DiskBM25(new_terms, snap, base_rows, base_terms, base_postings)
        bm25 = disk.extended([], arrays["bm25_data.f32"], arrays["bm25_indices.i32"], nnz)
    on_disk = OnDisk(generation, dict(logs), dict(crcs), rows, ann_rows, n_terms)
    data = TableIndexData(settings, tables, live, parts, bm25, snap.name, on_disk, n_documents)
    data._merge_flat_parts()
    bm25.set_live(live)
    if data.n_vectors != rows:
        raise ValueError(f"FAISS holds {data.n_vectors} rows for {rows} chunk rows")
    if int(manifest["counts"]["live_chunks"]) != data.n_live:
        raise ValueError(f"manifest counts {manifest['counts']['live_chunks']} live chunks, the snapshot holds {data.n_live}")
    return data


