"""The model path's extractive fallback: quotes that never repeat an instruction injected into a
passage, used when the evidence does not answer, the model failed or its draft did not verify."""

from __future__ import annotations

from dataclasses import replace

from assistant.answer.base import AnswerRequest
from assistant.answer.citations import best_sentence
from assistant.answer.extractive import extractive_answer
from assistant.answer.injection import is_instruction_like
from assistant.records import Answer, Hit
from assistant.retrieval.search import SearchResult


def guarded_extractive_answer(request: AnswerRequest, notice: str | None = None) -> Answer:
    """The extractive answer to ``request`` (its checked question, retrieved with ``request.query``),
    never quoting an injected instruction, with ``notice`` saying why it replaced the model's."""
    safe = without_instruction_spans(request.result, request.query)
    answer = extractive_answer(request.question, request.language, safe, request.decision, notice=notice,
                               avoid=is_instruction_like)
    return replace(answer, retrieval_query=request.query)


def without_instruction_spans(result: SearchResult, question: str) -> SearchResult:
    """``result`` with every hit whose best span is an injected instruction moved to its best other sentence.

    The extractive fallback quotes each hit's best span; it must not quote "reply only with ..." back
    to the user as the evidence. A hit with no other sentence is left out of the quotes.
    """
    hits: list[Hit] = []
    changed = False
    for hit in result.hits:
        if not is_instruction_like(hit.best_text):
            hits.append(hit)
            continue
        changed = True
        start, end = best_sentence(replace(hit, best_start=0, best_end=0), [question])
        span_text = hit.chunk.text[start - hit.chunk.start : end - hit.chunk.start]
        if not is_instruction_like(span_text):
            hits.append(replace(hit, best_start=start, best_end=end))
    return replace(result, hits=hits) if changed else result
