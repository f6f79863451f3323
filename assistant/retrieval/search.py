"""Hybrid retrieval: dense (cross-lingual) + BM25 over folded Arabic, fused.

Dense cosine and BM25 scores live on different scales. We over-fetch from each retriever, rescore
the union of candidates with both (exact cosine from the stored vectors, BM25 from the full score
array), normalize each score over the candidates, and fuse with a convex combination. Reciprocal
rank fusion (Cormack et al. 2009; txtai, haystack) is kept as an option: on the bilingual dev set
it lost to the convex combination (hit@1 0.80 vs 0.87), because RRF discards how far apart the
scores are, and a passage that BM25 ranks first by a wide margin (the only one naming the person
asked about) deserves more than one rank step. Bruch et al. (2023, "An Analysis of Fusion Functions
for Hybrid Retrieval") report the same.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Iterable, Set as AbstractSet
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from assistant.retrieval.embeddings import Embedder
from assistant.text.normalize import (
    ARABIC_STOPWORDS,
    ENGLISH_STOPWORDS,
    clean_for_embedding,
    fold,
    raw_tokens,
    text_language,
    tokenize,
)
from assistant.records import Chunk, Document, Hit
from assistant.stores.base import ChunkBackend
from assistant.stores.lexical import idf as bm25_idf
from assistant.retrieval.plan import CONTEXT_WEIGHT, FOLLOWUP_WEIGHT, QueryPlan, concept_weights, plan_query

# RRF constant: 60 is the value of the original paper and of most libraries; it keeps one list's
# top rank from drowning the other list's.
RRF_K = 60
# Weight of the normalized dense score in the convex fusion (BM25 gets the rest). Swept on the dev
# set (candidates normalized over the over-fetched pool): 0.2-0.35 hit@1 0.87, 0.4-0.5 0.80, 0.8 0.67. Dense still decides whenever BM25 finds
# nothing, which is the case for English questions with no dictionary or name match.
DENSE_WEIGHT = 0.3
# ...but a long query (a pasted passage, a claim of several sentences) has many dictionary
# translations of common words, and BM25 over them turns to noise: on 400 English hadith
# translations searched against 2,500 Arabic records (bench/hadith.py) recall@10 was 0.35 at 0.3,
# 0.47 at 0.5 and 0.54 at 0.7 (LangChain baseline: 0.49). Past LONG_QUERY_WORDS content words the
# dense weight moves to DENSE_WEIGHT_LONG.
DENSE_WEIGHT_LONG = 0.7
LONG_QUERY_WORDS = 12
# The lexical side of the fusion mixes BM25 (normalized by its maximum) with concept coverage: the
# rarity-weighted share of the question's concepts a passage holds in either language (a word, its
# translations, its spellings). BM25 alone favours passages in the question's language, which match its
# words directly; coverage is comparable across languages.
COVERAGE_MIX = 0.5
# The lexical side also reads each top passage sentence by sentence, under its document's headline: the
# rarity-weighted share of the question's concepts held by its best sentence together with the title.
# News names its subject once, in the headline and the lead, and states each fact in a later sentence
# ("The restoration cost 11.4 million dinars"): over the whole passage the lead holds the most of a
# question's words and wins; read under the headline, the lead and the sentence with the fact share the
# subject, and the fact the question asks for decides. SENTENCE_MIX of the lexical side goes to it
# (taken from COVERAGE_MIX and BM25 in proportion); only the RERANK_DEPTH best fused candidates are
# read this way (their documents' titles are needed), and only for questions: a long query (a pasted
# passage) matches a passage, not a sentence. A concept only the title holds counts TITLE_CREDIT.
# TITLE_CREDIT, SENTENCE_MIX and CROSS_LANGUAGE_DENSE are fitted together by bench/fit_ranking.py on the
# fit questions of the mixed corpus (the fit split of bench/english_set.py and the seeds' fit questions,
# 93 in all; hit@1 + hit@5 0.796 + 0.957 at these values against 0.785 + 0.957 at session 5's hand-set
# 0.9 / 1.0 / 0.08). A credit of 1 means a concept the headline holds counts for every sentence under it
# as if the sentence named it; a lower credit, the sentence naming it itself first, did no better there.
SENTENCE_MIX = 1.0
TITLE_CREDIT = 1.0
RERANK_DEPTH = 20
# e5 gives a passage in the question's own language a higher cosine than an equally relevant one in the
# other language (on the fit split: 0.86 for an Arabic article on another subject against 0.78 for the
# English passage that answers). Over a corpus in both languages, the cosine of a passage in the other
# language than the question's gets CROSS_LANGUAGE_DENSE added before the fusion; the hits keep the
# true cosine. Over a corpus in one language every candidate gets it or none does, and the min-max
# scaling cancels it.
CROSS_LANGUAGE_DENSE = 0.06
# Each retriever contributes this many candidates before fusion (at least): enough that a passage
# ranked well by one and poorly by the other still gets fused.
OVERFETCH = 50
# The dense search runs in one of these threads while the query is planned and BM25 searched: FAISS
# releases the GIL, so with a core free its search (1-1.5 ms of a 1M-passage query) overlaps the
# lexical side instead of adding to it (BENCHMARKS.md, "Retrieval latency after profiling").
_BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dense-search")


def _renew_beside() -> None:
    """A forked child has none of the parent's threads: it gets its own executor."""
    global _BESIDE
    _BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="dense-search")


