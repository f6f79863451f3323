"""The document and chunk tables of a FAISS index folder, in SQLite (standard library, WAL mode).

One database per generation (``tables-<generation>.sqlite`` beside the snapshots), read by every
snapshot of that generation. Rows are never changed once a snapshot can see them: commit number C
inserts its documents with ``added = C`` and marks the ones it replaces or removes with
``removed = C``; a snapshot of commit C sees the documents added at or before C and not removed by
then, and the chunk rows below its row count. What a writer killed after its SQLite transaction but
before the snapshot switch left behind is invisible to every snapshot and deleted by the next writer
(``TableWriter.begin``), as bytes past a log's committed length are. Nothing here is pickled:
documents are JSON text, sentence spans little-endian int32 pairs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from assistant.errors import IndexCorruptError
from assistant.records import Chunk, Document
from assistant.stores.base import DocInfo

SCHEMA_VERSION = "2"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, added INTEGER NOT NULL, removed INTEGER,
    content_hash TEXT NOT NULL, source TEXT NOT NULL, first_row INTEGER NOT NULL, n_rows INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS documents_by_id ON documents (doc_id);
CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY, chunk_id TEXT NOT NULL, doc_id TEXT NOT NULL, start INTEGER NOT NULL,
    stop INTEGER NOT NULL, page INTEGER, sentences BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_id ON chunks (chunk_id);
"""
_VISIBLE = "added <= ? AND (removed IS NULL OR removed > ?)"
_DOC_CACHE = 4096   # documents kept parsed (a query reads the few its hits come from)
_ROW_CACHE = 200_000  # chunk rows kept as read (about 40 MB at most)
_CHUNK_CACHE = 20_000  # ``Chunk`` objects kept as made (a hybrid query asks for its ~100 candidates three times)
_IN_BATCH = 500     # SQLite's default limit on host parameters is 999


def table_name(generation: str) -> str:
    return f"tables-{generation}.sqlite"


def doc_body(doc: Document) -> str:
    """A document as JSON (optional fields only when set, as the JSON-lines log wrote them)."""
    row = {"doc_id": doc.doc_id, "title": doc.title, "source": doc.source, "text": doc.text,
           "content_hash": doc.content_hash, "pages": [list(p) for p in doc.pages],
           "added_at": doc.added_at, "kind": doc.kind}
    for name in ("published", "author", "site"):
        if getattr(doc, name):
            row[name] = getattr(doc, name)
    if doc.ocr_pages:
        row["ocr_pages"] = list(doc.ocr_pages)
    return json.dumps(row, ensure_ascii=False)


def _spans(sentences: Iterable[Iterable[int]]) -> bytes:
    return np.asarray([list(s) for s in sentences] or np.zeros((0, 2)), dtype="<i4").reshape(-1).tobytes()


def _unspans(blob: bytes) -> tuple[tuple[int, int], ...]:
    if len(blob) % 8:
        raise ValueError("a chunk's sentence spans are not whole int32 pairs")
    flat = np.frombuffer(blob, dtype="<i4").tolist()
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a table file, created with the schema when new (WAL: readers never block the writer)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the snapshot that names it
    conn.executescript(_SCHEMA)
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    if version is None:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    elif version[0] != SCHEMA_VERSION:
        conn.close()
        raise ValueError(f"{path.name} has table schema {version[0]!r}, this version reads {SCHEMA_VERSION!r}")
    return conn


