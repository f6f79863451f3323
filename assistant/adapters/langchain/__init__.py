"""LangChain adapters: the assistant as a langchain-core ``BaseRetriever``, ``VectorStore`` and ``Embeddings``."""

from assistant.adapters.langchain.embeddings import LangChainEmbeddings
from assistant.adapters.langchain.retriever import AssistantRetriever
from assistant.adapters.langchain.vectorstore import AssistantVectorStore

__all__ = ["AssistantRetriever", "AssistantVectorStore", "LangChainEmbeddings"]
