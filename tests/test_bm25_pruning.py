"""The pruned BM25 paths over mapped postings (rank bitmaps, the score array for many rows, impact-
ordered prefixes for common-word queries, the tail of rows added since the generation) return the
exact scorer's top k, in its order, with its float32 scores to the bit: ties included, removed rows
excluded, on a corpus whose rows come in identical copies as the benchmark's do."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

import assistant.stores.faiss.postings as postings
from assistant.stores.faiss.columns import RankBitmap, RankQuery, best_postings
from assistant.stores.faiss.postings import DiskBM25, write_postings
from assistant.stores.lexical import K1, BM25Index, encode_rows

COMMON = ["c0", "c1", "c2", "c3"]  # each in most rows: a query of these alone has no rare term


def _corpus(rng: np.random.Generator, distinct: int, copies: int) -> list[list[str]]:
    """``distinct`` random rows, each repeated ``copies`` times (row r and r + distinct are equal)."""
    rare = [f"t{i}" for i in range(60)]
    weights = 1.0 / np.arange(1, len(rare) + 1)
    rows = []
    for _ in range(distinct):
        row = [t for t in COMMON for _ in range(int(rng.integers(1, 4))) if rng.random() < 0.75]
        row += list(rng.choice(rare, size=int(rng.integers(1, 10)), p=weights / weights.sum()))
        rows.append(row)
    return rows * copies


def _index(tmp_path, distinct: int = 400, copies: int = 8, tail: int = 30, dead_every: int = 11) -> DiskBM25:
    """A ``DiskBM25`` over posting files of a replicated corpus, with ``tail`` rows added since the
    generation (some holding terms the generation lacks) and every ``dead_every``-th row removed."""
    rng = np.random.default_rng(5)
    rows = _corpus(rng, distinct, copies)
    memory = BM25Index()
    memory.add(rows)
    base_live = np.ones(len(rows), dtype=bool)
    write_postings(tmp_path, memory.matrix, base_live)
    cols = np.fromfile(tmp_path / "bm25_cols.i64", dtype="<i8")
    disk = DiskBM25(memory.terms, tmp_path, len(rows), len(memory.terms), int(cols[-1]))
    added = _corpus(rng, tail, 1)
    for i in range(0, tail, 3):
        added[i] = added[i] + ["new", "c0"]
    terms, vocab = list(memory.terms), dict(memory.vocab)
    data, indices, nnz = encode_rows(added, vocab, terms)
    disk = disk.extended(terms[len(memory.terms):], data, indices, nnz)
    live = np.ones(len(rows) + tail, dtype=bool)
    live[::dead_every] = False
    disk.set_live(live)
    return disk


def _queries(rng: np.random.Generator, n: int) -> list[dict[str, float]]:
    out = [{t: 1.0 for t in COMMON}, {"c0": 1.0, "c2": 0.7}, {"c1": 0.5}, {"new": 1.0}, {"new": 1.0, "c3": 0.8}]
    for _ in range(n):
        terms = list(rng.choice(COMMON, size=int(rng.integers(0, 4)), replace=False))
        terms += [f"t{i}" for i in rng.choice(60, size=int(rng.integers(0, 6)), replace=False)]
        out.append({t: float(rng.choice([1.0, 0.8, 0.5])) for t in terms or ["t0"]})
    return out


def _assert_exact(disk: DiskBM25, queries: list[dict[str, float]], n: int = 20) -> None:
    for terms in queries:
        want_rows, want_scores = disk.top(disk.score(terms), n)
        found = disk.top_rows(terms, n)
        assert found is not None, terms
        assert found[0].tolist() == want_rows.tolist(), terms
        assert found[1].tolist() == want_scores.tolist(), terms  # the same float32 sums, to the bit


_PATHS = {
    "default": {},
    "bitmaps": {"RANK_MIN_POSTINGS": 1, "RANK_MIN_ROWS": 1, "DENSE_SHARE": 0},
    "score array, bitmaps": {"RANK_MIN_POSTINGS": 1, "RANK_MIN_ROWS": 1, "DENSE_SHARE": 1 << 30},
    "score array, binary search": {"RANK_MIN_ROWS": 1 << 30, "DENSE_SHARE": 1 << 30, "SCATTER_RATIO": 0},
    "binary search": {"RANK_MIN_ROWS": 1 << 30, "DENSE_SHARE": 0},
    "bitmaps over budget": {"RANK_MIN_POSTINGS": 1, "RANK_MIN_ROWS": 1, "DENSE_SHARE": 0, "RANK_BYTES_KEPT": 0},
}


@pytest.mark.parametrize("paths", list(_PATHS))
def test_pruned_top_rows_equal_the_exact_scorer(tmp_path, monkeypatch, paths):
    """Whichever way a column's weights are looked up, the top k and its scores are the exact scorer's;
    a copy tied with the k-th row enters by row order."""
    for name, value in _PATHS[paths].items():
        monkeypatch.setattr(postings, name, value)
    monkeypatch.setattr(postings, "HEAD_POSTINGS", 50)
    disk = _index(tmp_path)
    queries = _queries(np.random.default_rng(9), 80)
    _assert_exact(disk, queries)
    some = np.random.default_rng(2).choice(disk.n_rows, size=200, replace=False)
    for terms in queries[:20]:
        assert disk.scores_of(terms, some).tolist() == disk.score(terms)[some].tolist()


def test_common_words_only_are_settled_by_impact_ordered_prefixes(tmp_path, monkeypatch):
    """A query made only of terms in most rows settles without scoring every row (max-score gives up:
    its first list alone is past the budget), with the exact top k, ties among copies by row."""
    monkeypatch.setattr(postings, "MAX_HEAD_POSTINGS", 100)
    monkeypatch.setattr(postings, "PREFIX_START", 8)
    calls = []
    by_prefixes = DiskBM25._top_by_prefixes
    monkeypatch.setattr(DiskBM25, "_top_by_prefixes", lambda self, *a: calls.append(1) or by_prefixes(self, *a))
    disk = _index(tmp_path)
    assert min(len(disk._column(disk.vocab[t])[0]) for t in COMMON) > 100
    queries = [{t: 1.0 for t in COMMON}, {"c0": 1.0, "c1": 0.8}, {"c3": 0.5}, {"c0": 1.0, "c2": 1.0, "c3": 0.7}]
    _assert_exact(disk, queries, n=20)
    _assert_exact(disk, queries, n=3)
    assert len(calls) == 2 * len(queries)
    rows, scores = disk.top_rows({"c2": 1.0}, 20)
    assert (np.diff(scores) <= 0).all() and len(set(scores.tolist())) < len(scores)  # ties, kept in row order
    for value in set(scores.tolist()):
        tied = rows[scores == value]
        assert tied.tolist() == sorted(tied.tolist())


def test_a_query_of_tail_terms_only_and_of_unknown_terms(tmp_path):
    """Terms only rows added since the generation hold are scored from those rows; unknown terms
    find nothing (an empty answer, not a pass over every row)."""
    disk = _index(tmp_path)
    rows, scores = disk.top_rows({"new": 1.0}, 5)
    want_rows, want_scores = disk.top(disk.score({"new": 1.0}), 5)
    assert rows.tolist() == want_rows.tolist() and scores.tolist() == want_scores.tolist()
    assert len(rows) and rows.min() >= disk.base_rows
    rows, scores = disk.top_rows({"never-seen": 1.0}, 5)
    assert len(rows) == 0 and len(scores) == 0


def test_tail_scores_equal_the_sparse_product(tmp_path):
    """The rows added since the generation are weighed column by column exactly as the sparse
    product over their BM25 weights sums them (float32, in the query's column order)."""
    disk = _index(tmp_path)
    norm, tail = disk._statistics()[0], disk._statistics()[3]
    for terms in _queries(np.random.default_rng(4), 30):
        columns, idf = disk._columns(terms)
        part = tail[:, columns]
        part.data = part.data * np.float32(K1 + 1) / (part.data + norm[disk.base_rows + part.indices])
        assert disk._tail_scores(columns, idf).tolist() == np.asarray(part @ idf, dtype=np.float32).tolist()


@pytest.mark.parametrize("n_rows", [1, 63, 64, 65, 1000])
def test_rank_bitmap_finds_each_row_and_its_position(n_rows):
    rng = np.random.default_rng(n_rows)
    for size in {0, 1, n_rows // 2, n_rows}:
        rows = np.sort(rng.choice(n_rows, size=size, replace=False)).astype(np.int32)
        bitmap = RankBitmap(rows, n_rows)
        needles = np.arange(n_rows, dtype=np.int32)
        hit, at = bitmap.find(RankQuery(needles))
        assert needles[hit].tolist() == rows.tolist()
        assert at.tolist() == list(range(len(rows)))


def test_best_postings_best_first_ties_by_row():
    rows = np.array([3, 5, 8, 9, 12, 20], dtype=np.int32)
    weights = np.array([0.5, 2.0, 1.0, 2.0, 0.1, 1.0], dtype=np.float32)
    got_rows, got_weights = best_postings(rows, weights, 4)
    assert got_rows.tolist() == [5, 9, 8, 20] and got_weights.tolist() == [2.0, 2.0, 1.0, 1.0]
    got_rows, _ = best_postings(rows, weights, 10)
    assert got_rows.tolist() == [5, 9, 8, 20, 3, 12]


def test_the_disk_index_is_a_vocabulary_for_name_lookups(tmp_path):
    """The planner asks every vocabulary for spellings of a name (the 1M bench found a clash of attribute
    names here): a generation of posting files answers like the index in memory it was written from."""
    rows = [["عمر", "قال", "السوق"], ["umar", "market"], ["غوتيريش", "ليبيا"], ["غوتيرش", "طرابلس"]] * 3
    memory = BM25Index()
    memory.add(rows)
    write_postings(tmp_path, memory.matrix, np.ones(len(rows), dtype=bool))
    cols = np.fromfile(tmp_path / "bm25_cols.i64", dtype="<i8")
    disk = DiskBM25(memory.terms, tmp_path, len(rows), len(memory.terms), int(cols[-1]))
    for index in (memory, disk):
        assert index.short_spellings("Umar") == ("عمر",)
        assert "غوتيرش" in dict(index.variants("غوتيريش"))