class Tables:
    """The documents and chunk rows one snapshot (commit ``commit``, ``rows`` rows) sees.

    Queries go through one connection guarded by a lock (the web app asks from several threads).
    """

    def __init__(self, path: Path, commit: int, rows: int) -> None:
        if not path.is_file():
            raise ValueError(f"{path.name} is missing")
        self.path, self.commit, self.rows = path, commit, rows
        self._conn = connect(path)
        self._conn.execute("PRAGMA query_only=1")
        self._lock = threading.Lock()
        self._docs: dict[str, Document | None] = {}
        # Committed rows never change (shared by the snapshots of this file that follow this one).
        self._raw: dict[int, tuple] = {}
        self._made: dict[int, Chunk] = {}  # this snapshot's chunks as made (their documents are visible here)

    def at(self, commit: int, rows: int) -> "Tables":
        """The same file as a later snapshot sees it (shares this connection and its cache of
        documents, which never change once visible; a removed one is dropped from the cache)."""
        out = Tables.__new__(Tables)
        out.path, out.commit, out.rows = self.path, commit, rows
        out._conn, out._lock, out._docs, out._raw = self._conn, self._lock, {}, self._raw
        out._made = {}
        return out

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- documents -------------------------------------------------------------------------------
    def document(self, doc_id: str) -> Document | None:
        if doc_id in self._docs:
            return self._docs[doc_id]
        found = self._query(f"SELECT body FROM texts WHERE id = (SELECT id FROM documents WHERE doc_id = ? AND {_VISIBLE})",
                            (doc_id, self.commit, self.commit))
        doc = Document.from_dict(json.loads(found[0][0])) if found else None
        if len(self._docs) >= _DOC_CACHE:
            self._docs.clear()
        self._docs[doc_id] = doc
        return doc

    def info(self, doc_id: str) -> DocInfo | None:
        found = self._query(f"SELECT content_hash, source, first_row, n_rows FROM documents WHERE doc_id = ? AND {_VISIBLE}",
                            (doc_id, self.commit, self.commit))
        return DocInfo(doc_id, *found[0]) if found else None

    def infos(self) -> Iterator[DocInfo]:
        for row in self._query(f"SELECT doc_id, content_hash, source, first_row, n_rows FROM documents WHERE {_VISIBLE} "
                               "ORDER BY first_row", (self.commit, self.commit)):
            yield DocInfo(*row)

    def documents(self) -> Iterator[Document]:
        for (body,) in self._query(f"SELECT t.body FROM documents d JOIN texts t ON t.id = d.id WHERE {_VISIBLE} "
                                   "ORDER BY d.first_row", (self.commit, self.commit)):
            yield Document.from_dict(json.loads(body))

    def n_documents(self) -> int:
        return int(self._query(f"SELECT COUNT(*) FROM documents WHERE {_VISIBLE}", (self.commit, self.commit))[0][0])

    def check(self, n_documents: int) -> list[str]:
        """What disagrees with the manifest, with a few cheap queries (no pass over every row)."""
        problems = []
        n_rows = int(self._query("SELECT COUNT(*) FROM chunks WHERE row < ?", (self.rows,))[0][0])
        if n_rows != self.rows:
            problems.append(f"{self.path.name} holds {n_rows} chunk rows, the manifest says {self.rows}")
        have = self.n_documents()
        if have != n_documents:
            problems.append(f"{self.path.name} holds {have} documents, the manifest says {n_documents}")
        return problems

    # -- chunk rows --------------------------------------------------------------------------------
    def _rows(self, rows: Iterable[int]) -> dict[int, tuple]:
        """Raw rows ``(chunk_id, doc_id, start, stop, page, spans)``, from the cache or SQLite."""
        raw = self._raw
        wanted = [int(r) for r in rows if 0 <= r < self.rows]
        missing = [r for r in wanted if r not in raw]
        if missing:
            if len(raw) > _ROW_CACHE:
                raw.clear()
            for i in range(0, len(missing), _IN_BATCH):
                part = missing[i : i + _IN_BATCH]
                for row, *rest in self._query("SELECT row, chunk_id, doc_id, start, stop, page, sentences FROM chunks "
                                              f"WHERE row IN ({','.join('?' * len(part))})", tuple(part)):
                    raw[row] = tuple(rest)
        return {r: raw[r] for r in wanted if r in raw}

    def chunk_ids(self, rows: Iterable[int]) -> dict[int, str]:
        """Chunk id of each of these rows (removed rows included: the caller filters by its live mask)."""
        return {row: values[0] for row, values in self._rows(rows).items()}

    def rows_of(self, chunk_ids: Iterable[str]) -> dict[str, list[int]]:
        """Every row (below this snapshot's count) holding each chunk id, in row order."""
        out: dict[str, list[int]] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for i in range(0, len(ids), _IN_BATCH):
            part = ids[i : i + _IN_BATCH]
            found = self._query(f"SELECT chunk_id, row FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))}) "
                                "AND row < ? ORDER BY row", (*part, self.rows))
            for chunk_id, row in found:
                out.setdefault(chunk_id, []).append(row)
        return out

    def chunks(self, rows: Iterable[int]) -> dict[int, Chunk]:
        """The ``Chunk`` of each of these rows, its text sliced from its document."""
        made = self._made
        rows = [int(r) for r in rows]
        out: dict[int, Chunk] = {}
        for r in rows:  # ``get``: another thread may clear the cache meanwhile
            chunk = made.get(r)
            if chunk is not None:
                out[r] = chunk
        if len(out) == len(rows):
            return out
        if len(made) > _CHUNK_CACHE:
            made.clear()
        for row, (chunk_id, doc_id, start, stop, page, spans) in self._rows(r for r in rows if r not in out).items():
            doc = self.document(doc_id)
            if doc is None:
                continue
            if not 0 <= start < stop <= len(doc.text):
                raise IndexCorruptError(f"chunk {chunk_id} offsets {start}..{stop} fall outside its document "
                                        f"(in {self.path}). Rebuild the index: assistant ingest --rebuild")
            out[row] = made[row] = Chunk(chunk_id=chunk_id, doc_id=doc_id, start=start, end=stop, text=doc.text[start:stop],
                                         sentences=_unspans(spans), page=page)
        return out

    def chunk_rows(self) -> Iterator[tuple[int, str, str, int, int, tuple, int | None]]:
        """Every row below this snapshot's count, in order: (row, chunk id, doc id, start, end, sentences, page)."""
        with self._lock:
            cursor = self._conn.execute("SELECT row, chunk_id, doc_id, start, stop, sentences, page FROM chunks "
                                        "WHERE row < ? ORDER BY row", (self.rows,))
            found = cursor.fetchall()
        for row, chunk_id, doc_id, start, stop, spans, page in found:
            yield row, chunk_id, doc_id, start, stop, _unspans(spans), page


