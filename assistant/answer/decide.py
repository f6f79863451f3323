"""Answer, partial or abstain: decided from the evidence, by a small calibrated model.

The model is a logistic regression over a handful of features of the evidence (``FEATURES``), fitted by
``bench/answerability.py`` on generated data (cross-lingual hadith records in both directions, English
wire articles written for this project, with leave-gold-out and entity-swap twins as the unanswerable
cases). Its coefficients, the feature scaling and what it was fitted on are data:
``assistant/data/answerability.json``. No threshold here was chosen by looking at the dev set.

Evidence in the question's language and evidence in the other one are judged by two regressions of the
same form, each with its own threshold (the lexical features go through the lexicon across languages).

Then, for a question the model finds answerable:

* a number the question gives, or a name it asks about that the corpus never mentions, absent from the
  top passages, or
* a name or number of the question that neither a passage to be quoted nor its document holds (the
  quote would be about another place or event), or
* a question none of whose words (two or more) the corpus holds in any form (only its names are
  there), or
* a *when* / *how many* question whose evidence sentences give no date / no number beside the thing
  counted

make the answer **partial**: the evidence is quoted after a line saying what it does not give. A
question the model finds unanswerable, but whose evidence carries at least half of the rest of the
question once such names are set aside, is also partial (the sources talk about the Turkish and Italian
ministers, not the Chinese one): the reader learns both what is there and what is not.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant.answer.evidence import Evidence, SentenceVectors, covered_concepts, gather_evidence
from assistant.answer.qtype import focus_terms, has_answer_type, question_type
from assistant.answer.quoting import quote_order
from assistant.retrieval.plan import QueryPlan, concept_weights
from assistant.retrieval.search import SearchResult
from assistant.text.normalize import detect_language, tokenize

MODEL_PATH = Path(__file__).resolve().parent.parent / "data" / "answerability.json"

FEATURES = (
    "dense_sentence",      # best cosine of the question and an evidence sentence
    "dense_passage",       # cosine of the question and the top passage
    "coverage",            # best share of the question's concepts in one evidence sentence
    "passage_coverage",    # best share in one evidence passage
    "names_missing",       # share of the question's checkable names/numbers absent from the top passages
    "unknown_name",        # 1 when a checkable name of the question is nowhere in the corpus
    "cross_language",      # 1 when the top passage is not in the question's language
    "cross_dense",         # cross_language * dense_sentence: cross-lingual cosines run lower
    "no_checkable",        # 1 when no concept of the question can be checked against the corpus
    # Of the sentence an answer would quote first (``quote_order``), not of its document:
    "quote_coverage",      # share of the question's concepts in the sentence itself (no document credit)
    "quote_names_missing", # share of the question's names/numbers absent from the sentence
    "quote_passage_names_missing",  # ... absent from the sentence's passage
    "quote_type",          # 1 when the sentence holds the kind of answer asked (date, number, person), 0.5 unknowable
    "dense_margin",        # its cosine minus the mean cosine of the other evidence sentences
    # Of the question against the corpus:
    "unknown_words",       # share of the question's (weighted) checkable concepts found nowhere in the corpus
    "unchecked",           # share of the question's own concepts that cannot be checked (no translation)
)

# Before a model is fitted (or if its file is missing) a hand-set stand-in: coverage and names carry
# the decision, dense similarity breaks ties. The fitted file replaces it.
_FALLBACK = {
    "features": list(FEATURES),
    "mean": [0.8, 0.8, 0.5, 0.6, 0.2, 0.1, 0.5, 0.4, 0.1, 0.4, 0.3, 0.2, 0.8, 0.0, 0.1, 0.1],
    "scale": [0.03, 0.03, 0.3, 0.3, 0.3, 0.3, 0.5, 0.4, 0.3, 0.3, 0.4, 0.4, 0.4, 0.03, 0.2, 0.2],
    "coef": [1.0, 0.5, 1.2, 0.6, -1.5, -1.5, 0.0, 0.0, 0.0, 0.5, -0.5, -0.5, 0.5, 0.3, -1.0, 0.0],
    "intercept": 0.5,
    "threshold": 0.5,
    "fitted_on": "hand-set fallback (no fitted model found)",
}


@dataclass(frozen=True)
class AnswerabilityModel:
    """A logistic regression over standardized ``FEATURES``.

    ``cross`` (optional) is a second regression of the same form for evidence in the other language
    than the question's (``cross_language`` = 1): there the lexical features go through the lexicon
    and the cosines run lower, so the same feature means something else.
    """

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.5
    info: dict = field(default_factory=dict)
    cross: "AnswerabilityModel | None" = None

    @classmethod
    def from_dict(cls, data: dict) -> "AnswerabilityModel":
        names = tuple(data["features"])
        if set(names) - set(FEATURES):
            raise ValueError(f"the answerability model uses unknown features {sorted(set(names) - set(FEATURES))}")
        if not len(names) == len(data["mean"]) == len(data["scale"]) == len(data["coef"]):
            raise ValueError("the answerability model's arrays differ in length")
        cross = cls.from_dict(data["cross_language_model"]) if data.get("cross_language_model") else None
        return cls(names, tuple(map(float, data["mean"])), tuple(max(float(s), 1e-6) for s in data["scale"]),
                   tuple(map(float, data["coef"])), float(data["intercept"]), float(data.get("threshold", 0.5)),
                   {k: v for k, v in data.items() if k not in ("features", "mean", "scale", "coef", "intercept", "threshold",
                                                               "cross_language_model")}, cross)

    def for_features(self, features: dict[str, float]) -> "AnswerabilityModel":
        """The regression that judges this evidence: ``cross`` for evidence in the other language."""
        return self.cross if self.cross is not None and features.get("cross_language", 0.0) >= 0.5 else self

    def probability(self, features: dict[str, float]) -> float:
        model = self.for_features(features)
        z = model.intercept
        for name, mean, scale, coef in zip(model.features, model.mean, model.scale, model.coef):
            z += coef * (features.get(name, mean) - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def threshold_for(self, features: dict[str, float]) -> float:
        return self.for_features(features).threshold


@lru_cache(maxsize=4)
def load_model(path: str | None = None) -> AnswerabilityModel:
    """The fitted model (``ASSISTANT_ANSWERABILITY`` or the packaged file), else the fallback."""
    path = Path(path or os.environ.get("ASSISTANT_ANSWERABILITY") or MODEL_PATH)
    if path.is_file():
        return AnswerabilityModel.from_dict(json.loads(path.read_text(encoding="utf-8")))
    return AnswerabilityModel.from_dict(_FALLBACK)


@dataclass(frozen=True)
class Decision:
    """What to do with a question, and why.

    Attributes:
        outcome: ``answer``, ``partial`` or ``abstain``.
        probability: The model's probability that the evidence answers the question.
        features: The model's inputs.
        evidence: The evidence passages, best first (their best spans are the sentences to quote).
        missing: What the question asks that the evidence lacks: names/numbers as the question wrote
            them, or ``"date"`` / ``"number"`` for an answer of that kind.
        question_type: ``date``, ``number``, ``person``, ``statement`` or None (``qtype.question_type``).
        signals: What the rules read besides the probability (``signals_of``).
        quoted: The evidence an answer quotes, in order (``quote_order``): the passages to lead with.
    """

    outcome: str
    probability: float
    features: dict[str, float]
    evidence: tuple[Evidence, ...]
    missing: tuple[str, ...] = ()
    question_type: str | None = None
    signals: dict = field(default_factory=dict)
    quoted: tuple[Evidence, ...] = ()


def features_of(plan: QueryPlan, evidence: Sequence[Evidence], question_language: str, weights: dict[str, float],
                question: str = "", quoted: Sequence[Evidence] | None = None) -> dict[str, float]:
    """The model's inputs for one question (see ``FEATURES``); a feature left out is read at its mean.
    ``quoted`` is ``quote_order``'s result when the caller has it."""
    own = [c for c in plan.concepts if not c.inherited]
    corpus = {
        "unknown_words": _share_of(weights, {c.label for c in own if c.label in weights and not c.in_corpus}),
        "unchecked": sum(1 for c in own if c.label not in weights) / len(own) if own else 0.0,
    }
    if not evidence:
        return {name: 0.0 for name in FEATURES} | {"no_checkable": float(not weights)} | corpus
    top = evidence[0]
    dense = [e.dense for e in evidence if e.dense is not None]
    names = _names(plan, weights)
    covered = frozenset().union(*(e.covered for e in evidence))
    missing = [c for c in names if c.label not in covered]
    cross = float(bool(top.language) and top.language != question_language)
    if quoted is None and question:
        quoted = quote_order(evidence, question, plan, weights)
    quote = quoted[0] if quoted else top
    concepts = [c for c in plan.concepts if c.label in weights]
    in_sentence = covered_concepts(concepts, set(tokenize(quote.sentence)))
    in_passage = covered_concepts(concepts, set(tokenize(quote.hit.chunk.text)))
    out = corpus | {
        "coverage": max(e.coverage for e in evidence),
        "passage_coverage": max(e.chunk_coverage for e in evidence),
        "names_missing": len(missing) / len(names) if names else 0.0,
        "unknown_name": float(any(c.label in weights and not c.in_corpus for c in names)),
        "cross_language": cross,
        "no_checkable": float(not weights),
        "quote_coverage": _share_of(weights, in_sentence),
        "quote_names_missing": sum(c.label not in in_sentence for c in names) / len(names) if names else 0.0,
        "quote_passage_names_missing": sum(c.label not in in_passage for c in names) / len(names) if names else 0.0,
        "quote_type": _type_found(question, quote, plan),
    }
    if dense:
        # Without a meaningful embedder (the hash embedder of tests) the dense features are left out,
        # and the model reads them at their mean: no evidence either way.
        others = [e.dense for e in evidence if e is not quote and e.dense is not None]
        margin = (quote.dense or 0.0) - sum(others) / len(others) if others and quote.dense is not None else 0.0
        out |= {"dense_sentence": max(dense), "dense_passage": top.hit.dense_score or 0.0, "cross_dense": cross * max(dense),
                "dense_margin": margin}
    return out


