"""Kept so existing imports keep working: the LangChain adapters live in :mod:`assistant.adapters.langchain`."""

from assistant.adapters.langchain import AssistantRetriever, AssistantVectorStore, LangChainEmbeddings

__all__ = ["AssistantRetriever", "AssistantVectorStore", "LangChainEmbeddings"]
