"""An open Milvus index (the ``ChunkBackend`` protocol): dense and BM25 searches, rows read by primary
key, and writes that go to Milvus at once (``MilvusStore.save`` makes them visible to other readers)."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from typing import Any, Iterable, Iterator

import numpy as np

from assistant.errors import ConfigError, IndexCorruptError
from assistant.records import Chunk, Document
from assistant.stores.base import Batch, IndexSettings
from assistant.stores.lexical import B as BM25_B
from assistant.stores.lexical import K1 as BM25_K1
from assistant.stores.lexical import idf as bm25_idf
from assistant.stores.milvus.schema import DUMMY_VECTOR, ID_MAX, TERM_MAX_BYTES, VARCHAR_MAX, MilvusCollections
from assistant.stores.milvus.terms import WEIGHT_SCALE, MilvusVocabulary, query_text

# A document's text is stored in parts of this many characters: 4 bytes each at most in UTF-8, so a
# part always fits a 65,535-byte VARCHAR.
TEXT_PART_CHARS = 16_000
# Rows per insert/upsert call: a few MB per gRPC message with 384-dim vectors.
WRITE_BATCH = 500
READ_BATCH = 1_000
# Milvus caps limit (and offset + limit) of one search or query at 16,384.
MAX_LIMIT = 16_384
DOC_CACHE = 256
_CHUNK_FIELDS = ["chunk_id", "doc_id", "seq", "start_offset", "end_offset", "page", "text", "sentences"]
_DOC_FIELDS = ["doc_id", "title", "source", "kind", "added_at", "content_hash", "pages", "text_chars", "text_parts"]


def _literal(value: str) -> str:
    """A Milvus filter-expression string literal (Milvus Lite has no filter templates)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def _in_list(field: str, values: Iterable[str]) -> str:
    return f"{field} in [{', '.join(_literal(v) for v in values)}]"


def _batches(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _doc_meta(doc: Document) -> dict[str, Any]:
    """``{"meta": {...}}`` with the document's publication date, author, site and OCR pages that are set."""
    meta: dict[str, Any] = {name: getattr(doc, name) for name in ("published", "author", "site") if getattr(doc, name)}
    if doc.ocr_pages:
        meta["ocr_pages"] = list(doc.ocr_pages)
    return {"meta": meta} if meta else {}


def _hit_id(hit: Any) -> str:
    entity = hit.get("entity") or {}
    return entity.get("chunk_id") or hit.get("chunk_id") or hit.get("id")


class MilvusBackend:
    """An open Milvus index: the ``ChunkBackend`` protocol. Writes go to Milvus at once;
    ``MilvusStore.save`` makes them visible to other app instances (version bump)."""

    def __init__(self, store: MilvusCollections, settings: IndexSettings, manifest: dict[str, Any] | None) -> None:
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
        """Milvus BM25 over the weighted terms (weights as repetitions; see the package docstring).

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
        """The BM25 of :mod:`assistant.stores.lexical` over corpus-wide statistics, for the given chunks."""
        rows, length = self.bm25_stats()
        n = max(rows, 1)
        avgdl = length / n if length else 1.0
        vocabulary = self.vocabulary
        idf = {}
        for term, weight in terms.items():
            df = vocabulary.document_frequency(term)
            if df and weight:
                idf[term] = bm25_idf(n, df)
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
                "text_chars": len(doc.text), "text_parts": len(parts), "_v": DUMMY_VECTOR,
            })
            part_rows.extend({"part_id": f"{doc.doc_id}~{n}", "doc_id": doc.doc_id, "part": n, "text": part, "_v": DUMMY_VECTOR}
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
        keep = [{"term": t, "df": v, "_v": DUMMY_VECTOR} for t, v in changed.items() if v > 0 and len(t.encode("utf-8")) <= TERM_MAX_BYTES]
        gone = [t for t, v in changed.items() if v <= 0 and len(t.encode("utf-8")) <= TERM_MAX_BYTES]
        for batch in _batches(keep, 5 * WRITE_BATCH):
            self.client.upsert(self.names.vocab, batch)
        for batch in _batches(gone, READ_BATCH):
            self.client.delete(self.names.vocab, ids=batch)

    # -- copying (assistant migrate) --------------------------------------------------------------------
    def export_batches(self, max_chunks: int = 2000) -> Iterator[Batch]:
        """Everything the index holds, ``(docs, chunks, vectors, terms)`` batches of whole documents;
        vectors and BM25 terms as stored (nothing is embedded or tokenized again)."""
        for docs in self.iter_documents(batch=max(1, max_chunks // 20)):
            docs.sort(key=lambda d: d.doc_id)
            rows = self.chunks_of([d.doc_id for d in docs], with_vectors=True)
            vectors = np.vstack([v for _, v, _ in rows]).astype(np.float32) if rows else np.zeros((0, self.settings.dim), dtype=np.float32)
            yield docs, [c for c, _, _ in rows], vectors, [t for _, _, t in rows]

    def append_rows(self, docs: list[Document], chunks: list[Chunk], vectors: np.ndarray, terms: list[list[str]]) -> None:
        """Add documents that are not in the index yet (no per-document replacement)."""
        self.add_documents(docs, chunks, vectors, terms, replace=False)


def _checked(value: str, limit: int, what: str) -> str:
    size = len(value.encode("utf-8"))
    if size > limit:
        raise ConfigError(f"The {what} is {size} bytes; Milvus stores at most {limit} bytes in one field. Split it into smaller pieces.")
    return value

