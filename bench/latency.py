"""Retrieval latency of one loaded index without the embedder: the probe queries (with their stored
vectors) searched in hybrid mode, a first pass after load then warm passes; hits and scores saved
so two versions of the code can be compared for identical results.

``python bench/latency.py INDEX_DIR OUT.json [--passes N] [--one-thread] [--dense-inline] [--stages] [--profile]
[--compare EARLIER.json]``

``--dense-inline`` runs the dense search in the calling thread (not beside planning and BM25);
``--stages`` times each stage of the warm passes again (p50 per query, wall and CPU time of the thread).

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


def stages(retriever, queries: list, vectors: list, passes: int) -> dict[str, float]:
    """p50 per query of each stage of a warm hybrid search (each timed where it is called; the dense
    search in its own thread, so "dense_search" overlaps the rest), plus the whole search's wall and
    CPU time of the calling thread."""
    import assistant.retrieval.search as search_module

    spent: dict[str, float] = {}

    def timed(owner, name: str) -> None:
        call = getattr(owner, name)

        def wrapper(*args, **kwargs):
            t = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t

        setattr(owner, name, wrapper)

    for name in ("dense_search", "lexical_search", "dense_scores", "lexical_scores", "get_chunks", "get_document"):
        timed(retriever.data, name)
    for name in ("plan_query", "concept_weights", "best_span"):
        timed(search_module, name)
    timed(retriever, "_coverage")
    per: dict[str, list[float]] = {}
    for _ in range(passes):
        for q, v in zip(queries, vectors):
            spent.clear()
            t, c = time.perf_counter(), time.thread_time()
            retriever.search(q["q"], 5, mode="hybrid", query_vector=v)
            spent["search (wall)"], spent["search (CPU of its thread)"] = time.perf_counter() - t, time.thread_time() - c
            for name, seconds in spent.items():
                per.setdefault(name, []).append(seconds)
    return {name: round(1000 * statistics.median(xs), 3) for name, xs in sorted(per.items(), key=lambda kv: -statistics.median(kv[1]))}


def main() -> None:
    positional = [a for a in sys.argv[1:] if not a.startswith("-")]
    if "-h" in sys.argv or "--help" in sys.argv or len(positional) < 2:
        print(__doc__)
        sys.exit(0 if "-h" in sys.argv or "--help" in sys.argv else 2)
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
    if "--dense-inline" in sys.argv:
        import assistant.retrieval.search as search_module

        class Inline:
            def submit(self, call, *args):  # noqa: ANN001, ANN202 - a stand-in for the executor
                from concurrent.futures import Future

                done: Future = Future()
                done.set_result(call(*args))
                return done

        search_module._BESIDE = Inline()  # type: ignore[assignment]

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
        from scale import _profile

        result["profile"] = _profile(run, len(queries), top=45)
    if "--stages" in sys.argv:
        result["stages_p50_ms"] = stages(retriever, queries, vectors, passes)
    if "--compare" in sys.argv:
        earlier = json.loads(Path(sys.argv[sys.argv.index("--compare") + 1]).read_text(encoding="utf-8"))
        result["compare"] = compare(hits, earlier["hits"])
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    print({k: v for k, v in result.items() if k not in ("hits", "profile")})
    for row in result.get("profile", []):
        print("  ", row)


if __name__ == "__main__":
    main()
