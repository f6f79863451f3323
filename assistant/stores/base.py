"""The storage seam (shared by every store): what the assistant needs from an index, whatever holds it.

Two implementations:

* the FAISS index directory (``stores.faiss.IndexStore``): the default;
* Milvus (``stores.milvus.MilvusStore``), a server (``milvus://host:19530``) or an embedded Milvus Lite
  file (``something.db``), for newsrooms that share one index between several app servers.

``stores.open_store(location)`` picks one. The assistant, the CLI and the UI only use these protocols,
``IndexSettings`` and the one settings check (``check_settings``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Container, Iterator, Protocol, runtime_checkable

import numpy as np

from assistant.errors import IndexMismatchError
from assistant.records import Chunk, Document


@dataclass
class IndexSettings:
    """What a snapshot was built with; must match the reader's settings."""

    embedder_backend: str
    embedder_model: str
    dim: int
    query_prompt: str
    passage_prompt: str
    chunker: dict[str, Any]
    normalizer_version: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class DocInfo:
    """A document as the manifest's table knows it: enough to decide whether a file changed."""

    doc_id: str
    content_hash: str
    source: str
    first_row: int
    n_rows: int


@runtime_checkable
class Vocabulary(Protocol):
    """The indexed lexical terms: what query planning needs (variants, known words, idf)."""

    vocab: Container[str]

    def variants(self, term: str, max_edits: int = 1) -> list[tuple[str, float]]: ...

    def short_spellings(self, name: str) -> tuple[str, ...]: ...

    def document_frequency(self, term: str) -> int: ...


Batch = tuple[list[Document], list[Chunk], np.ndarray, list[list[str]]]
"""Whole documents with their chunks, one vector and one BM25 term list per chunk: what a copy moves."""


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

    def n_documents(self) -> int:
        """How many documents the index holds (without reading them)."""
        ...

    def chunk_counts(self) -> dict[str, int]: ...

    def add_documents(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None: ...

    def remove_document(self, doc_id: str) -> int: ...

    # What ``assistant migrate`` copies through: the rows as stored, vectors and BM25 terms included
    # (nothing is embedded or tokenized again), and a plain append into an empty index.
    def export_batches(self, max_chunks: int = 2000) -> Iterator[Batch]: ...

    def append_rows(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Add documents that are not in the index yet (no per-document replacement)."""
        ...


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


def check_settings(location: str, have: dict[str, Any], wanted: IndexSettings) -> None:
    """Raise ``IndexMismatchError`` naming the fix when an index at ``location`` was built with settings
    ``have`` other than ``wanted`` (every store's one check)."""
    # An openai embedder's model and dimension are what its endpoint answered with: say so.
    now = "the embedding endpoint answers with" if wanted.embedder_backend == have.get("embedder_backend") == "openai" else "the assistant is set to"
    for key in ("embedder_backend", "embedder_model", "dim", "query_prompt", "passage_prompt"):
        if have.get(key) != getattr(wanted, key):
            raise IndexMismatchError(
                f"The index in {location} was built with {key}={have.get(key)!r}, but {now} "
                f"{getattr(wanted, key)!r}. Use the same embedder (--embedder "
                f"{embedder_flag(have)}) or rebuild the index: assistant ingest --index {location} --rebuild PATH..."
            )
    for key in ("chunker", "normalizer_version"):
        if have.get(key) != getattr(wanted, key):
            raise IndexMismatchError(
                f"The index in {location} was built with other {key.replace('_', ' ')} settings "
                f"({have.get(key)!r}, now {getattr(wanted, key)!r}). Rebuild it: assistant ingest --index {location} --rebuild PATH..."
            )


def embedder_flag(settings: dict[str, Any]) -> str:
    backend = settings.get("embedder_backend")
    if backend == "sentence-transformers":
        return f"st:{settings.get('embedder_model')}"
    if backend == "openai":  # the URLs are not recorded: servers move, the model they serve is what matters
        return f"openai:{settings.get('embedder_model')}@URL"
    return str(backend)
