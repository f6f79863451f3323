"""The on-disk index: a directory of versioned snapshots, each a FAISS file plus plain metadata.

Layout::

    index/
      CURRENT            name of the live snapshot, replaced atomically (os.replace)
      .lock              held (flock) by the one process that writes
      snap-<time>-<id>/
        manifest.json    format version, embedder, dimension, prompts, chunking, normalizer, counts
        documents.jsonl  one Document per line (text, hashes, pages)
        chunks.jsonl     one Chunk per row position; null for a removed row not yet compacted
        vectors.npy      float32 (rows, dim), L2-normalized; row i is chunk i
        index.faiss      FAISS index over the same rows (flat inner product, or HNSW when large)
        bm25_*.npy/json  BM25 term-frequency matrix and vocabulary

A writer builds a whole new snapshot beside the live one and only then points CURRENT at it, so a
crash at any moment leaves the previous snapshot live and complete. Nothing is loaded with pickle.

Before use, a snapshot is validated: CURRENT must name a snapshot folder of this index, every file
must have the size the manifest records, ``vectors.npy`` must be a plain float32 matrix (numpy with
``allow_pickle=False``), ``index.faiss`` must be a flat or HNSW FAISS index, and vectors, chunks,
BM25 rows, FAISS rows, documents and the manifest must agree (``consistency_problems``). A snapshot
that fails any check raises ``IndexCorruptError`` naming the problem.

Test hook: ``ASSISTANT_TEST_SLOW_SAVE=SECONDS`` makes ``save`` sleep after each step (each file written,
the snapshot folder renamed, the new pointer written), so the crash tests can kill a writer mid-save.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .bm25 import BM25Index
from .errors import IndexCorruptError, IndexLockedError, IndexMismatchError
from .records import Chunk, Document

FORMAT_VERSION = 1
# Exact search is fast enough below this many rows; past it HNSW answers in a fraction of the time
# with recall@10 close to exact (see BENCHMARKS.md for the measurements behind the number).
HNSW_THRESHOLD = int(os.environ.get("ASSISTANT_HNSW_THRESHOLD", "200000"))
HNSW_M = 32
HNSW_EF_SEARCH = 128
# Compact (drop removed rows, rebuild FAISS) once this share of rows is dead.
COMPACT_DEAD_SHARE = 0.2
KEEP_OLD_SNAPSHOTS = 2
_SNAPSHOT_NAME = re.compile(r"snap-[0-9A-Za-z]+-[0-9a-f]{8}")
# FAISS index types a snapshot may hold (their four-byte tags): flat inner product or HNSW over it.
_FAISS_TAGS = {b"IxFI": "IndexFlatIP", b"IHNf": "IndexHNSWFlat"}
# A reader that loses the race with a fast writer several times in a row (each commit deletes an old
# snapshot) starts over, with a short growing pause, up to this many times.
_LOAD_ATTEMPTS = 30
LOCK_WAIT_SECONDS = 30.0


@dataclass
class IndexSettings:
    """What a snapshot was built with; must match the reader's settings."""

    embedder_backend: str
    embedder_model: str
    dim: int
    query_prompt: str
    passage_prompt: str
    chunker: dict[str, Any]
    normalizer_version: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class IndexData:
    """The in-memory contents of one snapshot."""

    settings: IndexSettings
    documents: dict[str, Document] = field(default_factory=dict)
    chunks: list[Chunk | None] = field(default_factory=list)
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    bm25: BM25Index = field(default_factory=BM25Index)
    faiss_index: Any = None
    snapshot: str = ""

    _rows: dict[str, int] | None = None
    _live_cache: np.ndarray | None = None

    # -- the ChunkBackend protocol (see assistant/backend.py) -------------------------------------
    @property
    def live(self) -> np.ndarray:
        """Mask of rows whose chunk is still indexed (cached; reset by every change)."""
        if self._live_cache is None or len(self._live_cache) != len(self.chunks):
            self._live_cache = np.fromiter((c is not None for c in self.chunks), dtype=bool, count=len(self.chunks))
        return self._live_cache

    @property
    def n_live(self) -> int:
        return int(self.live.sum())

    def _changed(self) -> None:
        self._rows = None
        self._live_cache = None

    @property
    def vocabulary(self) -> BM25Index:
        return self.bm25

    def _row_of(self) -> dict[str, int]:
        if self._rows is None:
            self._rows = {c.chunk_id: i for i, c in enumerate(self.chunks) if c is not None}
        return self._rows

    def dense_search(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Top ``n`` live chunks by cosine: ``(chunk_id, score)``."""
        if not self.chunks or self.faiss_index is None or n < 1:
            return []
        dead = len(self.chunks) - self.n_live
        fetch = min(len(self.chunks), n + dead)
        scores, rows = self.faiss_index.search(np.ascontiguousarray(vector[None, :], dtype=np.float32), fetch)
        out = []
        for row, score in zip(rows[0], scores[0]):
            chunk = self.chunks[row] if row >= 0 else None
            if chunk is not None:
                out.append((chunk.chunk_id, float(score)))
        return out[:n]

    def _bm25_all(self, terms: dict[str, float]) -> np.ndarray:
        if not terms or not self.chunks:
            return np.zeros(len(self.chunks), dtype=np.float32)
        return self.bm25.score(terms, self.live)

    def lexical_search(self, terms: dict[str, float], n: int) -> list[tuple[str, float]]:
        """Top ``n`` live chunks by BM25 over the weighted terms (only rows sharing a term)."""
        scores = self._bm25_all(terms)
        n = min(n, int((scores > 0).sum()))
        if n <= 0:
            return []
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.chunks[r].chunk_id, float(scores[r])) for r in top]  # type: ignore[union-attr]

    def dense_scores(self, chunk_ids: list[str], vector: np.ndarray) -> dict[str, float]:
        rows = self._row_of()
        known = [c for c in chunk_ids if c in rows]
        cosines = self.vectors[[rows[c] for c in known]] @ vector if known else []
        return {c: float(v) for c, v in zip(known, cosines)}

    def lexical_scores(self, chunk_ids: list[str], terms: dict[str, float]) -> dict[str, float]:
        rows = self._row_of()
        scores = self._bm25_all(terms)
        return {c: float(scores[rows[c]]) for c in chunk_ids if c in rows and scores[rows[c]] > 0}

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        rows = self._row_of()
        return {c: self.chunks[rows[c]] for c in chunk_ids if c in rows}  # type: ignore[misc]

    def get_document(self, doc_id: str) -> Document | None:
        return self.documents.get(doc_id)

    def list_documents(self) -> list[Document]:
        return sorted(self.documents.values(), key=lambda d: d.doc_id)

    def chunk_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for chunk in self.chunks:
            if chunk is not None:
                counts[chunk.doc_id] = counts.get(chunk.doc_id, 0) + 1
        return counts

    def add_documents(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Add (or replace) documents with their chunks, vectors and BM25 terms, in memory."""
        for doc in docs:
            self.remove_document(doc.doc_id)
            self.documents[doc.doc_id] = doc
        self.chunks.extend(chunks)
        self.vectors = np.vstack([self.vectors.reshape(-1, self.settings.dim), vectors]).astype(np.float32)
        self.bm25.add(terms)
        if self.faiss_index is not None and self.faiss_index.ntotal + len(chunks) == len(self.chunks):
            if len(vectors):
                self.faiss_index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        else:
            self.faiss_index = None
        self._changed()

    def remove_document(self, doc_id: str) -> int:
        """Remove a document and its chunks, in memory; returns the number of chunks removed."""
        removed = 0
        for i, chunk in enumerate(self.chunks):
            if chunk is not None and chunk.doc_id == doc_id:
                self.chunks[i] = None
                removed += 1
        self.documents.pop(doc_id, None)
        if removed:
            self._changed()
            self.bm25.set_live(self.live)  # document statistics changed
        return removed


def _faiss():
    import faiss  # imported lazily: it is heavy and not needed to read metadata

    # One query at a time is searched: on 2 cores OpenMP threads only add overhead and stalls
    # (exact search of 10k vectors: 15 ms on two threads, 0.48 ms on one; BENCHMARKS.md).
    faiss.omp_set_num_threads(1)
    return faiss


def build_faiss_index(vectors: np.ndarray, dim: int):
    """Exact inner-product index for small corpora, HNSW past ``HNSW_THRESHOLD`` rows."""
    faiss = _faiss()
    if len(vectors) >= HNSW_THRESHOLD:
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _fsync(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, payload: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(payload)
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def writer_lock(lock_file: Path, label: str, wait_seconds: float | None = None) -> Iterator[None]:
    """An exclusive ``flock`` on ``lock_file``, waited for up to ``wait_seconds`` (default
    ``$ASSISTANT_LOCK_WAIT_SECONDS`` or 30), then ``IndexLockedError`` naming ``label`` and the holder's pid.

    The kernel releases the lock when the holder exits or is killed, so a crashed writer never leaves
    the index locked; each call opens its own file description, so threads serialize too. Only the
    pid is written into the file (command lines can hold passwords).
    """
    if wait_seconds is None:
        wait_seconds = float(os.environ.get("ASSISTANT_LOCK_WAIT_SECONDS") or LOCK_WAIT_SECONDS)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_file, "a+")
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = ""
                    with contextlib.suppress(OSError, ValueError, IndexError):
                        holder = f" (pid {int(lock_file.read_text().split()[0])} holds the lock)"
                    raise IndexLockedError(
                        f"Another process is writing to the index {label}{holder}; waited {wait_seconds:g} s. "
                        "Try again when it has finished."
                    ) from None
                time.sleep(0.1)
        with contextlib.suppress(OSError):
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


def _test_pause() -> None:
    """Test hook: sleep ``$ASSISTANT_TEST_SLOW_SAVE`` seconds between the steps of ``save``."""
    delay = os.environ.get("ASSISTANT_TEST_SLOW_SAVE")
    if delay:
        time.sleep(float(delay))


def _file_problems(snap: Path, manifest: dict[str, Any]) -> list[str]:
    """Files missing from a snapshot or whose size differs from the manifest (older snapshots record none)."""
    files = manifest.get("files")
    if files is None:
        return []
    if not isinstance(files, dict):
        return ["the manifest's file list is not a mapping"]
    problems = []
    for name, size in files.items():
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            problems.append(f"the manifest lists an invalid file name {name!r}")
            continue
        try:
            actual = (snap / name).stat().st_size
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if actual != size:
            problems.append(f"{name} has {actual} bytes, the manifest says {size} (truncated or replaced?)")
    return problems


def _read_faiss(path: Path, dim: int):
    """Read ``index.faiss`` after checking it is one of the index types a snapshot holds."""
    with open(path, "rb") as fh:
        tag = fh.read(4)
    if tag not in _FAISS_TAGS:
        raise ValueError(f"index.faiss is not a flat or HNSW FAISS index (it starts with {tag!r})")
    index = _faiss().read_index(str(path))
    if index.d != dim:
        raise ValueError(f"index.faiss has dimension {index.d}, the manifest says {dim}")
    return index


class IndexStore:
    """Reads and writes snapshots of one index directory (the FAISS store)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    @property
    def uri(self) -> str:
        return str(self.root)

    def stored_settings(self) -> dict[str, Any] | None:
        """The settings the existing index was built with, or None when there is none."""
        if not self.exists():
            return None
        return self.read_manifest().get("settings")

    def empty(self, settings: IndexSettings) -> IndexData:
        data = IndexData(settings, vectors=np.zeros((0, settings.dim), dtype=np.float32))
        data.faiss_index = build_faiss_index(data.vectors, settings.dim)
        return data

    def version(self) -> str | None:
        """Changes whenever another process commits (used to reload)."""
        return self.current_snapshot()

    def open(self, settings: IndexSettings) -> IndexData:
        """The live contents, or an empty index when there is none yet."""
        return self.load(settings) if self.exists() else self.empty(settings)

    # -- reading ------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return (self.root / "CURRENT").is_file()

    def current_snapshot(self) -> str | None:
        """The live snapshot's folder name, or None when there is no index yet.

        Raises:
            IndexCorruptError: CURRENT names something other than a snapshot folder of this index
                (a path, ``..``, garbage).
        """
        try:
            raw = (self.root / "CURRENT").read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise IndexCorruptError(f"{self.root / 'CURRENT'} cannot be read: {exc}") from exc
        name = raw.decode("utf-8", errors="replace").strip()
        if not name:
            return None
        if not _SNAPSHOT_NAME.fullmatch(name):
            raise IndexCorruptError(
                f"{self.root / 'CURRENT'} names {name[:80]!r}, which is not a snapshot of this index. "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        return name

    def read_manifest(self, name: str | None = None) -> dict[str, Any]:
        """The manifest of snapshot ``name`` (default: the live one)."""
        name = name or self.current_snapshot()
        if name is None:
            raise IndexCorruptError(f"{self.root} holds no index (no CURRENT file)")
        try:
            manifest = json.loads((self.root / name / "manifest.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IndexCorruptError(f"{self.root / name / 'manifest.json'} cannot be read: {exc}") from exc
        if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
            raise IndexCorruptError(f"{self.root / name / 'manifest.json'} is not an index manifest (no settings)")
        return manifest

    def check_settings(self, manifest: dict[str, Any], wanted: IndexSettings) -> None:
        """Raise ``IndexMismatchError`` naming the fix when the snapshot was built differently."""
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexMismatchError(
                f"The index in {self.root} has format version {manifest.get('format_version')!r}; this version of the "
                f"assistant reads format {FORMAT_VERSION}. Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        have = manifest.get("settings", {})
        for key in ("embedder_backend", "embedder_model", "dim", "query_prompt", "passage_prompt"):
            if have.get(key) != getattr(wanted, key):
                raise IndexMismatchError(
                    f"The index in {self.root} was built with {key}={have.get(key)!r}, but the assistant is set to "
                    f"{getattr(wanted, key)!r}. Use the same embedder (--embedder "
                    f"{_embedder_flag(have)}) or rebuild the index: assistant ingest --index {self.root} --rebuild PATH..."
                )
        for key in ("chunker", "normalizer_version"):
            if have.get(key) != getattr(wanted, key):
                raise IndexMismatchError(
                    f"The index in {self.root} was built with other {key.replace('_', ' ')} settings "
                    f"({have.get(key)!r}, now {getattr(wanted, key)!r}). Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
                )

    def load(self, wanted: IndexSettings | None = None) -> IndexData:
        """Load the live snapshot, validating every file against the manifest.

        A writer in another process may commit and delete the snapshot being read (it keeps only the
        newest few); the load then starts over from the new CURRENT instead of reporting damage.
        """
        for attempt in range(_LOAD_ATTEMPTS):
            name = self.current_snapshot()
            if name is None:
                raise IndexCorruptError(f"{self.root} holds no index (no CURRENT file)")
            try:
                return self._load_snapshot(name, wanted)
            except IndexCorruptError:
                if attempt + 1 < _LOAD_ATTEMPTS and self.current_snapshot() != name:
                    time.sleep(min(0.01 * attempt, 0.2))
                    continue
                raise
        raise AssertionError("unreachable")

    def _load_snapshot(self, name: str, wanted: IndexSettings | None) -> IndexData:
        manifest = self.read_manifest(name)
        if wanted is not None:
            self.check_settings(manifest, wanted)
        snap = self.root / name
        problems = _file_problems(snap, manifest)
        if problems:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged: {'; '.join(problems)}. "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        try:
            settings = IndexSettings(**manifest["settings"])
            documents = {}
            with open(snap / "documents.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    doc = Document.from_dict(json.loads(line))
                    if doc.doc_id in documents:
                        raise ValueError(f"documents.jsonl lists {doc.doc_id!r} twice")
                    documents[doc.doc_id] = doc
            chunks: list[Chunk | None] = []
            with open(snap / "chunks.jsonl", encoding="utf-8") as fh:
                for line in fh:
                    data = json.loads(line)
                    chunks.append(None if data is None else Chunk.from_dict(data))
            vectors = np.load(snap / "vectors.npy", allow_pickle=False)  # never pickle: refuses object arrays
            if not isinstance(vectors, np.ndarray) or vectors.dtype != np.float32 or vectors.ndim != 2:
                raise ValueError(f"vectors.npy holds {getattr(vectors, 'dtype', type(vectors))} with shape "
                                 f"{getattr(vectors, 'shape', '?')}, not a float32 matrix")
            faiss_index = _read_faiss(snap / "index.faiss", settings.dim)
            bm25 = BM25Index.load(snap, len(chunks))
            bm25.set_live(np.fromiter((c is not None for c in chunks), dtype=bool, count=len(chunks)))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc
        data = IndexData(settings, documents, chunks, vectors, bm25, faiss_index, name)
        problems = consistency_problems(data, manifest)
        if problems:
            raise IndexCorruptError(f"The index snapshot {snap} is inconsistent: {'; '.join(problems)}")
        return data

    # -- writing ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, wait_seconds: float | None = None) -> Iterator[None]:
        """Hold the writer lock; another writer waits up to ``wait_seconds`` then gets a clear error.

        ``wait_seconds`` defaults to ``$ASSISTANT_LOCK_WAIT_SECONDS`` or 30.

        The lock is ``writer_lock`` on ``.lock`` in the index folder.
        """
        with writer_lock(self.root / ".lock", str(self.root), wait_seconds):
            yield

    def save(self, data: IndexData) -> str:
        """Write ``data`` as a new snapshot and make it live. Call with the lock held."""
        if data.chunks and len(data.chunks) - data.n_live > COMPACT_DEAD_SHARE * len(data.chunks):
            compact(data)
        if data.faiss_index is None or data.faiss_index.ntotal != len(data.chunks):
            data.faiss_index = build_faiss_index(data.vectors, data.settings.dim)
        name = f"snap-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = self.root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        try:
            docs = "".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in data.documents.values())
            _write_file(tmp / "documents.jsonl", docs.encode("utf-8"))
            _test_pause()
            rows = "".join(
                (json.dumps(c.to_dict(), ensure_ascii=False) if c is not None else "null") + "\n" for c in data.chunks
            )
            _write_file(tmp / "chunks.jsonl", rows.encode("utf-8"))
            _test_pause()
            with open(tmp / "vectors.npy", "wb") as fh:
                np.save(fh, np.ascontiguousarray(data.vectors, dtype=np.float32), allow_pickle=False)
                fh.flush()
                os.fsync(fh.fileno())
            _test_pause()
            _faiss().write_index(data.faiss_index, str(tmp / "index.faiss"))
            data.bm25.save(tmp)
            files = {}
            for path in sorted(tmp.iterdir()):  # FAISS and BM25 write without fsync: sync them all
                _fsync(path)
                files[path.name] = path.stat().st_size
            _test_pause()
            manifest = {
                "format_version": FORMAT_VERSION,
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "settings": data.settings.to_dict(),
                "counts": {"documents": len(data.documents), "rows": len(data.chunks), "live_chunks": data.n_live},
                "faiss": type(data.faiss_index).__name__,
                "documents": {d.doc_id: d.content_hash for d in data.documents.values()},
                "files": files,
            }
            _write_file(tmp / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1).encode("utf-8"))
            _fsync(tmp)
            os.replace(tmp, self.root / name)
            _test_pause()
            pointer = self.root / f".CURRENT-{name}"
            _write_file(pointer, name.encode("utf-8"))
            _test_pause()
            os.replace(pointer, self.root / "CURRENT")
            _fsync(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        data.snapshot = name
        self._collect_garbage(keep=name)
        return name

    def _collect_garbage(self, keep: str) -> None:
        """Delete unfinished temporaries and all but the newest few old snapshots."""
        snaps = sorted(p for p in self.root.glob("snap-*") if p.is_dir() and p.name != keep)
        for old in snaps[: max(0, len(snaps) - (KEEP_OLD_SNAPSHOTS - 1))]:
            shutil.rmtree(old, ignore_errors=True)
        for tmp in self.root.glob(".tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
        for pointer in self.root.glob(".CURRENT-*"):
            with contextlib.suppress(OSError):
                pointer.unlink()


def compact(data: IndexData) -> None:
    """Drop removed rows from vectors, chunks and BM25, and rebuild FAISS."""
    live = data.live.copy()
    data._changed()
    data.chunks = [c for c in data.chunks if c is not None]
    data.vectors = np.ascontiguousarray(data.vectors[live])
    data.bm25.keep_rows(live)
    data.faiss_index = None


def consistency_problems(data: IndexData, manifest: dict[str, Any] | None = None) -> list[str]:
    """Every way the parts of a snapshot disagree (empty when consistent)."""
    problems = []
    n = len(data.chunks)
    if data.vectors.ndim != 2:
        problems.append(f"vectors have {data.vectors.ndim} dimensions, not a matrix")
    elif data.vectors.shape[0] != n:
        problems.append(f"{data.vectors.shape[0]} vectors for {n} chunk rows")
    if data.vectors.ndim == 2 and n and data.vectors.shape[1] != data.settings.dim:
        problems.append(f"vectors have dimension {data.vectors.shape[1]}, manifest says {data.settings.dim}")
    if data.faiss_index is not None:
        if data.faiss_index.ntotal != n:
            problems.append(f"FAISS holds {data.faiss_index.ntotal} rows for {n} chunk rows")
        if data.faiss_index.d != data.settings.dim:
            problems.append(f"FAISS has dimension {data.faiss_index.d}, manifest says {data.settings.dim}")
    if data.bm25.n_rows != n:
        problems.append(f"BM25 holds {data.bm25.n_rows} rows for {n} chunk rows")
    seen_ids: set[str] = set()
    with_chunks: set[str] = set()
    for chunk in data.chunks:
        if chunk is None:
            continue
        if chunk.chunk_id in seen_ids:
            problems.append(f"chunk id {chunk.chunk_id} appears twice")
            break
        seen_ids.add(chunk.chunk_id)
        doc = data.documents.get(chunk.doc_id)
        if doc is None:
            problems.append(f"chunk {chunk.chunk_id} belongs to unknown document {chunk.doc_id}")
            break
        with_chunks.add(chunk.doc_id)
        if doc.text[chunk.start : chunk.end] != chunk.text:
            problems.append(f"chunk {chunk.chunk_id} text does not match its document offsets")
            break
    else:
        orphans = sorted(set(data.documents) - with_chunks)
        if orphans:
            problems.append(f"{len(orphans)} document(s) without chunks (e.g. {orphans[0]})")
    if manifest is not None:
        listed = manifest.get("documents", {})
        if not isinstance(listed, dict) or set(listed) != set(data.documents):
            problems.append("manifest document list differs from documents.jsonl")
        else:
            changed = [d for d, h in listed.items() if data.documents[d].content_hash != h]
            if changed:
                problems.append(f"manifest content hash of {changed[0]} differs from documents.jsonl")
        counts = manifest.get("counts")
        if isinstance(counts, dict):
            wanted = {"documents": len(data.documents), "rows": n, "live_chunks": data.n_live}
            for key, value in wanted.items():
                if key in counts and counts[key] != value:
                    problems.append(f"manifest counts {counts[key]} {key.replace('_', ' ')}, the snapshot holds {value}")
    return problems


def _embedder_flag(settings: dict[str, Any]) -> str:
    backend = settings.get("embedder_backend")
    if backend == "sentence-transformers":
        return f"st:{settings.get('embedder_model')}"
    return str(backend)
