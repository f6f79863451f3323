"""The storage seam: what the assistant needs from an index, whatever holds it.

Two implementations:

* the FAISS index directory (``store.IndexStore`` opening ``store.IndexData``): the default;
* Milvus (``milvus_store``), a server (``milvus://host:19530``) or an embedded Milvus Lite file
  (``something.db``), for newsrooms that share one index between several app servers.

The assistant, the CLI and the UI only use these two protocols.
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Container, Protocol, runtime_checkable

import numpy as np

from assistant.records import Chunk, Document


@runtime_checkable
class Vocabulary(Protocol):
    """The indexed lexical terms: what query planning needs (variants, known words, idf)."""

    vocab: Container[str]

    def variants(self, term: str, max_edits: int = 1) -> list[tuple[str, float]]: ...

    def document_frequency(self, term: str) -> int: ...


@runtime_checkable
class ChunkBackend(Protocol):
    """An open index: reads for retrieval, in-place writes made durable by ``IndexStoreLike.save``."""

    @property
    def n_live(self) -> int: ...

    @property
    def vocabulary(self) -> Vocabulary: ...

    def dense_search(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]: ...

    def lexical_search(self, terms: dict[str, float], n: int) -> list[tuple[str, float]]: ...

    def dense_scores(self, chunk_ids: list[str], vector: np.ndarray) -> dict[str, float]: ...

    def lexical_scores(self, chunk_ids: list[str], terms: dict[str, float]) -> dict[str, float]: ...

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]: ...

    def get_document(self, doc_id: str) -> Document | None: ...

    def list_documents(self) -> list[Document]: ...

    def chunk_counts(self) -> dict[str, int]: ...

    def add_documents(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None: ...

    def remove_document(self, doc_id: str) -> int: ...


class IndexStoreLike(Protocol):
    """Opens, locks and saves one index."""

    @property
    def uri(self) -> str: ...

    def stored_settings(self) -> dict[str, Any] | None: ...

    def version(self) -> str | None: ...

    def open(self, settings: Any) -> ChunkBackend: ...

    def empty(self, settings: Any) -> ChunkBackend: ...

    def writer(self, settings: Any, rebuild: bool = False) -> Any:
        """Something with ``get_document``, ``add_documents`` and ``remove_document`` that ``save``
        commits: the FAISS folder's ``IndexWriter`` (appends, nothing loaded), Milvus's open backend."""
        ...

    def lock(self) -> AbstractContextManager[None]: ...

    def save(self, data: Any) -> Any: ...


def follow(store: IndexStoreLike, data: ChunkBackend | None, settings: Any) -> ChunkBackend:
    """The store's live index: ``data`` brought up to date where the store can (a folder index reads
    only the rows committed since ``data`` was loaded), else opened anew."""
    refresh = getattr(store, "refresh", None)
    if data is not None and refresh is not None:
        return refresh(data, settings)
    return store.open(settings)


def open_store(location: str | os.PathLike[str]) -> IndexStoreLike:
    """The store for an index location: a folder (FAISS), ``*.db`` (Milvus Lite) or ``milvus://...``."""
    text = re.sub(r"^(milvus|milvuss|https?|tcp):/(?!/)", r"\1://", str(location))  # pathlib.Path ate a slash
    if text.startswith(("milvus://", "milvuss://", "http://", "https://", "tcp://")) or text.split("?")[0].endswith(".db"):
        from assistant.stores.milvus.store import MilvusStore

        return MilvusStore(text)
    from assistant.stores.faiss.store import IndexStore

    return IndexStore(Path(text))