def _share_of(weights: dict[str, float], labels: set[str] | frozenset[str]) -> float:
    total = sum(weights.values())
    return sum(w for label, w in weights.items() if label in labels) / total if total > 0 else 0.0


def _type_found(question: str, quote: Evidence, plan: QueryPlan) -> float:
    """1 when the sentence holds the kind of answer the question asks for (or it asks for no kind), 0
    when it does not, 0.5 when that cannot be told (nothing marks a person's name in Arabic text)."""
    kind = question_type(question) if question else None
    if kind is None:
        return 1.0
    if kind == "person" and quote.language == "ar":
        return 0.5
    return float(has_answer_type(quote.sentence, kind, question, focus_terms(question, plan.concepts)))


def _names(plan: QueryPlan, weights: dict[str, float]) -> list:
    """The checkable names and numbers the question itself asks about (a follow-up's inherited
    subject was established by the earlier answer: its absence from new evidence is no gap)."""
    return [c for c in plan.concepts if c.label in weights and c.kind in ("name", "number") and not c.inherited]


def _missing(names: Sequence, covered: frozenset[str]) -> list[str]:
    """Names and numbers of the question absent from the evidence that make an answer partial: a
    number, or a name found nowhere in the corpus. A name the corpus holds elsewhere is not reported:
    its spelling in the evidence may simply differ (أبي هريرة / Abu Hurayrah), which the
    ``names_missing`` feature already weighs."""
    return [c.label for c in names if c.label not in covered and (c.kind == "number" or not c.in_corpus)]


