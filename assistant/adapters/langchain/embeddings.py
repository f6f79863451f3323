"""Any assistant ``Embedder`` as a langchain-core ``Embeddings``."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings

from assistant.retrieval.embeddings import Embedder, make_embedder
from assistant.text.normalize import clean_for_embedding

__all__ = ["LangChainEmbeddings"]


class LangChainEmbeddings(Embeddings):
    """Expose any ``Embedder`` as a langchain-core ``Embeddings``.

    Texts are cleaned the way the index cleans them (diacritics, tatweel, presentation forms), so
    LangChain pipelines get the same vectors the assistant uses.
    """

    def __init__(self, embedder: Embedder | None = None) -> None:
        self.embedder = embedder or make_embedder()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_passages([clean_for_embedding(t) for t in texts]).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_queries([clean_for_embedding(text)])[0].tolist()
