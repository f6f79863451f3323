"""Sentence splitting with exact offsets into the original text (chunking builds on it: ``ingest.chunking``).

Scraped Arabic news glues sentences together ("., "), glues sub-headings to the next word
("مسيرة تركيةوكان الجيش"), and carries share buttons and "read also" link lists. We never rewrite the
text to fix that: every sentence is a ``(start, end)`` span of the original string, debris spans are
left out of every chunk, and the matching layer (``normalize``) repairs the glue in its own copy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.text.normalize import _ARABIC_LETTER


# A sentence ends at . ! ? ؟ ؛ (or a run of them), optionally followed by closing quotes or brackets,
# then by whitespace, a scraper's comma, the end, or (glued) the next word. A dot between digits is a
# decimal point, not an end.
_END = re.compile(
    r"""(?:(?<!\d)\.(?!\d)|(?<=\d)\.(?!\d)|(?<!\d)\.(?=\d)|[!?؟؛]|\.{2,}|…)+[\"'”’»)\]]*(?:\s*,)?"""
)
_BREAK = re.compile(r"\n\s*|\s*\*{3,}\s*")
# A heading glued to the next word: ta marbuta / alef maqsura followed by a letter, after a short run
# of words that began at a line or sentence start.
_GLUED_HEADING = re.compile(rf"[ةى](?=[{_ARABIC_LETTER}])")
_HEADING_MAX_WORDS = 6
_TERMINAL = frozenset('.!?؟؛:"\'”’»)…')

# Share buttons, "read also" link lists, bylines of social widgets. Matched on a whole sentence.
_DEBRIS = re.compile(
    r"""^\s*(?:
        (?:مشاركة|شارك|شاركها|طباعة|تابعونا|تابعنا|أرسل|حفظ|share|tweet|print|email|follow\s+us)\s*[:：]?\s*
            (?:(?:على|عبر|on|via)?\s*(?:فيسبوك|تويتر|واتساب|facebook|twitter|whatsapp|linkedin|telegram|email|x)\s*[,،]?\s*)*$
      | (?:اقرأ|إقرأ|اقرا|اقرئي)\s+(?:أيضا|أيضاً|ايضا|المزيد)
      | read\s+(?:also|more)\b
      | (?:see\s+also|related\s+(?:articles|stories))\b
    )""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    debris: bool = False
    heading: bool = False


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and (text[start].isspace() or text[start] in ",،"):
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_sentences(text: str) -> list[Sentence]:
    """Split ``text`` into sentence spans, marking share/"read also" debris."""
    spans: list[tuple[int, int]] = []
    block_start = 0
    breaks = [(m.start(), m.end()) for m in _BREAK.finditer(text) if not _soft_wrap(text, m)] + [(len(text), len(text))]
    for brk_start, brk_end in breaks:
        _split_block(text, block_start, brk_start, spans)
        block_start = brk_end
    sentences = []
    for start, end in spans:
        start, end = strip_span(text, start, end)
        if end - start == 0 or not any(ch.isalnum() for ch in text[start:end]):
            continue
        body = text[start:end]
        debris = bool(_DEBRIS.match(body))
        heading = not debris and len(body.split()) <= _HEADING_MAX_WORDS + 2 and body[-1] not in _TERMINAL
        sentences.append(Sentence(start, end, debris, heading))
    return sentences


# A hard-wrapped line (plain-text wire copy, e-mail, Markdown source) continues its sentence on the
# next line: a single newline after a line of at least this many characters that ends without
# sentence punctuation, when the next line starts in lower case or the wrapped line ends on a comma or
# a function word. Headings (short lines, or a capitalized next line) keep their break; so does Arabic
# scraped text, whose single newlines separate paragraphs.
_WRAP_MIN_LINE = 40
_WRAP_LAST_WORDS = frozenset("""a an the of in on at to for from by with and or but that which who whom whose as than
    is are was were be been has have had will would said says""".split())


def _soft_wrap(text: str, match: re.Match[str]) -> bool:
    """Whether the line break ``match`` wraps a sentence instead of ending a line of its own."""
    if match.group(0).count("\n") != 1 or "*" in match.group(0):
        return False
    line_start = text.rfind("\n", 0, match.start()) + 1
    line = text[line_start : match.start()].rstrip()
    nxt = text[match.end() : match.end() + 1]
    if len(line) < _WRAP_MIN_LINE or not nxt or line[-1] in _TERMINAL or line[-1] == ":":
        return False
    if not line[-1].isascii():
        return False
    last_word = line.rsplit(None, 1)[-1].lower()
    return (nxt.isascii() and (nxt.islower() or nxt.isdigit())) or line.endswith(",") or last_word in _WRAP_LAST_WORDS


# English abbreviations whose full stop ends no sentence ("Mr. Kamal", "the U.S. envoy", "Jan. 5"),
# and single initials ("J. Smith").
_ABBREVIATION = re.compile(
    r"(?:\b(?:Mr|Mrs|Ms|Dr|Prof|Gen|Col|Lt|Maj|Capt|Sgt|Cpl|Gov|Sen|Rep|Rev|St|Jr|Sr|No|vs|etc|Inc|Ltd|Co|Corp|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|approx|est|i\.e|e\.g|a\.m|p\.m|U\.S|U\.N|U\.K|E\.U)|\b[A-Z])$"
)


def _split_block(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    pos = start
    for match in _END.finditer(text, start, end):
        cut = match.end()
        if cut <= pos:
            continue
        if match.group(0).rstrip() == "." and _ABBREVIATION.search(text[max(pos, match.start() - 12) : match.start()]):
            continue
        out.extend(_split_glued_heading(text, pos, cut))
        pos = cut
    if pos < end:
        out.extend(_split_glued_heading(text, pos, end))


def _split_glued_heading(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Cut a short heading glued to the sentence after it ("حرب إقليميةأعلن السفير")."""
    match = _GLUED_HEADING.search(text, start, end)
    if match is None:
        return [(start, end)]
    words_before = len(text[start : match.end()].split())
    if words_before > _HEADING_MAX_WORDS:
        return [(start, end)]
    cut = match.end()
    return [(start, cut)] + _split_glued_heading(text, cut, end)
