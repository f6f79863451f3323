"""The writing stages' contract: the ``Answerer`` Protocol, the records passed between the stages
(``AnswerRequest``, ``Passage``, ``Reply``, ``Draft``) and ``make_answer``, the one place an ``Answer`` is built."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from assistant.answer.decide import Decision
from assistant.records import Answer, Citation, Hit, Turn
from assistant.retrieval.search import SearchResult


@dataclass(frozen=True)
class AnswerRequest:
    """What the writing stages are given once retrieval and the decision are done.

    Attributes:
        asked: The question as the user typed it (the extractive answer echoes it).
        question: The checked question (whitespace collapsed); a model's answer echoes this one.
        language: ``"en"`` or ``"ar"``: the language of the question and of the answer.
        query: The question retrieval used: ``question``, or the standalone rewrite of a follow-up.
        result: The retrieved passages.
        decision: Answer, partial or abstain, with the evidence sentences.
    """

    asked: str
    question: str
    language: str
    query: str
    result: SearchResult
    decision: Decision


@dataclass(frozen=True)
class Passage:
    """A passage as a writer was given it.

    Attributes:
        number: Its rank among the retrieved passages, so that ``[number]`` is ``Answer.passages[number - 1]``.
        hit: The retrieved passage.
        prompt_text: The text the writer saw (cut at a word when long, delimiters defused).
    """

    number: int
    hit: Hit
    prompt_text: str


@dataclass(frozen=True)
class Reply:
    """What a writer wrote, before it is verified.

    Attributes:
        text: The raw reply.
        passages: The passages the writer was given.
        instructions: The prompt's own words (without the passages): a reply that recites them is
            not an answer.
    """

    text: str
    passages: tuple[Passage, ...] = ()
    instructions: str = ""


@dataclass(frozen=True)
class Draft:
    """A reply after verification.

    Attributes:
        status: ``ok``, ``not_found``, ``no_citation``, ``incomplete`` (markers stood in for the facts),
            ``injection`` or ``wrong_language``; ``extractive`` when nothing was written (the
            evidence is quoted).
        text: The cleaned answer text (markers validated, unverifiable quotes unquoted).
        markers: Valid passage numbers cited, in order of appearance.
        unquoted: Quotations that were not verbatim in a cited passage.
    """

    status: str
    text: str
    markers: tuple[int, ...] = ()
    unquoted: tuple[str, ...] = ()


@runtime_checkable
class Answerer(Protocol):
    """Writes the answer to a question whose passages were retrieved and whose evidence was decided.

    ``Assistant.ask_stream`` drives it: ``rewrite`` (before retrieval), then ``write`` (partial answers
    stream out while it writes), ``verify``, ``finish``; ``fallback`` when the evidence does not answer
    or the writer failed. ``answer.extractive.ExtractiveAnswerer`` quotes the evidence;
    ``answer.llm.LLMAnswerer`` has a chat model write.
    """

    def rewrite(self, question: str, language: str, history: Sequence[Turn]) -> str | None:
        """A standalone form of a follow-up question, or None (retrieval then reads the history)."""
        ...

    def write(self, request: AnswerRequest, retry: bool = False) -> Generator[Answer, None, Reply]:
        """Yield partial answers while writing; return the reply. ``retry``: the last reply was in the
        wrong language. Raises ``LLMError`` when a model fails."""
        ...

    def verify(self, request: AnswerRequest, reply: Reply) -> Draft:
        """Check a reply against the passages it was written from."""
        ...

    def finish(self, request: AnswerRequest, draft: Draft) -> Iterator[Answer]:
        """The final answer of a verified draft (the last one yielded), or the fallback with a notice."""
        ...

    def fallback(self, request: AnswerRequest, error: BaseException | None = None) -> Answer:
        """The extractive answer (an abstention when the evidence does not answer); with ``error``, a
        notice naming why the writer failed."""
        ...


def make_answer(
    question: str,
    language: str,
    text: str,
    *,
    mode: str = "extractive",
    abstained: bool = False,
    citations: Sequence[Citation] = (),
    passages: Sequence[Hit] = (),
    notice: str | None = None,
    retrieval_query: str = "",
    outcome: str = "",
    missing: Sequence[str] = (),
) -> Answer:
    """An ``Answer``, by keyword (see ``records.Answer`` for the fields)."""
    return Answer(
        question=question,
        language=language,
        text=text,
        abstained=abstained,
        citations=tuple(citations),
        passages=tuple(passages),
        mode=mode,
        notice=notice,
        retrieval_query=retrieval_query,
        outcome=outcome,
        missing=tuple(missing),
    )
