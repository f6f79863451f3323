"""The BM25 scorer (precomputed per-posting impacts, one sparse product per query) against the
Okapi formula written out, with removed rows, across impact-block boundaries; and its top-k."""

from __future__ import annotations

import numpy as np
import pytest

import assistant.stores.lexical as bm25
from assistant.stores.lexical import B, K1, BM25Index

ROWS = [["a", "b", "a"], ["b", "c"], ["c", "c", "d", "a"], ["e"], ["f", "a"], ["a", "c", "g", "g"]]


def okapi(index: BM25Index, query: dict[str, float], live: np.ndarray) -> np.ndarray:
    m = index.matrix.toarray() * live[:, None]
    lengths = m.sum(axis=1)
    n = (lengths > 0).sum()
    avgdl = lengths.sum() / n
    df = (m > 0).sum(axis=0)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    out = np.zeros(len(m))
    for term, weight in query.items():
        if term not in index.vocab:
            continue
        t = index.vocab[term]
        out += weight * idf[t] * m[:, t] * (K1 + 1) / (m[:, t] + K1 * (1 - B + B * lengths / avgdl))
    return out


@pytest.mark.parametrize("block", [1, 3, 7, 1 << 22])
def test_scores_equal_the_okapi_formula(monkeypatch, block):
    monkeypatch.setattr(bm25, "_IMPACT_BLOCK", block)
    index = BM25Index()
    index.add(ROWS)
    live = np.array([True, True, False, True, True, True])
    query = {"a": 1.0, "c": 0.5, "g": 0.8, "unknown": 1.0}
    scores = index.score(query, live)
    assert np.allclose(scores, okapi(index, query, live), atol=1e-6)
    assert scores[2] == 0.0  # the removed row
    assert not index.score({"unknown": 1.0}, live).any()


def test_top_returns_the_best_matching_rows_best_first_ties_by_row():
    scores = np.array([0.0, 2.0, 0.5, 2.0, 0.0, 1.0], dtype=np.float32)
    rows, values = BM25Index.top(scores, 3)
    assert rows.tolist() == [1, 3, 5] and values.tolist() == [2.0, 2.0, 1.0]
    rows, _ = BM25Index.top(scores, 10)  # only rows sharing a term (score > 0)
    assert rows.tolist() == [1, 3, 5, 2]


def test_top_breaks_ties_at_the_last_place_by_row():
    scores = np.array([0.0, 1.0, 3.0] + [1.0] * 40, dtype=np.float32)
    rows, values = BM25Index.top(scores, 4)
    assert rows.tolist() == [2, 1, 3, 4] and values.tolist() == [3.0, 1.0, 1.0, 1.0]


def _disk_index(tmp_path, live: np.ndarray, shuffled: bool = False):
    """A ``DiskBM25`` over posting files written from a random corpus (its longest column optionally
    stored out of row order, as files written by earlier versions of ``write_postings`` hold their long
    columns)."""
    from assistant.stores.faiss.postings import DiskBM25, write_postings

    rng = np.random.default_rng(7)
    vocabulary = [f"t{i}" for i in range(40)]
    weights = 1.0 / np.arange(1, 41)  # a few common terms, many rare ones
    rows = [list(rng.choice(vocabulary, size=int(rng.integers(1, 12)), p=weights / weights.sum())) for _ in range(3000)]
    memory = BM25Index()
    memory.add(rows)
    write_postings(tmp_path, memory.matrix, live)
    cols = np.fromfile(tmp_path / "bm25_cols.i64", dtype="<i8")
    if shuffled:
        longest = int(np.argmax(np.diff(cols)))
        lo, hi = cols[longest], cols[longest + 1]
        for name, dtype in (("bm25_rows.i32", "<i4"), ("bm25_imp.f32", "<f4"), ("bm25_tf.f32", "<f4")):
            values = np.fromfile(tmp_path / name, dtype=dtype)
            values[lo:hi] = values[lo:hi][::-1]
            values.tofile(tmp_path / name)
    disk = DiskBM25(memory.terms, tmp_path, len(rows), len(memory.terms), int(cols[-1]))
    disk.set_live(live)
    return disk


