"""What kind of answer a question asks for, and whether a sentence carries one.

A question asking *when* is not answered by a sentence without a date, nor *how many* by one without a
number, however close the sentence is otherwise. These checks are deliberately coarse (digits, month
and weekday names from the lexicon, a few relative time words): they only need to notice that a kind of
answer is absent.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from assistant.text.lexicon import arabic_kinds, entry_kinds
from assistant.text.normalize import fold, raw_tokens, tokenize

# Question openers by language, folded. "How long/far/much/many" all ask for a quantity.
_EN_DATE = re.compile(r"^\s*(?:when\b|(?:on |in )?what (?:date|day|year|month|time)\b|since when\b|how long ago\b)", re.I)
_EN_NUMBER = re.compile(r"\b(?:how (?:many|much|long|far|old|big|large|high|often)|what (?:percentage|percent|share|number|amount|proportion)"
                        r"|number of|what (?:is|was|are|were) the (?:population|size|cost|price|value|budget|death toll|toll|"
                        r"number|total|amount|capacity|length|distance|rate)\b)", re.I)
_AR_DATE = re.compile(r"(?:^|\s)(?:متي|في اي (?:يوم|عام|سنه|شهر|تاريخ)|منذ متي)(?:\s|$)")
_AR_NUMBER = re.compile(r"(?:^|\s)(?:كم|ما عدد|ما حجم|ما نسبه|ما مقدار|ما قيمه|ما تكلفه|ما كلفه|ما مساحه|ما طول|عدد)(?:\s|$)")

_EN_TIME_WORDS = frozenset("""yesterday today tonight tomorrow morning evening afternoon night week weekend month year
    earlier later ago recently decade century""".split())
_AR_TIME_WORDS = frozenset("""امس اليوم غدا الليله صباح مساء الاسبوع الشهر السنه الماضي المقبل القادم حاليا مؤخرا
    فجر ظهر عصر ليل""".split())
_EN_NUMBER_WORDS = frozenset("""one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty
    fifty sixty seventy eighty ninety hundred hundreds thousand thousands million millions billion billions dozen
    dozens half third quarter percent""".split())
_ARABIC = re.compile(r"[\u0621-\u064A]")
_YEAR = re.compile(r"\b(?:1[89]\d\d|20\d\d)\b")
_DIGIT = re.compile(r"\d")


# "What did X say / tell / write", "ماذا قال / صرّح / كتب": the answer is someone's words, and a sentence
# quoting them holds the answer's kind. "What did X announce / warn" asks for what was announced, which a
# report gives as well as a quote (folded Arabic: أ → ا).
_EN_STATEMENT = re.compile(r"^\s*what (?:did|does|do|has|have|had|will|would)\b.{1,80}?\b(?:say|tell|write|tweet)\b", re.I)
_AR_STATEMENT = re.compile(r"^\s*(?:و?ماذا|ما الذي|بماذا)\s+(?:قال|قالت|يقول|تقول|صرح|صرحت|كتب|كتبت|غرد|غردت)(?:\s|$)")
# Quotation marks; a quotation is at least two words inside them (the sentence splitter may cut one
# before its closing mark).
_QUOTE_MARKS = re.compile(r"[\"“”«»]")


def has_quotation(sentence: str) -> bool:
    """Whether ``sentence`` quotes someone: two words or more after an opening quotation mark, up to
    its closing mark or the sentence's end (a quoted single word, "الإرهاب", is a term, not a quote)."""
    parts = _QUOTE_MARKS.split(sentence)
    return any(len(re.findall(r"\w+", part)) >= 2 for part in parts[1::2])


_EN_PERSON = re.compile(r"^\s*(?:who|whom|whose)\b|\bwho (?:is|was|will|has|leads|heads|runs)\b", re.I)
_AR_PERSON = re.compile(r"^\s*(?:من|ومن)\s+(?:هو|هي|هم|سي|ي|ت|كان|قاد|يقود|يراس|ترأس|راس)")
_AR_PERSON_START = re.compile(r"^\s*(?:من|ومن)\s")


def question_type(question: str) -> str | None:
    """``"date"`` (when...), ``"number"`` (how many / how far / كم ...), ``"person"`` (who...),
    ``"statement"`` (what did X say...) or None."""
    folded = fold(question)
    if _EN_DATE.search(question) or _AR_DATE.search(folded):
        return "date"
    if _EN_NUMBER.search(question) or _AR_NUMBER.search(folded):
        return "number"
    if _EN_STATEMENT.search(question) or _AR_STATEMENT.search(folded):
        return "statement"
    if _EN_PERSON.search(question) or _AR_PERSON.search(folded) or _AR_PERSON_START.search(folded):
        return "person"
    return None


_LATIN_NAME = re.compile(r"(?<=[a-z,;:\-\"'”“] )[A-Z][a-z]{2,}|(?<=[a-z] )[A-Z][a-z]{2,}")


