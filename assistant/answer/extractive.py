"""Extractive answers: the evidence sentences quoted verbatim with ``[n]`` markers, glossed in the
question's language; ``ExtractiveAnswerer``, the ``Answerer`` without a model."""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Iterator, Sequence

from assistant.answer.base import AnswerRequest, Draft, Reply, make_answer
from assistant.answer.decide import Decision
from assistant.answer.prompts import render
from assistant.answer.quoting import lead_with, quote_order
from assistant.records import Answer, Citation, Hit, Turn
from assistant.retrieval.search import SearchResult
from assistant.text.gloss import gloss_arabic
from assistant.text.lexicon import translate_phrases
from assistant.text.normalize import fold, raw_tokens, text_language

# Quote a further passage only when it is nearly as strong as the best one. Fused scores lie in
# [0, 1]; on the dev set a second passage from the same article within 0.2 of the best was right
# 9 times in 10, one from another article within 0.1 only half the time.
SAME_DOC_GAP = 0.2
OTHER_DOC_GAP = 0.05


def empty_index_answer(question: str, language: str) -> Answer:
    """The answer when nothing is indexed yet: how to add documents."""
    return make_answer(question, language, render("extractive", language, "empty_index"), abstained=True)


def extractive_answer(question: str, language: str, result: SearchResult, decision: Decision, notice: str | None = None,
                      avoid: Callable[[str], bool] | None = None) -> Answer:
    """Quote the best evidence sentences verbatim, each with its ``[n]`` marker.

    A partial answer says first what the sources do not give; an abstention quotes nothing (the
    closest passages stay in ``Answer.passages``, shown as such). ``avoid`` names sentences never
    to quote (the model path passes its injected-instruction test).
    """
    hits = result.hits
    retrieval_query = result.query or question

    def abstention(passages: Sequence[Hit]) -> Answer:
        return make_answer(question, language, render("extractive", language, "abstain"), abstained=True, passages=passages,
                           notice=notice, retrieval_query=retrieval_query, outcome="abstain", missing=decision.missing)

    if decision.outcome == "abstain" or not hits:
        return abstention(hits)
    # The evidence sentences replace the retriever's choice of sentence in the top passages, and
    # the strongest of them are quoted.
    evidence = tuple(e for e in decision.evidence if avoid is None or not avoid(e.sentence))
    chosen_spans = {e.hit.chunk.chunk_id: e.hit for e in evidence}
    hits = [chosen_spans.get(h.chunk.chunk_id, h) for h in hits]
    if avoid is not None:
        hits = [h for h in hits if not avoid(h.best_text)]
    chosen = [e.hit for e in quote_order(evidence, result.query or question, result.plan, result.weights)] or select_evidence(hits)
    if not chosen:
        return abstention(result.hits)
    hits = lead_with(hits, chosen)
    citations = []
    lines = []
    quote_languages = set()
    for marker, hit in enumerate(chosen, 1):
        citation = Citation.from_hit(marker, hit, hit.best_start, hit.best_end)
        quote = citation.quote
        quote_language = text_language(quote) or language
        quote_languages.add(quote_language)
        citations.append(citation)
        lines.append(render("extractive", language, "quote", text=quote, marker=marker))
        if language == "en" and quote_language == "ar":
            terms = gloss_terms(quote, result.plan.names)
            if terms:
                lines.append(render("extractive", language, "gloss", terms=" · ".join(terms)))
        elif language == "ar" and quote_language == "en":
            terms = gloss_english(quote)
            if terms:
                lines.append(render("extractive", language, "gloss", terms=" · ".join(terms)))
    if decision.outcome == "partial":
        intro = render("extractive", language, "partial", missing=describe_missing(decision.missing, question, language))
    else:
        intro = render("extractive", language, "intro" if quote_languages <= {language} else "intro_other_language")
    text = render("extractive", language, "answer", intro=intro, quotes="\n".join(lines))
    return make_answer(question, language, text, citations=citations, passages=hits, notice=notice,
                       retrieval_query=retrieval_query, outcome=decision.outcome, missing=decision.missing)


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


def gloss_terms(quote: str, names: dict[str, list[str]], max_terms: int = 10) -> list[str]:
    """English key terms of an Arabic quote: the question's names found in it, then lexicon glosses."""
    words = set(raw_tokens(fold(quote)))
    terms = [name.title() for name, variants in names.items() if words & set(variants)]
    shown = {v for variants in names.values() for v in variants}  # not transliterated again
    for _, english in gloss_arabic(quote, max_terms=max_terms, skip_words=shown):
        if english.title() not in terms and english not in terms:
            terms.append(english)
    return terms[:max_terms]


def gloss_english(quote: str, max_terms: int = 10) -> list[str]:
    """Arabic key terms of an English quote, from the lexicon (the mirror of ``gloss_terms``)."""
    terms: list[str] = []
    for _, forms, _, _ in translate_phrases(quote):
        if forms and forms[0] not in terms:
            terms.append(forms[0])
        if len(terms) >= max_terms:
            break
    return terms


_MISSING_KIND = {"en": {"date": "give a date", "number": "give a figure"}, "ar": {"date": "تذكر تاريخًا", "number": "تذكر رقمًا"}}


def describe_missing(missing: Sequence[str], question: str, language: str) -> str:
    """What a partial answer lacks, as a verb phrase: ``mention “Emmanuel Macron” or give a date``.

    Names are shown as the question wrote them; names next to each other in the question are one.
    """
    spans = []
    kinds = []
    for item in missing:
        if item in _MISSING_KIND[language]:
            kinds.append(_MISSING_KIND[language][item])
            continue
        match = re.search(re.escape(item), question, re.I)
        spans.append((match.start(), match.end()) if match else (len(question) + len(spans), -1, item))
    merged: list[str] = []
    last_end = None
    for span in sorted(spans):
        if len(span) == 3:
            merged.append(span[2])
            continue
        start, end = span
        if last_end is not None and merged and not question[last_end:start].strip():
            merged[-1] = merged[-1] + question[last_end:end]
        else:
            merged.append(question[start:end])
        last_end = end
    quote = (lambda name: f"“{name}”") if language == "en" else (lambda name: f"«{name}»")
    mention = "mention " if language == "en" else "تذكر "
    parts = ([mention + " or ".join(quote(n) for n in merged)] if language == "en" and merged
             else [mention + " ولا ".join(quote(n) for n in merged)] if merged else []) + kinds
    return (" or " if language == "en" else " ولا ").join(parts)


class ExtractiveAnswerer:
    """The ``Answerer`` without a model: nothing is rewritten or written; the evidence is quoted.

    Its answers echo the question as the user typed it (``AnswerRequest.asked``).
    """

    def rewrite(self, question: str, language: str, history: Sequence[Turn]) -> str | None:
        return None  # the retriever reads a follow-up's history itself

    def write(self, request: AnswerRequest, retry: bool = False) -> Generator[Answer, None, Reply]:
        return Reply("")
        yield  # a generator that streams nothing: the quotes come whole

    def verify(self, request: AnswerRequest, reply: Reply) -> Draft:
        return Draft("extractive", "")  # quotes are verbatim by construction

    def finish(self, request: AnswerRequest, draft: Draft) -> Iterator[Answer]:
        yield self.fallback(request)

    def fallback(self, request: AnswerRequest, error: BaseException | None = None) -> Answer:
        return extractive_answer(request.asked, request.language, request.result, request.decision)
