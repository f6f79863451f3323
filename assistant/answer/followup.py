"""Follow-up questions: telling one apart, what retrieval borrows from the conversation, the
standalone rewrite (when an answerer makes one) and passing over passages the last answer quoted."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from assistant.answer.base import Answerer
from assistant.answer.qtype import question_type
from assistant.records import Hit, Turn
from assistant.text.normalize import tokenize

_FOLLOWUP_EN = re.compile(r"\b(he|she|it|they|him|her|his|hers|its|their|them|there|that|this|those|these|then)\b", re.I)
_FOLLOWUP_AR = re.compile(r"(?:^|\s)(هو|هي|هم|هناك|ذلك|تلك|هذا|هذه|عنه|عنها|منه|منها|له|لها|فيه|فيها)(?=\s|$|[؟?.!،,])|\w{3,}(?:ه|ها|هم|هما)(?=\s|$|[؟?.!،,])")

# A follow-up asks for something the previous answer did not say: a passage that answer already
# quoted loses this much of its fused score, enough to break a near tie and no more.
ALREADY_QUOTED_PENALTY = 0.05


def is_followup(question: str) -> bool:
    """Whether a question leans on the conversation (a pronoun, or too few words of its own)."""
    if len(tokenize(question)) <= 2:
        return True
    return bool(_FOLLOWUP_EN.search(question) or _FOLLOWUP_AR.search(question))


def followup_context(question: str, history: Sequence[Turn]) -> tuple[list[str], str]:
    """What retrieval borrows for a follow-up: the previous user question (an extra query) and the
    last answer (context); nothing for a question that stands alone."""
    if not history or not is_followup(question):
        return [], ""
    extra = [t.content for t in history if t.role == "user"][-1:]
    context = next((t.content for t in reversed(history) if t.role == "assistant"), "")
    return extra, context


def standalone_question(answerer: Answerer, question: str, language: str, history: Sequence[Turn]) -> str | None:
    """The answerer's standalone form of a follow-up, or None to retrieve with the history instead.

    A rewrite that changed what is asked ("when did he say it?" → "what did Guterres say?") would
    answer another question: it is not used.
    """
    if not history or not is_followup(question):
        return None
    rewritten = answerer.rewrite(question, language, history)
    if rewritten and question_type(rewritten) == question_type(question):
        return rewritten
    return None


def prefer_new_passages(hits: Sequence[Hit], previous_answer: str) -> list[Hit]:
    """``hits`` re-ranked with the passages ``previous_answer`` quoted lowered by ``ALREADY_QUOTED_PENALTY``."""
    folded_answer = " ".join(previous_answer.split())
    rescored = []
    for hit in hits:
        quoted = " ".join(hit.best_text.split()) in folded_answer
        rescored.append((hit.score - (ALREADY_QUOTED_PENALTY if quoted else 0.0), hit))
    rescored.sort(key=lambda pair: -pair[0])
    return [replace(hit, score=score, rank=rank) for rank, (score, hit) in enumerate(rescored, 1)]
