"""Either store (FAISS folder, Milvus Lite file, Milvus server) as a langchain-core ``VectorStore``.

For users who build their own LangChain pipelines::

    from assistant.adapters.langchain.vectorstore import AssistantVectorStore
    store = AssistantVectorStore(my_embeddings, "news.db")          # or "ix/", "milvus://host:19530"
    store.add_texts(["..."], metadatas=[{"source": "a.txt"}], ids=["a"])
    store.similarity_search("query", k=4)                           # dense (cosine)
    store.hybrid_search("query", k=4)                               # the assistant's dense + BM25 fusion

Each text is one document and one chunk (LangChain pipelines split texts themselves); its id is the
LangChain id and its metadata is kept as JSON. Any ``Embeddings`` works: its vectors are
L2-normalized and the index records its class (or ``model``) name and dimension, so opening the
index with other embeddings is the same clear error as in the assistant.

Opening an index built by the assistant also works when ``embedding`` is
``assistant.embeddings.LangChainEmbeddings`` over the same embedder: search returns its chunks with
the citation fields as metadata.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from assistant.stores import open_store
from assistant.stores.base import ChunkBackend, follow
from assistant.adapters.langchain.embeddings import LangChainEmbeddings
from assistant.text.normalize import NORMALIZER_VERSION, tokenize
from assistant.records import Chunk, Document
from assistant.stores.base import IndexSettings

KIND = "langchain"
CHUNKER = {"version": "langchain", "one_chunk_per_text": True}


class EmbeddingsAdapter:
    """A LangChain ``Embeddings`` as the assistant's ``Embedder`` (rows L2-normalized)."""

    backend = "langchain"
    query_prompt = ""
    passage_prompt = ""

    def __init__(self, embeddings: Embeddings) -> None:
        self.embeddings = embeddings
        self.model = str(getattr(embeddings, "model", None) or getattr(embeddings, "model_name", None) or type(embeddings).__name__)
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embeddings.embed_query("dimension"))
        return self._dim

    @staticmethod
    def _rows(vectors: Any) -> np.ndarray:
        rows = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(rows / norms, dtype=np.float32)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._rows([self.embeddings.embed_query(t) for t in texts])

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._rows(self.embeddings.embed_documents(list(texts)))


def as_embedder(embeddings: Embeddings):
    """Our own embedder behind ``LangChainEmbeddings`` (so assistant indexes open), else an adapter."""
    if isinstance(embeddings, LangChainEmbeddings):
        return embeddings.embedder
    return EmbeddingsAdapter(embeddings)


