"""A FAISS index folder as it grows past the HNSW switch-over, commit by commit, on real files.

The switch-over points are lowered (``HNSW_THRESHOLD`` 30 rows, ``TAIL_MAX_ROWS`` 12) so the seed
articles exercise what a 100k-passage index does: the graph is built once the index is large, later
commits append rows that are searched exactly, the graph is extended when that tail grows, removed rows
are filtered inside FAISS, and a compaction starts a new generation. Every search is checked against
brute force over the live rows.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import assistant.stores.faiss.snapshots as snapshots_module
import assistant.stores.faiss.vectors as vectors_module
from assistant import Assistant
from assistant.stores.faiss import IndexStore, consistency_problems

from conftest import SEEDS


@pytest.fixture
def small_switchover(monkeypatch):
    monkeypatch.setattr(vectors_module, "HNSW_THRESHOLD", 30)
    monkeypatch.setattr(snapshots_module, "TAIL_MAX_ROWS", 12)


def manifest(index):
    store = IndexStore(index)
    return json.loads((index / store.current_snapshot() / "manifest.json").read_text())


def brute_force(data, query, n):
    rows = [i for i, c in enumerate(data.chunks) if c is not None]
    scores = data.vectors_of(rows) @ query
    order = np.argsort(-scores, kind="stable")[:n]
    return [(data.chunks[rows[i]].chunk_id, float(scores[i])) for i in order]


def check_searches(data, n=5):
    """Dense search equals brute force for queries taken from several live rows."""
    assert consistency_problems(data) == []
    live = [i for i, c in enumerate(data.chunks) if c is not None]
    for row in live[:: max(1, len(live) // 6)]:
        query = data.vectors_of([row])[0]
        got = data.dense_search(query, n)
        want = brute_force(data, query, n)
        # The same scores in the same order (ids may swap only between equal scores).
        assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-5)
        assert {c for c, _ in got} | {c for c, _ in want} == {c for c, _ in want} or len({round(s, 5) for _, s in want}) < n
        assert got[0][0] == data.chunks[row].chunk_id


def test_growing_past_the_switchover(small_switchover, tmp_path):
    index = tmp_path / "index"
    assistant = Assistant(index, embedder="hash")
    files = sorted(SEEDS.glob("*.txt"))
    seen_ann = []
    reader = None
    for path in files:
        assistant.ingest([path])
        m = manifest(index)
        seen_ann.append((m["counts"]["rows"], m["ann_rows"]))
        data = IndexStore(index).load()
        check_searches(data)
        if reader is not None:
            reader = IndexStore(index).refresh(reader)
            assert [c.chunk_id for c in reader.chunks] == [c.chunk_id for c in data.chunks]
            check_searches(reader)
        else:
            reader = data
    rows = [r for r, _ in seen_ann]
    # Below 30 rows: exact only. From there, a graph covering all rows but at most 12 recent ones.
    for total, ann_rows in seen_ann:
        if total < 30:
            assert ann_rows == 0
        else:
            assert 0 < ann_rows <= total and total - ann_rows <= 12
    assert rows[-1] == sum(1 for c in IndexStore(index).load().chunks if c is not None)
    data = IndexStore(index).load()
    assert data.faiss_type == "IndexHNSWSQ"
    assert data.parts[0].is_hnsw and data.parts[0].index.ntotal == manifest(index)["ann_rows"]


def test_removed_rows_are_never_returned_and_compaction_starts_a_new_generation(small_switchover, tmp_path, seed_copy):
    index = tmp_path / "index"
    assistant = Assistant(index, embedder="hash")
    assistant.ingest([seed_copy])
    first = manifest(index)
    assert first["ann_rows"] == first["counts"]["rows"]  # one commit of 59 rows: all in the graph
    before = IndexStore(index).load()
    sizes = before.chunk_counts()
    victim = sorted(sizes, key=lambda d: (sizes[d], d))[0]  # the smallest article
    victim_rows = sizes[victim]
    assert victim_rows <= 0.2 * first["counts"]["rows"]
    assistant.remove(victim)
    after = manifest(index)
    assert after["generation"] == first["generation"] and after["counts"]["live_chunks"] == first["counts"]["rows"] - victim_rows
    data = IndexStore(index).refresh(before)
    check_searches(data)
    victim_chunk = next(c for c in before.chunks if c is not None and c.doc_id == victim)
    query = before.vectors_of([before.chunks.index(victim_chunk)])[0]
    assert all(not cid.startswith(f"{victim}#") for cid, _ in data.dense_search(query, 20))
    assert assistant.search(victim_chunk.text, k=5).hits[0].chunk.doc_id != victim
    # Removing more than a fifth of the rows compacts: new generation, no dead rows, same answers.
    sizes = data.chunk_counts()
    for doc_id in sorted(sizes, key=lambda d: (sizes[d], d))[:2]:
        assistant.remove(doc_id)
    final = manifest(index)
    assert final["generation"] != first["generation"]
    assert final["counts"]["rows"] == final["counts"]["live_chunks"]
    assert (index / IndexStore(index).current_snapshot() / "dead.i32").stat().st_size == 0
    followed = IndexStore(index).refresh(data)  # another generation: a full load
    check_searches(followed)
    assert len(followed.documents) == 2


def test_replacing_a_changed_file_appends_and_hides_the_old_rows(tmp_path, seed_copy):
    index = tmp_path / "index"
    assistant = Assistant(index, embedder="hash")
    assistant.ingest([seed_copy])
    rows_before = manifest(index)["counts"]["rows"]
    path = sorted(seed_copy.glob("*.txt"))[0]
    path.write_text(path.read_text(encoding="utf-8") + "\n\nفقرة مضافة عن مطار معيتيقة الدولي.", encoding="utf-8")
    report = assistant.ingest([seed_copy])
    assert report.updated == [path.stem] and report.unchanged and not report.added
    m = manifest(index)
    assert m["counts"]["rows"] > rows_before and m["counts"]["live_chunks"] < m["counts"]["rows"]
    hits = assistant.search("مطار معيتيقة الدولي", k=3).hits
    assert hits[0].chunk.doc_id == path.stem and "معيتيقة" in hits[0].chunk.text
    assert len([d for d in assistant.documents() if d.doc_id == path.stem]) == 1


def test_a_writer_refuses_rows_it_could_not_find_again(tmp_path):
    """The manifest records each document as one run of rows: interleaved chunks, chunks of a document
    not given, or a document without chunks are refused before anything is written."""
    from assistant.records import Chunk, Document
    from assistant.stores.base import IndexSettings
    from assistant.stores.faiss import IndexWriter

    settings = IndexSettings("hash", "hash", 4, "", "", {}, "4")
    docs = [Document(d, d, f"{d}.txt", "نص أول. نص ثان.", f"h{d}") for d in ("a", "b")]
    chunk = lambda d, n, s, e: Chunk(f"{d}#{n}", d, s, e, docs[0].text[s:e])  # noqa: E731
    vectors, terms = np.eye(3, 4, dtype=np.float32), [["x"]] * 3
    writer = IndexWriter(settings, None, None)
    with pytest.raises(ValueError, match="not consecutive"):
        writer.add_documents(docs, [chunk("a", 0, 0, 7), chunk("b", 0, 0, 7), chunk("a", 1, 8, 15)], vectors, terms)
    with pytest.raises(ValueError, match="chunks of documents not given"):
        writer.add_documents(docs[:1], [chunk("a", 0, 0, 7), chunk("a", 1, 8, 15), chunk("b", 0, 0, 7)], vectors, terms)
    with pytest.raises(ValueError, match="has no chunks"):
        writer.add_documents(docs, [chunk("a", 0, 0, 7)] * 3, vectors, terms)
    assert writer.pending_chunks == [] and writer.table == {}
    writer.add_documents(docs, [chunk("a", 0, 0, 7), chunk("a", 1, 8, 15), chunk("b", 0, 0, 7)], vectors, terms)
    assert [(d.first_row, d.n_rows) for d in writer.table.values()] == [(0, 2), (2, 1)]
