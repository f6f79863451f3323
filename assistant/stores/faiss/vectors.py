"""The FAISS indexes over the vectors: exact (flat) and HNSW builders, the ``Part`` a search runs
over, and the reader of ``ann.faiss``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from assistant.stores.faiss.logs import ANN_FILE

# Exact search of N vectors costs ~0.11 ms per 1,000 on one core; HNSW32 answers in < 1 ms with
# recall@10 ≈ 0.98 at efSearch 256. The switch-over is where exact search reaches 5 ms, a quarter of
# the 20 ms retrieval budget: ≈ 50k vectors (BENCHMARKS.md, "Index type").
HNSW_THRESHOLD = int(os.environ.get("ASSISTANT_HNSW_THRESHOLD", "50000"))
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 256
# The FAISS index types ann.faiss may hold (their four-byte tags): HNSW over float16 rows (what this
# version writes: half the memory of float32 for the same recall, BENCHMARKS.md) or over float32 rows.
_FAISS_TAGS = {b"IHNs": "IndexHNSWSQ", b"IHNf": "IndexHNSWFlat"}


@dataclass(frozen=True)
class Part:
    """A FAISS index over rows ``[start, start + index.ntotal)``; never changed once built."""

    start: int
    index: Any

    @property
    def end(self) -> int:
        return self.start + self.index.ntotal

    @property
    def is_hnsw(self) -> bool:
        return hasattr(self.index, "hnsw")


def load_faiss():
    """The ``faiss`` module, set to search on one thread."""
    import faiss  # imported lazily: it is heavy and not needed to read metadata

    # One query at a time is searched: on 2 cores OpenMP threads only add overhead and stalls
    # (exact search of 10k vectors: 15 ms on two threads, 0.48 ms on one; BENCHMARKS.md).
    faiss.omp_set_num_threads(1)
    return faiss


def flat_index(vectors: np.ndarray, dim: int):
    """An exact inner-product index over ``vectors``."""
    index = load_faiss().IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, dim))
    return index


def build_hnsw(vectors: np.ndarray, dim: int, base: Any = None):
    """HNSW over ``vectors`` stored as float16; with ``base``, that graph extended (in place) by ``vectors``.

    float16 rows halve the graph's memory and file (172 → 99 MB at 100k passages) at the same recall@10
    (0.981 vs 0.983 at efSearch 256) and a little faster; the rows read back differ by < 1e-4.
    """
    faiss = load_faiss()
    if base is None:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_fp16, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.train(np.zeros((1, dim), dtype=np.float32))  # float16 needs no training; FAISS wants the call
    else:
        index = base
    index.hnsw.efSearch = HNSW_EF_SEARCH
    if len(vectors):
        # Building is a batch job: let it use every core (queries run on one thread).
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        finally:
            faiss.omp_set_num_threads(1)
    return index


def wants_hnsw(rows: int) -> bool:
    """Whether an index of ``rows`` rows is served by an HNSW graph (from ``HNSW_THRESHOLD`` rows on)."""
    return rows >= HNSW_THRESHOLD


def build_faiss_index(vectors: np.ndarray, dim: int):
    """Exact inner-product index below ``HNSW_THRESHOLD`` rows, HNSW from there on."""
    return build_hnsw(vectors, dim) if wants_hnsw(len(vectors)) else flat_index(vectors, dim)


def read_ann(path: Path, dim: int, mapped: bool = False):
    """Read ``ann.faiss`` after checking it is the index type a snapshot holds.

    ``mapped``: its vectors memory-mapped instead of read (only the graph's links are read: at 1M
    passages 0.3 of the file's 1 GB; vector pages are read when a search first touches them and
    shared through the page cache). For readers only: a mapped index must not be extended, and the
    file is never changed once written (a commit that extends the graph writes a new file).
    """
    with open(path, "rb") as fh:
        tag = fh.read(4)
    if tag not in _FAISS_TAGS:
        raise ValueError(f"{path.name} is not an HNSW FAISS index (it starts with {tag!r})")
    faiss = load_faiss()
    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC) if mapped else faiss.read_index(str(path))
    if index.d != dim:
        raise ValueError(f"{path.name} has dimension {index.d}, the manifest says {dim}")
    index.hnsw.efSearch = HNSW_EF_SEARCH
    return index


def snapshot_parts(snap: Path, dim: int, rows: int, ann_rows: int, vector_bytes: int, flat_from: Callable[[int], Any],
                   base_parts: Sequence[Part] | None = None, first_row: int = 0, mapped: bool = False) -> list[Part]:
    """The vector parts of a snapshot being read: ``base_parts`` (an earlier load whose graph is still the
    snapshot's) plus the rows past ``first_row``, else ``ann.faiss`` (its first ``ann_rows`` rows) plus
    the rest. ``flat_from(lo)`` builds an exact index over rows ``lo..rows`` from ``vectors.f32``."""
    if vector_bytes != rows * dim * 4:
        raise ValueError(f"vectors.f32 holds {vector_bytes} bytes for {rows} rows of dimension {dim}")
    if base_parts is not None:
        return [*base_parts, *([Part(first_row, flat_from(first_row))] if rows > first_row else [])]
    parts = []
    if ann_rows:
        ann = read_ann(snap / ANN_FILE, dim, mapped=mapped)
        if ann.ntotal != ann_rows:
            raise ValueError(f"{ANN_FILE} holds {ann.ntotal} rows, the manifest says {ann_rows}")
        parts.append(Part(0, ann))
    parts.append(Part(ann_rows, flat_from(ann_rows)))
    return parts
