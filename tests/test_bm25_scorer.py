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
