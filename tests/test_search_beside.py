"""The hybrid search runs its dense search in a thread beside planning and BM25: the hits are the
same as when it runs in the calling thread, an error in it reaches the caller, and a forked child
(a server forking its workers after a search) still searches."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Future

import pytest

import assistant.retrieval.search as search_module

QUESTIONS = ["Who met the foreign minister?", "وزير الخارجية", "embassy", "ماذا قال الرئيس عن الانتخابات"]


class _Inline:
    """An executor that runs the call at once, in the calling thread."""

    def submit(self, call, *args):
        done: Future = Future()
        done.set_result(call(*args))
        return done


def _hits(assistant) -> list:
    out = []
    for question in QUESTIONS:
        result = assistant.search(question, 5)
        out.append([(h.chunk.chunk_id, h.score, h.dense_score, h.lexical_score, h.best_start, h.best_end) for h in result.hits])
    return out


def test_dense_search_beside_returns_the_same_hits_as_inline(hash_assistant, seed_copy, monkeypatch):
    hash_assistant.ingest([seed_copy])
    beside = _hits(hash_assistant)
    assert any(beside)
    monkeypatch.setattr(search_module, "_BESIDE", _Inline())
    assert _hits(hash_assistant) == beside


def test_an_error_in_the_dense_search_reaches_the_caller(hash_assistant, seed_copy, monkeypatch):
    hash_assistant.ingest([seed_copy])
    data = hash_assistant.retriever().data

    def broken(vector, n):
        raise RuntimeError("dense search failed")

    monkeypatch.setattr(data, "dense_search", broken)
    with pytest.raises(RuntimeError, match="dense search failed"):
        hash_assistant.retriever().search("embassy", 5)


def _search_in_child(index_dir, queue) -> None:
    from assistant import Assistant

    result = Assistant(index_dir, embedder="hash").search(QUESTIONS[0], 5)
    queue.put([h.chunk.chunk_id for h in result.hits])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_a_forked_child_searches_after_the_parent_did(hash_assistant, seed_copy):
    """The parent's dense-search thread does not exist in a forked child; the child makes its own
    (else its first search would wait forever for a thread that is not there)."""
    hash_assistant.ingest([seed_copy])
    parent = [h.chunk.chunk_id for h in hash_assistant.search(QUESTIONS[0], 5).hits]
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_search_in_child, args=(hash_assistant.index_dir, queue))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child's search did not finish")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == parent
