"""Cross-lingual retrieval on the hadith collections: index the Arabic, ask with the English.

Each record of the pool is one document (its Arabic text). Each query is the record's English
translation (narrator + text, clipped to 512 characters: "full") or its first sentence ("first"). A query
is answered when the matching Arabic record is among the top 1/5/10 *distinct documents* of the ranked
chunk list (both systems return chunks; we ask both for 30 and de-duplicate by document).

Systems, all on the same pool, the same embedder and the same query vectors:

* ours (hybrid): ``HybridRetriever.search(mode="hybrid")``: dense + BM25, the product's default fusion
  (a convex combination of normalized scores at the time of writing);
* ours without BM25: ``mode="dense"``;
* ours without dense: ``mode="lexical"`` (English words reach Arabic only through the lexicon, names
  and digits);
* ours with the fusion switched off: the two candidate lists interleaved by rank (dense first);
* ours with reciprocal rank fusion instead of the default (``HybridRetriever(..., fusion="rrf")``);
* LangChain tutorial: RecursiveCharacterTextSplitter 1000/200 + FAISS inner product (``baseline.py``).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from common import CACHE, cached_embedder, log
from corpus import chunk_texts, filter_records, load_records, queries_for, sample_pool, write_documents

from assistant.text.normalize import clean_for_embedding

K_CHUNKS = 30           # chunks asked of each system; recall is over distinct documents
FETCH = 50              # candidates per list for the no-fusion interleave (the product's OVERFETCH)
DENSE_WEIGHTS = (0.3, 0.5, 0.7, 0.9)  # swept for the default (convex) fusion
SYSTEMS = ["hybrid", "no_bm25", "no_dense", "no_fusion", "rrf", "langchain"]
LABELS = {
    "hybrid": "ours: hybrid (dense + BM25, default fusion)",
    "no_bm25": "ours without BM25 (mode=dense)",
    "no_dense": "ours without dense (mode=lexical)",
    "no_fusion": "ours without fusion (interleave)",
    "rrf": "ours with RRF instead of the default fusion",
    "langchain": "LangChain tutorial (1000/200 + FAISS)",
}


def _distinct(doc_ids) -> list[str]:
    seen: list[str] = []
    for doc in doc_ids:
        if doc not in seen:
            seen.append(doc)
    return seen


def _rank(ranked_docs: list[str], target: str) -> int | None:
    try:
        return ranked_docs.index(target) + 1
    except ValueError:
        return None


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    out = {f"recall@{k}": round(sum(1 for r in ranks if r is not None and r <= k) / n, 4) for k in (1, 5, 10)}
    out["mrr@10"] = round(sum(1.0 / r for r in ranks if r is not None and r <= 10) / n, 4)
    out["n"] = n
    return out


def paired_difference(a: list[int | None], b: list[int | None], k: int = 10, samples: int = 2000) -> dict:
    """recall@k(a) - recall@k(b), with a 95% bootstrap interval over queries, and the discordant counts."""
    ha = np.array([r is not None and r <= k for r in a], dtype=float)
    hb = np.array([r is not None and r <= k for r in b], dtype=float)
    diff = ha - hb
    rng = np.random.default_rng(7)
    boots = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(samples)]
    return {"delta": round(float(diff.mean()), 4), "ci95": [round(float(np.percentile(boots, 2.5)), 4),
            round(float(np.percentile(boots, 97.5)), 4)], "only_a": int(((ha == 1) & (hb == 0)).sum()),
            "only_b": int(((ha == 0) & (hb == 1)).sum())}


def run(n_pool: int = 2500) -> dict:
    started = time.perf_counter()
    records = load_records()
    kept, filtering = filter_records(records)
    log(f"hadith: {filtering['total']} records, {filtering['dropped']} dropped by the length filter "
        f"({filtering['dropped_by_reason']}), {filtering['kept']} kept")
    pool = sample_pool(kept, n_pool)
    paths = write_documents(pool)
    log(f"hadith: pool of {len(pool)} records ({len(pool) // 5} per collection)")

    embedder = cached_embedder()
    from assistant.core import Assistant

    workdir = Path(tempfile.mkdtemp(prefix="hadith-", dir=CACHE))
    try:
        assistant = Assistant(workdir / "index", embedder=embedder)
        # Put every passage vector in the cache first (live only on the first run), then ingest.
        texts = [t for per_file in chunk_texts(paths, assistant.chunk_chars, assistant.max_chunk_chars) for t in per_file]
        embedder.embed_passages(texts)
        embedder.cache.flush()
        t0 = time.perf_counter()
        report = assistant.ingest(paths)
        ours_build = time.perf_counter() - t0
        log(f"hadith: ours indexed {report.chunks_added} chunks from {len(report.added)} records")

        from assistant.adapters.langchain.embeddings import LangChainEmbeddings
        from baseline import TutorialRetriever
        from langchain_core.documents import Document as LCDocument

        tutorial = TutorialRetriever(LangChainEmbeddings(embedder))
        tutorial.add_documents([LCDocument(page_content=r.arabic, metadata={"doc": r.doc_id}) for r in pool])
        embedder.cache.flush()
        log(f"hadith: LangChain baseline indexed {len(tutorial.chunks)} chunks")

        queries = {variant: [queries_for(r)[variant] for r in pool] for variant in ("full", "first")}
        vectors = {}
        for variant, qs in queries.items():
            vectors[variant] = embedder.embed_queries([clean_for_embedding(q) for q in qs])
            embedder.cache.flush()
        log("hadith: query vectors ready")

        import inspect

        from assistant.retrieval.plan import plan_query
        from assistant.retrieval.search import HybridRetriever

        retriever = assistant.retriever()
        data = retriever.data
        rrf = None
        if "fusion" in inspect.signature(HybridRetriever).parameters:
            rrf = HybridRetriever(data, embedder, fusion="rrf")
        systems = [s for s in SYSTEMS if s != "rrf" or rrf is not None]
        # The default fusion's dense weight, swept (public constructor argument).
        sweep = {}
        if "dense_weight" in inspect.signature(HybridRetriever).parameters:
            default_w = inspect.signature(HybridRetriever).parameters["dense_weight"].default
            sweep = {w: HybridRetriever(data, embedder, dense_weight=w) for w in DENSE_WEIGHTS if w != default_w}

        def doc_of(chunk_ids):
            chunks = data.get_chunks(list(chunk_ids))
            return [chunks[c].doc_id for c in chunk_ids if c in chunks]
        results: dict[str, dict] = {}
        ranks_all: dict[str, dict[str, list]] = {}
        timing: dict[str, float] = {}
        for variant, qs in queries.items():
            ranks: dict[str, list] = {s: [] for s in systems + [f"dense_weight_{w}" for w in sweep]}
            for rec, query, vec in zip(pool, qs, vectors[variant]):
                runs = [("hybrid", retriever, "hybrid"), ("no_bm25", retriever, "dense"), ("no_dense", retriever, "lexical")]
                if rrf is not None:
                    runs.append(("rrf", rrf, "hybrid"))
                runs += [(f"dense_weight_{w}", engine, "hybrid") for w, engine in sweep.items()]
                for system, engine, mode in runs:
                    t = time.perf_counter()
                    hits = engine.search(query, K_CHUNKS, mode=mode, query_vector=vec).hits
                    timing[system] = timing.get(system, 0.0) + time.perf_counter() - t
                    ranks[system].append(_rank(_distinct(h.chunk.doc_id for h in hits), rec.doc_id))
                t = time.perf_counter()
                dense = [cid for cid, _ in data.dense_search(vec, FETCH)]
                plan = plan_query(query, data.vocabulary)
                lexical = [cid for cid, _ in data.lexical_search(plan.terms, FETCH)] if plan.terms else []
                merged = [cid for pair in zip(dense, lexical + [None] * len(dense)) for cid in pair if cid is not None]
                merged += lexical[len(dense):]
                docs = _distinct(doc_of(merged))
                timing["no_fusion"] = timing.get("no_fusion", 0.0) + time.perf_counter() - t
                ranks["no_fusion"].append(_rank(docs, rec.doc_id))
                t = time.perf_counter()
                lc = tutorial.search(query, K_CHUNKS, query_vector=vec)
                timing["langchain"] = timing.get("langchain", 0.0) + time.perf_counter() - t
                ranks["langchain"].append(_rank(_distinct(d.metadata["doc"] for d, _ in lc), rec.doc_id))
            results[variant] = {s: metrics(ranks[s]) for s in ranks}
            ranks_all[variant] = ranks
            for s in ranks:
                m = results[variant][s]
                log(f"hadith [{variant}] {LABELS.get(s, s):<40} R@1={m['recall@1']:.3f} R@5={m['recall@5']:.3f} "
                    f"R@10={m['recall@10']:.3f} MRR@10={m['mrr@10']:.3f}")

        comparisons = {}
        for variant in queries:
            r = ranks_all[variant]
            comparisons[variant] = {
                "hybrid_vs_langchain": paired_difference(r["hybrid"], r["langchain"]),
                "no_bm25_vs_langchain": paired_difference(r["no_bm25"], r["langchain"]),
                "hybrid_vs_no_bm25": paired_difference(r["hybrid"], r["no_bm25"]),
                "hybrid_vs_no_dense": paired_difference(r["hybrid"], r["no_dense"]),
                "hybrid_vs_no_fusion": paired_difference(r["hybrid"], r["no_fusion"]),
            }
            if "rrf" in r:
                comparisons[variant]["hybrid_vs_rrf"] = paired_difference(r["hybrid"], r["rrf"])
                comparisons[variant]["rrf_vs_langchain"] = paired_difference(r["rrf"], r["langchain"])
                comparisons[variant]["rrf_vs_no_bm25"] = paired_difference(r["rrf"], r["no_bm25"])
        per_collection = {}
        for variant in queries:
            per: dict[str, dict] = {}
            for system in ("hybrid", "no_bm25", "langchain"):
                for rec, rank in zip(pool, ranks_all[variant][system]):
                    d = per.setdefault(rec.collection, {}).setdefault(system, [])
                    d.append(rank)
            per_collection[variant] = {c: {s: metrics(v)["recall@10"] for s, v in d.items()} for c, d in per.items()}

        rng = random.Random(3)
        examples = []
        for i in rng.sample(range(len(pool)), 5):
            examples.append({"doc": pool[i].doc_id, "query_first": queries["first"][i],
                             "rank_hybrid": ranks_all["first"]["hybrid"][i], "rank_langchain": ranks_all["first"]["langchain"][i]})
        n_q = len(pool)
        return {
            "pool": len(pool), "per_collection_pool": {c: sum(1 for r in pool if r.collection == c) for c in sorted({r.collection for r in pool})},
            "filtering": filtering, "k_chunks": K_CHUNKS,
            "ours_chunks": data.n_live, "langchain_chunks": len(tutorial.chunks),
            "ours_ingest_seconds_cached_vectors": round(ours_build, 2),
            "systems": systems, "dense_weights_swept": sorted(sweep), "results": results, "comparisons": comparisons,
            "ranks": {v: {s: r for s, r in ranks.items()} for v, ranks in ranks_all.items()},
            "doc_ids": [r.doc_id for r in pool], "recall10_per_collection": per_collection,
            "search_ms_per_query_excluding_embedding": {s: round(1000 * v / (2 * n_q), 2) for s, v in timing.items()},
            "query_chars_mean": {v: round(sum(map(len, qs)) / len(qs), 1) for v, qs in queries.items()},
            "examples": examples, "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
