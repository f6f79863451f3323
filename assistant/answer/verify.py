"""Verifying a model's reply before anyone reads it (``postprocess``), and what of a reply still being
written may be shown (``visible_partial``).

``postprocess`` checks the full reply:

- an answer that repeats instructions found inside a passage (prompt injection) is discarded;
- sentences copied from the prompt's own instructions are removed, and a reply of bare markers
  ("[2]") is no answer;
- the NOT FOUND phrase the prompt asks for becomes an abstention;
- markers (``[1]``, ``[2, 3]``, ``[1][2]``, ``[1-2]``) are parsed with a bounds check: a number that
  is not one of the given passages is dropped, never remapped;
- a sentence whose marker stands where the fact should be ("operates from [1].") is removed;
- a marker whose passage cannot support its sentence is dropped;
- quotes not found verbatim (whitespace aside) in a cited passage lose their quote marks;
- an answer in the wrong language is reported as such (the writer retries once).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from assistant.answer.base import Draft, Passage
from assistant.answer.citations import answer_sentences, drop_dangling, drop_unsupported, verify_quotes
from assistant.answer.injection import echoes_injection, may_echo
from assistant.answer.markers import INCOMPLETE_TAIL, clean_markers
from assistant.text.normalize import detect_language, fold

_CLAIM_SPLIT = re.compile(r"(?<=[.!?؟])\s+|\n+")
_QUOTED_SPANS = re.compile(r"«[^«»]*»|“[^“”]*”|\"[^\"]*\"")
_LEADING_LABEL = re.compile(r"^\s*(?:answer|the answer|الإجابة|الجواب)\s*[:：]\s*", re.IGNORECASE)
# Small models sometimes echo the question before answering ("Question: ...\nAnswer: ...").
_LEADING_QUESTION = re.compile(r"^\s*(?:question|السؤال)\s*[:：][^\n]*(?:\n|$)", re.IGNORECASE)
_PREAMBLE_WORDS = ("question:", "answer:", "السؤال:", "الإجابة:", "الجواب:")


def strip_preamble(text: str) -> str:
    """``text`` without an echoed ``Question: ...`` line and ``Answer:`` label at its start."""
    text = _LEADING_QUESTION.sub("", text, count=1)
    return _LEADING_LABEL.sub("", text, count=1)


def contains_not_found(text: str, phrases: Sequence[str]) -> bool:
    upper = text.upper()
    return any(p.upper() in upper for p in phrases)


def _strip_not_found(text: str, phrases: Sequence[str]) -> str:
    sentences = [s for s in _CLAIM_SPLIT.split(text) if not contains_not_found(s, phrases)]
    return " ".join(s.strip() for s in sentences if s.strip())


def own_language(text: str, default: str) -> str:
    """Language of the answer's own words (quotations and markers left out)."""
    own = re.sub(r"\[\d+\]", " ", _QUOTED_SPANS.sub(" ", text))
    if not re.search(r"[^\W\d_]", own):  # no letters at all ("145 [1]"): nothing to judge
        return default
    return detect_language(own)


def _echo_key(text: str) -> str:
    return " ".join(re.sub(r"\[[^\]]*\]|[^\w\s]", " ", fold(text)).split())


def drop_prompt_echo(text: str, instructions: str) -> str:
    """Remove the sentences of a reply that copy our own instructions (small models recite the prompt)."""
    if not instructions:
        return text
    source = _echo_key(instructions)
    kept = []
    for sentence in answer_sentences(text):
        key = _echo_key(sentence)
        if len(key.split()) >= 4 and key in source:
            continue
        kept.append(sentence)
    return "".join(kept).strip()


def postprocess(
    raw: str,
    passages: Sequence[Passage],
    language: str,
    not_found_phrases: Sequence[str],
    instructions: str = "",
    retrieved_texts: Sequence[str] = (),
) -> Draft:
    """Check a complete reply against the passages it was written from (the steps: the module docstring).

    ``instructions`` is the prompt without the passages: sentences copied from it are removed.
    ``retrieved_texts`` are all retrieved passages, searched for injected instructions with the given ones.
    """
    text = drop_prompt_echo(strip_preamble(raw.strip()).strip(), instructions)
    texts = [p.hit.chunk.text for p in passages] + list(retrieved_texts)
    numbers = [p.number for p in passages]
    if echoes_injection(text, texts):
        return Draft("injection", text)
    if contains_not_found(text, not_found_phrases):
        rest, used = clean_markers(_strip_not_found(text, not_found_phrases), numbers)
        if not used:
            return Draft("not_found", text)
        text = rest  # an answer with cited facts and a stray NOT FOUND sentence keeps its facts
    text, used = clean_markers(text, numbers)
    if not text:
        return Draft("no_citation", text)
    if not re.search(r"\w", re.sub(r"\[\d+\]", "", text)):
        return Draft("incomplete", text)  # nothing but markers: "[2]"
    by_number = {p.number: p for p in passages}
    text, dropped = drop_dangling(text)
    if dropped and not re.search(r"\[\d+\]", text):
        return Draft("incomplete", text)
    text, used = drop_unsupported(text, {p.number: p.hit.chunk.text for p in passages})
    cited_sources = [by_number[m].hit.chunk.text for m in used]
    text, unquoted = verify_quotes(text, cited_sources)
    if own_language(text, language) != language:
        return Draft("wrong_language", text, tuple(used), tuple(unquoted))
    if not used:
        return Draft("no_citation", text, (), tuple(unquoted))
    return Draft("ok", text, tuple(used), tuple(unquoted))


def visible_partial(raw: str, given: int | Collection[int], not_found_phrases: Sequence[str], payloads: Sequence[str] = ()) -> str:
    """What to show of a reply still being written.

    Complete valid markers only, no NOT FOUND prefix, and nothing once the reply starts repeating an
    instruction injected in a passage (``payloads``, from :func:`find_instruction_payloads`).
    """
    if may_echo(raw, payloads):
        return ""
    text = raw.lstrip()
    head = text.lower()
    if any(w.startswith(head) for w in _PREAMBLE_WORDS) or (_LEADING_QUESTION.match(text + "\n") and "\n" not in text):
        return ""  # maybe the start of an echoed "Question: ..." line; wait for more
    text = strip_preamble(text).lstrip()
    probe = re.sub(r"\[[^\]]*\]?", " ", text).strip().upper()
    if probe and any(p.upper().startswith(probe) or probe.startswith(p.upper()) for p in not_found_phrases):
        return ""
    text = INCOMPLETE_TAIL.sub("", text)
    for phrase in not_found_phrases:  # hold back what may be the start of the NOT FOUND phrase
        for size in range(len(phrase) - 1, 2, -1):
            if text.endswith(phrase[:size]):
                text = text[:-size]
                break
    cleaned, _ = clean_markers(text, given)
    return cleaned
