"""Crash safety: an ingest killed with SIGKILL at any point leaves an index that loads, is consistent and
still holds everything indexed before; running the ingest again completes it.

The ingest runs in a subprocess over a temporary index pre-populated with the seed articles, and is
killed at these points:

* during embedding, before anything was committed;
* during embedding of a later batch, after an earlier batch was committed;
* during the index write, while the new snapshot's files are written (``.tmp-snap-*``);
* after the new snapshot folder is in place but before CURRENT points at it;
* after the new pointer file is written but before it replaces CURRENT;
* the real CLI (``python -m assistant.cli ingest``) during the index write.

The save-time kill points use the store's test hook ``ASSISTANT_TEST_SLOW_SAVE`` (a sleep between the
steps of ``IndexStore.save``); the embedding ones a runner script that prints progress and slows the
hash embedder down. Marked ``slow``: run with ``pytest -m slow``.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import pytest

from assistant import Assistant
from assistant.stores.faiss import KEEP_OLD_SNAPSHOTS, consistency_problems

from conftest import ROOT, SEEDS

pytestmark = pytest.mark.slow

RUNNER = textwrap.dedent('''
    """Ingest with progress lines on stdout; env: RUNNER_EMBED_SLEEP (s per batch), RUNNER_COMMIT_EVERY (chunks)."""
    import os, sys, time
    import assistant.core as core
    from assistant import Assistant
    from assistant.retrieval.embeddings import HashEmbedder

    class SlowHash(HashEmbedder):
        def embed_passages(self, texts, batch_size=32):
            time.sleep(float(os.environ.get("RUNNER_EMBED_SLEEP") or 0))
            return super().embed_passages(texts, batch_size)

    if os.environ.get("RUNNER_COMMIT_EVERY"):
        core.COMMIT_EVERY_CHUNKS = int(os.environ["RUNNER_COMMIT_EVERY"])
    index, *paths = sys.argv[1:]
    report = Assistant(index, embedder=SlowHash()).ingest(
        paths, progress=lambda stage, done, total: print(f"{stage} {done} {total}", flush=True))
    print("done", report.summary(), flush=True)
''')

N_FILES = 120
WORDS = ("طرابلس بنغازي مصراتة سبها الزاوية غريان درنة سرت ترهونة زوارة الحكومة الوزير البلدية المجلس الكهرباء المياه "
         "الطريق المستشفى المدرسة الميناء الوقود الانتخابات الاجتماع الاتفاق الوفد المشروع الميزانية الشركة").split()


def make_corpus(folder: Path, n: int = N_FILES, prefix: str = "report") -> Path:
    """``n`` distinct Arabic articles of about six chunks each."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sentences = []
        for j in range(36):
            words = [WORDS[(i * 7 + j * 3 + k * 5) % len(WORDS)] for k in range(8)]
            sentences.append(f"قال المسؤول رقم {i}-{j} إن " + " ".join(words) + ".")
        (folder / f"{prefix}_{i:03d}.txt").write_text(f"تقرير {prefix} رقم {i}\n\n" + " ".join(sentences), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("crash-corpus") / "batch")


