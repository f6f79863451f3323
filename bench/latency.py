"""Retrieval latency of one loaded index without the embedder: the probe queries (with their stored
vectors) searched in hybrid mode, a first pass after load then warm passes; hits and scores saved
so two versions of the code can be compared for identical results.

``python bench/latency.py INDEX_DIR OUT.json [--passes N] [--one-thread] [--profile] [--compare EARLIER.json]``

``--compare`` checks the hits against an earlier run's OUT.json (another version of the code, the
same index and queries): how many queries return the very same hits (ids, scores, best sentence, to
the bit), the same ids in the same order, and the same top-1.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE  # noqa: E402


def compare(hits: list, earlier: list) -> dict:
    """How far ``hits`` (per query: ``[chunk id, score, dense, lexical, best start, best end]`` per hit)
    agree with ``earlier``'s."""
    same = sum(a == b for a, b in zip(hits, earlier))
    ids = sum([h[0] for h in a] == [h[0] for h in b] for a, b in zip(hits, earlier))
    top1 = sum(a[:1] and b[:1] and a[0][0] == b[0][0] for a, b in zip(hits, earlier))
    drift = max((abs(x[1] - y[1]) for a, b in zip(hits, earlier) for x, y in zip(a, b)), default=0.0)
    return {"queries": len(hits), "identical": same, "same_ids_in_order": ids, "same_top1": int(top1),
            "max_score_difference": drift}


def main() -> None:
    index_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
    passes = int(sys.argv[sys.argv.index("--passes") + 1]) if "--passes" in sys.argv else 5
    queries_path = Path(os.environ.get("PROBE_QUERIES", CACHE / "probe_queries.json"))
    import faiss

    from assistant.retrieval.search import HybridRetriever
    from assistant.stores.faiss import IndexStore

    queries = json.loads(queries_path.read_text(encoding="utf-8"))
    vectors = [np.asarray(q["vector"], dtype=np.float32) for q in queries]
    t = time.perf_counter()
    data = IndexStore(index_dir).load()
    load_s = time.perf_counter() - t
    retriever = HybridRetriever(data, embedder=None)  # type: ignore[arg-type]
    if "--one-thread" in sys.argv:
        faiss.omp_set_num_threads(1)

    def run() -> tuple[list[float], list]:
        times, hits = [], []
        for q, v in zip(queries, vectors):
            t = time.perf_counter()
            result = retriever.search(q["q"], 5, mode="hybrid", query_vector=v)
            times.append(time.perf_counter() - t)
            hits.append([[h.chunk.chunk_id, h.score, h.dense_score, h.lexical_score, h.best_start, h.best_end] for h in result.hits])
        return times, hits

    first, hits = run()
    warm: list[float] = []
    for _ in range(passes):
        times, again = run()
        assert again == hits, "a warm pass returned other hits"
        warm.extend(times)
    ms = lambda xs: round(1000 * statistics.median(xs), 2)  # noqa: E731
    p95 = lambda xs: round(1000 * float(np.percentile(xs, 95)), 2)  # noqa: E731
    modes = {}
    for mode in ("dense", "lexical"):
        times = []
        for _ in range(2):
            for q, v in zip(queries, vectors):
                t = time.perf_counter()
                retriever.search(q["q"], 5, mode=mode, query_vector=v)
                times.append(time.perf_counter() - t)
        modes[mode] = ms(times)
    result = {"index": str(index_dir), "load_s": round(load_s, 3), "first_p50_ms": ms(first), "first_p95_ms": p95(first),
              "warm_p50_ms": ms(warm), "warm_p95_ms": p95(warm), "dense_p50_ms": modes["dense"], "lexical_p50_ms": modes["lexical"],
              "loadavg": os.getloadavg()[0], "hits": hits}
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        run()
        profiler.disable()
        stats = pstats.Stats(profiler)
        rows = []
        for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
            rows.append((round(1000 * cumtime / len(queries), 3), round(1000 * tottime / len(queries), 3), ncalls,
                         f"{Path(filename).name}:{line}({name})"))
        rows.sort(reverse=True)
        result["profile"] = rows[:45]
    if "--compare" in sys.argv:
        earlier = json.loads(Path(sys.argv[sys.argv.index("--compare") + 1]).read_text(encoding="utf-8"))
        result["compare"] = compare(hits, earlier["hits"])
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print({k: v for k, v in result.items() if k not in ("hits", "profile")})
    for row in result.get("profile", []):
        print("  ", row)


if __name__ == "__main__":
    main()
