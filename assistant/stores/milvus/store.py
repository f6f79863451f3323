"""The Milvus store: opens, locks and saves one index held by Milvus (the ``IndexStoreLike`` protocol).
The manifest row records what the index was built with; a file lock (Milvus Lite) or a lease row (a
server) lets one writer in at a time."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from typing import Any, Iterator

from assistant.errors import IndexCorruptError, IndexLockedError, IndexMismatchError
from assistant.stores.base import IndexSettings, check_settings
from assistant.stores.lexical import B as BM25_B
from assistant.stores.lexical import K1 as BM25_K1
from assistant.stores.locking import writer_lock
from assistant.stores.milvus.backend import MilvusBackend
from assistant.stores.milvus.schema import MilvusCollections
from assistant.stores.milvus.terms import WEIGHT_SCALE

MILVUS_FORMAT_VERSION = 1
LEASE_SECONDS = 60.0
LEASE_SETTLE_SECONDS = 0.3


class MilvusStore(MilvusCollections):
    """Opens, locks and saves one index held by Milvus (the ``IndexStoreLike`` protocol)."""

    # -- the manifest ------------------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any] | None:
        if not self.has(self.names.meta):
            return None
        self.ensure_loaded(self.names.meta)
        rows = self.client.query(self.names.meta, ids=["manifest"], output_fields=["value"])
        if not rows:
            return None
        try:
            return json.loads(rows[0]["value"])
        except ValueError as exc:
            raise IndexCorruptError(f"The manifest of the Milvus index {self.uri} cannot be read: {exc}") from exc

    def stored_settings(self) -> dict[str, Any] | None:
        manifest = self.read_manifest()
        return manifest.get("settings") if manifest else None

    def version(self) -> str | None:
        manifest = self.read_manifest()
        return manifest.get("version_token") if manifest else None

    def check_settings(self, manifest: dict[str, Any], wanted: IndexSettings) -> None:
        """The FAISS store's checks and messages, for this location."""
        if manifest.get("format_version") != MILVUS_FORMAT_VERSION:
            raise IndexMismatchError(
                f"The index in {self.uri} has format version {manifest.get('format_version')!r}; this version of the "
                f"assistant reads format {MILVUS_FORMAT_VERSION}. Rebuild it: assistant ingest --index {self.uri} --rebuild PATH..."
            )
        check_settings(self.uri, manifest.get("settings", {}), wanted)

    # -- the IndexStoreLike protocol -----------------------------------------------------------------
    def open(self, settings: IndexSettings) -> MilvusBackend:
        manifest = self.read_manifest()
        if manifest is None:
            return MilvusBackend(self, settings, manifest=None)
        self.check_settings(manifest, settings)
        return MilvusBackend(self, IndexSettings(**manifest["settings"]), manifest=manifest)

    def writer(self, settings: IndexSettings, rebuild: bool = False) -> MilvusBackend:
        """Writes go to the collections directly: the open backend (emptied first with ``rebuild``)."""
        return self.empty(settings) if rebuild else self.open(settings)

    def empty(self, settings: IndexSettings) -> MilvusBackend:
        """Drop the index (all collections of this prefix) and start over; live when saved."""
        # The meta collection stays: it may hold this writer's lease; the manifest row goes.
        for name in (self.names.chunks, self.names.documents, self.names.doctext, self.names.vocab):
            if self.has(name):
                self.client.drop_collection(name)
                self._loaded.discard(name)
        if self.has(self.names.meta):
            self.ensure_loaded(self.names.meta)
            self.client.delete(self.names.meta, ids=["manifest"])
        backend = MilvusBackend(self, settings, manifest=None)
        backend.ensure_collections()
        backend._stats = [0, 0]
        return backend

    @contextlib.contextmanager
    def lock(self, wait_seconds: float = 30.0) -> Iterator[None]:
        """The writer lock: a file lock for Milvus Lite, a lease row in ``P_meta`` for a server.

        Milvus has no locks or transactions. The lease is written, read back after a short pause and
        renewed every ``LEASE_SECONDS / 3`` while held; an abandoned lease expires after
        ``LEASE_SECONDS``. Two writers that start within the pause of each other could both win
        (there is no compare-and-set), so run one ingest job at a time; readers never lock.
        """
        mode = self.location.lock
        if mode == "auto":
            mode = "file" if self.location.is_lite else "lease"
        if mode == "none":
            yield
        elif mode == "file":
            with self._file_lock(wait_seconds):
                yield
        else:
            with self._lease(wait_seconds):
                yield

    def save(self, data: MilvusBackend) -> str:
        """Make the writes of ``data`` visible: flush (Lite) and bump the manifest's version."""
        data.ensure_collections()
        if self.location.is_lite:
            # Seals the rows into a segment with cached indexes (rows in the write buffer are
            # re-indexed on every search). A server has the rows durably once the insert returned.
            for name in (self.names.chunks, self.names.documents, self.names.doctext, self.names.vocab):
                self.client.flush(name)
        previous = self.read_manifest() or {}
        token = f"{int(previous.get('version', 0)) + 1}-{uuid.uuid4().hex[:12]}"
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest = {
            "format_version": MILVUS_FORMAT_VERSION,
            "created_at": previous.get("created_at", now),
            "updated_at": now,
            "version": int(previous.get("version", 0)) + 1,
            "version_token": token,
            "settings": data.settings.to_dict(),
            "counts": {"documents": data.n_documents(), "live_chunks": data.n_live, "terms": len(data.vocabulary.df),
                       "bm25_rows": data.bm25_stats()[0], "bm25_length": data.bm25_stats()[1]},
            "layout": {
                "collections": vars(self.names),
                "analyzer": self.analyzer_params(),
                "bm25": {"k1": BM25_K1, "b": BM25_B, "weight_scale": WEIGHT_SCALE},
                "vector_index": {"type": self._vector_index_type(), "metric": "IP"},
            },
        }
        self._put_meta("manifest", manifest)
        data.manifest = manifest
        return token

    def _vector_index_type(self) -> str:
        try:
            return str(self.client.describe_index(self.names.chunks, "vector").get("index_type", self.location.vector_index))
        except Exception:
            return self.location.vector_index

    # -- locks -------------------------------------------------------------------------------------------
    def _file_lock(self, wait_seconds: float):
        path = self.location.lite_path
        assert path is not None
        return writer_lock(path / "assistant-writer.lock", self.uri, wait_seconds)

    @contextlib.contextmanager
    def _lease(self, wait_seconds: float) -> Iterator[None]:
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        deadline = time.monotonic() + wait_seconds
        while True:
            lease = self._get_meta("lease")
            if lease is None or lease.get("expires_at", 0) < time.time():
                self._put_meta("lease", {"owner": owner, "expires_at": time.time() + LEASE_SECONDS})
                time.sleep(LEASE_SETTLE_SECONDS)  # a writer that raced us has written by now
                lease = self._get_meta("lease")
                if lease is not None and lease.get("owner") == owner:
                    break
            if time.monotonic() >= deadline:
                holder = lease.get("owner") if lease else "?"
                raise IndexLockedError(
                    f"Another process is writing to the index {self.uri} (lease held by {holder}); try again when it "
                    f"has finished, or in {LEASE_SECONDS:.0f} s if that process died."
                )
            time.sleep(0.2)
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(LEASE_SECONDS / 3):
                with contextlib.suppress(Exception):
                    self._put_meta("lease", {"owner": owner, "expires_at": time.time() + LEASE_SECONDS})

        renewer = threading.Thread(target=renew, name="milvus-lease", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join(timeout=5)
            with contextlib.suppress(Exception):
                lease = self._get_meta("lease")
                if lease is not None and lease.get("owner") == owner:
                    self.client.delete(self.names.meta, ids=["lease"])

