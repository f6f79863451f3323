"""BM25 over memory-mapped postings (index format 3) against the exact in-memory scorer, on a real index.

``python bench/bm25_postings.py INDEX_DIR [--caps 0,200000,50000,20000]`` loads the index, plans the
probe queries of ``bench/scale.py`` (``bench/cache/probe_queries.json``) as retrieval does, and for
each cap on long posting lists (0: none) reports score + top-50 p50/p95 and how many of the exact
scorer's top 10 / top 50 rows the capped scorer returns (the exact scorer: ``BM25Index`` over the same
rows, as format 2 scored them).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, percentiles  # noqa: E402


def main(index_dir: Path, caps: list[int]) -> dict:
    from assistant.retrieval.search import plan_query
    from assistant.stores.faiss import postings
    from assistant.stores.faiss import IndexStore
    from assistant.stores.lexical import BM25Index

    t = time.perf_counter()
    data = IndexStore(index_dir).load()
    load_s = time.perf_counter() - t
    disk = data.bm25
    queries = json.loads((CACHE / "probe_queries.json").read_text(encoding="utf-8"))
    plans = [plan_query(q["q"], data.vocabulary).terms for q in queries]
    t = time.perf_counter()
    m = disk.matrix
    exact = BM25Index.from_arrays(disk.terms, m.data.astype(np.float32), m.indices.astype(np.int32), np.diff(m.indptr))
    exact.set_live(data.live)
    exact.score({"x": 1.0})  # prepare its column matrix outside the timings
    prepare_s = time.perf_counter() - t
    reference, times = [], []
    for terms in plans:
        t = time.perf_counter()
        rows, scores = BM25Index.top(exact.score(terms), 50)
        times.append(time.perf_counter() - t)
        reference.append((rows.tolist(), scores))
    out: dict = {"rows": len(data.live), "load_seconds": round(load_s, 3), "exact_prepare_seconds": round(prepare_s, 2),
                 "queries": len(plans), "exact": percentiles(times), "caps": {}}
    print(f"{out['rows']} rows: load {load_s:.2f} s; exact scorer (prepared in {prepare_s:.1f} s): "
          f"p50 {out['exact']['p50_ms']:.2f} ms, p95 {out['exact']['p95_ms']:.2f} ms")
    for cap in caps:
        postings.LONG_POSTINGS = cap if cap > 0 else 1 << 62
        disk.set_live(data.live)
        got, times = [], []
        for terms in plans:  # warm-up: map the pages these queries read (the exact scorer's were read when prepared)
            disk.score(terms)
        for terms in plans:
            t = time.perf_counter()
            rows, scores = BM25Index.top(disk.score(terms), 50)
            times.append(time.perf_counter() - t)
            got.append((rows.tolist(), scores))
        def share(g: list[int], r: list[int], k: int) -> float:
            """Share of the exact top k found in the capped top k (1.0 when both are empty)."""
            return len(set(g[:k]) & set(r[:k])) / len(r[:k]) if r else float(not g)

        def same_scores(g: np.ndarray, r: np.ndarray, k: int) -> float:
            """Share of ranks 1..k whose score equals the exact scorer's at that rank: ties broken
            differently do not count (the replicated indexes hold each passage 10 or 100 times)."""
            if not len(r):
                return float(not len(g))
            k = min(k, len(r))
            return float(np.isclose(np.resize(g[:k], k) if len(g) else np.zeros(k), r[:k], rtol=1e-4).mean())

        at10 = np.mean([share(g[0], r[0], 10) for g, r in zip(got, reference)])
        at50 = np.mean([share(g[0], r[0], 50) for g, r in zip(got, reference)])
        top1 = np.mean([r[0][0] in g[0][:10] if r[0] else not g[0] for g, r in zip(got, reference)])
        score10 = np.mean([same_scores(g[1], r[1], 10) for g, r in zip(got, reference)])
        score50 = np.mean([same_scores(g[1], r[1], 50) for g, r in zip(got, reference)])
        row = {"latency": percentiles(times), "overlap_top10": round(float(at10), 4), "overlap_top50": round(float(at50), 4),
               "exact_top1_in_top10": round(float(top1), 4), "same_score_top10": round(float(score10), 4),
               "same_score_top50": round(float(score50), 4)}
        out["caps"][str(cap)] = row
        print(f"cap {cap or 'none'}: p50 {row['latency']['p50_ms']:.2f} ms, p95 {row['latency']['p95_ms']:.2f} ms; "
              f"top-10 overlap {at10:.3f}, top-50 overlap {at50:.3f}, exact top-1 within top 10: {top1:.3f}; "
              f"same score at rank 1..10 {score10:.3f}, 1..50 {score50:.3f}")
    return out


if __name__ == "__main__":
    caps = [0, 200_000, 50_000, 20_000]
    if "--caps" in sys.argv:
        caps = [int(x) for x in sys.argv[sys.argv.index("--caps") + 1].split(",")]
    result = main(Path(sys.argv[1]), caps)
    out = CACHE / f"bm25_postings-{result['rows']}.json"
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
