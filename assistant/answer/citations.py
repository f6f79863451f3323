"""Checking a model's citations: the answer cut into sentences, which passage sentence supports a
claim, markers standing in for facts or citing passages that cannot support them, and quotations
that are not verbatim in the passage they cite."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from assistant.answer.injection import is_instruction_like
from assistant.answer.markers import ARABIC_DIGITS
from assistant.records import Citation, Hit
from assistant.text.lexicon import translate_phrases
from assistant.text.normalize import detect_language, skeleton, tokenize

# Sentence ends, keeping markers written after the full stop ("... Tunis. [2]") with their sentence.
_SENTENCE_END = re.compile(r"[.!?؟]+(?!\d)(?:[ \t]*\[\d+\])*|\n")


# Some replies put the marker first ("[1] Salvini said ... [2] He also ..."): then a marker opens its sentence.
_LEADING_STYLE = re.compile(r"^\s*\[\d+\]")
_SENTENCE_START = re.compile(r"(?:(?<=[.!?؟])[ \t]*|\n+)(?=\[\d+\])")


def answer_sentences(text: str) -> list[str]:
    """The answer cut into sentences, each with its markers (text kept verbatim).

    Markers normally close their sentence ("... in Tunis [2]." or "... in Tunis. [2]"); when the reply
    starts with a marker they open it instead.
    """
    pieces, start = [], 0
    if _LEADING_STYLE.match(text):
        for match in _SENTENCE_START.finditer(text):
            if match.start() > start:
                pieces.append(text[start : match.start()])
                start = match.start()
        pieces.append(text[start:])
        return [p for p in pieces if p]
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()])
        start = match.end()
    pieces.append(text[start:])
    return [p for p in pieces if p]


def claims_by_marker(text: str) -> dict[int, list[str]]:
    """Sentence(s) of the answer citing each marker, markers removed."""
    claims: dict[int, list[str]] = {}
    for sentence in answer_sentences(text):
        numbers = [int(m) for m in re.findall(r"\[(\d+)\]", sentence)]
        plain = re.sub(r"\[\d+\]", "", sentence).strip()
        for number in numbers:
            claims.setdefault(number, []).append(plain)
    return claims


def _claim_terms(claim: str) -> tuple[set[str], set[str]]:
    """Lexical terms of a claim (plus Arabic forms of its English phrases) and skeletons of its names."""
    terms = set(tokenize(claim))
    for _english, forms, _a, _b in translate_phrases(claim):
        for form in forms:
            terms.update(tokenize(form))
    names = {skeleton(w.lower()) for w in re.findall(r"\b[A-Z][a-zA-Z'\-]{3,}", claim)}
    return terms, {s for s in names if len(s) >= 3}


def best_sentence(hit: Hit, claims: Sequence[str]) -> tuple[int, int]:
    """Document offsets of the chunk sentence that best supports ``claims``; the hit's best span if none does."""
    chunk = hit.chunk
    spans = [s for s in chunk.sentences if s[1] > s[0]] or [(chunk.start, chunk.end)]
    terms: set[str] = set()
    names: set[str] = set()
    for claim in claims:
        t, n = _claim_terms(claim)
        terms |= t
        names |= n
    best: tuple[float, int, int] | None = None
    for start, end in spans:
        sentence = chunk.text[start - chunk.start : end - chunk.start]
        if is_instruction_like(sentence):
            continue  # never show an injected instruction as the evidence of a claim
        tokens = set(tokenize(sentence))
        score = float(len(terms & tokens))
        if names:
            score += 1.5 * len(names & {skeleton(t) for t in tokens if len(t) >= 3})
        if score > 0 and (best is None or score > best[0]):
            best = (score, start, end)
    if best is not None:
        return best[1], best[2]
    if hit.best_end > hit.best_start and not is_instruction_like(hit.best_text):
        return hit.best_start, hit.best_end
    clean = [(a, b) for a, b in spans if not is_instruction_like(chunk.text[a - chunk.start : b - chunk.start])]
    return (clean or spans)[0]


