"""Small frozen records passed between the stages, each with ``to_dict``/``from_dict``.

Offsets are always character offsets into ``Document.text``: ``document.text[chunk.start:chunk.end]``
is the chunk text, and a citation's ``start``/``end`` select the quoted sentence(s) in the same string.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _from_dict(cls: type, data: dict[str, Any]) -> Any:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    if names.issuperset(data):
        return cls(**data)
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Document:
    """One ingested file.

    Attributes:
        doc_id: Stable id: the file name without extension.
        title: First heading or line, or the file stem.
        source: Path of the file it was read from.
        text: The stored text (extracted text for HTML/PDF; the file's text otherwise). Offsets point here.
        content_hash: sha256 of the file's bytes; unchanged files are not re-indexed.
        pages: For PDFs, the ``(start, end)`` offsets of each page in ``text`` (page n is ``pages[n-1]``).
        added_at: ISO-8601 time of ingestion.
        kind: ``txt``, ``md``, ``html``, ``pdf`` (and the kinds later loaders add: ``docx``, ``web``).
        published: ISO-8601 date (``YYYY-MM-DD``) the document was published, when it says; else "".
        author: The author or byline, when the source names one; else "".
        site: The publishing site or outlet (a web page's host or site name), when known; else "".
        ocr_pages: 1-based numbers of the pages whose text came from OCR (scanned PDFs).
    """

    doc_id: str
    title: str
    source: str
    text: str
    content_hash: str
    pages: tuple[tuple[int, int], ...] = ()
    added_at: str = ""
    kind: str = "txt"
    published: str = ""
    author: str = ""
    site: str = ""
    ocr_pages: tuple[int, ...] = ()

    def page_at(self, offset: int) -> int | None:
        """Return the 1-based page holding ``offset``, or None for documents without pages."""
        for number, (start, end) in enumerate(self.pages, 1):
            if start <= offset < end:
                return number
        return len(self.pages) if self.pages else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pages"] = [list(p) for p in self.pages]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Document":
        data = dict(data)
        data["pages"] = tuple(tuple(p) for p in data.get("pages", ()))
        data["ocr_pages"] = tuple(data.get("ocr_pages", ()))
        return _from_dict(cls, data)


@dataclass(frozen=True)
class DocumentInfo:
    """One line of ``Assistant.documents()``: an indexed document without its text.

    Attributes:
        chunks: How many passages of it are indexed.
        pages: The page count of a PDF, else None.
        characters: The length of its stored text.
        The others are ``Document``'s fields of the same name.
    """

    doc_id: str
    title: str
    source: str = ""
    kind: str = "txt"
    chunks: int = 0
    added_at: str = ""
    pages: int | None = None
    characters: int = 0
    published: str = ""
    author: str = ""
    site: str = ""
    ocr_pages: tuple[int, ...] = ()

    @classmethod
    def of(cls, doc: Document, chunks: int) -> "DocumentInfo":
        return cls(doc.doc_id, doc.title, doc.source, doc.kind, chunks, doc.added_at, len(doc.pages) or None,
                   len(doc.text), doc.published, doc.author, doc.site, tuple(doc.ocr_pages))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` schema of ``assistant list`` (one item)."""
        data = asdict(self)
        data["ocr_pages"] = list(self.ocr_pages)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "DocumentInfo":
        data = dict(data)
        data["ocr_pages"] = tuple(data.get("ocr_pages", ()))
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Chunk:
    """A retrieval unit: consecutive sentences of one document.

    Attributes:
        chunk_id: ``"{doc_id}#{n}"``.
        doc_id: The document it came from.
        start: Offset of the first character in the document text.
        end: Offset one past the last character.
        text: ``document.text[start:end]``, the original text (for display and citations).
        sentences: ``(start, end)`` document offsets of each sentence inside the chunk.
        page: 1-based page number for PDFs.
    """

    chunk_id: str
    doc_id: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...] = ()
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sentences"] = [list(s) for s in self.sentences]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Chunk":
        data = dict(data)
        data["sentences"] = tuple(tuple(s) for s in data.get("sentences", ()))
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores.

    Attributes:
        chunk: The chunk.
        score: Fused score (higher is better); comparable only within one result list.
        rank: 1-based rank in the result list.
        title: Title of the chunk's document.
        source: Source path of the chunk's document.
        dense_score: Cosine similarity with the query, if the dense retriever saw it.
        lexical_score: BM25 score, if the lexical retriever saw it.
        best_start: Document offset of the best-matching sentence span inside the chunk.
        best_end: End of that span.
        published: The document's publication date ("" when unknown).
        ocr: True when the chunk's page text came from OCR.
    """

    chunk: Chunk
    score: float
    rank: int = 0
    title: str = ""
    source: str = ""
    dense_score: float | None = None
    lexical_score: float | None = None
    best_start: int = 0
    best_end: int = 0
    published: str = ""
    ocr: bool = False

    @property
    def best_text(self) -> str:
        """The best-matching sentence(s), original text."""
        offset = self.chunk.start
        return self.chunk.text[self.best_start - offset : self.best_end - offset]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chunk"] = self.chunk.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Hit":
        data = dict(data)
        data["chunk"] = Chunk.from_dict(data["chunk"])
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Citation:
    """A numbered citation: ``[marker]`` in the answer points at ``quote`` in a document.

    ``published`` is the document's publication date ("" when unknown); ``ocr`` is True when the
    quoted page's text came from OCR.
    """

    marker: int
    doc_id: str
    title: str
    source: str
    chunk_id: str
    page: int | None
    start: int
    end: int
    quote: str
    published: str = ""
    ocr: bool = False

    @classmethod
    def from_hit(cls, marker: int, hit: Hit, start: int, end: int) -> "Citation":
        """Cite the span ``[start, end)`` (document offsets inside ``hit``'s chunk) as ``[marker]``."""
        chunk = hit.chunk
        return cls(
            marker=marker,
            doc_id=chunk.doc_id,
            title=hit.title,
            source=hit.source,
            chunk_id=chunk.chunk_id,
            page=chunk.page,
            start=start,
            end=end,
            quote=chunk.text[start - chunk.start : end - chunk.start],
            published=hit.published,
            ocr=hit.ocr,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Citation":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Turn:
    """One earlier turn of a conversation.

    Attributes:
        role: ``"user"`` or ``"assistant"``.
        content: What was said (an assistant turn keeps its ``[n]`` markers).
    """

    role: str
    content: str

    def to_dict(self) -> dict[str, Any]:
        """The ``{"role", "content"}`` form the CLI's ``--history`` file and the HTTP API use."""
        return {"role": self.role, "content": self.content}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Turn":
        return _from_dict(cls, data)


@dataclass(frozen=True)
class Answer:
    """What ``Assistant.ask`` returns.

    Attributes:
        question: The question as asked.
        language: ``"en"`` or ``"ar"``: the language of the question and of the answer.
        text: The answer, with ``[n]`` markers.
        abstained: True when the corpus does not answer the question (``outcome == "abstain"``).
        citations: The citations whose markers appear in ``text``.
        passages: Every retrieved passage, cited or not, best first.
        mode: ``"extractive"`` or ``"llm"``.
        notice: A note for the user (e.g. why the answer fell back to extractive), or None.
        retrieval_query: The query actually used for retrieval (differs for follow-ups).
        translations: Machine translations of cited passages keyed by marker, when a model made them.
        outcome: ``"answer"`` (evidence found), ``"partial"`` (evidence for part of the question; see
            ``missing``) or ``"abstain"`` (the sources do not answer).
        missing: For a partial answer, what the question asked that the cited sources do not give
            (a name, a number, "date", ...).
    """

    question: str
    language: str
    text: str
    abstained: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = ()
    mode: str = "extractive"
    notice: str | None = None
    retrieval_query: str = ""
    translations: dict[int, str] = field(default_factory=dict)
    outcome: str = ""
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.outcome:
            object.__setattr__(self, "outcome", "abstain" if self.abstained else "answer")

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` schema of ``assistant ask``."""
        return {
            "question": self.question,
            "language": self.language,
            "answer": self.text,
            "abstained": self.abstained,
            "outcome": self.outcome,
            "missing": list(self.missing),
            "mode": self.mode,
            "notice": self.notice,
            "retrieval_query": self.retrieval_query,
            "citations": [c.to_dict() for c in self.citations],
            "passages": [
                {
                    "rank": h.rank,
                    "doc_id": h.chunk.doc_id,
                    "title": h.title,
                    "source": h.source,
                    "chunk_id": h.chunk.chunk_id,
                    "page": h.chunk.page,
                    "start": h.chunk.start,
                    "end": h.chunk.end,
                    "score": round(float(h.score), 6),
                    "text": h.chunk.text,
                    "best_start": h.best_start,
                    "best_end": h.best_end,
                }
                for h in self.passages
            ],
            "translations": {str(k): v for k, v in self.translations.items()},
        }
