"""BM25 scoring at scale, alone: the scorer of ``assistant/bm25.py`` and the top-k selection of
``IndexData.lexical_search`` on a synthetic index of N rows (default 1M), no FAISS, no model.

Rows are ~45 distinct terms each, drawn from a Zipf law over a 300k-term vocabulary (news chunks of
~320 characters after stemming look like this: a few very common words, a long tail of names).
Queries are 4-8 terms taken from random rows (so they match), weighted like the planner's (1.0 for the
question's words, 0.8 for variants). Prints p50/p95 of the score and of score + top-k.

    python bench/bm25_scale.py [--rows 1000000] [--queries 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.bm25 import BM25Index  # noqa: E402


def synthetic(rows: int, vocab: int = 300_000, per_row: int = 45, seed: int = 0) -> tuple[BM25Index, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = (rng.zipf(1.15, size=rows * per_row * 2) - 1) % vocab
    ids = ids.reshape(rows, per_row * 2)
    # Distinct terms per row: sort each row, drop repeats (their count becomes the tf), keep per_row.
    ids.sort(axis=1)
    data, indices, nnz = [], [], np.zeros(rows, dtype=np.int32)
    for start in range(0, rows, 100_000):
        block = ids[start : start + 100_000]
        new = np.ones_like(block, dtype=bool)
        new[:, 1:] = block[:, 1:] != block[:, :-1]
        for r in range(block.shape[0]):
            uniq, counts = np.unique(block[r], return_counts=True)
            uniq, counts = uniq[:per_row], counts[:per_row]
            indices.append(uniq.astype(np.int32))
            data.append(counts.astype(np.float32))
            nnz[start + r] = len(uniq)
    index = BM25Index.from_arrays([f"t{i}" for i in range(vocab)], np.concatenate(data), np.concatenate(indices), nnz)
    return index, ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("-k", type=int, default=50)
    args = parser.parse_args(argv)
    t = time.perf_counter()
    index, ids = synthetic(args.rows)
    print(f"built {args.rows} rows, {index.matrix.nnz} postings in {time.perf_counter() - t:.1f} s", flush=True)
    live = np.ones(args.rows, dtype=bool)
    live[::97] = False  # some removed rows, as in a real index
    rng = np.random.default_rng(1)
    queries = []
    for _ in range(args.queries):
        row = ids[rng.integers(args.rows)]
        terms = rng.choice(np.unique(row), size=rng.integers(4, 9), replace=False)
        queries.append({f"t{t}": (1.0 if i % 3 else 0.8) for i, t in enumerate(terms)})
    t = time.perf_counter()
    index.score(queries[0], live)
    print(f"first query (prepares the column-major matrix): {time.perf_counter() - t:.2f} s", flush=True)
    score_ms, total_ms = [], []
    for query in queries:
        t0 = time.perf_counter()
        scores = index.score(query, live)
        t1 = time.perf_counter()
        rows, _ = index.top(scores, args.k) if hasattr(index, "top") else _top(scores, args.k)
        t2 = time.perf_counter()
        score_ms.append((t1 - t0) * 1000)
        total_ms.append((t2 - t0) * 1000)

    def p(values: list[float], q: float) -> float:
        return float(np.percentile(values, q))

    print(f"score: p50 {statistics.median(score_ms):.2f} ms, p95 {p(score_ms, 95):.2f} ms; "
          f"score + top-{args.k}: p50 {statistics.median(total_ms):.2f} ms, p95 {p(total_ms, 95):.2f} ms")
    return 0


def _top(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``IndexData.lexical_search``'s selection before this change."""
    n = min(n, int((scores > 0).sum()))
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top, scores[top]


if __name__ == "__main__":
    sys.exit(main())
