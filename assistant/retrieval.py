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

import math
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .embeddings import Embedder
from .normalize import (
    ARABIC_STOPWORDS,
    ENGLISH_STOPWORDS,
    clean_for_embedding,
    fold,
    is_arabic_token,
    raw_tokens,
    skeleton,
    tokenize,
    word_forms,
)
from .lexicon import arabic_vocabulary, translate_phrases
from .records import Chunk, Document, Hit
from .backend import ChunkBackend, Vocabulary

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
# Each retriever contributes this many candidates before fusion (at least): enough that a passage
# ranked well by one and poorly by the other still gets fused.
OVERFETCH = 50
# A Latin word this long in a question may be a name written in Arabic in the corpus.
_NAME_MIN_LETTERS = 4
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")


@dataclass
class QueryPlan:
    """The weighted lexical terms of a query and what they tell about the corpus.

    Attributes:
        terms: BM25 term → weight.
        names: Capitalized words of an English question (likely names) → the Arabic vocabulary
            terms their consonant skeleton matched.
        unknown: Names or known entities of the question that appear nowhere in the index.
        translated: English lexicon phrases found in the question → their Arabic forms.
    """

    terms: dict[str, float] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    translated: dict[str, tuple[str, ...]] = field(default_factory=dict)
    arabic_words: int = 0
    arabic_known: int = 0
    translated_found: int = 0


# Weights of expanded terms relative to the question's own terms (1.0): a spelling variant of an
# Arabic name is nearly as good as the name; a dictionary translation or a skeleton match of an
# English word is weaker evidence.
VARIANT_EXACT_SKELETON = 0.8
TRANSLATION_WEIGHT = 0.7
LATIN_NAME_WEIGHT = 1.0
# Follow-ups: the previous question's terms count half, the previous answer's a little.
FOLLOWUP_WEIGHT = 0.5
CONTEXT_WEIGHT = 0.05
_CAPITALIZED = re.compile(r"\b[A-Z][a-zA-Z]+(?:'s)?\b")


def plan_query(query: str, vocabulary: Vocabulary) -> QueryPlan:
    """Expand a question into weighted BM25 terms.

    * its own folded and stemmed terms (weight 1);
    * other spellings of its Arabic words found in the index (غوتيرش → غوتيريش, ...);
    * for English questions, Arabic translations of lexicon phrases (embassy → سفارة), and Arabic
      terms whose consonant skeleton matches a capitalized word (Lavrov → لافروف): the cheapest
      cross-lingual signal for names.
    """
    plan = QueryPlan()
    bm25 = vocabulary
    vocab = bm25.vocab
    for term in tokenize(query):
        plan.terms[term] = max(plan.terms.get(term, 0.0), 1.0)
    for word in raw_tokens(fold(query)):
        if not is_arabic_token(word) or word in ARABIC_STOPWORDS or len(word) < 3:
            continue
        variants = bm25.variants(word)
        for variant, weight in variants:
            plan.terms[variant] = max(plan.terms.get(variant, 0.0), weight)
        plan.arabic_words += 1
        forms = word_forms(word)
        if any(f in vocab for f in forms) or any(weight >= VARIANT_EXACT_SKELETON for _, weight in variants):
            plan.arabic_known += 1
        elif not forms & arabic_vocabulary() and len(skeleton(word)) >= 4:
            # In no document and not a common news word: most likely a name the corpus lacks.
            plan.unknown.append(word)
    if not _LATIN_WORD.search(query):
        return plan
    translated_words: set[str] = set()
    for phrase, forms, _, _ in translate_phrases(query):
        plan.translated[phrase] = forms
        translated_words.update(phrase.split())
        found = False
        for form in forms:
            for term in tokenize(form):
                plan.terms[term] = max(plan.terms.get(term, 0.0), TRANSLATION_WEIGHT)
                found = found or term in vocab
        plan.translated_found += found
        if not found and _is_capitalized_in(phrase, query):
            plan.unknown.append(phrase)
    for position, match in enumerate(_CAPITALIZED.finditer(query)):
        word = match.group(0)
        lower = word.lower()
        lower = lower[:-2] if lower.endswith("'s") else lower
        if lower in ENGLISH_STOPWORDS or lower in translated_words or len(lower) < _NAME_MIN_LETTERS:
            continue
        if match.start() == 0 and lower in _QUESTION_OPENERS:
            continue
        variants = [v for v, _ in bm25.variants(lower)]
        plan.names[lower] = variants
        for variant in variants:
            plan.terms[variant] = max(plan.terms.get(variant, 0.0), LATIN_NAME_WEIGHT)
        if not variants and len(skeleton(lower)) >= 4:
            plan.unknown.append(lower)
    return plan


_QUESTION_OPENERS = frozenset("""what which who whom whose when where why how is are was were do does did can could
    should would will has have had tell list give show find name describe explain summarize""".split())


def _is_capitalized_in(phrase: str, query: str) -> bool:
    first = phrase.split()[0]
    return bool(re.search(rf"\b{re.escape(first[:1].upper() + first[1:])}", query))


@dataclass
class SearchResult:
    """Hits plus the signals used to decide whether the corpus answers at all."""

    hits: list[Hit]
    plan: QueryPlan
    top_dense: float = 0.0


