"""``IndexStore``: the FAISS store's index folder of snapshots: finding, loading and following the
live snapshot, committing changes as a new one, and removing old ones (the layout: see the package)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from assistant.errors import IndexCorruptError, IndexLockedError, IndexMismatchError
from assistant.stores.base import IndexSettings, check_settings
from assistant.stores.faiss.checks import consistency_problems, doc_table, file_problems
from assistant.stores.faiss.legacy import read_v1
from assistant.stores.faiss.logs import (ANN_FILE, DEAD_FILE, LOG_FILES, append_log, chunk_line, doc_line, fsync, raw_array,
                                         read_range, split_lines, vocab_line, write_file)
from assistant.stores.faiss.memory import IndexData, OnDisk, compact
from assistant.stores.faiss.reading import read_snapshot
from assistant.stores.faiss.vectors import build_hnsw, load_faiss, read_ann, wants_hnsw
from assistant.stores.faiss.writer import IndexWriter
from assistant.stores.lexical import encode_rows
from assistant.stores.locking import writer_lock

log = logging.getLogger("assistant")

FORMAT_VERSION = 2
# Format 1 (one file per part, rewritten by every commit) is still read; the first commit upgrades it.
READABLE_FORMATS = (1, 2)
# Rows appended after the HNSW graph are searched exactly; past this many the commit extends the graph.
TAIL_MAX_ROWS = int(os.environ.get("ASSISTANT_TAIL_MAX_ROWS", "20000"))
# Compact (drop removed rows, write fresh logs) once this share of rows is dead.
COMPACT_DEAD_SHARE = 0.2
KEEP_OLD_SNAPSHOTS = 2
_SNAPSHOT_NAME = re.compile(r"snap-[0-9A-Za-z]+-[0-9a-f]{8}")
# A reader that loses the race with a fast writer several times in a row (each commit deletes an old
# snapshot) starts over, with a short growing pause, up to this many times.
_LOAD_ATTEMPTS = 30


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
        return IndexData(settings)

    def version(self) -> str | None:
        """Changes whenever another process commits (used to reload)."""
        return self.current_snapshot()

    def open(self, settings: IndexSettings) -> IndexData:
        """The live contents, or an empty index when there is none yet."""
        return self.load(settings) if self.exists() else self.empty(settings)

    def writer(self, settings: IndexSettings, rebuild: bool = False) -> IndexWriter:
        """An ``IndexWriter`` over the live snapshot (or a new, empty index with ``rebuild``).

        Reads only the manifest and the list of removed rows. Call with the lock held.
        """
        name = self.current_snapshot()
        if name is None or rebuild:
            return IndexWriter(settings, None, None, opened_on=name)
        manifest = self.read_manifest(name)
        self.check_settings(manifest, settings)
        if manifest.get("format_version") == 1:
            # Upgrade once: everything rewritten as logs, then appended to like any other index.
            log.info("upgrading the index in %s from format 1 to %s", self.root, FORMAT_VERSION)
            name = self._save_full(read_v1(self.root, self.root / name, manifest))
            manifest = self.read_manifest(name)
        try:
            dead = raw_array((self.root / name / DEAD_FILE).read_bytes(), "<i4", DEAD_FILE)
            return IndexWriter(IndexSettings(**manifest["settings"]), name, manifest, dead.tolist())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(
                f"The index snapshot {self.root / name} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc

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
        if manifest.get("format_version") not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"The index in {self.root} has format version {manifest.get('format_version')!r}; this version of the "
                f"assistant reads formats {', '.join(map(str, READABLE_FORMATS))}. Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        check_settings(str(self.root), manifest.get("settings", {}), wanted)

    def load(self, wanted: IndexSettings | None = None) -> IndexData:
        """Load the live snapshot, validating every file against the manifest.

        A writer in another process may commit and delete the snapshot being read (it keeps only the
        newest few); the load then starts over from the new CURRENT instead of reporting damage.
        """
        return self._follow(None, wanted)

    def refresh(self, data: IndexData, wanted: IndexSettings | None = None) -> IndexData:
        """The live snapshot, reading only what was committed after ``data``'s snapshot when it is
        the same generation (else a full load). ``data`` itself is never changed."""
        if data.on_disk is None or not self.exists():
            return self.open(wanted or data.settings)
        return self._follow(data, wanted)

    def _follow(self, base: IndexData | None, wanted: IndexSettings | None) -> IndexData:
        for attempt in range(_LOAD_ATTEMPTS):
            name = self.current_snapshot()
            if name is None:
                raise IndexCorruptError(f"{self.root} holds no index (no CURRENT file)")
            if base is not None and name == base.snapshot:
                return base
            try:
                return self._load_snapshot(name, wanted, base)
            except IndexCorruptError:
                if attempt + 1 < _LOAD_ATTEMPTS and self.current_snapshot() != name:
                    time.sleep(min(0.01 * attempt, 0.2))
                    continue
                raise
        raise AssertionError("unreachable")

    def _load_snapshot(self, name: str, wanted: IndexSettings | None, base: IndexData | None = None) -> IndexData:
        manifest = self.read_manifest(name)
        if wanted is not None:
            self.check_settings(manifest, wanted)
        snap = self.root / name
        if manifest.get("format_version") == 1:
            return read_v1(self.root, snap, manifest)
        problems = file_problems(snap, manifest)
        if problems:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged: {'; '.join(problems)}. "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        try:
            table = doc_table(manifest)
            data = read_snapshot(snap, manifest, base, table)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError) as exc:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc
        problems = consistency_problems(data, manifest, table)
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

    def save(self, data: IndexData | IndexWriter) -> str:
        """Commit and make live: an ``IndexWriter``'s changes as appends, an ``IndexData`` as a whole
        new generation. Call with the lock held."""
        if isinstance(data, IndexWriter):
            return self._commit(data)
        return self._save_full(data)

    def _new_snapshot(self) -> tuple[str, Path]:
        name = f"snap-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = self.root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        return name, tmp

    def _save_full(self, data: IndexData) -> str:
        """Write ``data`` as fresh logs (a new generation) and make it live."""
        if data.chunks and len(data.chunks) - data.n_live > COMPACT_DEAD_SHARE * len(data.chunks):
            compact(data)
        if data.n_vectors != len(data.chunks):
            raise ValueError(f"{data.n_vectors} vectors for {len(data.chunks)} chunk rows")
        data.build_vector_index()
        name, tmp = self._new_snapshot()
        try:
            live_rows: dict[str, list[int]] = {}
            for row, (chunk_id, doc_id) in enumerate(zip(data.chunks.ids, data.chunks.doc_ids)):
                if chunk_id is not None:
                    live_rows.setdefault(doc_id, []).append(row)
            table = {}
            for doc in data.documents.values():
                rows = live_rows.get(doc.doc_id, [])
                if not rows or rows[-1] - rows[0] + 1 != len(rows):
                    raise ValueError(f"document {doc.doc_id!r} has {'no' if not rows else 'non-consecutive'} chunk rows")
                table[doc.doc_id] = [doc.content_hash, doc.source, rows[0], len(rows)]
            m = data.bm25.matrix
            payloads = {
                "documents.jsonl": "".join(doc_line(d) for d in data.documents.values()).encode("utf-8"),
                "chunks.jsonl": "".join(chunk_line(c) for c in data.chunks).encode("utf-8"),
                "vectors.f32": data.vectors.astype("<f4").tobytes(),
                "bm25_data.f32": m.data.astype("<f4").tobytes(),
                "bm25_indices.i32": m.indices.astype("<i4").tobytes(),
                "bm25_rownnz.i32": np.diff(m.indptr).astype("<i4").tobytes(),
                "bm25_vocab.txt": "".join(vocab_line(t) for t in data.bm25.terms).encode("utf-8"),
            }
            logs, crcs = {}, {}
            for fname in LOG_FILES:
                (tmp / fname).touch()
                payload = payloads.pop(fname)
                logs[fname], crcs[fname] = append_log(tmp / fname, 0, payload), zlib.crc32(payload)
                _test_pause()
            dead = np.flatnonzero(~data.live).astype("<i4")
            ann_rows = 0
            hnsw = [p for p in data.parts if p.is_hnsw]
            if hnsw:
                load_faiss().write_index(hnsw[0].index, str(tmp / ANN_FILE))
                ann_rows = hnsw[0].index.ntotal
            manifest = self._manifest(data.settings, uuid.uuid4().hex, logs, crcs, table, len(data.chunks), data.n_live,
                                      len(data.bm25.terms), ann_rows)
            self._publish(name, tmp, manifest, dead)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        data.snapshot = name
        data.on_disk = OnDisk(manifest["generation"], dict(logs), dict(crcs), len(data.chunks), ann_rows, len(data.bm25.terms))
        if ann_rows and not (len(data.parts) == 1 and data.parts[0].is_hnsw):
            data.parts = [p for p in data.parts if p.is_hnsw]
        self._collect_garbage(keep=name)
        return name

    def _commit(self, w: IndexWriter) -> str:
        """Append a writer's changes to the live snapshot's logs in a new snapshot."""
        if w.opened_on != self.current_snapshot():
            raise IndexLockedError(f"The index {self.root} changed since this writer opened it; hold the lock while writing.")
        name, tmp = self._new_snapshot()
        try:
            dim = w.settings.dim
            if w.base is None:
                generation, logs, n_terms, ann_rows = uuid.uuid4().hex, dict.fromkeys(LOG_FILES, 0), 0, 0
                crcs = dict.fromkeys(LOG_FILES, 0)
                terms: list[str] = []
                for fname in LOG_FILES:
                    (tmp / fname).touch()
            else:
                assert w.manifest is not None
                generation, logs, crcs = w.manifest["generation"], dict(w.manifest["logs"]), dict(w.manifest["crc32"])
                n_terms, ann_rows = int(w.manifest["n_terms"]), int(w.manifest["ann_rows"])
                for fname in LOG_FILES:
                    os.link(self.root / w.base / fname, tmp / fname)
                terms = []
                if w.pending_terms:
                    terms = split_lines(read_range(tmp / "bm25_vocab.txt", 0, logs["bm25_vocab.txt"]), "bm25_vocab.txt")
                    if len(terms) != n_terms:
                        raise IndexCorruptError(f"{self.root / w.base / 'bm25_vocab.txt'} holds {len(terms)} terms, the manifest says {n_terms}")
            vocab = {t: i for i, t in enumerate(terms)}
            values, ids, nnz = encode_rows(w.pending_terms, vocab, terms)
            vectors = np.vstack(w.pending_vectors) if w.pending_vectors else np.zeros((0, dim), dtype=np.float32)
            payloads = {
                "documents.jsonl": "".join(doc_line(d) for d in w.pending_docs).encode("utf-8"),
                "chunks.jsonl": "".join(chunk_line(c) for c in w.pending_chunks).encode("utf-8"),
                "vectors.f32": vectors.astype("<f4").tobytes(),
                "bm25_data.f32": values.astype("<f4").tobytes(),
                "bm25_indices.i32": ids.astype("<i4").tobytes(),
                "bm25_rownnz.i32": nnz.astype("<i4").tobytes(),
                "bm25_vocab.txt": "".join(vocab_line(t) for t in terms[n_terms:]).encode("utf-8"),
            }
            for fname in LOG_FILES:
                logs[fname] = append_log(tmp / fname, logs[fname], payloads[fname])
                crcs[fname] = zlib.crc32(payloads[fname], crcs[fname])
            _test_pause()
            rows = w.n_rows
            if wants_hnsw(rows) and rows - ann_rows > TAIL_MAX_ROWS:
                self._extend_ann(tmp, w, ann_rows, rows)
                ann_rows = rows
            elif ann_rows:
                os.link(self.root / str(w.base) / ANN_FILE, tmp / ANN_FILE)
            table = {d.doc_id: [d.content_hash, d.source, d.first_row, d.n_rows] for d in w.table.values()}
            manifest = self._manifest(w.settings, generation, logs, crcs, table, rows, w.n_live, len(terms) if w.pending_terms or w.base is None else n_terms, ann_rows)
            self._publish(name, tmp, manifest, np.asarray(sorted(w.dead), dtype="<i4"))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        w.base, w.opened_on, w.manifest, w.rows = name, name, manifest, rows
        w.pending_docs, w.pending_chunks, w.pending_vectors, w.pending_terms = [], [], [], []
        self._collect_garbage(keep=name)
        if rows and len(w.dead) > COMPACT_DEAD_SHARE * rows:
            data = self._load_snapshot(name, w.settings)
            self._save_full(data)  # compacts
            fresh = self.writer(w.settings)
            w.base, w.opened_on, w.manifest, w.rows, w.table, w.dead = fresh.base, fresh.base, fresh.manifest, fresh.rows, fresh.table, fresh.dead
            name = str(fresh.base)
        return name

    def _extend_ann(self, tmp: Path, w: IndexWriter, ann_rows: int, rows: int) -> None:
        """Write ``ann.faiss`` covering every row: the live graph extended by the rows after it."""
        dim = w.settings.dim
        payload = read_range(tmp / "vectors.f32", ann_rows * dim * 4, rows * dim * 4)
        tail = raw_array(payload, "<f4", "vectors.f32").reshape(-1, dim)
        base = read_ann(self.root / str(w.base) / ANN_FILE, dim) if ann_rows else None  # a private copy
        load_faiss().write_index(build_hnsw(tail, dim, base), str(tmp / ANN_FILE))

    def _manifest(self, settings: IndexSettings, generation: str, logs: dict[str, int], crcs: dict[str, int], table: dict[str, list],
                  rows: int, live: int, n_terms: int, ann_rows: int) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": settings.to_dict(),
            "generation": generation,
            "counts": {"documents": len(table), "rows": rows, "live_chunks": live},
            "n_terms": n_terms,
            "ann_rows": ann_rows,
            "faiss": "IndexHNSWSQ" if ann_rows else "IndexFlatIP",
            "logs": logs,
            "crc32": crcs,
            "files": {},
            "documents": table,
        }

    def _publish(self, name: str, tmp: Path, manifest: dict[str, Any], dead: np.ndarray) -> None:
        """Write the removed-row list and the manifest, then make the snapshot live."""
        write_file(tmp / DEAD_FILE, dead.astype("<i4").tobytes())
        for fname in (DEAD_FILE, ANN_FILE):
            if (tmp / fname).exists():
                if fname == ANN_FILE:
                    fsync(tmp / fname)
                manifest["files"][fname] = (tmp / fname).stat().st_size
        # Compact: the document table has a line per document otherwise (460k documents at 1M passages).
        write_file(tmp / "manifest.json", json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        fsync(tmp)
        os.replace(tmp, self.root / name)
        _test_pause()
        pointer = self.root / f".CURRENT-{name}"
        write_file(pointer, name.encode("utf-8"))
        _test_pause()
        os.replace(pointer, self.root / "CURRENT")
        fsync(self.root)

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


def _test_pause() -> None:
    """Test hook: sleep ``$ASSISTANT_TEST_SLOW_SAVE`` seconds between the steps of ``save``."""
    delay = os.environ.get("ASSISTANT_TEST_SLOW_SAVE")
    if delay:
        time.sleep(float(delay))
