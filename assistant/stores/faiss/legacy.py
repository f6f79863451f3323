"""The reader of format-1 snapshots (one file per part, before the logs); the first commit rewrites
them as logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import IndexCorruptError
from assistant.records import Chunk, Document
from assistant.stores.base import IndexSettings
from assistant.stores.faiss.checks import check_name, consistency_problems
from assistant.stores.faiss.memory import IndexData
from assistant.stores.lexical import BM25Index


def read_v1(root: Path, snap: Path, manifest: dict[str, Any]) -> IndexData:
    """A format-1 snapshot: documents.jsonl, chunks.jsonl (with text; null for removed rows),
    vectors.npy, BM25 .npy arrays and vocabulary (index.faiss is rebuilt from the vectors)."""
    try:
        for fname, size in (manifest.get("files") or {}).items():
            actual = (snap / check_name(fname)).stat().st_size
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
            f"Rebuild it: assistant ingest --index {root} --rebuild PATH..."
        ) from exc
    bm25.set_live(data.live)
    problems = consistency_problems(data)
    listed = manifest.get("documents")
    if not isinstance(listed, dict) or set(listed) != set(documents):
        problems.append("manifest document list differs from documents.jsonl")
    if problems:
        raise IndexCorruptError(f"The index snapshot {snap} is inconsistent: {'; '.join(problems)}")
    return data