@pytest.fixture(scope="module")
def runner(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("crash-runner") / "ingest_runner.py"
    path.write_text(RUNNER, encoding="utf-8")
    return path


@pytest.fixture
def seeded_index(tmp_path) -> tuple[Path, dict[str, str]]:
    """A temp index holding the seed articles, and their ``doc_id -> content_hash``."""
    index = tmp_path / "index"
    bot = Assistant(index, embedder="hash")
    assert len(bot.ingest([SEEDS]).added) == 5
    return index, {d.doc_id: d.content_hash for d in bot.data.list_documents()}


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_LLM_", "ASSISTANT_TEST_", "RUNNER_"))}
    out.update({"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}, **extra)
    return out


def current(index: Path) -> str:
    return (index / "CURRENT").read_text().strip()


def run_and_kill(cmd: list[str], index: Path, when: Callable[[str | None], bool], extra_env: dict[str, str],
                 timeout: float = 120) -> list[str]:
    """Start ``cmd``, SIGKILL it as soon as ``when(stdout line)`` is true (``when(None)`` is polled meanwhile).

    Returns the stdout lines seen. Fails if the process ends before the kill point.
    """
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in proc.stdout], daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                line: str | None = lines.get(timeout=0.005)
                seen.append(line)
            except queue.Empty:
                line = None
            if when(line):
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                return seen
            if line is None and proc.poll() is not None and lines.empty():
                pytest.fail(f"the process finished (rc {proc.returncode}) before the kill point; stdout: {seen[-5:]}; "
                            f"stderr: {proc.stderr.read()[-2000:]}")
        pytest.fail(f"no kill point within {timeout} s; last lines {seen[-5:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    raise AssertionError("unreachable")


def check_after_kill(index: Path, before: dict[str, str]) -> dict[str, str]:
    """The index loads, is consistent, and still holds every document it held before."""
    data = Assistant(index, embedder="hash").data
    assert consistency_problems(data) == []
    docs = {d.doc_id: d.content_hash for d in data.list_documents()}
    assert {k: docs.get(k) for k in before} == before
    hits = Assistant(index, embedder="hash").search("لافروف السفارة الروسية", k=3).hits
    assert hits and hits[0].chunk.doc_id == "004_dfbf6940fa5a6b70"
    return docs


def rerun_completes(index: Path, corpus: Path, before: dict[str, str]) -> None:
    """``assistant ingest`` again: it finishes, and the index holds the seeds plus the whole batch."""
    out = subprocess.run([sys.executable, "-m", "assistant.cli", "ingest", str(corpus), "--index", str(index),
                          "--embedder", "hash", "--no-progress"], cwd=ROOT, env=env(), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    data = Assistant(index, embedder="hash").data
    assert consistency_problems(data) == []
    docs = {d.doc_id for d in data.list_documents()}
    assert docs == set(before) | {p.stem for p in corpus.glob("*.txt")}
    assert not list(index.glob(".tmp-*")) and not list(index.glob(".CURRENT-*"))
    assert len(list(index.glob("snap-*"))) <= KEEP_OLD_SNAPSHOTS


def runner_cmd(runner: Path, index: Path, corpus: Path) -> list[str]:
    return [sys.executable, str(runner), str(index), str(corpus)]


# -- kill points ---------------------------------------------------------------------------------------------
def test_kill_during_embedding_before_any_commit(seeded_index, corpus, runner):
    index, before = seeded_index
    snapshot = current(index)
    lines = run_and_kill(runner_cmd(runner, index, corpus), index,
                         lambda line: bool(line and line.startswith("embedding ") and int(line.split()[1]) >= 64),
                         {"RUNNER_EMBED_SLEEP": "0.05"})
    assert any(line.startswith("embedding") for line in lines)
    assert current(index) == snapshot  # nothing was committed
    assert check_after_kill(index, before) == before
    rerun_completes(index, corpus, before)


def test_kill_during_embedding_after_a_commit(seeded_index, corpus, runner):
    index, before = seeded_index
    snapshot = current(index)
    state = {"finished_batches": 0}

    def second_batch_embedding(line: str | None) -> bool:
        if not line or not line.startswith("embedding "):
            return False
        _, done, total = line.split()
        if done == total:
            state["finished_batches"] += 1
            return False
        return state["finished_batches"] >= 1 and int(done) >= 32

    run_and_kill(runner_cmd(runner, index, corpus), index, second_batch_embedding,
                 {"RUNNER_EMBED_SLEEP": "0.02", "RUNNER_COMMIT_EVERY": "250"})
    assert current(index) != snapshot  # the first batch was committed...
    docs = check_after_kill(index, before)
    added = set(docs) - set(before)
    assert 0 < len(added) < N_FILES  # ...and is kept; the batch being embedded is not there
    rerun_completes(index, corpus, before)


def _tmp_with(name: str) -> Callable[[Path], bool]:
    return lambda index: any((tmp / name).exists() for tmp in index.glob(".tmp-snap-*"))


@pytest.mark.parametrize(
    ("point", "condition"),
    [
        ("writing the snapshot files", _tmp_with("vectors.f32")),
        ("snapshot renamed, CURRENT not switched", None),
        ("pointer written, not yet in place", lambda index: any(index.glob(".CURRENT-snap-*"))),
    ],
)
def test_kill_during_the_index_write(seeded_index, corpus, runner, point, condition):
    index, before = seeded_index
    snapshot = current(index)
    if condition is None:
        def condition(index: Path, old=snapshot) -> bool:
            return any(p.name != old for p in index.glob("snap-*")) and current(index) == old

    run_and_kill(runner_cmd(runner, index, corpus), index, lambda line: line is None and condition(index),
                 {"ASSISTANT_TEST_SLOW_SAVE": "1.0"})
    assert current(index) == snapshot, point
    assert check_after_kill(index, before) == before
    rerun_completes(index, corpus, before)


def test_cli_ingest_killed_during_the_index_write(seeded_index, corpus):
    index, before = seeded_index
    snapshot = current(index)
    cmd = [sys.executable, "-m", "assistant.cli", "ingest", str(corpus), "--index", str(index), "--embedder", "hash",
           "--no-progress"]
    run_and_kill(cmd, index, lambda line: line is None and _tmp_with("vectors.f32")(index),
                 {"ASSISTANT_TEST_SLOW_SAVE": "1.0"})
    assert current(index) == snapshot
    assert list(index.glob(".tmp-snap-*"))  # the half-written snapshot is left behind, never used...
    assert check_after_kill(index, before) == before
    rerun_completes(index, corpus, before)  # ...and cleaned up by the next commit


def test_killed_remove_keeps_the_document(seeded_index):
    index, before = seeded_index
    snapshot = current(index)
    cmd = [sys.executable, "-m", "assistant.cli", "remove", "004_dfbf6940fa5a6b70", "--index", str(index),
           "--embedder", "hash"]
    run_and_kill(cmd, index, lambda line: line is None and _tmp_with("vectors.f32")(index),
                 {"ASSISTANT_TEST_SLOW_SAVE": "1.0"})
    assert current(index) == snapshot
    assert check_after_kill(index, before) == before
    out = subprocess.run(cmd, cwd=ROOT, env=env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("removed 004_dfbf6940fa5a6b70 (")
    assert "004_dfbf6940fa5a6b70" not in {d.doc_id for d in Assistant(index, embedder="hash").documents()}
