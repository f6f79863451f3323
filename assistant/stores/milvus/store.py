"""The Milvus store: the same index as the FAISS directory, held by Milvus (server or Milvus Lite).

Locations (see ``backend.open_store``)::

    demo.db                                   Milvus Lite, embedded: a local folder named *.db
    milvus://host:19530                       a Milvus server, database "default"
    milvus://host:19530/newsroom?token=user:password&prefix=ar_news
    https://host:443/newsroom?token=KEY       the same over TLS (Zilliz Cloud, a TLS proxy)

Query parameters: ``token`` (else ``user:password@`` in the URI, else ``$MILVUS_TOKEN``),
``prefix`` (collection-name prefix, default ``assistant``; several indexes can share one database),
``lock`` (``auto``: a file lock for Milvus Lite, a lease row for a server; ``lease``; ``none``),
``bm25`` (``global``, the default, or ``milvus``: see below), ``vector_index`` (``FLAT``: exact, the
default, like the FAISS folder below 50k chunks; ``AUTOINDEX`` or ``HNSW`` for large collections;
applies when the collections are created).

Collections (``P`` is the prefix)::

    P_chunks     chunk_id (pk), doc_id, seq, start_offset, end_offset, page (-1 = none), text,
                 sentences (JSON), terms (our folded/stemmed BM25 terms joined by spaces, analyzer
                 on), sparse (SPARSE_FLOAT_VECTOR made from ``terms`` by a BM25 Function; index
                 SPARSE_INVERTED_INDEX, metric BM25, k1=1.2 b=0.75 like bm25.py), vector
                 (FLOAT_VECTOR dim, L2-normalized; index FLAT by default, metric IP: cosine)
    P_documents  doc_id (pk), title, source, kind, added_at, content_hash, pages (JSON),
                 text_chars, text_parts, _v (FLOAT_VECTOR dim 2: Milvus needs a vector field)
    P_doctext    part_id (pk, ``{doc_id}~{n}``), doc_id, part, text (the stored text in parts of
                 16,000 characters, since a VARCHAR holds at most 65,535 bytes; citations slice the
                 joined text)

``doc_id`` has an INVERTED scalar index in P_chunks and P_doctext (removing a document filters on it);
everything else is read by primary key.
    P_vocab      term (pk), df, _v: the live vocabulary with document frequencies, for query
                 planning (name variants, known words, idf of the evidence sentence). It is a term
                 list, not a second BM25 index: all BM25 scoring happens in Milvus.
    P_meta       key (pk), value (JSON text), _v: the "manifest" row (format version, settings,
                 counts, a version token changed by every save so other app instances reload) and,
                 while a writer holds it, the "lease" row.

BM25 in Milvus and our query weights: Milvus' BM25 search takes query *text*; a term that occurs
``c`` times in it counts ``c`` times. Our planner weights terms (1 for the question's own words,
0.8 spelling variants, 0.7 translations, 0.5 / 0.05 follow-up context; all multiples of 0.05), so
each term is repeated ``round(weight * 20)`` times and the scores divided by 20: the same weighted
BM25 as ``bm25.py`` (k1=1.2, b=0.75, the same idf).

What still differs is the corpus statistics. Milvus Lite computes idf and the mean chunk length per
segment (one segment per save, merged four at a time); a Milvus server per shard. After a small
update (one changed article in a segment of its own) Lite's idf for that segment is computed over one
chunk and its words score almost nothing. So by default (``bm25=global``) the candidates Milvus' BM25
returns are rescored with corpus-wide statistics: document frequencies from ``P_vocab``, the chunk
count and total length from the manifest, the candidate's own ``terms``. That is the same formula
over the same numbers as the FAISS store, for at most a hundred candidates per query; retrieval stays
Milvus' full-text search. ``?bm25=milvus`` keeps Milvus' scores as they come.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from assistant.stores.lexical import K1 as BM25_K1
from assistant.stores.lexical import B as BM25_B
from assistant.stores.lexical import BM25Index
from assistant.errors import (
    ConfigError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    MissingDependencyError,
)
from assistant.records import Chunk, Document
from assistant.stores.base import IndexSettings, check_settings
from assistant.stores.faiss import IndexData
from assistant.stores.locking import writer_lock

log = logging.getLogger("assistant.milvus")

MILVUS_FORMAT_VERSION = 1
DEFAULT_PREFIX = "assistant"
# Query-term weights become repetitions of the term in the BM25 query text (see module docstring).
WEIGHT_SCALE = 20
# A document's text is stored in parts of this many characters: 4 bytes each at most in UTF-8, so a
# part always fits a 65,535-byte VARCHAR.
TEXT_PART_CHARS = 16_000
VARCHAR_MAX = 65_535
ID_MAX = 1_024
TERM_MAX_BYTES = 1_024
# Rows per insert/upsert call: a few MB per gRPC message with 384-dim vectors.
WRITE_BATCH = 500
READ_BATCH = 1_000
# Milvus caps limit (and offset + limit) of one search or query at 16,384.
MAX_LIMIT = 16_384
LEASE_SECONDS = 60.0
LEASE_SETTLE_SECONDS = 0.3
DOC_CACHE = 256
_WORD = re.compile(r"\w+")
_DUMMY = [0.0, 0.0]


# -- locations ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MilvusLocation:
    """A parsed store location."""

    display: str  # what the user wrote (shown in messages)
    lite_path: Path | None  # Milvus Lite: the local *.db folder
    uri: str  # what MilvusClient connects to (the *.db path for Lite)
    token: str = ""
    db_name: str = ""
    prefix: str = DEFAULT_PREFIX
    lock: str = "auto"
    bm25: str = "global"
    vector_index: str = "FLAT"

    @property
    def is_lite(self) -> bool:
        return self.lite_path is not None


_PREFIX_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")


def parse_location(location: str | os.PathLike[str]) -> MilvusLocation:
    """Parse ``*.db``, ``milvus://[user:pw@]host[:port][/db][?token=&prefix=&lock=]`` or ``http(s)://...``."""
    text = str(location)
    # A URI that went through pathlib.Path lost one slash of "://".
    text = re.sub(r"^(milvus|milvuss|https?|tcp):/(?!/)", r"\1://", text)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("milvus", "milvuss", "http", "https", "tcp"):
        path_text, _, query = text.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        if not path_text.endswith(".db"):
            raise ConfigError(f"{text!r} is not a Milvus location: use a path ending in .db or milvus://host:19530")
        path = Path(path_text).expanduser().resolve()
        return MilvusLocation(text, path, str(path), prefix=_prefix(params, text), lock=_lock_mode(params, text),
                              bm25=_bm25_mode(params, text), vector_index=_vector_index(params, text))
    parts = urlsplit(text)
    params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    token = params.get("token", "")
    if not token and parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    token = token or os.environ.get("MILVUS_TOKEN", "")
    host = parts.hostname or "localhost"
    port = parts.port or (443 if scheme in ("https", "milvuss") else 19530)
    http = "https" if scheme in ("https", "milvuss") else "http"
    db_name = parts.path.strip("/") or params.get("db", "")
    shown = re.sub(r"token=[^&]*", "token=***", re.sub(r"//[^/@]*@", "//***@", text))
    return MilvusLocation(shown, None, f"{http}://{host}:{port}", token, db_name, _prefix(params, text), _lock_mode(params, text),
                          _bm25_mode(params, text), _vector_index(params, text))


