"""Commits in index format 3: a whole new generation (``save_generation``: fresh logs, SQLite tables
and BM25 postings) or a writer's changes appended to the live one (``commit_changes``).

A commit appends its vectors and BM25 rows to the logs (hard-linked from the live snapshot), inserts its
documents and chunk rows into the generation's SQLite tables in one transaction (invisible to every
snapshot until the one naming its commit number is live), then publishes the new snapshot. A writer
reads the document table one document at a time (``DocTable``), never whole.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import IndexCorruptError, IndexLockedError
from assistant.stores.base import DocInfo, IndexSettings
from assistant.stores.faiss.logs import (ANN_FILE, DEAD_FILE, LOG_FILES, append_log, raw_array, read_range, split_lines,
                                         test_pause, vocab_line)
from assistant.stores.faiss.memory import IndexData, OnDisk, compact
from assistant.stores.faiss.postings import write_postings
from assistant.stores.faiss.tables import Tables, TableWriter, table_name
from assistant.stores.faiss.vectors import load_faiss, wants_hnsw
from assistant.stores.faiss.writer import IndexWriter
from assistant.stores.lexical import encode_rows

FORMAT_VERSION = 3
BM25_LOGS = ("bm25_data.f32", "bm25_indices.i32", "bm25_rownnz.i32")
# Compact (drop removed rows, write a new generation) once this share of rows is dead.
COMPACT_DEAD_SHARE = 0.2


class DocTable:
    """``IndexWriter.table`` for a format-3 snapshot: a dict-like overlay of this writer's changes
    over the snapshot's SQLite document table."""

    def __init__(self, tables: Tables | None, n_documents: int) -> None:
        self.tables = tables
        self.changes: dict[str, DocInfo | None] = {}
        self.n_base = n_documents
        self._delta = 0

    def get(self, doc_id: str, default=None):
        if doc_id in self.changes:
            found = self.changes[doc_id]
        else:
            found = self.tables.info(doc_id) if self.tables is not None else None
        return default if found is None else found

    def pop(self, doc_id: str, default=None):
        found = self.get(doc_id)
        if found is None:
            return default
        self.changes[doc_id] = None
        self._delta -= 1
        return found

    def __setitem__(self, doc_id: str, info: DocInfo) -> None:
        if self.get(doc_id) is None:
            self._delta += 1
        self.changes[doc_id] = info

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.get(doc_id) is not None

    def __len__(self) -> int:
        return self.n_base + self._delta

    def values(self) -> list[DocInfo]:
        base = {i.doc_id: i for i in self.tables.infos()} if self.tables is not None else {}
        for doc_id, info in self.changes.items():
            if info is None:
                base.pop(doc_id, None)
            else:
                base[doc_id] = info
        return list(base.values())

    def settle(self, tables: Tables, n_documents: int) -> None:
        """After a commit: the changes are in ``tables``."""
        self.tables, self.changes, self.n_base, self._delta = tables, {}, n_documents, 0


def open_writer(store: Any, name: str, manifest: dict[str, Any]) -> IndexWriter:
    """An ``IndexWriter`` over format-3 snapshot ``name``: reads its manifest and removed rows only."""
    dead = raw_array((store.root / name / DEAD_FILE).read_bytes(), "<i4", DEAD_FILE)
    w = IndexWriter(IndexSettings(**manifest["settings"]), name, None, dead.tolist())
    w.manifest = manifest
    w.rows = int(manifest["counts"]["rows"])
    tables = Tables(store.root / str(manifest["tables"]), int(manifest["commit"]), w.rows)
    w.table = DocTable(tables, int(manifest["counts"]["documents"]))  # type: ignore[assignment]
    return w


