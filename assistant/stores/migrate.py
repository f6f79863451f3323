"""Copying an index between stores (FAISS folder, Milvus Lite file, Milvus server) without re-embedding
(``assistant migrate``), through what every backend offers: ``export_batches`` and ``append_rows``."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Iterator

from assistant.errors import ConfigError, IndexCorruptError
from assistant.stores import open_store
from assistant.stores.base import Batch, ChunkBackend, IndexSettings


def export_batches(data: ChunkBackend, max_chunks: int = 2000) -> Iterator[Batch]:
    """Everything an index holds, document by document: ``(docs, chunks, vectors, terms)`` batches;
    vectors and BM25 terms are copied as stored (nothing is embedded or tokenized again)."""
    return data.export_batches(max_chunks)


def import_batch(data: ChunkBackend, batch: Batch) -> None:
    """Append a batch to an empty destination index (no per-document replacement: on a large copy the
    replacement scan would be quadratic)."""
    data.append_rows(*batch)


@dataclass
class MigrationReport:
    source: str
    destination: str
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"copied {self.documents} documents and {self.chunks} chunks from {self.source} to {self.destination} "
                f"in {self.seconds:.1f} s (no re-embedding)")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def migrate(source: str | os.PathLike[str], destination: str | os.PathLike[str], *, overwrite: bool = False,
            progress: Any = None) -> MigrationReport:
    """Copy an index between stores (FAISS folder, Milvus Lite file, Milvus server) without re-embedding."""
    started = time.perf_counter()
    src_store, dst_store = open_store(source), open_store(destination)
    if src_store.uri == dst_store.uri:
        raise ConfigError(f"The source and the destination are the same index ({src_store.uri})")
    stored = src_store.stored_settings()
    if stored is None:
        raise ConfigError(f"{src_store.uri} holds no index to copy")
    settings = IndexSettings(**stored)
    src = src_store.open(settings)
    report = MigrationReport(src_store.uri, dst_store.uri)
    total = src.n_live
    try:
        with dst_store.lock():
            existing = dst_store.stored_settings()
            if existing is not None and not overwrite:
                current = dst_store.open(IndexSettings(**existing))
                if current.n_live or current.n_documents():
                    raise ConfigError(f"{dst_store.uri} already holds an index ({current.n_live} chunks); "
                                      f"add --overwrite to replace it")
            dst = dst_store.empty(settings)
            for batch in export_batches(src):
                import_batch(dst, batch)
                report.documents += len(batch[0])
                report.chunks += len(batch[1])
                if progress:
                    progress("copying", report.chunks, total)
            dst_store.save(dst)
            check = dst_store.open(settings)
            if check.n_live != report.chunks or check.n_documents() != report.documents:
                raise IndexCorruptError(f"The copy in {dst_store.uri} holds {check.n_live} chunks, expected {report.chunks}")
    finally:
        for store in (src_store, dst_store):
            close = getattr(store, "close", None)  # a Milvus store lets go of its client (and a Lite file)
            if close is not None:
                close()
    report.seconds = time.perf_counter() - started
    return report