@pytest.mark.parametrize("head", [1, 50, 20_000])
@pytest.mark.parametrize("shuffled, kept", [(False, 0), (True, 16_000_000), (True, 0)])
def test_pruned_top_rows_equal_scoring_every_row(tmp_path, monkeypatch, head, shuffled, kept):
    """Exact with removed rows, a column out of order (sorted in memory, or too big to keep: read
    through), and the head lists small (pruning, two rounds) or covering every term."""
    import assistant.stores.faiss.postings as postings

    monkeypatch.setattr(postings, "HEAD_POSTINGS", head)
    monkeypatch.setattr(postings, "SORTED_POSTINGS_KEPT", kept)
    live = np.ones(3000, dtype=bool)
    live[::7] = False
    disk = _disk_index(tmp_path, live, shuffled)
    rng = np.random.default_rng(3)
    settled = 0
    for _ in range(60):
        terms = {f"t{i}": float(rng.choice([1.0, 0.8, 0.5])) for i in rng.choice(40, size=int(rng.integers(1, 8)), replace=False)}
        every = disk.score(terms)
        want_rows, want_scores = disk.top(every, 10)
        found = disk.top_rows(terms, 10)
        if found is not None:
            settled += 1
            assert found[0].tolist() == want_rows.tolist()
            assert found[1].tolist() == want_scores.tolist()  # the same float32 sums, to the bit
        some = rng.choice(3000, size=50, replace=False)
        assert disk.scores_of(terms, some).tolist() == every[some].tolist()
    assert settled > 30  # the pruned path answered most queries


def _column_orders(folder) -> list[int]:
    """The columns of the posting files in ``folder`` whose rows are not strictly increasing."""
    cols = np.fromfile(folder / "bm25_cols.i64", dtype="<i8")
    rows = np.fromfile(folder / "bm25_rows.i32", dtype="<i4")
    return [c for c in range(len(cols) - 1) if (np.diff(rows[cols[c] : cols[c + 1]]) <= 0).any()]


def test_postings_are_written_in_row_order_however_long_the_column(tmp_path):
    """Shaped like the benchmark indexes: a corpus replicated ten times (row r and r + N hold the same
    terms), a few terms in most rows, columns past 50,000 postings: the benchmark's files hold exactly
    their columns past 50,000 best weight first, ties by row, as ``write_postings`` of commit 2a61eb3
    wrote them (this test fails with it). Every column is written in row order, and a generation
    rewritten from files holding such columns (a compaction reads them through ``DiskBM25.matrix``)
    is the same, byte for byte, as one written from the rows."""
    from scipy import sparse

    from assistant.stores.faiss.postings import POSTING_FILES, DiskBM25, write_postings

    rng = np.random.default_rng(11)
    n_base, copies, n_terms = 6_500, 10, 300
    lists = []
    for _ in range(n_base):
        common = [t for t in range(4) if rng.random() < 0.85]  # four terms in about 85% of rows
        rare = rng.integers(4, n_terms, size=int(rng.integers(1, 8)))
        lists.append(np.unique(np.concatenate([common, rare]).astype(np.int32)))
    counts = [rng.integers(1, 13, size=len(t)).astype(np.float32) for t in lists]
    lists, counts = lists * copies, counts * copies
    indptr = np.concatenate([[0], np.cumsum([len(t) for t in lists])])
    matrix = sparse.csr_matrix((np.concatenate(counts), np.concatenate(lists), indptr), shape=(len(lists), n_terms))
    live = np.ones(len(lists), dtype=bool)
    assert np.diff(sparse.csc_matrix(matrix).indptr)[:4].min() > 50_000

    first = tmp_path / "first"
    first.mkdir()
    write_postings(first, matrix, live)
    assert _column_orders(first) == []
    written = {name: (first / name).read_bytes() for name in POSTING_FILES}

    # The benchmark's layout: columns past 50,000 postings stored best weight first, ties by row.
    cols = np.fromfile(first / "bm25_cols.i64", dtype="<i8")
    arrays = {name: np.fromfile(first / name, dtype=dtype)
              for name, dtype in (("bm25_rows.i32", "<i4"), ("bm25_tf.f32", "<f4"), ("bm25_imp.f32", "<f4"))}
    for c in np.flatnonzero(np.diff(cols) > 50_000):
        lo, hi = cols[c], cols[c + 1]
        order = np.lexsort((arrays["bm25_rows.i32"][lo:hi], -arrays["bm25_imp.f32"][lo:hi]))
        for values in arrays.values():
            values[lo:hi] = values[lo:hi][order]
    for name, values in arrays.items():
        values.tofile(first / name)
    assert len(_column_orders(first)) == 4

    disk = DiskBM25([f"t{i}" for i in range(n_terms)], first, len(lists), n_terms, int(cols[-1]))
    assert (disk.matrix != matrix).nnz == 0
    second = tmp_path / "second"
    second.mkdir()
    write_postings(second, disk.matrix, live)
    assert _column_orders(second) == []
    assert {name: (second / name).read_bytes() for name in POSTING_FILES} == written  # the same files
