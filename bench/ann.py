"""Exact vs approximate FAISS at each size: recall@10 against exact search, latency, build time, memory.

The approximate indexes use the product's settings (``assistant.store``: HNSW M=32, efConstruction=80,
efSearch=128) plus a sweep of efSearch, and an IVF-Flat for comparison. Queries are real English
question vectors (the "full" queries of the cross-lingual set); each search asks for 50 rows, as the
product's dense retriever does (OVERFETCH), and recall@10 compares the first 10 with the exact top 10.
Latency is one query at a time (the product's access pattern), with FAISS on 1 and on 2 OpenMP threads.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from common import cached_embedder, log, percentiles

FETCH = 50
EF_SEARCH = (32, 64, 128, 256)
NPROBE = (8, 32, 64)


def query_vectors(n: int = 200) -> np.ndarray:
    from corpus import DEFAULT_POOL, filter_records, load_records, queries_for, sample_pool

    from assistant.text.normalize import clean_for_embedding

    kept, _ = filter_records(load_records())
    pool = sample_pool(kept, DEFAULT_POOL)[:n]
    emb = cached_embedder(live=True)
    vecs = emb.embed_queries([clean_for_embedding(queries_for(r)["full"]) for r in pool])
    emb.cache.flush()
    return np.ascontiguousarray(vecs, dtype=np.float32)


def _latency(index, queries: np.ndarray, threads: int, n: int) -> dict:
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        index.search(queries[:1], FETCH)
        times = []
        for q in queries[:n]:
            t = time.perf_counter()
            index.search(q[None, :], FETCH)
            times.append(time.perf_counter() - t)
        return percentiles(times)
    finally:
        faiss.omp_set_num_threads(previous)


def _recall(index, queries: np.ndarray, truth: np.ndarray) -> float:
    _, rows = index.search(queries, FETCH)
    hits = sum(len(set(r[:10]) & set(t)) for r, t in zip(rows, truth))
    return round(hits / truth.size, 4)


def _hnsw_float32(faiss, vectors: np.ndarray):
    from assistant.stores.faiss import vectors as store_mod

    index = faiss.IndexHNSWFlat(vectors.shape[1], store_mod.HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = store_mod.HNSW_EF_CONSTRUCTION
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index.add(vectors)
    return index


def _bytes(index) -> int:
    import faiss

    return int(faiss.serialize_index(index).size)


def compare(vectors: np.ndarray, queries: np.ndarray, existing=None, real: bool = True) -> dict:
    import faiss

    from assistant.stores.faiss import vectors as store_mod

    threads_default = faiss.omp_get_max_threads()
    n = len(vectors)
    n_lat = 200 if n <= 100_000 else 50
    out: dict = {"rows": n, "real_vectors": real, "queries": len(queries), "latency_queries": min(n_lat, len(queries))}
    flat = existing if isinstance(existing, faiss.IndexFlatIP) else None
    t = time.perf_counter()
    if flat is None:
        flat = faiss.IndexFlatIP(vectors.shape[1])
        flat.add(vectors)
    out["flat"] = {"build_seconds": round(time.perf_counter() - t, 2), "bytes": n * vectors.shape[1] * 4}
    _, truth = flat.search(queries, 10)
    out["flat"]["latency_1_thread"] = _latency(flat, queries, 1, n_lat)
    out["flat"]["latency_2_threads"] = _latency(flat, queries, 2, n_lat)
    faiss.omp_set_num_threads(threads_default)

    # The product's graph (HNSW over float16 rows, assistant.store.build_hnsw), and the float32 graph
    # it replaced, for the memory/recall trade.
    variants = [("hnsw", existing if hasattr(existing, "hnsw") else None, lambda: store_mod.build_hnsw(vectors, vectors.shape[1])),
                ("hnsw_float32", None, lambda: _hnsw_float32(faiss, vectors))]
    for key, index, build_fn in variants:
        t = time.perf_counter()
        build = None
        if index is None:
            index = build_fn()
            build = time.perf_counter() - t
        out[key] = {"type": type(index).__name__, "M": store_mod.HNSW_M, "efConstruction": store_mod.HNSW_EF_CONSTRUCTION,
                    "build_seconds": None if build is None else round(build, 2), "bytes": _bytes(index), "by_efSearch": {}}
        for ef in EF_SEARCH:
            index.hnsw.efSearch = ef
            out[key]["by_efSearch"][str(ef)] = {
                "recall@10": _recall(index, queries, truth),
                "latency_1_thread": _latency(index, queries, 1, n_lat),
                "latency_2_threads": _latency(index, queries, 2, n_lat),
            }
        index.hnsw.efSearch = store_mod.HNSW_EF_SEARCH
        faiss.omp_set_num_threads(threads_default)
        if key == "hnsw":
            hnsw_build = build
        del index
    build = hnsw_build

    if n >= 10_000:
        nlist = min(int(4 * math.sqrt(n)), n // 39)  # FAISS wants >= 39 training points per list
        t = time.perf_counter()
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        ivf = faiss.IndexIVFFlat(quantizer, vectors.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
        sample = vectors[np.random.default_rng(0).choice(n, min(n, 50 * nlist), replace=False)]
        ivf.train(sample)
        ivf.add(vectors)
        out["ivf"] = {"nlist": nlist, "build_seconds": round(time.perf_counter() - t, 2), "bytes": _bytes(ivf), "by_nprobe": {}}
        for nprobe in NPROBE:
            ivf.nprobe = nprobe
            out["ivf"]["by_nprobe"][str(nprobe)] = {
                "recall@10": _recall(ivf, queries, truth),
                "latency_1_thread": _latency(ivf, queries, 1, n_lat),
                "latency_2_threads": _latency(ivf, queries, 2, n_lat),
            }
        faiss.omp_set_num_threads(threads_default)
        del ivf, quantizer
    h = out["hnsw"]["by_efSearch"][str(store_mod.HNSW_EF_SEARCH)]
    log(f"index type {n}: flat p50 {out['flat']['latency_1_thread']['p50_ms']:.2f} ms (1 thread) / "
        f"{out['flat']['latency_2_threads']['p50_ms']:.2f} ms (2 threads); HNSW efSearch={store_mod.HNSW_EF_SEARCH} "
        f"recall@10 {h['recall@10']:.3f}, p50 {h['latency_1_thread']['p50_ms']:.2f} ms"
        + (f", built in {build:.1f} s" if build is not None else ""))
    return out
