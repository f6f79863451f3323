"""Generation: the passages a model is shown, the prompt built from them, and the model's reply
streamed out as partial answers, each showing only complete, valid markers."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.answer.base import AnswerRequest, Passage, Reply, make_answer
from assistant.answer.extractive import select_evidence
from assistant.answer.injection import defang, find_instruction_payloads, is_instruction_like
from assistant.answer.prompts import render, template
from assistant.answer.verify import contains_not_found, visible_partial
from assistant.records import Answer, Hit
from assistant.text.normalize import fold

#: Streams a chat model's reply to ``messages`` piece by piece, at most ``max_tokens``; raises ``LLMError``.
StreamFunction = Callable[[list[BaseMessage], int], Iterator[str]]
#: The whole reply of a chat model to ``messages``, at most ``max_tokens``; raises ``LLMError``.
CompleteFunction = Callable[[list[BaseMessage], int], str]


def truncate(text: str, limit: int) -> str:
    """``text`` with its whitespace collapsed, cut at a word (with " …") when longer than ``limit``."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[: cut if cut > limit // 2 else limit].rstrip(" ,.،") + " …"


def select_passages(hits: Sequence[Hit], max_passages: int, max_chars: int, evidence_only: bool = True) -> list[Passage]:
    """The passages the model sees, each numbered by its rank among ``hits``.

    With ``evidence_only`` these are the hits the extractive answer would quote (the top one and
    its near ties, ``answer.extractive.select_evidence``), at most ``max_passages``: a small model
    given only strong passages cites fewer unrelated ones, and reads a shorter prompt. Otherwise the
    top ``max_passages`` hits. Passages longer than ``max_chars`` are cut in the prompt.
    """
    if evidence_only:
        chosen = {h.chunk.chunk_id for h in select_evidence(list(hits), max_quotes=max_passages)}
    else:
        chosen = {h.chunk.chunk_id for h in hits[:max_passages]}
    return [
        Passage(rank, hit, defang(truncate(hit.chunk.text, max_chars)))
        for rank, hit in enumerate(hits, 1)
        if hit.chunk.chunk_id in chosen
    ]


def build_messages(question: str, language: str, passages: Sequence[Passage], retry: bool = False) -> list[BaseMessage]:
    """The system and user messages for one answer (``prompts/answer.<lang>.toml``); ``retry`` adds the
    stronger language instruction."""
    rendered = "\n".join(
        render("answer", language, "passage", number=p.number, title=defang(p.hit.title or p.hit.chunk.doc_id),
               text=p.prompt_text)
        for p in passages
    )
    numbers = ", ".join(f"[{p.number}]" for p in passages)
    user = render("answer", language, "user", passages=rendered, question=question, count=len(passages), numbers=numbers)
    if retry:
        user += render("answer", language, "language_retry")
    return [SystemMessage(render("answer", language, "system")), HumanMessage(user)]


def message_text(content: object) -> str:
    """The text of a LangChain message's content (a string, or a list of content blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content or "")


def instructions_of(messages: Sequence[BaseMessage]) -> str:
    """The prompt's own words: every message with the passages block cut out."""
    text = "\n".join(message_text(m.content) for m in messages)
    return re.sub(r"<passages>\n.*\n</passages>", " ", text, flags=re.DOTALL)


def stream_reply(stream: StreamFunction, request: AnswerRequest, passages: Sequence[Passage], max_tokens: int,
                 retry: bool = False) -> Generator[Answer, None, Reply]:
    """Have the model answer ``request.query`` from ``passages``, yielding what may be shown of the
    reply as it grows (``verify.visible_partial``); returns the whole reply, unverified.

    Once the reply starts repeating an injected instruction, or says NOT FOUND, nothing more is
    shown: the verified answer replaces it. Raises ``LLMError`` when the model fails.
    """
    language = request.language
    messages = build_messages(request.query, language, passages, retry=retry)
    phrases = list(template("answer", language, "not_found_phrases"))
    payloads = find_instruction_payloads([h.chunk.text for h in request.result.hits])
    numbers = [p.number for p in passages]
    hits = tuple(request.result.hits)
    raw = ""
    shown = ""
    muted = False  # set for good once the reply echoes an injected instruction
    for piece in stream(messages, max_tokens):
        raw += piece
        if muted:
            continue
        if is_instruction_like(raw) or any(p in fold(raw) for p in payloads) or contains_not_found(raw, phrases):
            muted = True  # the final answer replaces what was shown
            continue
        visible = visible_partial(raw, numbers, phrases, payloads)
        if visible and visible != shown:
            shown = visible
            yield make_answer(request.question, language, visible, mode="llm", passages=hits, retrieval_query=request.query)
    return Reply(raw, tuple(passages), instructions_of(messages))