def _prefix(params: dict[str, str], text: str) -> str:
    prefix = params.get("prefix", DEFAULT_PREFIX)
    if not _PREFIX_OK.match(prefix):
        raise ConfigError(f"prefix={prefix!r} in {text!r}: a collection prefix is letters, digits and _ (not first a digit)")
    return prefix


def _lock_mode(params: dict[str, str], text: str) -> str:
    mode = params.get("lock", "auto")
    if mode not in ("auto", "file", "lease", "none"):
        raise ConfigError(f"lock={mode!r} in {text!r}: use auto, file, lease or none")
    return mode


def _bm25_mode(params: dict[str, str], text: str) -> str:
    mode = params.get("bm25", "global")
    if mode not in ("global", "milvus"):
        raise ConfigError(f"bm25={mode!r} in {text!r}: use global (rescore with corpus-wide statistics) or milvus")
    return mode


def _vector_index(params: dict[str, str], text: str) -> str:
    kind = params.get("vector_index", "FLAT").upper()
    if kind not in ("FLAT", "AUTOINDEX", "HNSW"):
        raise ConfigError(f"vector_index={kind!r} in {text!r}: use FLAT (exact, the default), AUTOINDEX or HNSW")
    return kind


def _literal(value: str) -> str:
    """A Milvus filter-expression string literal (Milvus Lite has no filter templates)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _in_list(field: str, values: Iterable[str]) -> str:
    return f"{field} in [{', '.join(_literal(v) for v in values)}]"


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# -- shared clients -------------------------------------------------------------------------------------
class _IteratorNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # Milvus Lite has no mvcc timestamps: harmless
        return "mvccTs" not in record.getMessage()


logging.getLogger("pymilvus.client.iterator.query_iterator").addFilter(_IteratorNoise())

_CLIENTS: dict[tuple[str, str, str], list[Any]] = {}  # key -> [client, users]
_CLIENTS_LOCK = threading.Lock()


def _pymilvus():
    try:
        import pymilvus
    except ImportError as exc:
        raise MissingDependencyError("pymilvus", extra="milvus", purpose="the Milvus store") from exc
    return pymilvus


def _connect(loc: MilvusLocation):
    """One MilvusClient per location and process, shared by every store that opens it."""
    key = (loc.uri, loc.token, loc.db_name)
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(key)
        if entry is not None:
            entry[1] += 1
            return entry[0]
        pymilvus = _pymilvus()
        kwargs: dict[str, Any] = {"uri": loc.uri}
        if loc.token:
            kwargs["token"] = loc.token
        if loc.db_name:
            kwargs["db_name"] = loc.db_name
        if loc.is_lite:
            try:
                import milvus_lite  # noqa: F401  (only: is it installed?)
            except ImportError as exc:
                raise MissingDependencyError("milvus-lite", extra="milvus", purpose=f"the embedded Milvus Lite file {loc.display}") from exc
            assert loc.lite_path is not None
            loc.lite_path.parent.mkdir(parents=True, exist_ok=True)
            # pymilvus pings every 10 s; the embedded server answers an idle client's pings with
            # GOAWAY "too_many_pings" (logged as an error). In-process, keepalive is pointless.
            kwargs["grpc_options"] = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": False}
        try:
            client = pymilvus.MilvusClient(**kwargs)
        except Exception as exc:
            if loc.is_lite and _lite_locked_elsewhere(loc.lite_path):
                raise IndexLockedError(
                    f"The Milvus Lite index {loc.display} is open in another process; Milvus Lite lets one process "
                    f"open a .db at a time. Stop that process (the app or another command), or share the index "
                    f"through a Milvus server (--store milvus://host:19530)."
                ) from exc
            where = f"the Milvus Lite file {loc.display}" if loc.is_lite else f"the Milvus server at {loc.display}"
            raise ConfigError(f"Cannot open {where} ({exc.__class__.__name__}: {exc})") from exc
        if not loc.is_lite:
            try:
                check_server_version(str(client.get_server_version()), loc.display)
            except Exception:
                with contextlib.suppress(Exception):
                    client.close()
                raise
        _CLIENTS[key] = [client, 1]
        return client


# BM25 full-text search (a Function turning text into a sparse vector, and the BM25 metric) came in 2.5.
MIN_SERVER_VERSION = (2, 5)


def check_server_version(version: str, where: str) -> None:
    """Refuse a Milvus server older than ``MIN_SERVER_VERSION``, naming the version found and the one
    needed. A version string that cannot be read is let through: the collection calls then fail
    with Milvus' own message."""
    match = re.match(r"^\s*v?(\d+)\.(\d+)", version)
    if match is None:
        log.warning("the Milvus server at %s reports an unreadable version %r; assuming it is recent", where, version)
        return
    found = (int(match[1]), int(match[2]))
    if found < MIN_SERVER_VERSION:
        raise ConfigError(
            f"The Milvus server at {where} runs Milvus {version.strip()}; the assistant needs Milvus "
            f"{'.'.join(map(str, MIN_SERVER_VERSION))} or later (BM25 full-text search functions). Upgrade the server, "
            "or keep the index in a Milvus Lite file (--store index.db) or a folder (--store ./index)."
        )