# The fewest words of a question, all absent from the corpus, that make an answer partial (see
# ``signals_of``).
ABSENT_WORDS_MIN = 2
# A question the model declines is still answered in part when its evidence carries this share of
# what remains of the question once the missing names are set aside.
PARTIAL_REST_COVERAGE = 0.5


def signals_of(question: str, plan: QueryPlan, evidence: Sequence[Evidence], weights: dict[str, float],
               quoted: Sequence[Evidence] | None = None) -> dict:
    """What the answer / partial / abstain rules read besides the probability (see ``outcome_of``)."""
    kind = question_type(question)
    names = _names(plan, weights)
    covered = frozenset().union(*(e.covered for e in evidence)) if evidence else frozenset()
    missing_names = _missing(names, covered)
    # A name or number of the question that neither a passage to be quoted nor its document holds: the
    # quote is about another place or another event ("hundreds of Tarhuna's residents" for a question
    # about Sirte). News names its subject once, in the headline and lead, so the document counts.
    if quoted is None:
        quoted = quote_order(evidence, question, plan, weights)
    unquoted = [c.label for c in names if c.label not in missing_names and not any(c.label in e.covered for e in quoted)]
    gaps = set(missing_names) | set(unquoted)
    rest = {label: w for label, w in weights.items() if label not in gaps}
    rest_total = sum(rest.values())
    rest_share = max(((sum(w for label, w in rest.items() if label in e.covered) / rest_total) if rest_total else 0.0
                      for e in evidence), default=0.0)
    # Only a missing date or number makes an answer partial: "who" is checked when choosing the
    # sentence, but nothing reliably marks a name in Arabic text.
    focus = focus_terms(question, plan.concepts)
    type_missing = kind in ("date", "number") and bool(evidence) and not any(has_answer_type(e.sentence, kind, question, focus)
                                                                             for e in evidence[:2])
    # The question's words (not its names or numbers) when the corpus holds none of them in any form:
    # whatever the passages say, it is only about the question's names (Cairo, for "who won the
    # football match in Cairo?"). One word alone is too little to say so: it may be an inflection or
    # a synonym the stemmer and the lexicon miss ("chairs" asked, "chairman" written).
    words = [c for c in plan.concepts if c.kind == "word" and c.label in weights and not c.inherited]
    absent_words = [c.label for c in words] if len(words) >= ABSENT_WORDS_MIN and not any(c.in_corpus for c in words) else []
    return {"question_type": kind, "names": len(names), "missing_names": missing_names, "unquoted_names": unquoted,
            "rest_share": round(rest_share, 6), "type_missing": type_missing, "evidence": len(evidence),
            "absent_words": absent_words}