class AssistantVectorStore(VectorStore):
    """A langchain-core ``VectorStore`` over any assistant store location.

    Args:
        embedding: Any LangChain ``Embeddings``.
        location: A folder (FAISS), ``*.db`` (Milvus Lite) or ``milvus://host:19530`` (Milvus).
    """

    def __init__(self, embedding: Embeddings, location: str | Path) -> None:
        self._embedding = embedding
        self.embedder = as_embedder(embedding)
        self.store = open_store(location)
        self._data: ChunkBackend | None = None
        self._version: str | None = None
        self._lock = threading.RLock()

    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    def settings(self) -> IndexSettings:
        """New indexes record these; an existing index must match the embedder (not the chunker)."""
        emb = self.embedder
        stored = self.store.stored_settings() or {}
        return IndexSettings(
            embedder_backend=emb.backend, embedder_model=emb.model, dim=emb.dim, query_prompt=emb.query_prompt,
            passage_prompt=emb.passage_prompt, chunker=stored.get("chunker", CHUNKER),
            normalizer_version=stored.get("normalizer_version", NORMALIZER_VERSION),
        )

    def _open(self) -> ChunkBackend:
        with self._lock:
            version = self.store.version()
            if self._data is None or version != self._version:
                self._data = follow(self.store, self._data, self.settings())
                self._version = version
            return self._data

    def close(self) -> None:
        """Release the connection (Milvus); the FAISS store holds none."""
        closer = getattr(self.store, "close", None)
        if closer is not None:
            closer()
        self._data = None

    # -- writing ---------------------------------------------------------------------------------------
    def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str | None] | None = None,
                  **kwargs: Any) -> list[str]:
        texts = list(texts)
        metadatas = list(metadatas) if metadatas is not None else [{} for _ in texts]
        ids = list(ids) if ids is not None else [None] * len(texts)
        if not len(texts) == len(metadatas) == len(ids):
            raise ValueError(f"{len(texts)} texts, {len(metadatas)} metadatas and {len(ids)} ids")
        ids = [str(i) if i is not None else str(uuid.uuid4()) for i in ids]
        if not texts:
            return []
        latest = {doc_id: n for n, doc_id in enumerate(ids)}  # the same id twice: the last one wins
        keep = sorted(latest.values())
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        docs, chunks = [], []
        for n in keep:
            text, meta, doc_id = texts[n], dict(metadatas[n] or {}), ids[n]
            meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str)
            digest = hashlib.sha256(f"{text}\x00{meta_json}".encode("utf-8")).hexdigest()
            docs.append(Document(doc_id=doc_id, title=str(meta.get("title", "")), source=meta_json, text=text,
                                 content_hash=digest, added_at=now, kind=KIND))
            chunks.append(Chunk(chunk_id=doc_id, doc_id=doc_id, start=0, end=len(text), text=text, sentences=((0, len(text)),)))
        vectors = self.embedder.embed_passages([c.text for c in chunks])
        terms = [tokenize(c.text) for c in chunks]
        with self._lock, self.store.lock():
            writer = self.store.writer(self.settings())
            writer.add_documents(docs, chunks, vectors, terms)
            self.store.save(writer)
        return ids

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (unknown ids are ignored); ``ids=None`` deletes everything."""
        with self._lock, self.store.lock():
            writer = self.store.writer(self.settings(), rebuild=ids is None)
            for doc_id in ids or ():
                writer.remove_document(str(doc_id))
            self.store.save(writer)
        return True

    # -- reading ---------------------------------------------------------------------------------------
    @staticmethod
    def _metadata(doc: Document | None, chunk: Chunk) -> dict[str, Any]:
        if doc is not None and doc.kind == KIND:
            try:
                return json.loads(doc.source)
            except ValueError:
                return {}
        return {"doc_id": chunk.doc_id, "chunk_id": chunk.chunk_id, "title": doc.title if doc else "",
                "source": doc.source if doc else "", "page": chunk.page, "start": chunk.start, "end": chunk.end}

    def _documents(self, data: ChunkBackend, scored: list[tuple[str, float]]) -> list[tuple[LCDocument, float]]:
        chunks = data.get_chunks([c for c, _ in scored])
        docs: dict[str, Document | None] = {}
        out = []
        for chunk_id, score in scored:
            chunk = chunks.get(chunk_id)
            if chunk is None:
                continue
            if chunk.doc_id not in docs:
                docs[chunk.doc_id] = data.get_document(chunk.doc_id)
            out.append((LCDocument(id=chunk_id, page_content=chunk.text, metadata=self._metadata(docs[chunk.doc_id], chunk)), score))
        return out

    def get_by_ids(self, ids: Sequence[str], /) -> list[LCDocument]:
        data = self._open()
        chunks = data.get_chunks([str(i) for i in ids])
        return [doc for doc, _ in self._documents(data, [(str(i), 0.0) for i in ids if str(i) in chunks])]

    def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[LCDocument, float]]:
        """Dense search: ``(document, cosine)`` best first."""
        return self.similarity_search_by_vector_with_score(self.embedder.embed_queries([query])[0], k)

    def similarity_search_by_vector_with_score(self, embedding: Sequence[float], k: int = 4) -> list[tuple[LCDocument, float]]:
        data = self._open()
        vector = np.asarray(embedding, dtype=np.float32)
        vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        return self._documents(data, data.dense_search(vector, k))

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[LCDocument]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[LCDocument]:
        return [doc for doc, _ in self.similarity_search_by_vector_with_score(embedding, k)]

    def hybrid_search(self, query: str, k: int = 4) -> list[LCDocument]:
        """The assistant's hybrid search (dense + BM25 over folded Arabic, convex fusion)."""
        from assistant.retrieval.search import HybridRetriever

        data = self._open()
        if not data.n_live:
            return []
        result = HybridRetriever(data, self.embedder).search(query, k)
        return [doc for doc, _ in self._documents(data, [(h.chunk.chunk_id, h.score) for h in result.hits])]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return lambda cosine: (1.0 + cosine) / 2.0

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings, metadatas: list[dict] | None = None, *,
                   ids: list[str] | None = None, location: str | Path | None = None, **kwargs: Any) -> AssistantVectorStore:
        if location is None:
            raise ValueError("AssistantVectorStore.from_texts needs location= (a folder, *.db or milvus://host:19530)")
        store = cls(embedding, location)
        store.add_texts(texts, metadatas, ids=ids)
        return store