def _write_tables(path: Path, data: IndexData) -> list[str]:
    """A new generation's SQLite tables for ``data`` (commit 1); its document ids."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    live_rows: dict[str, list[int]] = {}
    for row, (chunk_id, doc_id) in enumerate(zip(data.chunks.ids, data.chunks.doc_ids)):
        if chunk_id is not None:
            live_rows.setdefault(doc_id, []).append(row)
    docs = []
    for doc in data.documents.values():
        rows = live_rows.get(doc.doc_id, [])
        if not rows or rows[-1] - rows[0] + 1 != len(rows):
            raise ValueError(f"document {doc.doc_id!r} has {'no' if not rows else 'non-consecutive'} chunk rows")
        docs.append((doc, DocInfo(doc.doc_id, doc.content_hash, doc.source, rows[0], len(rows))))
    writer = TableWriter(path)
    try:
        # Removed rows not compacted keep their place (row numbers are FAISS positions), empty.
        writer.write(0, 0, 1, docs, (), [(row, chunk) for row, chunk in enumerate(data.chunks)])
    finally:
        writer.close()
    return [d.doc_id for d, _ in docs]


def save_generation(store: Any, data: IndexData) -> str:
    """Write ``data`` as a new generation (fresh logs, tables and postings) and make it live."""
    if hasattr(data, "to_memory"):
        data = data.to_memory()  # a loaded snapshot being compacted or upgraded
    if data.chunks and len(data.chunks) - data.n_live > COMPACT_DEAD_SHARE * len(data.chunks):
        compact(data)
    if data.n_vectors != len(data.chunks):
        raise ValueError(f"{data.n_vectors} vectors for {len(data.chunks)} chunk rows")
    data.build_vector_index()
    name, tmp = store._new_snapshot()
    generation = uuid.uuid4().hex
    try:
        m = data.bm25.matrix
        payloads = {
            "vectors.f32": data.vectors.astype("<f4").tobytes(),
            "bm25_data.f32": m.data.astype("<f4").tobytes(),
            "bm25_indices.i32": m.indices.astype("<i4").tobytes(),
            "bm25_rownnz.i32": np.diff(m.indptr).astype("<i4").tobytes(),
            "bm25_vocab.txt": "".join(vocab_line(t) for t in data.bm25.terms).encode("utf-8"),
        }
        logs, crcs = {}, {}
        for fname in LOG_FILES:
            (tmp / fname).touch()
            logs[fname], crcs[fname] = append_log(tmp / fname, 0, payloads[fname]), zlib.crc32(payloads[fname])
            test_pause()
        base = {"rows": len(data.chunks), "terms": len(data.bm25.terms), "postings": int(m.nnz),
                "logs": {f: logs[f] for f in BM25_LOGS}, "crc32": {f: crcs[f] for f in BM25_LOGS}}
        del payloads
        doc_ids = _write_tables(store.root / table_name(generation), data)
        files, base["avgdl"] = write_postings(tmp, m, data.live)
        ann_rows = 0
        hnsw = [p for p in data.parts if p.is_hnsw]
        if hnsw:
            load_faiss().write_index(hnsw[0].index, str(tmp / ANN_FILE))
            ann_rows = hnsw[0].index.ntotal
        manifest = {
            "format_version": FORMAT_VERSION, "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": data.settings.to_dict(), "generation": generation, "commit": 1, "tables": table_name(generation),
            "base": base, "counts": {"documents": len(doc_ids), "rows": len(data.chunks), "live_chunks": data.n_live},
            "n_terms": len(data.bm25.terms), "ann_rows": ann_rows, "faiss": "IndexHNSWSQ" if ann_rows else "IndexFlatIP",
            "logs": logs, "crc32": crcs, "files": files,
        }
        store._publish(name, tmp, manifest, np.flatnonzero(~data.live).astype("<i4"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    data.snapshot = name
    data.on_disk = OnDisk(generation, dict(logs), dict(crcs), len(data.chunks), ann_rows, len(data.bm25.terms))
    if ann_rows and not (len(data.parts) == 1 and data.parts[0].is_hnsw):
        data.parts = [p for p in data.parts if p.is_hnsw]
    store._collect_garbage(keep=name)
    return name


def _adopt(w: IndexWriter, fresh: IndexWriter) -> None:
    w.base, w.opened_on, w.manifest, w.rows, w.table, w.dead = fresh.base, fresh.base, fresh.manifest, fresh.rows, fresh.table, fresh.dead
    w.pending_docs, w.pending_chunks, w.pending_vectors, w.pending_terms = [], [], [], []


def commit_changes(store: Any, w: IndexWriter, tail_max_rows: int) -> str:
    """Append a writer's changes to the live snapshot: logs appended, rows inserted in SQLite (one
    transaction), then the new snapshot made live. A new index's first commit is a whole generation."""
    if w.opened_on != store.current_snapshot():
        raise IndexLockedError(f"The index {store.root} changed since this writer opened it; hold the lock while writing.")
    if w.base is None:
        data = IndexData(w.settings)
        if w.pending_chunks:
            data.append_rows(w.pending_docs, w.pending_chunks, np.vstack(w.pending_vectors), w.pending_terms)
        name = save_generation(store, data)
        _adopt(w, store.writer(w.settings))
        return name
    manifest = w.manifest
    assert manifest is not None
    name, tmp = store._new_snapshot()
    try:
        dim = w.settings.dim
        logs, crcs = dict(manifest["logs"]), dict(manifest["crc32"])
        n_terms, ann_rows = int(manifest["n_terms"]), int(manifest["ann_rows"])
        files = {f: s for f, s in manifest["files"].items() if f not in (DEAD_FILE, ANN_FILE)}
        for fname in (*LOG_FILES, *files):
            os.link(store.root / w.base / fname, tmp / fname)
        terms: list[str] = []
        if w.pending_terms:
            terms = split_lines(read_range(tmp / "bm25_vocab.txt", 0, logs["bm25_vocab.txt"]), "bm25_vocab.txt")
            if len(terms) != n_terms:
                raise IndexCorruptError(f"{store.root / w.base / 'bm25_vocab.txt'} holds {len(terms)} terms, the manifest says {n_terms}")
        values, ids, nnz = encode_rows(w.pending_terms, {t: i for i, t in enumerate(terms)}, terms)
        vectors = np.vstack(w.pending_vectors) if w.pending_vectors else np.zeros((0, dim), dtype=np.float32)
        payloads = {
            "vectors.f32": vectors.astype("<f4").tobytes(),
            "bm25_data.f32": values.astype("<f4").tobytes(),
            "bm25_indices.i32": ids.astype("<i4").tobytes(),
            "bm25_rownnz.i32": nnz.astype("<i4").tobytes(),
            "bm25_vocab.txt": "".join(vocab_line(t) for t in terms[n_terms:]).encode("utf-8"),
        }
        for fname in LOG_FILES:
            logs[fname] = append_log(tmp / fname, logs[fname], payloads[fname])
            crcs[fname] = zlib.crc32(payloads[fname], crcs[fname])
        rows = w.n_rows
        commit = int(manifest["commit"]) + 1
        # Into SQLite before the switch: no snapshot of an earlier commit sees these rows.
        docs = [(doc, info) for doc in w.pending_docs if (info := w.table.get(doc.doc_id)) is not None]
        removed = [d for d, info in w.table.changes.items() if info is None]  # type: ignore[attr-defined]
        writer = TableWriter(store.root / str(manifest["tables"]))
        try:
            writer.write(int(manifest["commit"]), int(manifest["counts"]["rows"]), commit, docs, removed,
                         list(enumerate(w.pending_chunks, w.rows)))
        finally:
            writer.close()
        test_pause()
        if wants_hnsw(rows) and rows - ann_rows > tail_max_rows:
            store._extend_ann(tmp, w, ann_rows, rows)
            ann_rows = rows
        elif ann_rows:
            os.link(store.root / str(w.base) / ANN_FILE, tmp / ANN_FILE)
        new = dict(manifest, commit=commit, logs=logs, crc32=crcs, n_terms=len(terms) if w.pending_terms else n_terms,
                   ann_rows=ann_rows, faiss="IndexHNSWSQ" if ann_rows else "IndexFlatIP", files=files,
                   counts={"documents": len(w.table), "rows": rows, "live_chunks": w.n_live},
                   created_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        store._publish(name, tmp, new, np.asarray(sorted(w.dead), dtype="<i4"))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    w.base, w.opened_on, w.manifest, w.rows = name, name, new, rows
    w.table.settle(w.table.tables.at(commit, rows), len(w.table))  # type: ignore[attr-defined]
    w.pending_docs, w.pending_chunks, w.pending_vectors, w.pending_terms = [], [], [], []
    store._collect_garbage(keep=name)
    if rows and len(w.dead) > COMPACT_DEAD_SHARE * rows:
        name = save_generation(store, store._load_snapshot(name, w.settings))  # compacts
        _adopt(w, store.writer(w.settings))
    return name


def collect_tables(root: Path) -> None:
    """Delete table files no remaining snapshot names (older generations')."""
    wanted = set()
    for snap in root.glob("snap-*"):
        try:
            wanted.add(json.loads((snap / "manifest.json").read_text(encoding="utf-8")).get("tables"))
        except (OSError, ValueError, AttributeError):
            return  # unsure: keep everything
    for path in root.glob("tables-*.sqlite"):
        if path.name not in wanted:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
