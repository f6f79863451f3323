"""langchain-tests' own VectorStore suite on AssistantVectorStore, over the FAISS folder and Milvus Lite."""

from __future__ import annotations

import importlib.util
import re

import pytest
from conftest import SEEDS
from langchain_core.documents import Document as LCDocument
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from assistant.adapters.langchain import LangChainEmbeddings
from assistant.retrieval.embeddings import HashEmbedder
from assistant.errors import IndexMismatchError
from assistant.adapters.langchain.vectorstore import AssistantVectorStore

HAS_MILVUS = importlib.util.find_spec("pymilvus") is not None and importlib.util.find_spec("milvus_lite") is not None
needs_milvus = pytest.mark.skipif(not HAS_MILVUS, reason="pymilvus and milvus-lite are not installed (pip install -e '.[milvus]')")


class TestFaissVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path):
        store = AssistantVectorStore(self.get_embeddings(), tmp_path / "lc-index")
        yield store
        store.close()


@needs_milvus
@pytest.mark.milvus
class TestMilvusLiteVectorStore(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path):
        store = AssistantVectorStore(self.get_embeddings(), tmp_path / "lc.db")
        yield store
        store.close()


STORES = ["faiss", pytest.param("milvus-lite", marks=[needs_milvus, pytest.mark.milvus])]


def _location(tmp_path, kind: str):
    return tmp_path / ("lc-index" if kind == "faiss" else "lc.db")


@pytest.mark.parametrize("kind", STORES)
def test_other_embeddings_are_a_clear_error(tmp_path, kind):
    first = AssistantVectorStore(VectorStoreIntegrationTests.get_embeddings(), _location(tmp_path, kind))
    first.add_texts(["foo"], ids=["1"])
    first.close()
    other = AssistantVectorStore(LangChainEmbeddings(HashEmbedder()), _location(tmp_path, kind))
    with pytest.raises(IndexMismatchError, match=re.escape("was built with embedder_backend='langchain'")):
        other.similarity_search("foo")
    other.close()


@pytest.mark.parametrize("kind", STORES)
def test_hybrid_search_and_arabic_metadata(tmp_path, kind):
    store = AssistantVectorStore.from_texts(
        ["أعلن لافروف استئناف عمل السفارة الروسية في طرابلس", "افتتاح مطار معيتيقة", "Unrelated English text"],
        LangChainEmbeddings(HashEmbedder()), metadatas=[{"source": "a.txt", "n": 1}, {"source": "b.txt"}, {}],
        ids=["a", "b", "c"], location=_location(tmp_path, kind),
    )
    top = store.hybrid_search("السفارة الروسية", k=1)[0]
    assert top == LCDocument(id="a", page_content="أعلن لافروف استئناف عمل السفارة الروسية في طرابلس", metadata={"source": "a.txt", "n": 1})
    scored = store.similarity_search_with_relevance_scores("افتتاح مطار معيتيقة", k=3)
    assert scored[0][0].id == "b" and 0.99 <= scored[0][1] <= 1.0
    store.close()


@pytest.mark.parametrize("kind", STORES)
def test_an_assistant_index_opens_as_a_vectorstore(tmp_path, kind):
    from assistant import Assistant

    location = tmp_path / ("ix" if kind == "faiss" else "ix.db")
    assistant = Assistant(location, embedder="hash")
    assistant.ingest([SEEDS])
    store = AssistantVectorStore(LangChainEmbeddings(assistant.embedder), location)
    docs = store.hybrid_search("لافروف السفارة الروسية", k=2)
    assert docs[0].metadata["doc_id"] == "004_dfbf6940fa5a6b70"
    text = assistant.document("004_dfbf6940fa5a6b70").text
    assert text[docs[0].metadata["start"] : docs[0].metadata["end"]] == docs[0].page_content
    store.close()
    getattr(assistant.store, "close", lambda: None)()
