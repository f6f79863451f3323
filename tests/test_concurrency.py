"""Concurrent writers and readers of one index, and concurrent users of the running app.

* Two ``assistant ingest`` processes into one index at once serialize on the writer lock; when the
  wait runs out, the second fails with a clear message and the index holds exactly the first batch.
* Readers (fresh and long-lived ``Assistant`` objects) search while another process commits many
  snapshots in a row: no reader ever sees a damaged or mixed index.
* The load test (``bench/load_test.py``): 20+ concurrent askers drive the running app through its
  Gradio API while another process ingests into the same index; zero errors. The numbers are printed
  and written to the test's temp folder; ``python bench/load_test.py`` writes them to
  ``bench/results/load_test.json`` for the benchmark report. No timing is asserted.

All marked ``slow`` (processes, the real model); run with ``pytest -m slow``.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.stores.faiss import consistency_problems

from conftest import ROOT, SEEDS
from test_crash_safety import env, make_corpus

pytestmark = pytest.mark.slow


@pytest.fixture
def seeded_index(tmp_path) -> Path:
    index = tmp_path / "index"
    assert len(Assistant(index, embedder="hash").ingest([SEEDS]).added) == 5
    return index


def ingest_cmd(index: Path, folder: Path) -> list[str]:
    return [sys.executable, "-m", "assistant.cli", "ingest", str(folder), "--index", str(index), "--embedder", "hash",
            "--no-progress"]


def wait_for_lock_holder(index: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until ``proc`` holds the index's writer lock (its pid is in ``.lock``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (index / ".lock").read_text().split()[:1] == [str(proc.pid)]:
                return
        except (OSError, IndexError):
            pass
        if proc.poll() is not None:
            pytest.fail(f"the first ingest ended (rc {proc.returncode}) before it took the lock")
        time.sleep(0.01)
    pytest.fail("the first ingest never took the lock")


def doc_ids(index: Path) -> set[str]:
    data = Assistant(index, embedder="hash").data
    assert consistency_problems(data) == []
    return {d.doc_id for d in data.list_documents()}


def test_two_ingests_at_once_serialize(seeded_index, tmp_path):
    alpha = make_corpus(tmp_path / "alpha", 40, "alpha")
    beta = make_corpus(tmp_path / "beta", 40, "beta")
    first = subprocess.Popen(ingest_cmd(seeded_index, alpha), cwd=ROOT, env=env(ASSISTANT_TEST_SLOW_SAVE="0.5"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lock_holder(seeded_index, first)
    started = time.monotonic()
    second = subprocess.run(ingest_cmd(seeded_index, beta), cwd=ROOT, env=env(), capture_output=True, text=True,
                            timeout=120)
    waited = time.monotonic() - started
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 0, second.stderr
    assert out.startswith("40 added, 0 updated, 0 unchanged;") and second.stdout.startswith("40 added, 0 updated, 0 unchanged;")
    assert waited > 1.0  # the second one waited for the first one's commit
    want = {p.stem for p in SEEDS.glob("*.txt")} | {p.stem for p in alpha.glob("*.txt")} | {p.stem for p in beta.glob("*.txt")}
    assert doc_ids(seeded_index) == want


def test_second_ingest_fails_cleanly_when_the_wait_runs_out(seeded_index, tmp_path):
    alpha = make_corpus(tmp_path / "alpha", 30, "alpha")
    beta = make_corpus(tmp_path / "beta", 30, "beta")
    first = subprocess.Popen(ingest_cmd(seeded_index, alpha), cwd=ROOT, env=env(ASSISTANT_TEST_SLOW_SAVE="1.0"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_lock_holder(seeded_index, first)
    second = subprocess.run(ingest_cmd(seeded_index, beta), cwd=ROOT, env=env(ASSISTANT_LOCK_WAIT_SECONDS="1"),
                            capture_output=True, text=True, timeout=120)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert second.returncode == 2
    assert second.stdout == ""
    assert second.stderr == (f"error: Another process is writing to the index {seeded_index} (pid {first.pid} holds the "
                             "lock); waited 1 s. Try again when it has finished.\n")
    want = {p.stem for p in SEEDS.glob("*.txt")} | {p.stem for p in alpha.glob("*.txt")}
    assert doc_ids(seeded_index) == want  # the first batch whole, nothing of the second


def test_readers_never_see_a_damaged_index_while_a_writer_commits(seeded_index, tmp_path):
    """Many commits in a row (old snapshots are deleted behind the readers) while threads keep reading."""
    corpus = make_corpus(tmp_path / "many", 60, "many")
    runner = tmp_path / "runner.py"
    runner.write_text(
        "import sys\nimport assistant.core as core\nfrom assistant import Assistant\n"
        "core.COMMIT_EVERY_CHUNKS = 20\n"
        "print(Assistant(sys.argv[1], embedder='hash').ingest([sys.argv[2]]).summary())\n", encoding="utf-8")
    writer = subprocess.Popen([sys.executable, str(runner), str(seeded_index), str(corpus)], cwd=ROOT, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    reads = [0]
    snapshots: set[str] = set()

    def reader(fresh: bool) -> None:
        long_lived = Assistant(seeded_index, embedder="hash")  # reloads whenever CURRENT moves
        while writer.poll() is None:
            try:
                bot = Assistant(seeded_index, embedder="hash") if fresh else long_lived
                data = bot.data
                hits = bot.search("لافروف السفارة الروسية", k=3).hits
                if not hits or hits[0].chunk.doc_id != "004_dfbf6940fa5a6b70":
                    errors.append(f"wrong top hit: {[h.chunk.doc_id for h in hits]}")
                if fresh:
                    problems = consistency_problems(data)
                    if problems:
                        errors.append(f"inconsistent snapshot: {problems}")
                    snapshots.add(getattr(data, "snapshot", ""))
                reads[0] += 1
            except Exception as exc:  # noqa: BLE001 - any failure of a reader fails the test
                errors.append(f"{exc.__class__.__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    out, err = writer.communicate(timeout=300)
    for t in threads:
        t.join(timeout=60)
    assert writer.returncode == 0, err
    assert errors == []
    assert reads[0] > 20 and len(snapshots) > 3, (reads[0], len(snapshots))
    assert doc_ids(seeded_index) == {p.stem for p in SEEDS.glob("*.txt")} | {p.stem for p in corpus.glob("*.txt")}


def test_concurrent_searches_on_one_assistant_right_after_a_load(seeded_index, monkeypatch):
    """The app answers up to four questions at once with one ``Assistant``; the first searches after a
    (re)load all prepare BM25 statistics at the same time."""
    import numpy as np

    import assistant.stores.lexical as bm25

    Assistant(seeded_index, embedder="hash").search("warm up", k=1)  # lexicon and caches loaded once
    real_log = np.log

    def slow_log(*args, **kwargs):  # widens the window between _csc and _idf being set
        time.sleep(0.05)
        return real_log(*args, **kwargs)

    monkeypatch.setattr(bm25.np, "log", slow_log)
    bot = Assistant(seeded_index, embedder="hash")
    assert bot.data.n_live  # freshly loaded: BM25 statistics not prepared yet
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def search(number: int) -> None:
        barrier.wait()
        time.sleep(0.01 * number)  # arrive one after another, while the first is still preparing
        try:
            assert bot.search("لافروف السفارة الروسية", k=3).hits[0].chunk.doc_id == "004_dfbf6940fa5a6b70"
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=search, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]


# -- the load test ---------------------------------------------------------------------------------------------
def _load_test_module():
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "bench" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("load_test", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_load_20_askers_with_an_upload_in_flight(tmp_path, monkeypatch):
    try:
        import assistant.ui  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the UI (assistant.ui) cannot be imported yet: {exc}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    load_test = _load_test_module()
    index = tmp_path / "index"
    with load_test.running_app(index, tmp_path / "app.log") as url:
        result = load_test.run_load(url, index, askers=20, seconds=30, max_requests=2000, upload_after=8)
    (tmp_path / "load_test.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print("\nload test:", load_test.summary(result))
    assert result["errors"] == 0, result["error_samples"]
    assert result["served"] >= 20
    assert result["served_during_upload"] > 0
    assert result["upload"]["returncode"] == 0 and result["upload"]["stdout"].startswith("1 added")
    assert result["uploaded_document_answered"]
