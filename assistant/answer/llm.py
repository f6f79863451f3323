"""``LLMAnswerer``: the ``Answerer`` whose answers a chat model writes, grounded in the retrieved passages.

``Assistant.ask_stream`` drives it through the stages of ``answer.base.Answerer``:

1. ``rewrite``: a follow-up question is rewritten by the model into a standalone one before retrieval
   (``answer.rewrite``); on failure the original is used with the retriever's own follow-up handling.
2. ``fallback`` when the evidence decision abstains: a question the index does not answer gets the
   extractive abstention, whatever a model would have written.
3. ``write``: the strongest passages (those the extractive answer would quote, at most
   ``max_passages``) go into the prompt (``prompts/answer.<lang>.toml``), each numbered by its rank
   among the retrieved passages, so ``[n]`` is ``Answer.passages[n - 1]``; each sits in ``<passage>``
   delimiters, declared untrusted data. Tokens stream out as partial answers, a marker shown only
   once complete and valid (``answer.generate``).
4. ``verify``: the full reply is checked against its passages (``answer.verify``): injected
   instructions, NOT FOUND, markers, unsupported citations, quotes, language. A reply in the wrong
   language is written again once with a stronger instruction.
5. ``finish``: the verified answer; NOT FOUND becomes an abstention; an answer left with no valid
   citation is replaced by the extractive answer with a notice (``answer.fallback``). Optionally
   (``translate=True``) the cited Arabic sentences of an English answer get English machine
   translations by the same model (``answer.translate``).

Any backend failure (endpoint down, model crash) also falls back to the extractive answer with a
notice naming the error; the assistant keeps answering.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Self

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from assistant.answer.base import AnswerRequest, Draft, Passage, Reply, make_answer
from assistant.answer.chat import endpoint_chat, gguf_chat
from assistant.answer.citations import claims_by_marker, cite
from assistant.answer.extractive import describe_missing
from assistant.answer.fallback import guarded_extractive_answer
from assistant.answer.generate import message_text, select_passages, stream_reply
from assistant.answer.prompts import render, template
from assistant.answer.rewrite import rewrite_question
from assistant.answer.translate import translate_citations
from assistant.answer.verify import postprocess
from assistant.errors import ConfigError, LLMError
from assistant.records import Answer, Hit, Turn

if TYPE_CHECKING:  # pragma: no cover
    from assistant.answer.llama_server import LlamaServer

log = logging.getLogger("assistant.llm")

__all__ = ["LLMAnswerer"]

#: Most passages put in the prompt (of the ``k`` retrieved). Fewer passages: shorter prompts on slow
#: local models and fewer chances to cite an unrelated one (citation precision).
DEFAULT_MAX_PASSAGES = 3
#: Longer chunks are cut (at a word) in the prompt; citations still point into the whole chunk.
DEFAULT_MAX_PASSAGE_CHARS = 700
DEFAULT_MAX_TOKENS = 200
# The notice of the extractive answer that replaces a draft that did not verify, by the draft's status.
_NOTICES = {"injection": "notice_injection", "wrong_language": "notice_language", "no_citation": "notice_no_citation",
            "incomplete": "notice_incomplete"}


class LLMAnswerer:
    """The ``Answerer`` whose answers a LangChain chat model writes from the retrieved passages, every
    citation verified.

    Args:
        chat_model: A LangChain chat model, or a zero-argument factory returning one (called on first
            use, e.g. once a local server is up).
        server: A :class:`~assistant.answer.llama_server.LlamaServer` this answerer owns: started on first use,
            stopped by :meth:`close` (and at interpreter exit).
        max_passages: At most this many passages (of the ``k`` retrieved) are shown to the model, each
            numbered by its rank, so that marker ``[n]`` is ``Answer.passages[n - 1]``.
        max_passage_chars: Longer passages are cut in the prompt.
        max_tokens: Limit of one answer.
        translate: Add English machine translations of the cited Arabic passages to English answers.
        rewrite_followups: Rewrite follow-up questions into standalone ones with the model.
        evidence_only: Show the model only the passages the extractive answer would quote (see
            :meth:`select_passages`); False shows the top ``max_passages``.
        description: A short label for logs and the UI (``"gguf:qwen2.5-coder-1.5b..."``).

    Example::

        llm = LLMAnswerer.from_endpoint("http://127.0.0.1:11434/v1", model="qwen2.5:7b-instruct")
        bot = Assistant(llm=llm)
        for partial in bot.ask_stream("What did Lavrov announce?"):
            print(partial.text)
    """

    def __init__(
        self,
        chat_model: BaseChatModel | Callable[[], BaseChatModel],
        *,
        server: LlamaServer | None = None,
        max_passages: int = DEFAULT_MAX_PASSAGES,
        max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        translate: bool = False,
        rewrite_followups: bool = True,
        evidence_only: bool = True,
        description: str = "",
    ) -> None:
        if max_passages < 1:
            raise ConfigError(f"max_passages must be at least 1, got {max_passages}")
        if max_tokens < 8:
            raise ConfigError(f"max_tokens must be at least 8, got {max_tokens}")
        if isinstance(chat_model, BaseChatModel):
            self._chat: BaseChatModel | None = chat_model
            self._factory: Callable[[], BaseChatModel] | None = None
        elif callable(chat_model):
            self._chat = None
            self._factory = chat_model
        else:
            raise ConfigError(f"chat_model must be a LangChain chat model or a factory, got {type(chat_model).__name__}")
        self.server = server
        self.max_passages = int(max_passages)
        self.max_passage_chars = int(max_passage_chars)
        self.max_tokens = int(max_tokens)
        self.translate = bool(translate)
        self.rewrite_followups = bool(rewrite_followups)
        self.evidence_only = bool(evidence_only)
        self.description = description or (type(chat_model).__name__ if isinstance(chat_model, BaseChatModel) else "chat model")
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_endpoint(
        cls,
        base_url: str,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 120.0,
        translate: bool = True,
        **options: Any,
    ) -> LLMAnswerer:
        """An answerer on any OpenAI-compatible endpoint (Ollama, vLLM, llama.cpp server, LM Studio, OpenAI).

        Without ``model``, the first model the endpoint lists at ``/models`` is used.
        """
        make, description = endpoint_chat(base_url, model, api_key, timeout)
        return cls(make, translate=translate, description=description, **options)

    @classmethod
    def from_gguf(
        cls,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 4096,
        threads: int | None = None,
        timeout: float = 300.0,
        translate: bool = False,
        **options: Any,
    ) -> LLMAnswerer:
        """An answerer on a local GGUF file, run by llama.cpp (``xllamacpp``) in a child process.

        The server starts on the first question (a few seconds) and stops with :meth:`close` or at exit.
        Translations are off by default: on a 2-core CPU each costs several seconds.
        """
        make, server, description = gguf_chat(path, n_ctx, threads, timeout)
        return cls(make, server=server, translate=translate, description=description, **options)

    @property
    def chat_model(self) -> BaseChatModel:
        """The chat model (built, and the local server started, on first use)."""
        with self._lock:
            if self.server is not None and self._chat is not None and not self.server.is_running:
                self._chat = None  # the server died: start it again
            if self._chat is None:
                assert self._factory is not None
                self._chat = self._factory()
            return self._chat

    def close(self) -> None:
        """Stop the local llama.cpp server, if this answerer runs one. Safe to call twice."""
        if self.server is not None:
            self.server.stop()
        if self._factory is not None:
            self._chat = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LLMAnswerer {self.description}>"

    # -- model calls ----------------------------------------------------------------------------
    def _stream(self, messages: list[BaseMessage], max_tokens: int) -> Iterator[str]:
        try:
            for chunk in self.chat_model.stream(messages, max_tokens=max_tokens):
                piece = message_text(chunk.content)
                if piece:
                    yield piece
        except LLMError:
            raise
        except Exception as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from exc

    def _complete(self, messages: list[BaseMessage], max_tokens: int) -> str:
        return "".join(self._stream(messages, max_tokens)).strip()

    # -- the stages (answer.base.Answerer) --------------------------------------------------------
    def rewrite(self, question: str, language: str, history: Sequence[Turn]) -> str | None:
        """A standalone version of a follow-up question, or None (also when ``rewrite_followups`` is off)."""
        if not self.rewrite_followups:
            return None
        return rewrite_question(self._complete, question, history, language)

    def select_passages(self, hits: Sequence[Hit]) -> list[Passage]:
        """The passages the model sees, each numbered by its rank among ``hits`` (``generate.select_passages``)."""
        return select_passages(hits, self.max_passages, self.max_passage_chars, self.evidence_only)

    def write(self, request: AnswerRequest, retry: bool = False) -> Generator[Answer, None, Reply]:
        """Yield partial answers while the model writes; return its reply. Raises ``LLMError``."""
        passages = self.select_passages(request.result.hits)
        return (yield from stream_reply(self._stream, request, passages, self.max_tokens, retry=retry))

    def verify(self, request: AnswerRequest, reply: Reply) -> Draft:
        """The reply checked against its passages (``verify.postprocess``)."""
        phrases = list(template("answer", request.language, "not_found_phrases"))
        draft = postprocess(reply.text, reply.passages, request.language, phrases, reply.instructions,
                            [h.chunk.text for h in request.result.hits])
        log.info("llm reply (%s): %r", draft.status, reply.text)
        return draft

    def finish(self, request: AnswerRequest, draft: Draft) -> Iterator[Answer]:
        """The verified answer (then, if wanted, with translations), an abstention, or the fallback."""
        language, decision = request.language, request.decision
        if draft.status == "not_found":
            # One more signal: the model read the passages and found no answer. It lowers the
            # evidence decision by one step, with no threshold of its own: over evidence judged to
            # answer, the quotes are still shown (a small model misses cross-lingual matches), under a
            # notice saying the model found no answer and marked partial; over evidence judged
            # partial, the question is declined.
            if decision.outcome == "answer":
                fallback = guarded_extractive_answer(request, render("answer", language, "notice_not_found"))
                yield replace(fallback, outcome="partial") if not fallback.abstained else fallback
                return
            yield make_answer(request.question, language, render("answer", language, "abstain"), mode="llm", abstained=True,
                              passages=request.result.hits, retrieval_query=request.query, outcome="abstain")
            return
        if draft.status in _NOTICES:
            yield from self._translated_twice(guarded_extractive_answer(request, render("answer", language, _NOTICES[draft.status])))
            return
        partial_intro = ""
        if decision.outcome == "partial":
            missing = describe_missing(decision.missing, request.question, language)
            partial_intro = render("extractive", language, "partial", missing=missing) + "\n"
        claims = claims_by_marker(draft.text)
        # A marker is a passage's rank among the retrieved passages: [n] is hits[n - 1].
        hits = request.result.hits
        citations = [cite(m, hits[m - 1], claims.get(m, [])) for m in sorted(draft.markers)]
        final = make_answer(request.question, language, partial_intro + draft.text, mode="llm", citations=citations,
                            passages=hits, retrieval_query=request.query, outcome=decision.outcome, missing=decision.missing)
        yield from self._translated_twice(final)

    def fallback(self, request: AnswerRequest, error: BaseException | None = None) -> Answer:
        """The extractive answer, never quoting an injected instruction; with ``error``, a notice naming it
        (and no translations: the backend is down)."""
        if error is None:
            return guarded_extractive_answer(request)
        log.warning("the language model failed: %s", error, exc_info=error if log.isEnabledFor(logging.DEBUG) else None)
        return guarded_extractive_answer(request, render("answer", request.language, "notice_error", error=_short(error)))

    # -- translations -----------------------------------------------------------------------------
    def translate_passages(self, answer: Answer) -> dict[int, str]:
        """English machine translations of the cited Arabic sentences of ``answer``, keyed by marker."""
        return translate_citations(self._complete, answer)

    def _translated_twice(self, answer: Answer) -> Iterator[Answer]:
        """The answer, then (if translations apply) the same answer with its translations."""
        if not self._wants_translation(answer):
            yield answer
            return
        yield answer
        translations = self.translate_passages(answer)
        if translations:
            yield replace(answer, translations=translations)

    def _wants_translation(self, answer: Answer) -> bool:
        return self.translate and answer.language == "en" and bool(answer.citations) and not answer.abstained


def _short(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
