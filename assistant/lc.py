"""The LangChain classes under the import path users already have (they live in
:mod:`assistant.adapters.langchain`); this ``AssistantRetriever`` can also open an index itself.

    from assistant.lc import AssistantRetriever
    retriever = AssistantRetriever(index_dir="index/", k=5)
"""

from __future__ import annotations

from typing import Any

from assistant.adapters.langchain import AssistantVectorStore, LangChainEmbeddings
from assistant.adapters.langchain.retriever import AssistantRetriever as _AssistantRetriever
from assistant.core import Assistant

__all__ = ["AssistantRetriever", "AssistantVectorStore", "LangChainEmbeddings"]


class AssistantRetriever(_AssistantRetriever):
    """The adapter, opening ``Assistant(index_dir, embedder=embedder)`` when no ``assistant`` is given."""

    index_dir: str | None = None
    embedder: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.assistant is None:
            self.assistant = Assistant(self.index_dir, embedder=self.embedder)
