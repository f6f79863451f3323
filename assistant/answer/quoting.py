"""The order in which evidence sentences are quoted (``quote_order``), shared by the decision and the
extractive answer: the sentence the decision judges is the one the answer quotes first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from assistant.answer.evidence import Evidence
from assistant.answer.qtype import focus_terms, has_answer_type, question_type
from assistant.records import Hit
from assistant.retrieval.plan import QueryPlan
from assistant.retrieval.search import title_credits
from assistant.text.normalize import tokenize

# How the evidence sentences are ordered for quoting (``quote_order``): by the share of the question each
# carries read under its document's headline (news names its subject once, in the headline and the lead,
# and the fact in a later sentence: under the headline the lead and the fact share the subject, and the
# fact asked for decides), a bonus when it holds the kind of answer asked for (a date for "when", a
# name for "who"), its dense similarity relative to the best one, and the retriever's fused score. The
# decision reads the sentence quoted first (``decide.features_of``) and the names the quotes hold
# (``decide.signals_of``), so both take them from here. A cosine gap of 0.05 (the spread between a right
# and a merely related sentence in e5's compressed range) weighs as much as a thirteenth of the question:
# dense similarity breaks ties, it does not overrule the words (a headline is close to every question
# about its article). The retriever's fused score (0..1) stays a prior.
TYPE_BONUS = 0.3
DENSE_SCALE = 1.5
RETRIEVAL_SCALE = 0.5
# Further quotes must be this close to the best one in that order, at most MAX_QUOTES in all; a quote
# from another document than the best one's must be closer (it is more often about another event).
QUOTE_GAP = 0.15
QUOTE_GAP_OTHER_DOCUMENT = 0.05
MAX_QUOTES = 3
# A quote from another article must also hold every concept of the question the first quote holds: a
# sentence about another event shares some of the question's words, not the first quote's subject. On
# the fit split of bench/english_set.py it costs no hit and no right citation (citation precision 0.966
# with and without it at the shipped ranking, 0.953 → 0.965 with an earlier one).


def context_concepts(evidence: Evidence, plan: QueryPlan, weights: dict[str, float]) -> dict[str, float]:
    """The question's concepts the evidence sentence holds read under its document's title, with their
    credit (``search.title_credits``), by label."""
    concepts = [(concept.label, concept.terms) for concept in plan.concepts if concept.label in weights]
    return title_credits(concepts, frozenset(tokenize(evidence.sentence)), frozenset(tokenize(evidence.hit.title or "")))


def context_coverage(evidence: Evidence, held: dict[str, float], weights: dict[str, float]) -> float:
    """Share of the question's concepts (rarity-weighted) the evidence sentence holds read under its
    document's title (``held``, from ``context_concepts``); never below the evidence's own coverage."""
    total = sum(weights.values())
    if total <= 0:
        return evidence.coverage
    return max(evidence.coverage, sum(weights[label] * credit for label, credit in held.items()) / total)


def quote_order(evidence: Sequence[Evidence], question: str, plan: QueryPlan | None = None,
                weights: dict[str, float] | None = None) -> list[Evidence]:
    """The evidence to quote, best first: the strongest sentence, then any nearly as strong."""
    if not evidence:
        return []
    kind = question_type(question)
    focus = focus_terms(question, plan.concepts) if plan is not None else None
    top_dense = max((e.dense for e in evidence if e.dense is not None), default=None)
    top_score = max(e.hit.score for e in evidence)
    if plan is not None and weights:
        concepts = {id(e): context_concepts(e, plan, weights) for e in evidence}
        coverage = {id(e): context_coverage(e, concepts[id(e)], weights) for e in evidence}
        held = {key: set(value) for key, value in concepts.items()}
    else:
        coverage = {id(e): e.coverage for e in evidence}
        held = {id(e): set(e.covered) for e in evidence}

    def strength(e: Evidence) -> float:
        value = coverage[id(e)] + (TYPE_BONUS if kind and has_answer_type(e.sentence, kind, question, focus) else 0.0)
        if top_dense is not None and e.dense is not None:
            value += DENSE_SCALE * (e.dense - top_dense)
        return value + RETRIEVAL_SCALE * (e.hit.score - top_score)

    scored = sorted(((strength(e), -i, e) for i, e in enumerate(evidence)), key=lambda t: (t[0], t[1]), reverse=True)
    best, _, first = scored[0]

    def joins(value: float, e: Evidence) -> bool:
        if e is first:
            return True
        if e.hit.chunk.doc_id == first.hit.chunk.doc_id:
            return value >= best - QUOTE_GAP
        # Another article is quoted beside the first only when it is nearly as strong and its sentence
        # holds everything of the question the first one's holds: otherwise it is about another event.
        return value >= best - QUOTE_GAP_OTHER_DOCUMENT and held[id(e)] >= held[id(first)]

    return [e for value, _, e in scored if joins(value, e)][:MAX_QUOTES]


def lead_with(hits: Sequence[Hit], first: Sequence[Hit]) -> list[Hit]:
    """``hits`` with ``first`` (the quoted passages, their best spans the quoted sentences) leading, in
    that order, ranks renumbered: sentence-level evidence is the last ranking step, for the quotes of
    the extractive answer and for the passages a model is shown and cites by number alike."""
    leading = {h.chunk.chunk_id for h in first}
    return [replace(h, rank=rank) for rank, h in enumerate([*first, *(h for h in hits if h.chunk.chunk_id not in leading)], 1)]