_FULL_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -](?:al-|el-|bin |ben |de |van |von )?[A-Z][a-z]+)+\b")
# "How many permanent jobs", "كم جنديا": the words right after the question phrase name what is counted.
_EN_FOCUS = re.compile(r"\bhow (?:many|much)\s+((?:[A-Za-z'-]+\s*){1,3})|\bwhat (?:is|was|are|were) the ((?:population|death toll))\b", re.I)
_AR_FOCUS = re.compile(r"(?:^|\s)(?:كم|ما عدد|كم عدد|ما حجم|ما قيمه|ما نسبه)\s+(\S+)")


def question_focus(question: str) -> frozenset[str]:
    """Terms of what a *how many* question counts (empty when it names nothing)."""
    from assistant.text.normalize import ENGLISH_STOPWORDS

    match = _EN_FOCUS.search(question)
    if match:
        words = [w for w in re.findall(r"[A-Za-z'-]+", match.group(1) or match.group(2))]
        content = []
        for word in words:
            if word.lower() in ENGLISH_STOPWORDS:
                break
            content.append(word)
        return frozenset(t for w in content[:2] for t in tokenize(w))
    match = _AR_FOCUS.search(fold(question))
    if match:
        return frozenset(tokenize(match.group(1)))
    return frozenset()


def names_person_like(sentence: str, question: str) -> bool:
    """Whether ``sentence`` names someone the question does not: a run of capitalized words inside an
    English sentence, not a month or weekday and not from the question. Arabic marks no names, so an
    Arabic sentence never counts (no bonus, no penalty)."""
    asked = set(tokenize(question, keep_stopwords=True)) | set(raw_tokens(fold(question)))
    dates = _kind_terms()["date"]
    # A full name: two or more capitalized words in a row, not at the start of the sentence, at least
    # one of them new to the question ("engineer Salma Bukhari", "Batinah Gateway Terminals"). A lone
    # capitalized word is as often a place ("the Gulf") as a person.
    for match in _FULL_NAME.finditer(sentence):
        if match.start() == 0:
            continue
        words = [w.lower() for w in re.findall(r"[A-Za-z]+", match.group(0)) if w[0].isupper()]
        if any(w not in asked and w not in dates and not set(tokenize(w)) & (asked | dates) for w in words):
            return True
    return False


@lru_cache(maxsize=1)
def _kind_terms() -> dict[str, frozenset[str]]:
    """Folded terms (either language) of the lexicon's date and number entries."""
    out: dict[str, set[str]] = {"date": set(), "number": set()}
    for english, kind in entry_kinds().items():
        if kind in out:
            out[kind].update(tokenize(english, keep_stopwords=True))
    for arabic, kind in arabic_kinds().items():
        if kind in out:
            out[kind].add(arabic)
    # Words that name a date only sometimes: the modal "may", the number one (احد is also Sunday's
    # stem), "collect" (جمع), and stems too short to tell.
    ambiguous = {"may", "al", "احد", "جمع", "اثن", "حج", "عيد", "one"}
    return {k: frozenset(t for t in v if len(t) >= 3 and t not in ambiguous) for k, v in out.items()}


def focus_terms(question: str, concepts: Sequence = ()) -> frozenset[str]:
    """What a *how many* question counts, in both languages: the focus words with the terms of the
    question concepts they belong to (translations and spellings), so that "كم وظيفة" finds "jobs"."""
    focus = question_focus(question)
    if not focus:
        return focus
    out = set(focus)
    for concept in concepts:
        if set(tokenize(concept.label)) & focus:
            out |= concept.terms
    return frozenset(out)


def has_answer_type(sentence: str, kind: str | None, question: str = "", focus: frozenset[str] | None = None) -> bool:
    """Whether ``sentence`` carries an answer of ``kind`` (always True for None).

    ``focus`` (default: the question's own focus words) is what a number must come with."""
    if kind is None:
        return True
    if kind == "person":
        return names_person_like(sentence, question)
    if kind == "statement":
        return has_quotation(sentence)
    folded = fold(sentence)
    words = set(raw_tokens(folded))
    terms = words | set(tokenize(sentence, keep_stopwords=True))
    if kind == "date":
        return bool(_YEAR.search(folded) or terms & _kind_terms()["date"] or words & _EN_TIME_WORDS or words & _AR_TIME_WORDS
                    or re.search(r"\b\d{1,2}[/.-]\d{1,2}(?:[/.-]\d{2,4})?\b", folded))
    if kind == "number":
        if not (_DIGIT.search(folded) or words & _EN_NUMBER_WORDS or terms & _kind_terms()["number"]):
            return False
        # With a question, the number must come with what is counted ("1,400 permanent jobs"), when
        # the question says what that is.
        if focus is None:
            focus = question_focus(question) if question else frozenset()
        # Only focus terms in the sentence's own script can be checked ("وظيفة" has no English form
        # in the lexicon: its absence from an English sentence says nothing).
        arabic = any(_ARABIC.match(t) for t in terms)
        focus = frozenset(t for t in focus if bool(_ARABIC.match(t)) == arabic)
        return not focus or bool(focus & terms)
    return True