def _release(loc: MilvusLocation) -> None:
    key = (loc.uri, loc.token, loc.db_name)
    with _CLIENTS_LOCK:
        entry = _CLIENTS.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _CLIENTS[key]
    with contextlib.suppress(Exception):
        entry[0].close()
    if loc.is_lite:
        with contextlib.suppress(Exception):
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(loc.uri)  # frees the .db for other processes


def _lite_locked_elsewhere(path: Path | None) -> bool:
    lock = path / "LOCK" if path else None
    if lock is None or not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return False


@atexit.register
def _close_all() -> None:
    with _CLIENTS_LOCK:
        entries = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client, _ in entries:
        with contextlib.suppress(Exception):
            client.close()


# -- the vocabulary --------------------------------------------------------------------------------------
class MilvusVocabulary(BM25Index):
    """The live terms with their document frequencies (the ``Vocabulary`` protocol).

    A ``BM25Index`` without a matrix: ``variants`` is BM25Index's own consonant-skeleton lookup over
    ``terms``, so name variants are found exactly as on the FAISS store.
    """

    def __init__(self, df: dict[str, int] | None = None) -> None:
        super().__init__()
        self.df: dict[str, int] = {}
        self.apply(df or {})

    def apply(self, delta: dict[str, int]) -> dict[str, int]:
        """Add ``delta`` to the frequencies; returns the new value of each changed term (0 = gone)."""
        changed = {}
        for term, d in delta.items():
            value = self.df.get(term, 0) + d
            if value > 0:
                self.df[term] = value
            else:
                self.df.pop(term, None)
                value = 0
            changed[term] = value
        if changed:
            self.terms = list(self.df)
            self.vocab = {t: i for i, t in enumerate(self.terms)}
            self._skeletons = None
        return changed

    def document_frequency(self, term: str) -> int:
        return self.df.get(term, 0)


def query_text(terms: dict[str, float], known: Any = None) -> str:
    """The BM25 query text for weighted terms: each term repeated ``round(weight * 20)`` times."""
    words = []
    for term, weight in terms.items():
        if known is not None and term not in known:
            continue  # in no chunk: adds nothing to any score
        if not _WORD.fullmatch(term):
            continue
        words.extend([term] * int(round(weight * WEIGHT_SCALE)))
    return " ".join(words)


