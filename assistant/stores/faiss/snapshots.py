"""``IndexStore``: the FAISS store's index folder of snapshots: finding, loading and following the
live snapshot, committing changes as a new one, and removing old ones (the layout: see the package)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from assistant.errors import IndexCorruptError, IndexMismatchError
from assistant.stores.base import IndexSettings, check_settings
from assistant.stores.faiss.checks import consistency_problems, doc_table, file_problems
from assistant.stores.faiss.committing import FORMAT_VERSION, collect_tables, commit_changes, open_writer, save_generation
from assistant.stores.faiss.legacy import read_v1
from assistant.stores.faiss.logs import ANN_FILE, DEAD_FILE, LOG_FILES, fsync, raw_array, read_range, test_pause, write_file
from assistant.stores.faiss.mapped import read_mapped
from assistant.stores.faiss.memory import IndexData
from assistant.stores.faiss.reading import read_snapshot
from assistant.stores.faiss.vectors import build_hnsw, load_faiss, read_ann
from assistant.stores.faiss.writer import IndexWriter
from assistant.stores.locking import writer_lock

log = logging.getLogger("assistant")

# Formats 1 (one file per part) and 2 (JSON-lines document and chunk logs, the document table in the
# manifest) are still read; the first commit rewrites them in format 3.
READABLE_FORMATS = (1, 2, 3)
# Rows appended after the HNSW graph are searched exactly; past this many the commit extends the graph.
TAIL_MAX_ROWS = int(os.environ.get("ASSISTANT_TAIL_MAX_ROWS", "20000"))
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
        if manifest.get("format_version") in (1, 2):
            # Upgrade once: everything rewritten in this format, then appended to like any other index.
            log.info("upgrading the index in %s from format %s to %s", self.root, manifest.get("format_version"), FORMAT_VERSION)
            name = save_generation(self, self._load_snapshot(name, settings))
            manifest = self.read_manifest(name)
        try:
            return open_writer(self, name, manifest)
        except (OSError, ValueError, KeyError, TypeError, sqlite3.Error) as exc:
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
        if manifest.get("format_version") == FORMAT_VERSION:
            return self._load_mapped(snap, manifest, base)
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

    def _load_mapped(self, snap: Path, manifest: dict[str, Any], base: IndexData | None) -> IndexData:
        """A format-3 snapshot: its files' sizes checked, then mapped (``mapped.read_mapped``)."""
        problems = file_problems(snap, manifest, LOG_FILES)
        if problems:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged: {'; '.join(problems)}. "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            )
        try:
            return read_mapped(self.root, snap, manifest, base)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, UnicodeDecodeError, sqlite3.Error) as exc:
            raise IndexCorruptError(
                f"The index snapshot {snap} is damaged ({exc.__class__.__name__}: {exc}). "
                f"Rebuild it: assistant ingest --index {self.root} --rebuild PATH..."
            ) from exc


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
            return commit_changes(self, data, TAIL_MAX_ROWS)
        return save_generation(self, data)

    def _new_snapshot(self) -> tuple[str, Path]:
        name = f"snap-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        tmp = self.root / f".tmp-{name}"
        tmp.mkdir(parents=True)
        return name, tmp

    def _extend_ann(self, tmp: Path, w: IndexWriter, ann_rows: int, rows: int) -> None:
        """Write ``ann.faiss`` covering every row: the live graph extended by the rows after it."""
        dim = w.settings.dim
        payload = read_range(tmp / "vectors.f32", ann_rows * dim * 4, rows * dim * 4)
        tail = raw_array(payload, "<f4", "vectors.f32").reshape(-1, dim)
        base = read_ann(self.root / str(w.base) / ANN_FILE, dim) if ann_rows else None  # a private copy
        load_faiss().write_index(build_hnsw(tail, dim, base), str(tmp / ANN_FILE))

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
        test_pause()
        pointer = self.root / f".CURRENT-{name}"
        write_file(pointer, name.encode("utf-8"))
        test_pause()
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
        collect_tables(self.root)

