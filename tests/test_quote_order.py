"""Which evidence sentences the extractive answer quotes, and in what order (``quoting.quote_order``)."""

from __future__ import annotations

from assistant.answer.evidence import Evidence
from assistant.answer.quoting import quote_order
from assistant.records import Chunk, Hit
from assistant.retrieval.plan import Concept, QueryPlan
from assistant.text.normalize import tokenize


def evidence(doc_id: str, title: str, sentence: str, score: float, dense: float = 0.8) -> Evidence:
    chunk = Chunk(chunk_id=f"{doc_id}#1", doc_id=doc_id, start=0, end=len(sentence), text=sentence,
                  sentences=((0, len(sentence)),))
    hit = Hit(chunk=chunk, score=score, title=title, best_start=0, best_end=len(sentence))
    return Evidence(hit, coverage=0.0, chunk_coverage=0.0, dense=dense, covered=frozenset(), language="en")


def plan_of(*words: str) -> tuple[QueryPlan, dict[str, float]]:
    concepts = [Concept(word, frozenset(tokenize(word)), "name" if word[0].isupper() else "word", True) for word in words]
    return QueryPlan(concepts=concepts), {c.label: 1.0 for c in concepts}


def test_a_fact_sentence_read_under_its_headline_is_quoted_before_the_lead():
    plan, weights = plan_of("restoration", "Museum", "Crafts", "cost")
    title = "Museum of Crafts reopens after restoration"
    lead = evidence("museum", title, "The Museum of Crafts reopened on Saturday after a four-year restoration.", 0.90)
    fact = evidence("museum", title, "The restoration cost 11.4 million dinars, the minister said.", 0.85)
    quoted = quote_order([lead, fact], "How much did the restoration of the Museum of Crafts cost?", plan, weights)
    assert quoted[0] is fact


def test_another_article_is_not_quoted_when_it_lacks_what_the_first_quote_holds():
    plan, weights = plan_of("ambassador", "warn", "escalation", "Libya")
    first = evidence("a", "Libya news", "The ambassador said escalation would harm Libya.", 0.60)
    other = evidence("b", "Libya news", "Officials warn that escalation in Libya continues.", 0.60)
    quoted = quote_order([first, other], "What did the ambassador warn escalation would do to Libya?", plan, weights)
    assert quoted == [first]


def test_another_article_holding_the_same_concepts_is_quoted_beside_the_first():
    plan, weights = plan_of("ambassador", "escalation", "Libya")
    first = evidence("a", "Libya news", "The ambassador said escalation would harm Libya.", 0.60)
    other = evidence("b", "Libya news", "The ambassador repeated that escalation would ruin Libya.", 0.60)
    quoted = quote_order([first, other], "What did the ambassador say about escalation in Libya?", plan, weights)
    assert quoted == [first, other]


def test_a_say_question_quotes_the_words_before_a_report_of_them():
    plan, weights = plan_of("Kamal", "power")
    title = "Ghat council opens solar farm"
    report = evidence("ghat", title, "Mayor Kamal spoke about the power situation at the opening.", 0.90)
    quote = evidence("ghat", title, 'Kamal said: "Power cuts of eight hours a day are over."', 0.80)
    assert quote_order([report, quote], "What did Kamal say about the power cuts?", plan, weights)[0] is quote
    # "announce" asks for what was announced: the retriever's order stands.
    assert quote_order([report, quote], "What did Kamal announce about power?", plan, weights)[0] is report
