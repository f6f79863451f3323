"""BM25 over memory-mapped postings (index format 3) against the exact scorer, on a real index.

``python bench/bm25_postings.py INDEX_DIR [--queries probe|fit]`` loads the index, plans the queries as
retrieval does and, for each, finds the top 50 as ``lexical_search`` does (``DiskBM25.top_rows``, the
product over every row when pruning does not settle), and compares it with the exact scorer: the same
rows in the same order with the same float32 scores (``BM25Index.top`` over the sparse product of
every row). Reports p50/p95 (wall and CPU time of the thread), which method settled each query
(max-score, impact-ordered prefixes and the prefix length, every row) and how many were identical.

Queries: ``probe`` = ``bench/cache/probe_queries.json`` (the latency benchmark's); ``fit`` = other
records of the same pool (English first sentences and Arabic phrases, records 200-399, none of the
probe's), the set the pruning constants of ``assistant/stores/faiss/postings.py`` were chosen on.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, percentiles  # noqa: E402


def fit_queries() -> list[dict]:
    """English first sentences and Arabic phrases of pool records 200-399 (the probe takes 0-59)."""
    from corpus import DEFAULT_POOL, filter_records, first_sentence, load_records, sample_pool

    from assistant.text.normalize import clean_for_embedding

    kept, _ = filter_records(load_records())
    pool = sample_pool(kept, DEFAULT_POOL)
    out = [{"q": first_sentence(r.english), "lang": "en"} for r in pool[200:300]]
    for r in pool[300:400]:
        words = clean_for_embedding(r.arabic).replace('"', " ").split()
        out.append({"q": " ".join(words[-12:-2] if len(words) > 14 else words[:10]), "lang": "ar"})
    return out


def main(index_dir: Path, which: str) -> dict:
    from assistant.retrieval.plan import plan_query
    from assistant.stores.faiss import IndexStore
    from assistant.stores.faiss.postings import DiskBM25
    from assistant.stores.lexical import BM25Index

    data = IndexStore(index_dir).load()
    disk: DiskBM25 = data.bm25
    queries = fit_queries() if which == "fit" else json.loads((CACHE / "probe_queries.json").read_text(encoding="utf-8"))
    plans = [plan_query(q["q"], data.vocabulary).terms for q in queries]
    reference = [BM25Index.top(disk.score(terms, data.live), 50) for terms in plans]  # the sparse product of every row

    settled: list[str] = []
    by_max_score, by_prefixes = DiskBM25._top_by_max_score, DiskBM25._top_by_prefixes

    def max_score(self, *args):
        found = by_max_score(self, *args)
        settled.append("max-score" if found is not None else "")
        return found

    def prefixes(self, columns, idf, n, *rest):
        from assistant.stores.faiss import postings

        start, top = postings.PREFIX_START, postings.PREFIX_POSTINGS
        try:  # one prefix length at a time, to tell which settled
            p = start
            while p <= top:
                postings.PREFIX_START = postings.PREFIX_POSTINGS = p
                found = by_prefixes(self, columns, idf, n, *rest)
                if found is not None:
                    settled.append(f"prefixes {p}")
                    return found
                p *= 4
        finally:
            postings.PREFIX_START, postings.PREFIX_POSTINGS = start, top
        return None

    def top50(terms: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        found = disk.top_rows(terms, 50)
        return found if found is not None else BM25Index.top(disk.score(terms, data.live), 50)

    for terms in plans:  # first use: columns sorted, bitmaps and prefixes made, pages mapped
        top50(terms)
    wall, cpu, identical = [], [], 0
    for terms, (want_rows, want_scores) in zip(plans, reference):
        t, c = time.perf_counter(), time.thread_time()
        rows, scores = top50(terms)
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
        identical += rows.tolist() == want_rows.tolist() and scores.tolist() == want_scores.tolist()
    DiskBM25._top_by_max_score, DiskBM25._top_by_prefixes = max_score, prefixes
    try:
        for terms in plans:
            before = len(settled)
            top50(terms)
            if not any(settled[before:]):  # max-score not tried: no term of the generation's rows (or none at all)
                settled.append("every row" if len(settled) > before else "no generation term")
    finally:
        DiskBM25._top_by_max_score, DiskBM25._top_by_prefixes = by_max_score, by_prefixes
    methods: dict[str, int] = {}
    for method in (m for m in settled if m):
        methods[method] = methods.get(method, 0) + 1
    out = {"index": str(index_dir), "rows": int(disk.n_rows), "queries": which, "n": len(plans), "identical_top50": identical,
           "wall": percentiles(wall), "cpu": percentiles(cpu), "settled_by": methods}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    which = sys.argv[sys.argv.index("--queries") + 1] if "--queries" in sys.argv else "probe"
    result = main(Path(sys.argv[1]), which)
    (CACHE / f"bm25_postings-{result['rows']}-{which}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