def reciprocal_rank_fusion(rankings: Sequence[tuple[Sequence[str], float]], k: int = RRF_K) -> dict[str, float]:
    """Fuse ranked lists of chunk ids: ``sum(weight / (k + rank))`` over the lists an id appears in."""
    fused: dict[str, float] = {}
    for rows, weight in rankings:
        for rank, row in enumerate(rows, 1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
    return fused


def convex_fusion(dense: dict[str, float], lexical: dict[str, float], dense_weight: float) -> dict[str, float]:
    """``w * minmax(dense) + (1 - w) * lexical / max(lexical)`` over the union of candidates.

    BM25 is divided by its maximum rather than min-max scaled: a row with no shared term must score
    zero, not the bottom of a range.
    """
    rows = set(dense) | set(lexical)
    if not rows:
        return {}
    if dense:
        low, high = min(dense.values()), max(dense.values())
        span = high - low if high > low else 1.0
    lex_max = max(lexical.values()) if lexical else 0.0
    fused = {}
    for row in rows:
        d = (dense[row] - low) / span if row in dense else 0.0
        lex = lexical.get(row, 0.0) / lex_max if lex_max > 0 else 0.0
        fused[row] = dense_weight * d + (1.0 - dense_weight) * lex
    return fused


def best_span(chunk: Chunk, terms: dict[str, float], idf: dict[str, float] | None = None) -> tuple[int, int, float]:
    """The sentence of ``chunk`` sharing the most (idf-weighted) query terms: ``(start, end, score)``.

    With no lexical overlap at all, the chunk's longest sentence is returned with score 0 (the
    caller may then rank sentences densely).
    """
    spans = chunk.sentences or ((chunk.start, chunk.end),)
    best = None
    for start, end in spans:
        sentence_terms = set(tokenize(chunk.text[start - chunk.start : end - chunk.start]))
        score = sum(w * (idf.get(t, 1.0) if idf else 1.0) for t, w in terms.items() if t in sentence_terms)
        key = (score, end - start)
        if best is None or key > best[0]:
            best = (key, start, end)
    assert best is not None
    return best[1], best[2], best[0][0]


class HybridRetriever:
    """Searches one open index (any ``ChunkBackend``).

    Args:
        data: The open index.
        embedder: The embedder the index was built with.
        dense_weight: Weight of the dense score in the fusion (BM25 gets ``1 - dense_weight``);
            None (the default) picks ``DENSE_WEIGHT`` or, for long queries, ``DENSE_WEIGHT_LONG``.
        fusion: ``convex`` (default) or ``rrf``.
    """

    def __init__(self, data: ChunkBackend, embedder: Embedder, dense_weight: float | None = None, fusion: str = "convex") -> None:
        if dense_weight is not None and not 0.0 <= dense_weight <= 1.0:
            raise ValueError(f"dense_weight must be between 0 and 1, got {dense_weight}")
        if fusion not in ("convex", "rrf"):
            raise ValueError(f"unknown fusion {fusion!r}; use convex or rrf")
        self.data = data
        self.embedder = embedder
        self.dense_weight = dense_weight
        self.fusion = fusion

    def weight_for(self, query: str) -> float:
        """The dense weight of the fusion for this query (see ``DENSE_WEIGHT_LONG``)."""
        if self.dense_weight is not None:
            return self.dense_weight
        words = {t for t in raw_tokens(fold(query)) if t not in ARABIC_STOPWORDS and t not in ENGLISH_STOPWORDS}
        return DENSE_WEIGHT_LONG if len(words) > LONG_QUERY_WORDS else DENSE_WEIGHT

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
        plan = plan_query(query, vocabulary)
        for extra in extra_queries:
            for term, weight in plan_query(extra, vocabulary).terms.items():
                plan.terms[term] = max(plan.terms.get(term, 0.0), FOLLOWUP_WEIGHT * weight)
        if context_text:
            for term in set(tokenize(context_text)):
                plan.terms[term] = max(plan.terms.get(term, 0.0), CONTEXT_WEIGHT)
        fetch = max(OVERFETCH, 4 * k)
        dense: list[tuple[str, float]] = []
        if mode in ("hybrid", "dense"):
            if query_vector is None:
                query_vector = self.embed_query(query)
                if extra_queries:
                    context = self.embed_query(" ".join([*extra_queries, query]))
                    query_vector = query_vector + context
                    query_vector = query_vector / max(float(np.linalg.norm(query_vector)), 1e-9)
            dense = data.dense_search(query_vector, fetch)
        lexical = data.lexical_search(plan.terms, fetch) if mode in ("hybrid", "lexical") and plan.terms else []
        dense_scores = dict(dense)
        lexical_scores = dict(lexical)
        if mode == "hybrid" and self.fusion == "convex":
            assert query_vector is not None
            candidates = sorted(set(dense_scores) | set(lexical_scores))
            # Rescore every candidate with both retrievers, so a passage one of them missed in its
            # top list is not treated as scoring zero there.
            dense_scores = data.dense_scores(candidates, query_vector)
            lexical_scores = data.lexical_scores(candidates, plan.terms) if plan.terms else {}
            fused = convex_fusion(dense_scores, lexical_scores, self.weight_for(query))
        elif mode == "hybrid":
            fused = reciprocal_rank_fusion([([c for c, _ in dense], 1.0), ([c for c, _ in lexical], 1.0)])
        else:
            fused = dict(dense if mode == "dense" else lexical)
        order = sorted(fused, key=lambda c: (-fused[c], c))[:k]
        chunks = data.get_chunks(order)
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
        return SearchResult(hits, plan, top_dense)

    def _idf(self, plan: QueryPlan) -> dict[str, float]:
        n = max(self.data.n_live, 1)
        vocabulary = self.data.vocabulary
        out = {}
        for term in plan.terms:
            df = vocabulary.document_frequency(term)
            out[term] = math.log(1 + (n - df + 0.5) / (df + 0.5)) if df else 0.0
        return out
