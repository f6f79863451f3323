"""Resumable ingestion: a long ``assistant ingest`` commits in batches; after a SIGKILL or an embedding
server that went down, the same command again continues where it stopped, without embedding any
committed document a second time.

The real CLI runs in a subprocess (with small commits: ``COMMIT_EVERY_CHUNKS`` = 60) against the
``openai`` embedder and a stand-in embedding server in this process, which records every text it
embedded: that record is how re-embedding is counted.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.text.normalize import clean_for_embedding
from assistant.ingest.chunking import chunk_document
from assistant.stores.faiss import IndexStore, consistency_problems

from conftest import ROOT

COMMIT_EVERY = 60
# The CLI itself, with commits small enough that a few hundred chunks make several of them.
CLI = ("import sys, assistant.core as core; core.COMMIT_EVERY_CHUNKS = int(sys.argv.pop(1)); "
       "from assistant.cli import main; sys.exit(main(sys.argv[1:]))")
PLACES = "طرابلس بنغازي مصراتة سبها الزاوية غريان درنة سرت ترهونة زوارة".split()


def _servers():
    spec = importlib.util.spec_from_file_location("embed_servers", ROOT / "bench" / "embed_servers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("embed_servers", module)
    spec.loader.exec_module(module)
    return module


StandIn = _servers().StandIn


def make_corpus(folder: Path, n: int = 60) -> Path:
    """``n`` distinct Arabic reports of about five chunks each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sentences = [f"قال المسؤول رقم {i}-{j} إن الوفد وصل إلى {PLACES[(i + j) % len(PLACES)]} لبحث ملف الكهرباء والمياه والطرق."
                     for j in range(24)]
        (folder / f"report_{i:03d}.txt").write_text(f"تقرير رقم {i}\n\nرمز التقرير {1000 + i}. " + " ".join(sentences),
                                                    encoding="utf-8")
    return folder


def ingest_cmd(corpus: Path, index: Path, url: str) -> list[str]:
    return [sys.executable, "-c", CLI, str(COMMIT_EVERY), "ingest", str(corpus), "--index", str(index),
            "--embedder", f"openai:standin-hash@{url}"]


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
               ASSISTANT_EMBEDDINGS_IN_FLIGHT="1", ASSISTANT_EMBEDDINGS_BATCH="16", ASSISTANT_EMBEDDINGS_ATTEMPTS="2")
    return env


def committed(index: Path) -> dict[str, object]:
    """The documents of the live snapshot (read without the embedder: no settings check)."""
    if not (index / "CURRENT").exists():
        return {}
    return {d.doc_id: d for d in IndexStore(index).load().list_documents()}


def chunk_texts(docs) -> Counter:
    """What the embedder is sent for these documents' chunks."""
    probe = Assistant(Path("unused"), embedder="hash")
    return Counter(clean_for_embedding(c.text) for d in docs for c in chunk_document(d, probe.chunk_chars, probe.max_chunk_chars))


def finish_and_check(corpus: Path, index: Path, server, before_rerun: dict[str, object]) -> None:
    """Run the same command again: it completes, and embeds exactly the chunks of the documents that
    were not committed, none of the committed ones."""
    server.wait_idle()
    mark = len(server.texts)
    done = subprocess.run(ingest_cmd(corpus, index, server.url), cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"{len(before_rerun)} unchanged" in done.stdout
    final = committed(index)
    assert len(final) == len(list(corpus.iterdir()))
    assert consistency_problems(IndexStore(index).load()) == []
    re_embedded = Counter(server.texts[mark:]) - Counter(["probe"])
    assert not re_embedded & chunk_texts(before_rerun.values()), "committed chunks were embedded again"
    assert re_embedded == chunk_texts(d for k, d in final.items() if k not in before_rerun)
    # The index answers from documents of both runs.
    bot = Assistant(index, embedder=f"openai:standin-hash@{server.url}")
    first, last = sorted(before_rerun)[0], sorted(set(final) - set(before_rerun))[-1]
    for doc_id in (first, last):
        hits = bot.search(f"رمز التقرير {1000 + int(doc_id.split('_')[1])}", k=3).hits
        assert hits[0].chunk.doc_id == doc_id


def test_a_killed_ingest_keeps_its_commits_and_the_rerun_does_not_reembed_them(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    index = tmp_path / "ix"
    with StandIn(latency=0.08) as server:
        proc = subprocess.Popen(ingest_cmd(corpus, index, server.url), cwd=ROOT, env=cli_env(),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 120
            seen: dict[str, object] = {}
            # Kill once at least two batches are committed and the next one is being embedded.
            while time.monotonic() < deadline and proc.poll() is None:
                seen = committed(index)
                if len(seen) >= 20 and len(server.texts) > sum(chunk_texts(seen.values()).values()) + 20:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.05)
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL, f"not killed in time (rc {proc.returncode}): {proc.stderr.read()[-2000:]}"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()
        after_kill = committed(index)
        assert set(seen) <= set(after_kill), "a committed batch was lost"
        assert 0 < len(after_kill) < len(list(corpus.iterdir()))
        finish_and_check(corpus, index, server, after_kill)


def test_an_embedding_server_that_goes_down_stops_the_ingest_and_the_rerun_continues(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    index = tmp_path / "ix"
    with StandIn(fail_after_texts=200) as server:
        failed = subprocess.run(ingest_cmd(corpus, index, server.url), cwd=ROOT, env=cli_env(), capture_output=True,
                                text=True, timeout=300)
        assert failed.returncode != 0
        assert f"The embedding request failed 2 times; last: {server.url}/v1/embeddings: HTTP 503 server is down." in failed.stderr
        assert "re-run the same command to continue" in failed.stderr
        kept = committed(index)
        assert 0 < len(kept) < len(list(corpus.iterdir()))
        server.fail_after_texts = None  # the server is back
        finish_and_check(corpus, index, server, kept)