os.register_at_fork(after_in_child=_renew_beside)


@dataclass
class SearchResult:
    """Hits plus the signals used to decide whether the corpus answers at all."""

    hits: list[Hit]
    plan: QueryPlan
    top_dense: float = 0.0
    query: str = ""
    query_vector: np.ndarray | None = None
    weights: dict[str, float] | None = None  # concept label → rarity weight (``concept_weights``)


def reciprocal_rank_fusion(rankings: Sequence[tuple[Sequence[str], float]], k: int = RRF_K) -> dict[str, float]:
    """Fuse ranked lists of chunk ids: ``sum(weight / (k + rank))`` over the lists an id appears in."""
    fused: dict[str, float] = {}
    for rows, weight in rankings:
        for rank, row in enumerate(rows, 1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


def convex_fusion(dense: dict[str, float], lexical: dict[str, float], dense_weight: float,
                  groups: dict[str, str] | None = None, normalize: bool = True) -> dict[str, float]:
    """``w * minmax(dense) + (1 - w) * lexical / max(lexical)`` over the union of candidates.

    BM25 is divided by its maximum rather than min-max scaled: a row with no shared term must score
    zero, not the bottom of a range. With ``groups`` (row → the language of its text) the maximum is
    taken within each language: a question matches passages in its own language with its own words
    and passages in the other language only through translations and name spellings, so one maximum
    over both would let the same-language passages win on BM25 alone. Normalized per language, the
    best lexical match in each language scores 1 and the dense side, which crosses languages,
    decides between them.
    """
    rows = set(dense) | set(lexical)
    if not rows:
        return {}
    low, span = 0.0, 1.0
    if dense:
        low, high = min(dense.values()), max(dense.values())
        span = high - low if high > low else 1.0
    lex_max = max(lexical.values()) if lexical else 0.0
    group_max: dict[str, float] = {}
    if groups:
        for row, score in lexical.items():
            group = groups.get(row, "")
            group_max[group] = max(group_max.get(group, 0.0), score)
    fused = {}
    for row in rows:
        d = (dense[row] - low) / span if row in dense else 0.0
        top = group_max.get(groups.get(row, ""), 0.0) if groups else lex_max
        if not normalize:
            top = 1.0
        lex = lexical.get(row, 0.0) / top if top > 0 else 0.0
        fused[row] = dense_weight * d + (1.0 - dense_weight) * lex
    return fused


def best_span(chunk: Chunk, terms: dict[str, float], idf: dict[str, float] | None = None) -> tuple[int, int, float]:
    """The sentence of ``chunk`` sharing the most (idf-weighted) query terms: ``(start, end, score)``.

    With no lexical overlap at all, the chunk's longest sentence is returned with score 0 (the
    caller may then rank sentences densely).
    """
    spans = chunk.sentences or ((chunk.start, chunk.end),)
    best = None
    for (start, end), sentence_terms in zip(spans, _sentence_terms(chunk, spans)):
        score = sum(w * (idf.get(t, 1.0) if idf else 1.0) for t, w in terms.items() if t in sentence_terms)
        key = (score, end - start)
        if best is None or key > best[0]:
            best = (key, start, end)
    assert best is not None
    return best[1], best[2], best[0][0]


# What is worked out from a chunk's text alone, kept per chunk (id and offsets): the same passages
# come back query after query, and tokenizing them was a third of a warm query's time.
_TERMS_CACHE: "OrderedDict[tuple[str, int, int], frozenset[str]]" = OrderedDict()
_LANGUAGE_CACHE: "OrderedDict[tuple[str, int, int], str]" = OrderedDict()
_SENTENCES_CACHE: "OrderedDict[tuple[str, int, int], tuple[frozenset[str], ...]]" = OrderedDict()
_TERMS_CACHE_SIZE = 20_000


def _remember(cache: OrderedDict, key: tuple, value):
    cache[key] = value
    if len(cache) > _TERMS_CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _chunk_terms(chunk: Chunk) -> frozenset[str]:
    """The chunk's lexical terms."""
    key = (chunk.chunk_id, chunk.start, chunk.end)
    terms = _TERMS_CACHE.get(key)
    return terms if terms is not None else _remember(_TERMS_CACHE, key, frozenset(tokenize(chunk.text)))


def _chunk_language(chunk: Chunk) -> str:
    """``text_language`` of the chunk's text."""
    key = (chunk.chunk_id, chunk.start, chunk.end)
    language = _LANGUAGE_CACHE.get(key)
    return language if language is not None else _remember(_LANGUAGE_CACHE, key, text_language(chunk.text))


_TITLE_CACHE: "OrderedDict[str, frozenset[str]]" = OrderedDict()


def _title_terms(title: str) -> frozenset[str]:
    """The lexical terms of a document title."""
    terms = _TITLE_CACHE.get(title)
    return terms if terms is not None else _remember(_TITLE_CACHE, title, frozenset(tokenize(title)))


def title_credits(concepts: Iterable[tuple[str, AbstractSet[str]]], sentence: AbstractSet[str],
                  title: AbstractSet[str]) -> dict[str, float]:
    """The credit of each concept (label, terms) a sentence holds read under its document's title: 1 when
    the sentence holds it, ``TITLE_CREDIT`` when only the title does (see ``SENTENCE_MIX``). The quote
    order reads it; ``_sentence_coverage`` sums the same credits inline (a dict per sentence cost 0.5
    ms of a warm 1M-passage query, 4.3 ms)."""
    held = {}
    for label, terms in concepts:
        if terms & sentence:
            held[label] = 1.0
        elif terms & title:
            held[label] = TITLE_CREDIT
    return held


def _sentence_terms(chunk: Chunk, spans: Sequence[tuple[int, int]]) -> tuple[frozenset[str], ...]:
    """The lexical terms of each of ``spans`` (the chunk's sentences)."""
    key = (chunk.chunk_id, chunk.start, chunk.end)
    found = _SENTENCES_CACHE.get(key)
    if found is None or len(found) != len(spans):
        found = _remember(_SENTENCES_CACHE, key, tuple(frozenset(tokenize(chunk.text[a - chunk.start : b - chunk.start]))
                                                       for a, b in spans))
    return found


class HybridRetriever:
    """Searches one open index (any ``ChunkBackend``).

    Args:
        data: The open index.
        embedder: The embedder the index was built with.
        dense_weight: Weight of the dense score in the fusion (BM25 gets ``1 - dense_weight``);
            None (the default) picks ``DENSE_WEIGHT`` or, for long queries, ``DENSE_WEIGHT_LONG``.
        fusion: ``convex`` (default) or ``rrf``.
        per_language: Normalize BM25 within each language of the candidates (see ``convex_fusion``).
    """

    def __init__(self, data: ChunkBackend, embedder: Embedder, dense_weight: float | None = None, fusion: str = "convex",
                 per_language: bool = True, coverage_mix: float | None = None, sentence_mix: float | None = None) -> None:
        if dense_weight is not None and not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be between 0 and 1, got {dense_weight}")
        if fusion not in ("convex", "rrf"):
            raise ValueError(f"unknown fusion {fusion!r}; use convex or rrf")
        self.data = data
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.fusion = fusion
        self.per_language = per_language
        self.coverage_mix = COVERAGE_MIX if coverage_mix is None else coverage_mix
        self.sentence_mix = SENTENCE_MIX if sentence_mix is None else sentence_mix

    @staticmethod
    def is_long(query: str) -> bool:
        """Whether ``query`` is a pasted passage or a claim of several sentences rather than a question
        (more than ``LONG_QUERY_WORDS`` content words)."""
        words = {t for t in raw_tokens(fold(query)) if t not in ARABIC_STOPWORDS and t not in ENGLISH_STOPWORDS}
        return len(words) > LONG_QUERY_WORDS

    def weight_for(self, query: str) -> float:
        """The dense weight of the fusion for this query (see ``DENSE_WEIGHT_LONG``)."""
        if self.dense_weight is not None:
            return self.dense_weight
        return DENSE_WEIGHT_LONG if self.is_long(query) else DENSE_WEIGHT

    def embed_query(self, query: str) -> np.ndarray:
        return self.embedder.embed_queries([clean_for_embedding(query)])[0]

    def search(
        self,
        query: str,
        k: int = 5,
        *,
        mode: str = "hybrid",
        query_vector: np.ndarray | None = None,
        extra_queries: Sequence[str] = (),
        context_text: str = "",
    ) -> SearchResult:
        """Return the top ``k`` hits for ``query``.

        Args:
            query: The question or phrase.
            k: Number of hits.
            mode: ``hybrid``, ``dense`` or ``lexical`` (the last two for ablations and debugging).
            query_vector: A precomputed query embedding.
            extra_queries: Earlier turns of a conversation; they join the lexical query and the
                dense query at lower weight, so a follow-up ("where did he say it?") keeps its subject.
            context_text: The assistant's previous answer; its terms join the lexical query at a
                low weight (the names it quoted are what "he" refers to).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"unknown search mode {mode!r}; use hybrid, dense or lexical")
        data = self.data
        vocabulary = data.vocabulary
        fetch = max(OVERFETCH, 4 * k)
        dense_job: Future | None = None
        if mode in ("hybrid", "dense"):
            if query_vector is None:
                query_vector = self.embed_query(query)
                if extra_queries:
                    context = self.embed_query(" ".join([*extra_queries, query]))
                    query_vector = query_vector + context
                    query_vector = query_vector / max(float(np.linalg.norm(query_vector)), 1e-9)
            dense_job = _BESIDE.submit(data.dense_search, query_vector, fetch)  # runs while the query is planned and BM25 searched
            time.sleep(0)  # hands the GIL to that thread until FAISS releases it (planning would hold it)
        plan = plan_query(query, vocabulary)
        for extra in extra_queries:
            extra_plan = plan_query(extra, vocabulary)
            for term, weight in extra_plan.terms.items():
                plan.terms[term] = max(plan.terms.get(term, 0.0), FOLLOWUP_WEIGHT * weight)
            # A follow-up ("when did he say it?") asks about the earlier question's subject: its
            # concepts are the ones the evidence must carry.
            own = {c.label for c in plan.concepts}
            plan.concepts.extend(replace(c, inherited=True) for c in extra_plan.concepts if c.label not in own)
        if context_text:
            for term in set(tokenize(context_text)):
                plan.terms[term] = max(plan.terms.get(term, 0.0), CONTEXT_WEIGHT)
        weights = concept_weights(plan, vocabulary.document_frequency, data.n_live)
        lexical = data.lexical_search(plan.terms, fetch) if mode in ("hybrid", "lexical") and plan.terms else []
        dense: list[tuple[str, float]] = dense_job.result() if dense_job is not None else []
        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        candidate_chunks: dict[str, Chunk] | None = None
        if mode == "hybrid" and self.fusion == "convex":
            assert query_vector is not None
            candidates = sorted(set(dense_scores) | set(lexical_scores))
            # Rescore every candidate with both retrievers, so a passage one of them missed in its
            # top list is not treated as scoring zero there.
            dense_scores = data.dense_scores(candidates, query_vector)
            lexical_scores = data.lexical_scores(candidates, plan.terms) if plan.terms else {}
            groups = None
            candidate_chunks = data.get_chunks(candidates)  # once: grouping, coverage and the hits read them
            if self.per_language and lexical_scores:
                groups = {row: _chunk_language(candidate_chunks[row]) for row in lexical_scores if row in candidate_chunks}
                if len(set(groups.values())) < 2:
                    groups = None  # one language: one maximum, as before
            fusion_dense = self._language_adjusted(dense_scores, query, candidate_chunks)
            if self.coverage_mix > 0 and plan.concepts:
                coverage = self._coverage(plan, candidates, weights, candidate_chunks)
                bm25 = convex_fusion({}, lexical_scores, 0.0, groups)
                lexical_scores_mixed = {row: self.coverage_mix * coverage.get(row, 0.0) + (1 - self.coverage_mix) * bm25.get(row, 0.0)
                                        for row in set(coverage) | set(bm25)}
                dense_weight = self.weight_for(query)
                fused = convex_fusion(fusion_dense, lexical_scores_mixed, dense_weight, None, normalize=False)
                if self.sentence_mix > 0 and fused and not self.is_long(query):
                    self._rerank_by_sentence(fused, lexical_scores_mixed, (1.0 - dense_weight) * self.sentence_mix, k,
                                             plan, weights, candidate_chunks)
            else:
                fused = convex_fusion(fusion_dense, lexical_scores, self.weight_for(query), groups)
        elif mode == "hybrid":
            fused = reciprocal_rank_fusion([([c for c, _ in dense], 1.0), ([c for c, _ in lexical], 1.0)])
        else:
            fused = dict(dense if mode == "dense" else lexical)
        order = sorted(fused, key=lambda c: (-fused[c], c))[:k]
        chunks = candidate_chunks if candidate_chunks is not None else data.get_chunks(order)
        idf = self._idf(plan)
        hits = []
        documents: dict[str, Document | None] = {}
        for chunk_id in order:
            chunk = chunks.get(chunk_id)
            if chunk is None:
                continue
            if chunk.doc_id not in documents:
                documents[chunk.doc_id] = data.get_document(chunk.doc_id)
            doc = documents[chunk.doc_id]
            start, end, _ = best_span(chunk, plan.terms, idf)
            hits.append(
                Hit(
                    chunk=chunk,
                    score=fused[chunk_id],
                    rank=len(hits) + 1,
                    title=doc.title if doc else chunk.doc_id,
                    source=doc.source if doc else "",
                    dense_score=dense_scores.get(chunk_id),
                    lexical_score=lexical_scores.get(chunk_id),
                    best_start=start,
                    best_end=end,
                    published=doc.published if doc else "",
                    ocr=bool(doc and chunk.page is not None and chunk.page in doc.ocr_pages),
                )
            )
        top_dense = max(dense_scores.values()) if dense_scores else 0.0
        return SearchResult(hits, plan, top_dense, query, query_vector, weights)

    def _coverage(self, plan: QueryPlan, candidates: Sequence[str], weights: dict[str, float],
                  chunks: dict[str, Chunk] | None = None) -> dict[str, float]:
        """Share of the question's concepts (rarity-weighted, in either language) each candidate holds
        (``chunks``: the candidates' chunks when already read)."""
        total = sum(weights.values())
        if total <= 0:
            return {}
        concepts = [c for c in plan.concepts if c.label in weights]
        out = {}
        if chunks is None:
            chunks = self.data.get_chunks(list(candidates))
        for row, chunk in chunks.items():
            terms = _chunk_terms(chunk)
            share = sum(weights[label] for label in {c.label for c in concepts
                                                     if not c.terms.isdisjoint(terms) or not c.spellings.isdisjoint(terms)}) / total
            if share > 0:
                out[row] = share
        return out

    def _rerank_by_sentence(self, fused: dict[str, float], lexical: dict[str, float], share: float, k: int,
                            plan: QueryPlan, weights: dict[str, float], chunks: dict[str, Chunk]) -> None:
        """Give ``share`` of the best candidates' fused score to their sentence coverage under the title
        (``SENTENCE_MIX``), in place of the same share of their lexical score ``lexical``."""
        top = sorted(fused, key=lambda c: (-fused[c], c))[: max(RERANK_DEPTH, k)]
        sentence = self._sentence_coverage(plan, top, weights, chunks)
        if not sentence:
            return  # no concept with a weight: nothing to read the sentences for
        for row in top:
            fused[row] += share * (sentence.get(row, 0.0) - lexical.get(row, 0.0))
        # The rest stay below the reranked head: they were not read sentence by sentence.
        floor = min(fused[row] for row in top)
        for row in set(fused) - set(top):
            fused[row] = min(fused[row], floor - 1e-9)

    @staticmethod
    def _language_adjusted(dense: dict[str, float], query: str, chunks: dict[str, Chunk]) -> dict[str, float]:
        """The cosines the fusion reads: ``CROSS_LANGUAGE_DENSE`` added for passages in the other
        language than the query's (the hits keep the true cosine)."""
        query_language = text_language(query)
        if not CROSS_LANGUAGE_DENSE or not query_language:
            return dense
        return {row: score + (CROSS_LANGUAGE_DENSE if row in chunks and _chunk_language(chunks[row]) not in ("", query_language) else 0.0)
                for row, score in dense.items()}

    def _sentence_coverage(self, plan: QueryPlan, rows: Sequence[str], weights: dict[str, float],
                           chunks: dict[str, Chunk]) -> dict[str, float]:
        """Share of the question's concepts (rarity-weighted) held by each passage's best sentence read
        together with its document's title (see ``SENTENCE_MIX``)."""
        total = sum(weights.values())
        if total <= 0:
            return {}
        concepts = [(c.label, c.terms | c.spellings) for c in plan.concepts if c.label in weights]
        titles: dict[str, frozenset[str]] = {}
        out = {}
        for row in rows:
            chunk = chunks.get(row)
            if chunk is None:
                continue
            if chunk.doc_id not in titles:
                doc = self.data.get_document(chunk.doc_id)
                titles[chunk.doc_id] = _title_terms(doc.title) if doc is not None else frozenset()
            title = titles[chunk.doc_id]
            spans = chunk.sentences or ((chunk.start, chunk.end),)
            best = 0.0
            for terms in _sentence_terms(chunk, spans):
                best = max(best, sum(weights[label] * (1.0 if concept_terms & terms else TITLE_CREDIT if concept_terms & title else 0.0)
                                     for label, concept_terms in concepts))
            out[row] = best / total
        return out

    def _idf(self, plan: QueryPlan) -> dict[str, float]:
        n = max(self.data.n_live, 1)
        vocabulary = self.data.vocabulary
        out = {}
        for term in plan.terms:
            df = vocabulary.document_frequency(term)
            out[term] = bm25_idf(n, df) if df else 0.0
        return out