class DocumentView(Mapping):
    """``Mapping[str, Document]`` over a snapshot's tables (documents parsed on access)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def __getitem__(self, doc_id: str) -> Document:
        doc = self.tables.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def get(self, doc_id, default=None):  # type: ignore[override]
        doc = self.tables.document(doc_id)
        return default if doc is None else doc

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self.tables.document(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        return (info.doc_id for info in self.tables.infos())

    def __len__(self) -> int:
        return self.tables.n_documents()


class TableWriter:
    """Writes one commit into a table file: what a killed writer left is removed first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect(path)

    def close(self) -> None:
        self.conn.close()

    def write(self, live_commit: int, live_rows: int, commit: int, docs: list[tuple[Document, DocInfo]],
              removed: Iterable[str], chunks: list[tuple[int, Chunk | None]]) -> None:
        """In one transaction: forget rows of commits after ``live_commit`` (a killed writer's), mark
        ``removed`` documents (and those ``docs`` replace) as removed by ``commit``, insert ``docs``
        and the chunk rows."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM texts WHERE id IN (SELECT id FROM documents WHERE added > ?)", (live_commit,))
            c.execute("DELETE FROM documents WHERE added > ?", (live_commit,))
            c.execute("UPDATE documents SET removed = NULL WHERE removed > ?", (live_commit,))
            c.execute("DELETE FROM chunks WHERE row >= ?", (live_rows,))
            gone = list(dict.fromkeys([*removed, *(d.doc_id for d, _ in docs)]))
            c.executemany("UPDATE documents SET removed = ? WHERE doc_id = ? AND removed IS NULL", [(commit, d) for d in gone])
            for doc, info in docs:
                cursor = c.execute("INSERT INTO documents (doc_id, added, removed, content_hash, source, first_row, n_rows) "
                                   "VALUES (?, ?, NULL, ?, ?, ?, ?)",
                                   (doc.doc_id, commit, info.content_hash, info.source, info.first_row, info.n_rows))
                c.execute("INSERT INTO texts (id, body) VALUES (?, ?)", (cursor.lastrowid, doc_body(doc)))
            c.executemany("INSERT INTO chunks (row, chunk_id, doc_id, start, stop, page, sentences) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [(row, "", "", 0, 0, None, b"") if ch is None else  # a removed row keeps its place
                           (row, ch.chunk_id, ch.doc_id, ch.start, ch.end, ch.page, _spans(ch.sentences)) for row, ch in chunks])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
