"""LangChain adapters: the assistant's hybrid search as a langchain-core ``BaseRetriever``."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


__all__ = ["AssistantRetriever"]


class AssistantRetriever(BaseRetriever):
    """Hybrid (dense + BM25) search over an assistant index.

    Build it with ``Assistant.as_retriever()`` or ``AssistantRetriever(assistant=bot, k=...)``
    (``assistant.lc.AssistantRetriever`` also opens an index itself: ``index_dir=...``).
    ``k`` is the number of documents returned; it can be overridden per call
    (``retriever.invoke(query, k=3)``). Each document's metadata carries the citation fields:
    doc_id, title, source, chunk_id, page, start, end, score, best_start, best_end.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Any = None  # anything with ``search(query, k=...)`` returning hits: an ``Assistant``
    k: int = 5

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None, **kwargs: Any
    ) -> list[LCDocument]:
        result = self.assistant.search(query, k=k or self.k)
        return [
            LCDocument(
                page_content=hit.chunk.text,
                id=hit.chunk.chunk_id,
                metadata={
                    "doc_id": hit.chunk.doc_id,
                    "title": hit.title,
                    "source": hit.source,
                    "chunk_id": hit.chunk.chunk_id,
                    "page": hit.chunk.page,
                    "start": hit.chunk.start,
                    "end": hit.chunk.end,
                    "score": hit.score,
                    "best_start": hit.best_start,
                    "best_end": hit.best_end,
                },
            )
            for hit in result.hits
        ]