def outcome_of(probability: float, threshold: float, signals: dict) -> tuple[str, tuple[str, ...]]:
    """``(outcome, missing)`` from the model's probability and the evidence signals.

    ``missing`` lists the question's names and numbers that the corpus lacks or that no quoted passage
    holds, then its words when the corpus holds none of them, then ``date`` / ``number`` when the
    evidence gives none for a *when* / *how many* question.
    """
    missing_names = tuple(signals["missing_names"]) + tuple(signals.get("unquoted_names", ()))
    if not signals["evidence"]:
        return "abstain", missing_names
    if probability < threshold:
        if missing_names and len(missing_names) < signals["names"] and signals["rest_share"] >= PARTIAL_REST_COVERAGE:
            return "partial", missing_names
        return "abstain", missing_names
    missing = missing_names + tuple(signals.get("absent_words", ())) + ((signals["question_type"],) if signals["type_missing"] else ())
    return ("partial" if missing else "answer"), missing


def decide(
    question: str,
    plan: QueryPlan,
    evidence: Sequence[Evidence],
    question_language: str,
    weights: dict[str, float],
    model: AnswerabilityModel | None = None,
) -> Decision:
    """Answer, partial or abstain for ``question`` given its evidence (best first)."""
    model = model or load_model()
    quoted = quote_order(evidence, question, plan, weights)  # once: the features and the rules read it
    features = features_of(plan, evidence, question_language, weights, question, quoted if question else None)
    probability = model.probability(features)
    signals = signals_of(question, plan, evidence, weights, quoted)
    outcome, missing = outcome_of(probability, model.threshold_for(features), signals)
    return Decision(outcome, probability, features, tuple(evidence), missing, signals["question_type"], signals, tuple(quoted))


def decide_result(
    result: SearchResult,
    language: str | None,
    *,
    embedder: Any,
    document_frequency: Callable[[str], int],
    n_live: int,
    sentence_vectors: SentenceVectors | None = None,
    document_terms: Callable[[str], frozenset[str]] | None = None,
    model: AnswerabilityModel | None = None,
) -> Decision:
    """Answer, partial or abstain for a search result, from its evidence sentences.

    Args:
        result: The search result (its query is the question decided on).
        language: The question's language (detected when None).
        embedder: Embeds the evidence sentences (left out when it is not semantic, e.g. ``hash``).
        document_frequency, n_live: The index's term counts, for concept weights the result lacks.
        sentence_vectors: A cache of sentence embeddings kept across questions.
        document_terms: A document's lexical terms by id (a name the document holds counts half).
        model: Replaces the packaged answerability model (the fitting script evaluates its own).
    """
    question = result.query
    language = language or detect_language(question)
    weights = result.weights if result.weights is not None else concept_weights(result.plan, document_frequency, n_live)
    semantic = getattr(embedder, "semantic", True) and result.query_vector is not None
    evidence = gather_evidence(result.plan, result.hits, weights, embedder=embedder if semantic else None,
                               query_vector=result.query_vector, cache=sentence_vectors,
                               answer_type=question_type(question), question=question, document_terms=document_terms)
    return decide(question, result.plan, evidence, language, weights, model)
