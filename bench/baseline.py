"""The LangChain tutorial retriever, built by hand without langchain-community.

The RAG tutorial does::

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200, add_start_index=True)
    splits = splitter.split_documents(docs)
    vectorstore = FAISS.from_documents(splits, embeddings)      # langchain-community
    retriever = vectorstore.as_retriever(search_kwargs={"k": k})

The FAISS vector store embeds every chunk with ``embeddings.embed_documents``, adds the vectors to a
FAISS index, embeds the question with ``embeddings.embed_query`` and returns the top k. We do exactly
that with raw faiss: ``IndexFlatIP`` on L2-normalized vectors (cosine, the store's
``normalize_L2=True`` + inner-product setting), with the same embedder as ours wrapped as a langchain
``Embeddings`` (``assistant.embeddings.LangChainEmbeddings``, which cleans texts the way we do).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from langchain_core.documents import Document as LCDocument
from langchain_text_splitters import RecursiveCharacterTextSplitter

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200


class TutorialRetriever:
    """Split -> embed -> IndexFlatIP -> top-k, as the LangChain tutorial's FAISS retriever."""

    def __init__(self, embeddings, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> None:
        self.embeddings = embeddings
        self.splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True)
        self.chunks: list[LCDocument] = []
        self.index = None
        self.build_seconds = 0.0

    def add_documents(self, documents: Sequence[LCDocument]) -> int:
        import faiss

        started = time.perf_counter()
        splits = self.splitter.split_documents(list(documents))
        vectors = np.asarray(self.embeddings.embed_documents([d.page_content for d in splits]), dtype=np.float32)
        if self.index is None:
            self.index = faiss.IndexFlatIP(vectors.shape[1] if len(vectors) else 384)
        if len(vectors):
            vectors = np.ascontiguousarray(vectors)
            faiss.normalize_L2(vectors)
            self.index.add(vectors)
        self.chunks.extend(splits)
        self.build_seconds += time.perf_counter() - started
        return len(splits)

    def embed_query(self, query: str) -> np.ndarray:
        return np.asarray(self.embeddings.embed_query(query), dtype=np.float32)

    def search(self, query: str, k: int = 4, query_vector: np.ndarray | None = None) -> list[tuple[LCDocument, float]]:
        import faiss

        if self.index is None or not self.chunks:
            return []
        vec = self.embed_query(query) if query_vector is None else np.asarray(query_vector, dtype=np.float32)
        vec = np.ascontiguousarray(vec.reshape(1, -1))
        faiss.normalize_L2(vec)
        scores, rows = self.index.search(vec, min(k, len(self.chunks)))
        return [(self.chunks[r], float(s)) for r, s in zip(rows[0], scores[0]) if r >= 0]

    def invoke(self, query: str, k: int = 4) -> list[LCDocument]:
        """``retriever.invoke(question)``, as in the tutorial."""
        return [doc for doc, _ in self.search(query, k)]
