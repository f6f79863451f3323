"""English→Arabic news lexicon for dictionary-based cross-language search.

An English question about Arabic articles shares no words with them. The dense model bridges that
gap in meaning; the lexicon bridges it for BM25 (countries, cities, institutions, titles, weekdays,
common news vocabulary), and tells which capitalized words of a question are known places or
institutions rather than names the corpus might lack.

The data is ``assistant/data/lexicon_en_ar.tsv``: ``english<TAB>arabic|arabic...`` per line.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

_PATH = Path(__file__).resolve().parents[1] / "data" / "lexicon_en_ar.tsv"
MAX_PHRASE_WORDS = 4
_WORD = re.compile(r"[^\W_]+(?:['\-][^\W_]+)*")


@lru_cache(maxsize=4)
def load_lexicon(path: str | None = None) -> dict[str, tuple[str, ...]]:
    """English phrase (lower-case) → Arabic forms. Missing file → empty lexicon."""
    table: dict[str, tuple[str, ...]] = {}
    for english, forms, _, _ in gloss_entries(path):
        table[english] = tuple(dict.fromkeys(table.get(english, ()) + forms))
    return table


def _singular(word: str) -> str:
    if word.endswith("'s"):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def translate_phrases(text: str) -> list[tuple[str, tuple[str, ...], int, int]]:
    """Greedy longest-match lexicon lookup: ``(english, arabic_forms, first_word, last_word+1)``."""
    table = load_lexicon()
    if not table:
        return []
    words = _WORD.findall(text.lower())
    out = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_PHRASE_WORDS, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            forms = table.get(phrase)
            if forms is None:
                phrase = " ".join(words[i : i + n - 1] + [_singular(words[i + n - 1])])
                forms = table.get(phrase)
            if forms is not None:
                out.append((phrase, forms, i, i + n))
                i += n
                break
        else:
            i += 1
    return out


@lru_cache(maxsize=1)
def arabic_vocabulary() -> frozenset[str]:
    """Folded Arabic words (and their stems) of the lexicon: common news words and place names.

    An Arabic question word that is neither in the index nor here is most likely a name the corpus
    never mentions.
    """
    from assistant.text.normalize import tokenize

    words: set[str] = set()
    for forms in load_lexicon().values():
        for form in forms:
            words.update(tokenize(form, keep_stopwords=True))
    return frozenset(words)


CLITICS = ("وال", "بال", "فال", "كال", "لل", "ال", "و", "ف", "ب", "ل")


@lru_cache(maxsize=1 << 16)  # a question's words are tried in every phrase that holds them
def bare(token: str) -> str:
    """Strip one conjunction/preposition + article prefix (the lexicon lists bare forms)."""
    for prefix in CLITICS:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            return token[len(prefix) :]
    return token


@lru_cache(maxsize=4)
def gloss_entries(path: str | None = None) -> tuple[tuple[str, tuple[str, ...], str, int], ...]:
    """``(english, arabic forms, section, line number)`` of every lexicon line: the one parser of the
    file (``load_lexicon``, glosses and ``entry_kinds`` read it).

    The section (the file's ``# ===== TITLES AND ROLES =====`` headers) is the entry's topic: it is how
    neighbouring words support one sense of an ambiguous word over another.
    """
    path = Path(path or os.environ.get("ASSISTANT_LEXICON") or _PATH)
    if not path.is_file():
        return ()
    out = []
    section = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.startswith("# ====="):
            section = line.strip("# =").strip()
            continue
        if not line.strip() or line.startswith("#"):
            continue
        separator = "\t" if "\t" in line else " = "  # tolerate the hand-edited "english = arabic" form
        if separator not in line:
            continue
        english, arabic = line.split(separator, 1)
        forms = tuple(f.strip() for f in arabic.split("|") if f.strip())
        english = " ".join(_WORD.findall(english.lower()))
        if english and forms:
            out.append((english, forms, section, number))
    return tuple(out)


# Each Arabic form lists at most this many English entries: a common word (عمل: work, labour,
# action, ...) with every sense would flood an English BM25 query.
MAX_ENGLISH_SENSES = 3


@lru_cache(maxsize=1)
def _reverse_all() -> dict[tuple[str, ...], tuple[str, ...]]:
    """Arabic form (folded words) → every English entry listing it, the most specific first.

    An entry that lists the form earlier is the more direct sense (``embassy → سفارة|...``); ties go
    to the shorter English entry.
    """
    from assistant.text.normalize import fold, raw_tokens

    ranked: dict[tuple[str, ...], list[tuple[int, int, str]]] = {}
    for english, forms in load_lexicon().items():
        for position, form in enumerate(forms):
            key = tuple(raw_tokens(fold(form)))
            if not key or (len(key) == 1 and len(key[0]) < 3):
                continue
            ranked.setdefault(key, []).append((position, len(english), english))
    return {key: tuple(dict.fromkeys(e for _, _, e in sorted(entries))) for key, entries in ranked.items()}


def translate_arabic(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """Greedy longest-match lookup of an Arabic question in the lexicon, Arabic → English:
    ``(arabic words, english entries)`` in reading order (the mirror of ``translate_phrases``).

    Words are also tried without a conjunction/preposition/article prefix, since the lexicon lists
    bare forms (السفارة → سفارة → embassy).
    """
    from assistant.text.normalize import ARABIC_STOPWORDS, fold, raw_tokens

    reverse = _reverse_all()
    if not reverse:
        return []
    tokens = raw_tokens(fold(text))
    out: list[tuple[str, tuple[str, ...]]] = []
    i = 0
    while i < len(tokens):
        for n in range(min(MAX_PHRASE_WORDS, len(tokens) - i), 0, -1):
            if n == 1 and tokens[i] in ARABIC_STOPWORDS:
                continue
            words = tokens[i : i + n]
            english = reverse.get(tuple(words)) or reverse.get(tuple(bare(w) for w in words))
            if english is None and n == 1 and words[0].endswith("ه"):
                english = reverse.get((bare(words[0])[:-1] + "ه",))
            if english is None and n == 1 and len(bare(words[0])) > 4:
                from assistant.text.normalize import stem_arabic

                english = reverse.get((stem_arabic(words[0]),))
            if english is not None:
                out.append((" ".join(words), english[:MAX_ENGLISH_SENSES]))
                i += n
                break
        else:
            i += 1
    return out


def _section_kind(header: str) -> str:
    header = header.upper()
    if header.startswith(("GEOGRAPHY", "PEOPLES", "ORGANIZATIONS")):
        return "name"
    if header.startswith("TIME: DAYS") or header.startswith("TIME: MONTHS"):
        return "date"
    if header.startswith("NUMBERS"):
        return "number"
    return "word"


@lru_cache(maxsize=4)
def entry_kinds(path: str | None = None) -> dict[str, str]:
    """English entry → what it names, from the lexicon's section headers: ``name`` (places, peoples,
    organisations), ``date`` (weekdays, months), ``number`` (number words) or ``word``."""
    kinds: dict[str, str] = {}
    for english, _, section, _ in gloss_entries(path):
        kinds.setdefault(english, _section_kind(section))
    return kinds


@lru_cache(maxsize=1)
def arabic_kinds() -> dict[str, str]:
    """Folded Arabic word (and its stem) → the kind of the lexicon entry it translates (see
    ``entry_kinds``); a word listed under several kinds takes the most specific one (name, date,
    number before word)."""
    from assistant.text.normalize import tokenize

    order = {"name": 0, "date": 1, "number": 2, "word": 3}
    kinds = entry_kinds()
    out: dict[str, str] = {}
    for english, forms in load_lexicon().items():
        kind = kinds.get(english, "word")
        for form in forms:
            terms = tokenize(form, keep_stopwords=True)
            if len(terms) > 2:  # a multi-word form: its words are not each of this kind
                continue
            for term in terms:
                if term not in out or order[kind] < order[out[term]]:
                    out[term] = kind
    return out


@lru_cache(maxsize=1)
def related_names() -> dict[str, tuple[str, ...]]:
    """English name entry → the other name entries that say the same place or body, from the lexicon
    itself: entries sharing an Arabic form (a people's singular and plural; an acronym and its full
    name, IMF / International Monetary Fund), and a country and its people (الجزائر / جزائري, ليبيا /
    ليبي: the nisba adjective is the noun, less a final ا or يا, plus ي). A passage on "Algeria"
    answers a question on "the Algerian minister"; these count when a passage is checked for a
    concept, they are not search terms."""
    kinds = entry_kinds()
    table = {english: forms for english, forms in load_lexicon().items() if kinds.get(english) == "name"}
    by_form: dict[str, set[str]] = {}
    for english, forms in table.items():
        for form in forms:
            by_form.setdefault(form, set()).add(english)
    related: dict[str, set[str]] = {}
    for english, forms in table.items():
        for form in forms:
            for other in by_form.get(form, ()):
                if other != english:
                    related.setdefault(english, set()).add(other)
            if form.endswith("ي") and len(form) >= 4:  # nisba: جزائري → جزائر, ليبي → ليبيا, روسي → روسيا
                base = form[:-1]
                for other in set().union(*(by_form.get(b, set()) for b in (base, "ال" + base, base + "ا", base + "يا"))):
                    if other != english:
                        related.setdefault(english, set()).add(other)
                        related.setdefault(other, set()).add(english)
    return {english: tuple(sorted(others)) for english, others in related.items()}