# -- the store -----------------------------------------------------------------------------------------
class MilvusStore:
    """Opens, locks and saves one index held by Milvus (the ``IndexStoreLike`` protocol)."""

    def __init__(self, location: str | os.PathLike[str], prefix: str | None = None, bm25: str | None = None,
                 vector_index: str | None = None) -> None:
        loc = parse_location(location)
        if prefix is not None:
            loc = replace(loc, prefix=_prefix({"prefix": prefix}, loc.display))
        if bm25 is not None:
            loc = replace(loc, bm25=_bm25_mode({"bm25": bm25}, loc.display))
        if vector_index is not None:
            loc = replace(loc, vector_index=_vector_index({"vector_index": vector_index}, loc.display))
        self.location = loc
        self.names = SimpleNamespace(**{k: f"{loc.prefix}_{k}" for k in ("chunks", "documents", "doctext", "vocab", "meta")})
        self._client = None
        self._loaded: set[str] = set()
        self._analyzer: dict[str, Any] | None = None
        self._guard = threading.RLock()

    # -- connection --------------------------------------------------------------------------------------
    @property
    def uri(self) -> str:
        return self.location.display

    @property
    def client(self):
        with self._guard:
            if self._client is None:
                self._client = _connect(self.location)
            return self._client

    def close(self) -> None:
        """Let go of the connection (the last store of a Milvus Lite file also stops its server)."""
        with self._guard:
            if self._client is not None:
                self._client = None
                self._loaded.clear()
                _release(self.location)

    def __repr__(self) -> str:
        return f"MilvusStore({self.uri!r})"

    def has(self, name: str) -> bool:
        return bool(self.client.has_collection(name))

    def ensure_loaded(self, name: str) -> None:
        """Milvus searches only loaded collections (Milvus Lite reopens them released)."""
        if name in self._loaded:
            return
        state = self.client.get_load_state(name).get("state")
        if "Loaded" not in str(state):
            self.client.load_collection(name)
        self._loaded.add(name)

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

    # -- meta rows --------------------------------------------------------------------------------------
    def _put_meta(self, key: str, value: dict[str, Any]) -> None:
        self._ensure_meta()
        self.client.upsert(self.names.meta, [{"key": key, "value": json.dumps(value, ensure_ascii=False), "_v": _DUMMY}])

    def _get_meta(self, key: str) -> dict[str, Any] | None:
        self._ensure_meta()
        rows = self.client.query(self.names.meta, ids=[key], output_fields=["value"])
        return json.loads(rows[0]["value"]) if rows else None

    def _ensure_meta(self) -> None:
        if not self.has(self.names.meta):
            pymilvus = _pymilvus()
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("key", pymilvus.DataType.VARCHAR, is_primary=True, max_length=64)
            schema.add_field("value", pymilvus.DataType.VARCHAR, max_length=VARCHAR_MAX)
            schema.add_field("_v", pymilvus.DataType.FLOAT_VECTOR, dim=2)
            self._create(self.names.meta, schema, [("_v", "FLAT", "L2", {})])
        self.ensure_loaded(self.names.meta)

    def _create(self, name: str, schema, indexes: list[tuple[str, str, str, dict]]) -> None:
        index_params = self.client.prepare_index_params()
        for field, kind, metric, params in indexes:
            if metric:
                index_params.add_index(field_name=field, index_type=kind, metric_type=metric, params=params)
            else:  # a scalar index
                index_params.add_index(field_name=field, index_type=kind)
        self.client.create_collection(name, schema=schema, consistency_level="Strong")
        # sync=False: pymilvus otherwise polls every index build with a 0.5 s sleep; loading the
        # collection waits for the indexes anyway.
        self.client.create_index(name, index_params, sync=False)
        self.client.load_collection(name)
        self._loaded.add(name)

    # -- schema ------------------------------------------------------------------------------------------
    def analyzer_params(self) -> dict[str, Any]:
        """The analyzer of the ``terms`` field: whitespace on a server, Lite's ``standard`` (``\\w+``).

        Our terms are ``\\w+`` tokens already folded and lower-cased, so both analyzers give back
        exactly the terms we wrote.
        """
        if self._analyzer is None:
            self._analyzer = {"tokenizer": "standard"} if self.location.is_lite else {"tokenizer": "whitespace"}
        return self._analyzer

    def create_chunk_collection(self, dim: int) -> None:
        pymilvus = _pymilvus()
        DataType = pymilvus.DataType

        def schema_with(analyzer: dict[str, Any]):
            schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("chunk_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX + 32)
            schema.add_field("doc_id", DataType.VARCHAR, max_length=ID_MAX)
            schema.add_field("seq", DataType.INT64)
            schema.add_field("start_offset", DataType.INT64)
            schema.add_field("end_offset", DataType.INT64)
            schema.add_field("page", DataType.INT64)
            schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
            schema.add_field("sentences", DataType.JSON)
            schema.add_field("terms", DataType.VARCHAR, max_length=VARCHAR_MAX, enable_analyzer=True, analyzer_params=analyzer)
            schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
            schema.add_function(pymilvus.Function(name="bm25", function_type=pymilvus.FunctionType.BM25,
                                                  input_field_names=["terms"], output_field_names=["sparse"]))
            return schema

        bm25 = {"bm25_k1": BM25_K1, "bm25_b": BM25_B}
        # pymilvus sends index params as flat key-value pairs, which a server reads; Milvus Lite reads
        # only a JSON "params" entry and would silently keep its default k1=1.5.
        indexes = [("sparse", "SPARSE_INVERTED_INDEX", "BM25", {"params": bm25} if self.location.is_lite else bm25),
                   ("vector", self.location.vector_index, "IP", {}), ("doc_id", "INVERTED", "", {})]
        try:
            self._create(self.names.chunks, schema_with(self.analyzer_params()), indexes)
        except Exception as exc:  # an older server without the whitespace tokenizer
            if "tokenizer" not in str(exc).lower() or self._analyzer == {"tokenizer": "standard"}:
                raise
            log.info("whitespace tokenizer refused (%s); using standard", exc)
            self._analyzer = {"tokenizer": "standard"}
            self._create(self.names.chunks, schema_with(self._analyzer), indexes)

    def create_side_collections(self) -> None:
        DataType = _pymilvus().DataType
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("doc_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX)
        for name in ("title", "source"):
            schema.add_field(name, DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("kind", DataType.VARCHAR, max_length=64)
        schema.add_field("added_at", DataType.VARCHAR, max_length=64)
        schema.add_field("content_hash", DataType.VARCHAR, max_length=256)
        schema.add_field("pages", DataType.JSON)
        schema.add_field("text_chars", DataType.INT64)
        schema.add_field("text_parts", DataType.INT64)
        schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        if not self.has(self.names.documents):
            self._create(self.names.documents, schema, [("_v", "FLAT", "L2", {})])
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("part_id", DataType.VARCHAR, is_primary=True, max_length=ID_MAX + 32)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=ID_MAX)
        schema.add_field("part", DataType.INT64)
        schema.add_field("text", DataType.VARCHAR, max_length=VARCHAR_MAX)
        schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        if not self.has(self.names.doctext):
            self._create(self.names.doctext, schema, [("_v", "FLAT", "L2", {}), ("doc_id", "INVERTED", "", {})])
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("term", DataType.VARCHAR, is_primary=True, max_length=TERM_MAX_BYTES)
        schema.add_field("df", DataType.INT64)
        schema.add_field("_v", DataType.FLOAT_VECTOR, dim=2)
        if not self.has(self.names.vocab):
            self._create(self.names.vocab, schema, [("_v", "FLAT", "L2", {})])

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


# -- the backend ---------------------------------------------------------------------------------------
_CHUNK_FIELDS = ["chunk_id", "doc_id", "seq", "start_offset", "end_offset", "page", "text", "sentences"]
def _doc_meta(doc: Document) -> dict[str, Any]:
    """``{"meta": {...}}`` with the document's publication date, author, site and OCR pages that are set."""
    meta: dict[str, Any] = {name: getattr(doc, name) for name in ("published", "author", "site") if getattr(doc, name)}
    if doc.ocr_pages:
        meta["ocr_pages"] = list(doc.ocr_pages)
    return {"meta": meta} if meta else {}


_DOC_FIELDS = ["doc_id", "title", "source", "kind", "added_at", "content_hash", "pages", "text_chars", "text_parts"]


def _hit_id(hit: Any) -> str:
    entity = hit.get("entity") or {}
    return entity.get("chunk_id") or hit.get("chunk_id") or hit.get("id")


class MilvusBackend:
    """An open Milvus index: the ``ChunkBackend`` protocol. Writes go to Milvus at once;
    ``MilvusStore.save`` makes them visible to other app instances (version bump)."""

    def __init__(self, store: MilvusStore, settings: IndexSettings, manifest: dict[str, Any] | None) -> None:
        self.store = store
        self.settings = settings
        self.manifest = manifest
        self.names = store.names
        self._vocab: MilvusVocabulary | None = None
        self._n_live: int | None = None
        self._n_docs: int | None = None
        self._ready: bool | None = None
        self._docs: OrderedDict[str, Document] = OrderedDict()
        self._guard = threading.RLock()
        counts = (manifest or {}).get("counts", {})
        # Chunks with at least one term, and their total number of terms: BM25's N and mean length.
        self._stats: list[int] | None = [int(counts["bm25_rows"]), int(counts["bm25_length"])] if "bm25_rows" in counts else None

    @property
    def client(self):
        return self.store.client

    def bm25_stats(self) -> tuple[int, int]:
        """``(chunks with a term, total terms)`` over the live chunks."""
        with self._guard:
            if self._stats is None:
                rows = length = 0
                if self.ready():
                    for row in self._scan(self.names.chunks, ["terms"], batch=5000):
                        n = len(row["terms"].split())
                        rows += n > 0
                        length += n
                self._stats = [rows, length]
            return self._stats[0], self._stats[1]

    def _count_stats(self, term_lists: Iterable[list[str]], sign: int) -> None:
        rows, length = self.bm25_stats()
        for terms in term_lists:
            rows += sign * (len(terms) > 0)
            length += sign * len(terms)
        with self._guard:
            self._stats = [rows, length]

    # -- state -----------------------------------------------------------------------------------------
    def ready(self) -> bool:
        """Whether the chunk collections exist (a new index has none until its first write)."""
        if not self._ready:
            self._ready = all(self.store.has(n) for n in (self.names.chunks, self.names.documents, self.names.doctext, self.names.vocab))
            if self._ready:
                for name in (self.names.chunks, self.names.documents, self.names.doctext, self.names.vocab):
                    self.store.ensure_loaded(name)
        return bool(self._ready)

    def ensure_collections(self) -> None:
        with self._guard:
            if self.ready():
                return
            if self.store.has(self.names.chunks):
                dim = self._vector_dim()
                if dim != self.settings.dim:  # left by an interrupted rebuild with another model
                    self.client.drop_collection(self.names.chunks)
            if not self.store.has(self.names.chunks):
                self.store.create_chunk_collection(self.settings.dim)
            self.store.create_side_collections()
            self._ready = None
            assert self.ready()

    def _vector_dim(self) -> int | None:
        for field in self.client.describe_collection(self.names.chunks).get("fields", []):
            if field.get("name") == "vector":
                return int(field.get("params", {}).get("dim", 0))
        return None

    def _count(self, name: str) -> int:
        rows = self.client.query(name, filter="", output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    @property
    def n_live(self) -> int:
        if self._n_live is None:
            self._n_live = self._count(self.names.chunks) if self.ready() else 0
        return self._n_live

    def n_documents(self) -> int:
        if self._n_docs is None:
            self._n_docs = self._count(self.names.documents) if self.ready() else 0
        return self._n_docs

    @property
    def vocabulary(self) -> MilvusVocabulary:
        with self._guard:
            if self._vocab is None:
                df = {}
                if self.ready():
                    for row in self._scan(self.names.vocab, ["term", "df"]):
                        df[row["term"]] = int(row["df"])
                self._vocab = MilvusVocabulary(df)
            return self._vocab

    def _scan(self, name: str, fields: list[str], filter: str = "", batch: int = READ_BATCH) -> Iterator[dict[str, Any]]:
        iterator = self.client.query_iterator(name, batch_size=batch, filter=filter, output_fields=fields)
        try:
            while True:
                rows = iterator.next()
                if not rows:
                    break
                yield from rows
        finally:
            iterator.close()

    # -- search ----------------------------------------------------------------------------------------
    def dense_search(self, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        if n < 1 or not self.ready() or not self.n_live:
            return []
        res = self.client.search(self.names.chunks, data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector",
                                 limit=min(n, MAX_LIMIT), search_params={"metric_type": "IP"}, output_fields=["chunk_id"])
        return [(_hit_id(h), float(h["distance"])) for h in res[0]]

    def _query_text(self, terms: dict[str, float]) -> str:
        return query_text(terms, self.vocabulary.vocab)

    def lexical_search(self, terms: dict[str, float], n: int) -> list[tuple[str, float]]:
        """Milvus BM25 over the weighted terms (weights as repetitions; see the module docstring).

        With ``bm25=global`` Milvus' top ``2n`` are rescored with corpus-wide statistics and the best
        ``n`` kept.
        """
        text = self._query_text(terms) if self.ready() else ""
        if n < 1 or not text:
            return []
        if self.store.location.bm25 == "milvus":
            return self._bm25(text, min(n, MAX_LIMIT))
        found = self._bm25(text, min(max(2 * n, n + 20), MAX_LIMIT))
        scores = self._global_scores([c for c, _ in found], terms)
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:n]

    def _global_scores(self, chunk_ids: list[str], terms: dict[str, float]) -> dict[str, float]:
        """``bm25.py``'s formula over corpus-wide statistics, for the given chunks."""
        rows, length = self.bm25_stats()
        n = max(rows, 1)
        avgdl = length / n if length else 1.0
        vocabulary = self.vocabulary
        idf = {}
        for term, weight in terms.items():
            df = vocabulary.document_frequency(term)
            if df and weight:
                idf[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
        out: dict[str, float] = {}
        if not idf:
            return out
        for batch in _batches(list(dict.fromkeys(chunk_ids)), READ_BATCH):
            for row in self.client.query(self.names.chunks, ids=batch, output_fields=["chunk_id", "terms"]):
                chunk_terms = row["terms"].split()
                counts = Counter(chunk_terms)
                norm = BM25_K1 * (1 - BM25_B + BM25_B * len(chunk_terms) / avgdl)
                score = sum(terms[t] * w * counts[t] * (BM25_K1 + 1) / (counts[t] + norm) for t, w in idf.items() if t in counts)
                if score > 0:
                    out[row["chunk_id"]] = float(score)
        return out

    def _bm25(self, text: str, limit: int, filter: str = "") -> list[tuple[str, float]]:
        res = self.client.search(self.names.chunks, data=[text], anns_field="sparse", limit=limit, filter=filter,
                                 search_params={"metric_type": "BM25"}, output_fields=["chunk_id"])
        # Milvus Lite reports BM25 as a negative distance, a server as a positive score.
        out = [(_hit_id(h), abs(float(h["distance"])) / WEIGHT_SCALE) for h in res[0]]
        return [(c, s) for c, s in out if s > 0]

    def dense_scores(self, chunk_ids: list[str], vector: np.ndarray) -> dict[str, float]:
        if not chunk_ids or not self.ready():
            return {}
        vector = np.asarray(vector, dtype=np.float32)
        out = {}
        for batch in _batches(list(dict.fromkeys(chunk_ids)), READ_BATCH):
            for row in self.client.query(self.names.chunks, ids=batch, output_fields=["chunk_id", "vector"]):
                out[row["chunk_id"]] = float(np.asarray(row["vector"], dtype=np.float32) @ vector)
        return out

    def lexical_scores(self, chunk_ids: list[str], terms: dict[str, float]) -> dict[str, float]:
        text = self._query_text(terms) if self.ready() and chunk_ids else ""
        if not text:
            return {}
        if self.store.location.bm25 == "global":
            return self._global_scores(chunk_ids, terms)
        out: dict[str, float] = {}
        for batch in _batches(list(dict.fromkeys(chunk_ids)), READ_BATCH):
            out.update(self._bm25(text, len(batch), _in_list("chunk_id", batch)))
        return out

    def hybrid_search(self, vector: np.ndarray, terms: dict[str, float], n: int, *, fetch: int | None = None,
                      ranker: str = "rrf", rrf_k: int = 60, dense_weight: float = 0.3) -> list[tuple[str, float]]:
        """Milvus' own hybrid search: dense and BM25 requests fused in Milvus.

        ``ranker="rrf"`` is ``RRFRanker(rrf_k)``, the same sum of ``1 / (k + rank)`` as the
        retriever's ``fusion="rrf"``; ``"weighted"`` is ``WeightedRanker`` (Milvus normalizes each
        score with arctan before weighting, not like our min-max convex fusion).
        """
        if n < 1 or not self.ready() or not self.n_live:
            return []
        pymilvus = _pymilvus()
        fetch = min(fetch or n, MAX_LIMIT)
        requests = [pymilvus.AnnSearchRequest(data=[np.asarray(vector, dtype=np.float32).tolist()], anns_field="vector",
                                              param={"metric_type": "IP"}, limit=fetch)]
        text = self._query_text(terms)
        if text:
            requests.append(pymilvus.AnnSearchRequest(data=[text], anns_field="sparse", param={"metric_type": "BM25"}, limit=fetch))
        if ranker == "rrf":
            rank = pymilvus.RRFRanker(rrf_k)
        elif ranker == "weighted":
            rank = pymilvus.WeightedRanker(*([dense_weight, 1 - dense_weight] if text else [1.0]))
        else:
            raise ConfigError(f"unknown Milvus ranker {ranker!r}; use rrf or weighted")
        res = self.client.hybrid_search(self.names.chunks, requests, rank, limit=min(n, MAX_LIMIT), output_fields=["chunk_id"])
        return [(_hit_id(h), float(h["distance"])) for h in res[0]]

    # -- reading ---------------------------------------------------------------------------------------
    @staticmethod
    def _chunk(row: dict[str, Any]) -> Chunk:
        sentences = row.get("sentences") or {}
        return Chunk(
            chunk_id=row["chunk_id"], doc_id=row["doc_id"], start=int(row["start_offset"]), end=int(row["end_offset"]),
            text=row["text"], sentences=tuple(tuple(s) for s in sentences.get("spans", ())),
            page=None if int(row["page"]) < 0 else int(row["page"]),
        )

    def get_chunks(self, chunk_ids: list[str]) -> dict[str, Chunk]:
        if not chunk_ids or not self.ready():
            return {}
        out = {}
        for batch in _batches(list(dict.fromkeys(chunk_ids)), READ_BATCH):
            for row in self.client.query(self.names.chunks, ids=batch, output_fields=_CHUNK_FIELDS):
                out[row["chunk_id"]] = self._chunk(row)
        return {c: out[c] for c in chunk_ids if c in out}

    def _texts(self, rows: list[dict[str, Any]]) -> dict[str, str]:
        """The stored text of these document rows, read by primary key (``{doc_id}~{part}``)."""
        part_ids = [f"{r['doc_id']}~{n}" for r in rows for n in range(int(r["text_parts"]))]
        parts: dict[str, list[tuple[int, str]]] = {}
        for batch in _batches(part_ids, READ_BATCH):
            for row in self.client.query(self.names.doctext, ids=batch, output_fields=["doc_id", "part", "text"]):
                parts.setdefault(row["doc_id"], []).append((int(row["part"]), row["text"]))
        return {d: "".join(t for _, t in sorted(p)) for d, p in parts.items()}

    @staticmethod
    def _document(row: dict[str, Any], text: str) -> Document:
        pages = row.get("pages") or {}
        meta = pages.get("meta") or {}  # absent in collections written before documents had dates
        return Document(
            doc_id=row["doc_id"], title=row["title"], source=row["source"], text=text, content_hash=row["content_hash"],
            pages=tuple(tuple(p) for p in pages.get("spans", ())), added_at=row["added_at"], kind=row["kind"],
            published=str(meta.get("published", "")), author=str(meta.get("author", "")), site=str(meta.get("site", "")),
            ocr_pages=tuple(int(n) for n in meta.get("ocr_pages", ())),
        )

    def get_document(self, doc_id: str) -> Document | None:
        with self._guard:
            if doc_id in self._docs:
                self._docs.move_to_end(doc_id)
                return self._docs[doc_id]
        if not self.ready():
            return None
        rows = self.client.query(self.names.documents, ids=[doc_id], output_fields=_DOC_FIELDS)
        if not rows:
            return None
        row = rows[0]
        text = self._texts([row]).get(doc_id, "")
        if len(text) != int(row["text_chars"]):
            raise IndexCorruptError(f"The text of document {doc_id!r} in the Milvus index {self.store.uri} is incomplete "
                                    f"({len(text)} of {row['text_chars']} characters)")
        doc = self._document(row, text)
        with self._guard:
            self._docs[doc_id] = doc
            while len(self._docs) > DOC_CACHE:
                self._docs.popitem(last=False)
        return doc

    def iter_documents(self, batch: int = 200) -> Iterator[list[Document]]:
        """All documents with their text, in batches (ordered by nothing in particular)."""
        if not self.ready():
            return
        pending: list[dict[str, Any]] = []
        for row in self._scan(self.names.documents, _DOC_FIELDS):
            pending.append(row)
            if len(pending) >= batch:
                yield self._with_texts(pending)
                pending = []
        if pending:
            yield self._with_texts(pending)

    def _with_texts(self, rows: list[dict[str, Any]]) -> list[Document]:
        texts = self._texts(rows)
        return [self._document(r, texts.get(r["doc_id"], "")) for r in rows]

    def list_documents(self) -> list[Document]:
        docs = [d for batch in self.iter_documents() for d in batch]
        return sorted(docs, key=lambda d: d.doc_id)

    def chunk_counts(self) -> dict[str, int]:
        if not self.ready():
            return {}
        return dict(Counter(row["doc_id"] for row in self._scan(self.names.chunks, ["doc_id"], batch=5000)))

    def chunks_of(self, doc_ids: list[str], with_vectors: bool = False) -> list[tuple[Chunk, np.ndarray | None, list[str]]]:
        """The chunks of these documents with (optionally) vectors and BM25 terms, in document order."""
        fields = _CHUNK_FIELDS + ["terms"] + (["vector"] if with_vectors else [])
        rows = []
        for batch in _batches(doc_ids, 100):
            rows.extend(self._scan(self.names.chunks, fields, _in_list("doc_id", batch)))
        rows.sort(key=lambda r: (r["doc_id"], int(r["seq"])))
        return [(self._chunk(r), np.asarray(r["vector"], dtype=np.float32) if with_vectors else None, r["terms"].split())
                for r in rows]

    # -- writing ---------------------------------------------------------------------------------------
    def add_documents(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]],
                      *, replace: bool = True) -> None:
        """Add (or replace) documents with their chunks, vectors and BM25 terms, written through."""
        if len(chunks) != len(vectors) or len(chunks) != len(terms):
            raise ValueError(f"{len(chunks)} chunks, {len(vectors)} vectors and {len(terms)} term lists")
        self.ensure_collections()
        vocab = self.vocabulary
        self.bm25_stats()  # before writing: a first count would see the new rows
        if replace:
            self._remove([d.doc_id for d in docs])
        doc_rows, part_rows = [], []
        for doc in docs:
            parts = [doc.text[i : i + TEXT_PART_CHARS] for i in range(0, len(doc.text), TEXT_PART_CHARS)] or [""]
            doc_rows.append({
                "doc_id": _checked(doc.doc_id, ID_MAX, "document id"), "title": _checked(doc.title, VARCHAR_MAX, "title"),
                "source": _checked(doc.source, VARCHAR_MAX, "source"), "kind": doc.kind, "added_at": doc.added_at,
                # The fields documents gained later (dates, author, site, OCR pages) ride in the JSON
                # "pages" field under "meta": no schema change, so older collections stay readable.
                "content_hash": doc.content_hash, "pages": {"spans": [list(p) for p in doc.pages], **_doc_meta(doc)},
                "text_chars": len(doc.text), "text_parts": len(parts), "_v": _DUMMY,
            })
            part_rows.extend({"part_id": f"{doc.doc_id}~{n}", "doc_id": doc.doc_id, "part": n, "text": part, "_v": _DUMMY}
                             for n, part in enumerate(parts))
        seq: Counter[str] = Counter()
        chunk_rows = []
        df: Counter[str] = Counter()
        for chunk, vector, chunk_terms in zip(chunks, np.asarray(vectors, dtype=np.float32), terms):
            chunk_rows.append({
                "chunk_id": _checked(chunk.chunk_id, ID_MAX + 32, "chunk id"), "doc_id": chunk.doc_id, "seq": seq[chunk.doc_id],
                "start_offset": chunk.start, "end_offset": chunk.end, "page": -1 if chunk.page is None else int(chunk.page),
                "text": _checked(chunk.text, VARCHAR_MAX, f"text of chunk {chunk.chunk_id}"),
                "sentences": {"spans": [list(s) for s in chunk.sentences]},
                "terms": _checked(" ".join(chunk_terms), VARCHAR_MAX, f"terms of chunk {chunk.chunk_id}"),
                "vector": vector.tolist(),
            })
            seq[chunk.doc_id] += 1
            df.update(set(chunk_terms))
        for name, rows in ((self.names.documents, doc_rows), (self.names.doctext, part_rows), (self.names.chunks, chunk_rows)):
            for batch in _batches(rows, WRITE_BATCH):
                self.client.upsert(name, batch)
        self._write_vocab(vocab.apply(dict(df)))
        self._count_stats(terms, +1)
        with self._guard:
            for doc in docs:
                self._docs.pop(doc.doc_id, None)
        self._n_live = None
        self._n_docs = None

    def remove_document(self, doc_id: str) -> int:
        """Remove a document and its chunks; returns the number of chunks removed."""
        if not self.ready():
            return 0
        return self._remove([doc_id])

    def _remove(self, doc_ids: list[str]) -> int:
        if not doc_ids:
            return 0
        vocab = self.vocabulary
        self.bm25_stats()
        removed = 0
        df: Counter[str] = Counter()
        gone: list[list[str]] = []
        for batch in _batches(doc_ids, 100):
            ids = []
            for row in self._scan(self.names.chunks, ["chunk_id", "terms"], _in_list("doc_id", batch)):
                ids.append(row["chunk_id"])
                gone.append(row["terms"].split())
                df.update(set(gone[-1]))
            for id_batch in _batches(ids, READ_BATCH):
                self.client.delete(self.names.chunks, ids=id_batch)
            removed += len(ids)
            self.client.delete(self.names.documents, ids=batch)
            self.client.delete(self.names.doctext, filter=_in_list("doc_id", batch))
        self._write_vocab(vocab.apply({t: -c for t, c in df.items()}))
        self._count_stats(gone, -1)
        with self._guard:
            for doc_id in doc_ids:
                self._docs.pop(doc_id, None)
        self._n_live = None
        self._n_docs = None
        return removed

    def _write_vocab(self, changed: dict[str, int]) -> None:
        keep = [{"term": t, "df": v, "_v": _DUMMY} for t, v in changed.items() if v > 0 and len(t.encode("utf-8")) <= TERM_MAX_BYTES]
        gone = [t for t, v in changed.items() if v <= 0 and len(t.encode("utf-8")) <= TERM_MAX_BYTES]
        for batch in _batches(keep, 5 * WRITE_BATCH):
            self.client.upsert(self.names.vocab, batch)
        for batch in _batches(gone, READ_BATCH):
            self.client.delete(self.names.vocab, ids=batch)


def _checked(value: str, limit: int, what: str) -> str:
    size = len(value.encode("utf-8"))
    if size > limit:
        raise ConfigError(f"The {what} is {size} bytes; Milvus stores at most {limit} bytes in one field. Split it into smaller pieces.")
    return value


# -- export, import and migration ---------------------------------------------------------------------------
Batch = tuple[list[Document], list[Chunk], np.ndarray, list[list[str]]]


def export_batches(data: Any, max_chunks: int = 2000) -> Iterator[Batch]:
    """Everything an index holds, document by document: ``(docs, chunks, vectors, terms)`` batches.

    Works on the FAISS ``IndexData`` and on ``MilvusBackend``; vectors and BM25 terms are copied as
    stored (nothing is embedded or tokenized again).
    """
    if isinstance(data, IndexData):
        yield from _export_faiss(data, max_chunks)
    elif isinstance(data, MilvusBackend):
        yield from _export_milvus(data, max_chunks)
    else:
        raise ConfigError(f"Cannot export from {type(data).__name__}")


def _export_faiss(data: IndexData, max_chunks: int) -> Iterator[Batch]:
    matrix = data.bm25.matrix.tocsr()
    vocab_terms = data.bm25.terms
    rows_of: dict[str, list[int]] = {}
    for row, chunk in enumerate(data.chunks):
        if chunk is not None:
            rows_of.setdefault(chunk.doc_id, []).append(row)
    docs: list[Document] = []
    rows: list[int] = []
    for doc in sorted(data.documents.values(), key=lambda d: d.doc_id):
        docs.append(doc)
        rows.extend(rows_of.get(doc.doc_id, []))
        if len(rows) >= max_chunks:
            yield _faiss_batch(data, matrix, vocab_terms, docs, rows)
            docs, rows = [], []
    if docs:
        yield _faiss_batch(data, matrix, vocab_terms, docs, rows)


def _faiss_batch(data: IndexData, matrix, vocab_terms: list[str], docs: list[Document], rows: list[int]) -> Batch:
    terms = []
    for row in rows:
        lo, hi = matrix.indptr[row], matrix.indptr[row + 1]
        terms.append([vocab_terms[i] for i, c in zip(matrix.indices[lo:hi], matrix.data[lo:hi]) for _ in range(int(c))])
    vectors = data.vectors_of(rows) if rows else np.zeros((0, data.settings.dim), dtype=np.float32)
    return docs, [data.chunks[r] for r in rows], np.ascontiguousarray(vectors, dtype=np.float32), terms  # type: ignore[misc]


def _export_milvus(data: MilvusBackend, max_chunks: int) -> Iterator[Batch]:
    for docs in data.iter_documents(batch=max(1, max_chunks // 20)):
        docs.sort(key=lambda d: d.doc_id)
        rows = data.chunks_of([d.doc_id for d in docs], with_vectors=True)
        vectors = np.vstack([v for _, v, _ in rows]).astype(np.float32) if rows else np.zeros((0, data.settings.dim), dtype=np.float32)
        yield docs, [c for c, _, _ in rows], vectors, [t for _, _, t in rows]


def import_batch(data: Any, batch: Batch) -> None:
    """Append a batch to an empty destination index (no per-document replacement)."""
    docs, chunks, vectors, terms = batch
    if isinstance(data, MilvusBackend):
        data.add_documents(docs, chunks, vectors, terms, replace=False)
        return
    if isinstance(data, IndexData):
        # IndexData.add_documents first removes each document, a scan of every row per document:
        # quadratic on a large copy into an empty index, so append directly.
        data.append_rows(docs, chunks, vectors, terms)
        return
    data.add_documents(docs, chunks, vectors, terms)


def _n_documents(data: Any) -> int:
    if isinstance(data, MilvusBackend):
        return data.n_documents()
    if isinstance(data, IndexData):
        return len(data.documents)
    return len(data.list_documents())


@dataclass
class MigrationReport:
    source: str
    destination: str
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"copied {self.documents} documents and {self.chunks} chunks from {self.source} to {self.destination} "
                f"in {self.seconds:.1f} s (no re-embedding)")

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def migrate(source: str | os.PathLike[str], destination: str | os.PathLike[str], *, overwrite: bool = False,
            progress: Any = None) -> MigrationReport:
    """Copy an index between stores (FAISS folder, Milvus Lite file, Milvus server) without re-embedding."""
    from assistant.stores import open_store

    started = time.perf_counter()
    src_store, dst_store = open_store(source), open_store(destination)
    if src_store.uri == dst_store.uri:
        raise ConfigError(f"The source and the destination are the same index ({src_store.uri})")
    stored = src_store.stored_settings()
    if stored is None:
        raise ConfigError(f"{src_store.uri} holds no index to copy")
    settings = IndexSettings(**stored)
    src = src_store.open(settings)
    report = MigrationReport(src_store.uri, dst_store.uri)
    total = src.n_live
    try:
        with dst_store.lock():
            existing = dst_store.stored_settings()
            if existing is not None and not overwrite:
                current = dst_store.open(IndexSettings(**existing))
                if current.n_live or _n_documents(current):
                    raise ConfigError(f"{dst_store.uri} already holds an index ({current.n_live} chunks); "
                                      f"add --overwrite to replace it")
            dst = dst_store.empty(settings)
            for batch in export_batches(src):
                import_batch(dst, batch)
                report.documents += len(batch[0])
                report.chunks += len(batch[1])
                if progress:
                    progress("copying", report.chunks, total)
            dst_store.save(dst)
            check = dst_store.open(settings)
            if check.n_live != report.chunks or _n_documents(check) != report.documents:
                raise IndexCorruptError(f"The copy in {dst_store.uri} holds {check.n_live} chunks, expected {report.chunks}")
    finally:
        for store in (src_store, dst_store):
            if isinstance(store, MilvusStore):
                store.close()
    report.seconds = time.perf_counter() - started
    return report
