"""``IndexWriter``: changes to an index folder gathered without loading it, for ``IndexStore.save``
to append."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from assistant.records import Chunk, Document
from assistant.stores.base import DocInfo, IndexSettings
from assistant.stores.faiss.checks import doc_table


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
        self.table: dict[str, DocInfo] = doc_table(manifest) if manifest else {}
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
