"""The document and chunk tables at 1M passages: today's JSON-lines logs vs SQLite (WAL), alone.

Only the tables are compared (vectors stay in FAISS either way; BM25 is bench/bm25_scale.py). Both
hold the same synthetic corpus: N chunk rows (offsets and sentence spans, as ``chunks.jsonl``) over
N/10 documents of ~3,200 characters (as ``documents.jsonl``), plus the manifest's per-document table
that today's format rewrites and re-reads on every commit. Timed, in a fresh state each:

* load: every document into ``Document`` records and every chunk row into ``ChunkRows`` (what
  ``IndexStore.load`` does with these two tables);
* add one article (1 document, 9 chunks) and commit: logs appended + manifest with the document
  table rewritten (today) vs one INSERT transaction (SQLite);
* refresh: what a running app reads to see that article: the manifest + the new log lines (today)
  vs ``WHERE row > last`` (SQLite).

    python bench/sqlite_tables.py [--rows 1000000]

Prints the numbers; nothing is changed in the store.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from array import array
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.records import Document  # noqa: E402
from assistant.stores.faiss import ChunkRows  # noqa: E402

WORDS = ("طرابلس بنغازي مصراتة الحكومة الوزير البلدية المجلس الكهرباء المياه الطريق المستشفى المدرسة الميناء "
         "الوقود الانتخابات الاجتماع الاتفاق الوفد المشروع الميزانية الشركة قال أعلن أكد الرئيس").split()
CHUNKS_PER_DOC = 10
CHUNK_CHARS = 320


def corpus(rows: int, seed: int = 0):
    """Yield (document dict, chunk dicts) like the store's log lines."""
    rng = random.Random(seed)
    for d in range(rows // CHUNKS_PER_DOC):
        text = " ".join(rng.choice(WORDS) for _ in range(CHUNKS_PER_DOC * CHUNK_CHARS // 7))[: CHUNKS_PER_DOC * CHUNK_CHARS]
        doc_id = f"doc_{d:07d}"
        doc = {"doc_id": doc_id, "title": f"تقرير {d}", "source": f"/archive/{doc_id}.txt", "text": text,
               "content_hash": f"{rng.getrandbits(64):016x}", "pages": [], "added_at": "2026-11-30T07:00:00Z", "kind": "txt"}
        chunks = []
        for c in range(CHUNKS_PER_DOC):
            start, end = c * CHUNK_CHARS, min((c + 1) * CHUNK_CHARS, len(text))
            sentences = [[s, min(s + 80, end)] for s in range(start, end, 80)]
            chunks.append({"chunk_id": f"{doc_id}#{c}", "doc_id": doc_id, "start": start, "end": end, "sentences": sentences, "page": None})
        yield doc, chunks


# -- today's format ------------------------------------------------------------------------------
def write_logs(folder: Path, rows: int) -> None:
    table = {}
    with open(folder / "documents.jsonl", "w", encoding="utf-8") as docs, open(folder / "chunks.jsonl", "w", encoding="utf-8") as chunks:
        row = 0
        for doc, doc_chunks in corpus(rows):
            docs.write(json.dumps(doc, ensure_ascii=False) + "\n")
            for c in doc_chunks:
                chunks.write(json.dumps(c, ensure_ascii=False) + "\n")
            table[doc["doc_id"]] = [doc["content_hash"], doc["source"], row, len(doc_chunks)]
            row += len(doc_chunks)
    (folder / "manifest.json").write_text(json.dumps({"documents": table, "rows": row}, ensure_ascii=False), encoding="utf-8")


def load_logs(folder: Path) -> ChunkRows:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    documents = {}
    with open(folder / "documents.jsonl", encoding="utf-8") as fh:
        for line in fh:
            doc = Document.from_dict(json.loads(line))
            documents[doc.doc_id] = doc
    assert len(documents) == len(manifest["documents"])
    chunks = ChunkRows(documents)
    with open(folder / "chunks.jsonl", encoding="utf-8") as fh:
        for line in fh:
            d = json.loads(line)
            chunks.append_row(d["chunk_id"], d["doc_id"], d["start"], d["end"], d["sentences"], d["page"])
    return chunks


def add_logs(folder: Path, doc: dict, chunks: list[dict]) -> None:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    with open(folder / "documents.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    with open(folder / "chunks.jsonl", "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(c, ensure_ascii=False) + "\n" for c in chunks)
        fh.flush()
        os.fsync(fh.fileno())
    manifest["documents"][doc["doc_id"]] = [doc["content_hash"], doc["source"], manifest["rows"], len(chunks)]
    manifest["rows"] += len(chunks)
    tmp = folder / "manifest.json.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(manifest, ensure_ascii=False))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / "manifest.json")


def refresh_logs(folder: Path, rows_seen: int, chunks_bytes_seen: int) -> int:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    new = 0
    with open(folder / "chunks.jsonl", "rb") as fh:
        fh.seek(chunks_bytes_seen)
        for line in fh:
            json.loads(line)
            new += 1
    assert manifest["rows"] == rows_seen + new
    return new


# -- SQLite ----------------------------------------------------------------------------------------
SCHEMA = """
PRAGMA journal_mode=WAL;
CREATE TABLE documents (doc_id TEXT PRIMARY KEY, title TEXT, source TEXT, text TEXT, content_hash TEXT,
                        pages TEXT, added_at TEXT, kind TEXT, first_row INTEGER, n_rows INTEGER);
CREATE TABLE chunks (row INTEGER PRIMARY KEY, chunk_id TEXT, doc_id TEXT, start INTEGER, end INTEGER,
                     sentences BLOB, page INTEGER);
CREATE INDEX documents_first_row ON documents(first_row);
"""


def _doc_row(doc: dict, first_row: int, n: int) -> tuple:
    return (doc["doc_id"], doc["title"], doc["source"], doc["text"], doc["content_hash"], json.dumps(doc["pages"]),
            doc["added_at"], doc["kind"], first_row, n)


def _chunk_rows(chunks: list[dict], first_row: int) -> list[tuple]:
    # Sentence spans as packed int64 pairs: read back with array.frombytes, no JSON per row.
    return [(first_row + i, c["chunk_id"], c["doc_id"], c["start"], c["end"],
             array("q", [x for pair in c["sentences"] for x in pair]).tobytes(), -1 if c["page"] is None else c["page"])
            for i, c in enumerate(chunks)]


def write_sqlite(path: Path, rows: int) -> None:
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    row = 0
    with con:
        for doc, chunks in corpus(rows):
            con.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)", _doc_row(doc, row, len(chunks)))
            con.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)", _chunk_rows(chunks, row))
            row += len(chunks)
    con.close()


def load_sqlite(path: Path) -> ChunkRows:
    con = sqlite3.connect(path)
    documents = {}
    for doc_id, title, source, text, content_hash, pages, added_at, kind, _, _ in con.execute("SELECT * FROM documents"):
        documents[doc_id] = Document(doc_id=doc_id, title=title, source=source, text=text, content_hash=content_hash,
                                     pages=tuple(tuple(p) for p in json.loads(pages)), added_at=added_at, kind=kind)
    chunks = ChunkRows(documents)
    for _, chunk_id, doc_id, start, end, sentences, page in con.execute("SELECT * FROM chunks ORDER BY row"):
        flat = array("q")
        flat.frombytes(sentences)
        chunks.append_row(chunk_id, doc_id, start, end, zip(flat[::2], flat[1::2]), None if page < 0 else page)
    con.close()
    return chunks


def add_sqlite(path: Path, doc: dict, chunks: list[dict]) -> None:
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=FULL")
    with con:
        first = con.execute("SELECT COALESCE(MAX(row) + 1, 0) FROM chunks").fetchone()[0]
        con.execute("INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)", _doc_row(doc, first, len(chunks)))
        con.executemany("INSERT INTO chunks VALUES (?,?,?,?,?,?,?)", _chunk_rows(chunks, first))
    con.close()


def refresh_sqlite(path: Path, rows_seen: int) -> int:
    con = sqlite3.connect(path)
    new = con.execute("SELECT * FROM chunks WHERE row >= ? ORDER BY row", (rows_seen,)).fetchall()
    con.execute("SELECT * FROM documents WHERE first_row >= ?", (rows_seen,)).fetchall()
    con.close()
    return len(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp folder, removed after)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="sqlite-tables-", dir=args.dir))
    try:
        logs, db = work / "logs", work / "tables.sqlite"
        logs.mkdir()
        t = time.perf_counter()
        write_logs(logs, args.rows)
        print(f"logs written in {time.perf_counter() - t:.1f} s ({sum(f.stat().st_size for f in logs.iterdir()) / 1e6:.0f} MB)", flush=True)
        t = time.perf_counter()
        write_sqlite(db, args.rows)
        print(f"SQLite written in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB)", flush=True)
        new_doc, new_chunks = next(corpus(CHUNKS_PER_DOC, seed=99))
        new_doc["doc_id"] = "new_article"
        for c in new_chunks:
            c["doc_id"], c["chunk_id"] = "new_article", c["chunk_id"].replace("doc_0000000", "new_article")
        new_chunks = new_chunks[:9]
        for name, load, add, refresh in (
            ("logs (today)", lambda: load_logs(logs), lambda: add_logs(logs, new_doc, new_chunks),
             lambda seen, size: refresh_logs(logs, seen, size)),
            ("SQLite WAL", lambda: load_sqlite(db), lambda: add_sqlite(db, new_doc, new_chunks),
             lambda seen, size: refresh_sqlite(db, seen)),
        ):
            t = time.perf_counter()
            rows = load()
            load_s = time.perf_counter() - t
            seen, size = len(rows), (logs / "chunks.jsonl").stat().st_size
            del rows
            t = time.perf_counter()
            add()
            add_s = time.perf_counter() - t
            t = time.perf_counter()
            new = refresh(seen, size)
            refresh_s = time.perf_counter() - t
            assert new == len(new_chunks)
            print(f"{name:13s}: load {load_s:6.2f} s, add one article {add_s * 1000:7.1f} ms, "
                  f"refresh {refresh_s * 1000:7.1f} ms", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