_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
#: Share of a claim's words that a passage in the same script must contain to support it.
SUPPORT_MIN_OVERLAP = 0.34


def supports(claim: str, passage: str) -> bool:
    """Whether ``passage`` can be the source of ``claim`` (a cheap check, generous across languages).

    Every number of two or more digits in the claim must be in the passage. A claim in the passage's
    own script must also share at least :data:`SUPPORT_MIN_OVERLAP` of its words with it; across
    scripts (an English sentence about an Arabic passage) words cannot be compared, so only numbers
    count.
    """
    claim_plain = claim.translate(ARABIC_DIGITS)
    passage_plain = passage.translate(ARABIC_DIGITS)
    passage_numbers = {n.replace(",", "") for n in _NUMBER.findall(passage_plain)}
    for number in _NUMBER.findall(claim_plain):
        if len(number) >= 2 and number.replace(",", "") not in passage_numbers:
            return False
    if detect_language(claim) != detect_language(passage):
        return True
    words = {t for t in tokenize(claim) if not t.isdigit()}
    if len(words) < 3:
        return True
    found = words & set(tokenize(passage))
    return len(found) / len(words) >= SUPPORT_MIN_OVERLAP


# A marker standing where the fact should be: "operates from [1].", "would turn Libya into [1]."
_DANGLING = re.compile(
    r"(?:\b(?:in|into|from|to|at|of|by|on|with|as|see|per|the|a|an|is|are|was|were|and|or)|(?<!\S)(?:في|من|إلى|الى|عن|على|مع|هو|هي))"
    r"\s*(?:\[\d+\]\s*)+(?:[.!?؟]\s*(?:\[\d+\]\s*)*)?$",
    re.IGNORECASE,
)


def drop_dangling(text: str) -> tuple[str, int]:
    """Remove the sentences whose marker stands in for the fact; return the text and how many went."""
    kept, dropped = [], 0
    for sentence in answer_sentences(text):
        if _DANGLING.search(sentence.rstrip()):
            dropped += 1
        else:
            kept.append(sentence)
    return "".join(kept).strip(), dropped


def drop_unsupported(text: str, passages_by_number: dict[int, str]) -> tuple[str, list[int]]:
    """Remove each ``[n]`` whose passage does not support the sentence it ends; return text and kept numbers."""
    kept: list[int] = []
    out = []
    for sentence in answer_sentences(text):

        def keep(match: re.Match[str], plain: str = re.sub(r"\[\d+\]", "", sentence)) -> str:
            number = int(match.group(1))
            if supports(plain, passages_by_number.get(number, "")):
                if number not in kept:
                    kept.append(number)
                return match.group(0)
            return ""

        out.append(re.sub(r"\[(\d+)\]", keep, sentence))
    cleaned = re.sub(r"[ \t]+(?=[.,;:!?؟،]|$)", "", "".join(out), flags=re.MULTILINE)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip(), kept


def cite(number: int, hit: Hit, claims: Sequence[str]) -> Citation:
    """Citation ``[number]`` of ``hit``, quoting the passage sentence that best supports ``claims``."""
    start, end = best_sentence(hit, claims)
    return Citation.from_hit(number, hit, start, end)


_QUOTES = re.compile(r"«([^«»\n]{1,600})»|“([^“”\n]{1,600})”|\"([^\"\n]{1,600})\"|„([^„“\n]{1,600})“")


def _ws(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def verify_quotes(text: str, sources: Sequence[str]) -> tuple[str, list[str]]:
    """Unquote every quotation of ``text`` that is not verbatim (whitespace aside) in one of ``sources``.

    Returns the new text and the list of quotations that were unquoted.
    """
    normalized = [_ws(s) for s in sources]
    removed: list[str] = []

    def check(match: re.Match[str]) -> str:
        inner = next(g for g in match.groups() if g is not None)
        needle = _ws(inner).strip(" .,،؛;:")
        if needle and any(needle in source for source in normalized):
            return match.group(0)
        removed.append(inner)
        return inner

    return _QUOTES.sub(check, text), removed
