"""Issue 16's million-passage targets: build (once) and probe a replicated index of N passages.

``python bench/scale_1m.py build N DIR`` writes the replicated index of ``bench/scale.py`` (reusing
``DIR.ann.faiss`` when a previous build left it, so the HNSW graph is built once per size);
``python bench/scale_1m.py probe DIR OUT.json`` runs ``scale.py``'s fresh-process probe on it (load,
RSS, latencies, add one article, the running app's refresh). The targets at 1M: load < 2 s, RSS
after load < 1.2 GB, retrieval p50 < 5 ms, add an article < 1 s, refresh < 0.5 s.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, log  # noqa: E402


def _fill_missing_vectors(files) -> None:
    """Passages whose vector is not cached get a stand-in: the mean of two cached passage vectors plus
    noise, normalized (so it lies where e5 vectors lie). Embedding the 10k real passages live takes
    10 min on a quiet machine and ~50 min on this shared one; none of the measured quantities (load,
    memory, latency, add, refresh) depends on which real vector a row holds. Stand-ins are written
    to the cache under the passage's key, so later runs (and the before/after runs) reuse them."""
    import numpy as np

    from assistant.text.normalize import clean_for_embedding

    import common

    real = common.vector_cache()
    stand_in_dir = CACHE / "vectors-scale-1m"   # stand-ins never enter the real cache
    stand_in_dir.mkdir(parents=True, exist_ok=True)
    for path in real.dir.glob(f"{real.name}.*"):
        if not (stand_in_dir / path.name).exists():
            shutil.copyfile(path, stand_in_dir / path.name)
    cache = common.VectorCache(real.name, real.dim, stand_in_dir)
    common._SHARED["cache"] = cache  # RealBase and probe_queries read this one from here on
    keys = [cache.key("p", clean_for_embedding(t)) for _, ts in files for t in ts]
    known = [cache.get(k) for k in keys if cache.get(k) is not None]
    pool = np.stack(known) if known else np.random.default_rng(1).standard_normal((64, cache.dim)).astype(np.float32)
    rng = np.random.default_rng(7)
    missing = [k for k in keys if cache.get(k) is None]
    for key in missing:
        a, b = pool[rng.integers(len(pool), size=2)]
        v = (a + b) / 2 + rng.standard_normal(cache.dim).astype(np.float32) * 0.02
        cache.put(key, (v / np.linalg.norm(v)).astype(np.float32))
    cache.flush()
    log(f"scale_1m: {len(keys) - len(missing)} of {len(keys)} real passages have a cached vector; {len(missing)} stand-ins")


def build(n: int, directory: Path) -> dict:
    import scale
    from assistant.core import Assistant
    from assistant.stores.faiss import IndexStore
    from assistant.stores.faiss import vectors as vectors_mod

    probe_assistant = Assistant(CACHE / "unused")
    settings = probe_assistant.settings()
    files = scale.real_files(10_000, probe_assistant.chunk_chars, probe_assistant.max_chunk_chars)
    _fill_missing_vectors(files)
    base = scale.RealBase(files, settings, probe_assistant.chunk_chars, probe_assistant.max_chunk_chars)
    row: dict = {"passages": n}
    t = time.perf_counter()
    data = base.build(n)
    row["build_indexdata_seconds"] = round(time.perf_counter() - t, 2)
    graph = CACHE / f"graph-{n}.ann.faiss"  # the HNSW graph of this size, built once and reused
    t = time.perf_counter()
    if vectors_mod.wants_hnsw(n) and graph.exists():
        data.parts = [vectors_mod.Part(0, vectors_mod.read_ann(graph, settings.dim))]
        data._params = {}
    else:
        data.build_vector_index()
        if data.parts[0].is_hnsw:
            vectors_mod.load_faiss().write_index(data.parts[0].index, str(graph))
    row["faiss_seconds"] = round(time.perf_counter() - t, 2)
    shutil.rmtree(directory, ignore_errors=True)
    store = IndexStore(directory)
    t = time.perf_counter()
    with store.lock():
        store.save(data)
    row["save_seconds"] = round(time.perf_counter() - t, 2)
    queries = CACHE / "probe_queries.json"
    if not queries.exists():
        queries.write_text(json.dumps(scale.probe_queries(), ensure_ascii=False), encoding="utf-8")
    log(f"scale_1m: built {n} in {row}")
    return row


def probe(directory: Path, out: Path) -> dict:
    import scale
    from assistant.core import Assistant

    # A probe added the article before: remove it (untimed), so the probe adds it again.
    previous = Assistant(directory)
    if previous.store.exists() and previous.data.get_document("new_article_0001") is not None:
        previous.remove("new_article_0001")
    result = scale.run_probe(directory, CACHE / "probe_queries.json", out, add_article=True, timeout=3600)
    lat = result["latency"]
    add = result["add_article"]
    summary = {
        "rows": result["rows"], "faiss": result["faiss_loaded"], "load_s": result["load_seconds"],
        "rss_after_load_mb": result["rss_after_load_mb"], "rss_after_queries_mb": result["rss_after_queries_mb"],
        "rss_after_load_split_mb": result.get("rss_after_load_split_mb"), "rss_after_queries_split_mb": result.get("rss_after_queries_split_mb"),
        "peak_rss_mb": result["peak_rss_mb"], "first_query_s": result["first_query_seconds"],
        "retrieval_p50_ms": lat["hybrid_no_embed"]["p50_ms"], "retrieval_p95_ms": lat["hybrid_no_embed"]["p95_ms"],
        "dense_p50_ms": lat["dense_no_embed"]["p50_ms"], "bm25_p50_ms": lat["lexical_no_embed"]["p50_ms"],
        "ask_p50_ms": lat["ask"]["p50_ms"], "add_article_s": add["seconds"], "add_embed_s": add["embed_seconds"],
        "add_save_s": add["save_seconds"], "add_load_s": add["load_seconds"], "refresh_s": add["reader_refresh_seconds"],
        "found_at_rank_1": add["found_at_rank_1"], "load_average": result["load_average_during"],
    }
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "build":
        build(int(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "probe":
        probe(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        print(__doc__)
        sys.exit(2)
