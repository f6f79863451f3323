"""Rewriting a follow-up question into a standalone one with a chat model (``prompts/rewrite.*.toml``),
so retrieval sees what is asked rather than a pronoun."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from assistant.answer.generate import CompleteFunction, truncate
from assistant.answer.prompts import render
from assistant.errors import LLMError
from assistant.records import Turn
from assistant.text.normalize import detect_language

log = logging.getLogger("assistant.llm")

REWRITE_MAX_TOKENS = 60
#: The last turns shown to the model, each cut to this many characters.
HISTORY_TURNS = 4
HISTORY_CHARS = 300


def rewrite_messages(question: str, history: Sequence[Turn], language: str) -> list[BaseMessage]:
    """The prompt: the last turns (markers removed) and the question to make standalone."""
    lines = []
    for turn in list(history)[-HISTORY_TURNS:]:
        who = "User" if turn.role == "user" else "Assistant"
        content = re.sub(r"\[\d+\]", "", " ".join(turn.content.split()))
        lines.append(f"{who}: {truncate(content, HISTORY_CHARS)}")
    return [
        SystemMessage(render("rewrite", language, "system")),
        HumanMessage(render("rewrite", language, "user", history="\n".join(lines), question=question)),
    ]


def rewrite_question(complete: CompleteFunction, question: str, history: Sequence[Turn], language: str) -> str | None:
    """A standalone version of a follow-up question, or None when the model gives nothing usable
    (no reply, a failure, or a question in another language)."""
    try:
        reply = complete(rewrite_messages(question, history, language), REWRITE_MAX_TOKENS)
    except LLMError as exc:
        log.warning("could not rewrite the follow-up question %r: %s", question, exc)
        return None
    line = next((ln for ln in reply.splitlines() if ln.strip()), "")
    line = re.sub(r"^\s*(?:rewritten|standalone)?\s*(?:standalone\s*)?question\s*[:：]\s*", "", line, flags=re.IGNORECASE)
    line = line.strip().strip("\"'«»“”`").strip()
    if not line or len(line) > 300 or not re.search(r"\w", line):
        return None
    if detect_language(line) != language:
        log.info("rewrite %r changed the language of %r; keeping the original", line, question)
        return None
    return line
