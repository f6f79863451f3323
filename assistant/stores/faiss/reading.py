"""Reads a format-2 snapshot folder into an ``IndexData``: all of it, or only the rows committed
after an earlier snapshot of the same generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from assistant.records import Document
from assistant.stores.base import DocInfo, IndexSettings
from assistant.stores.faiss.chunk_rows import ChunkRows
from assistant.stores.faiss.logs import DEAD_FILE, LOG_FILES_V2, LogReader, raw_array, split_lines
from assistant.stores.faiss.memory import IndexData, OnDisk
from assistant.stores.faiss.vectors import flat_index, snapshot_parts
from assistant.stores.lexical import BM25Index


def read_snapshot(snap: Path, manifest: dict[str, Any], base: IndexData | None, table: dict[str, DocInfo]) -> IndexData:
    """The contents of snapshot folder ``snap``, every byte read checked against ``manifest``; with ``base``
    (an earlier snapshot of the same generation) only what was appended since is read.

    Raises ``OSError``, ``ValueError`` (and the like) naming the problem; the caller reports them as damage.
    """
    settings = IndexSettings(**manifest["settings"])
    dim = settings.dim
    logs: dict[str, int] = manifest["logs"]
    rows, ann_rows, n_terms = int(manifest["counts"]["rows"]), int(manifest["ann_rows"]), int(manifest["n_terms"])
    generation = str(manifest["generation"])
    old = base.on_disk if base is not None else None
    if old is not None and (old.generation != generation or old.rows > rows or old.n_terms > n_terms
                            or any(old.logs[f] > logs[f] for f in LOG_FILES_V2)):
        base, old = None, None  # compacted or rebuilt since: read everything
    start = old.logs if old is not None else dict.fromkeys(LOG_FILES_V2, 0)
    first_row = old.rows if old is not None else 0
    crcs: dict[str, int] = manifest["crc32"]

    def checked(fname: str, lo: int | None = None) -> LogReader:
        """Bytes ``[lo, committed)`` of a log, checked against the manifest's CRC-32 when they run
        on from a checked point (the start, or what ``base`` read)."""
        lo = start[fname] if lo is None else lo
        crc0 = (old.crc[fname] if old is not None else 0) if lo == start[fname] else None
        return LogReader(snap / fname, lo, logs[fname], crc0, crcs[fname])

    def read_log(fname: str) -> bytes:
        with checked(fname) as log:
            return log.read_all()

    def read_array(fname: str, dtype: str) -> np.ndarray:
        with checked(fname) as log:
            return log.array(dtype)

    dead = raw_array((snap / DEAD_FILE).read_bytes(), "<i4", DEAD_FILE)
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
        index = flat_index(np.zeros((0, dim), dtype=np.float32), dim)
        with checked("vectors.f32", lo * dim * 4) as log:
            for block in log.arrays("<f4", 8192 * dim):
                index.add(block.reshape(-1, dim))
        return index

    parts = snapshot_parts(snap, dim, rows, ann_rows, logs["vectors.f32"], vectors,
                           base.parts if base is not None and old is not None and old.ann_rows == ann_rows else None, first_row)

    nnz = read_array("bm25_rownnz.i32", "<i4")
    values = read_array("bm25_data.f32", "<f4")
    ids = read_array("bm25_indices.i32", "<i4")
    new_terms = split_lines(read_log("bm25_vocab.txt"), "bm25_vocab.txt")
    if (old.n_terms if old else 0) + len(new_terms) != n_terms:
        raise ValueError(f"bm25_vocab.txt holds {(old.n_terms if old else 0) + len(new_terms)} terms, the manifest says {n_terms}")
    if first_row + len(nnz) != rows:
        raise ValueError(f"BM25 holds {first_row + len(nnz)} rows, the manifest says {rows}")
    if base is not None:
        bm25 = base.bm25.extended(new_terms, values, ids, nnz)
    else:
        bm25 = BM25Index.from_arrays(new_terms, values, ids, nnz)
    data = IndexData(settings, documents, chunks, bm25=bm25, parts=parts, snapshot=snap.name,
                     on_disk=OnDisk(generation, dict(logs), dict(crcs), rows, ann_rows, n_terms))
    data._merge_flat_parts()
    bm25.set_live(data.live)
    return data
