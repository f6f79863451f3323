"""Dictionary glosses of Arabic passages for readers without Arabic: phrases before words, the sense its
neighbours support, unknown words after a title transliterated as names."""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from assistant.text.lexicon import CLITICS, MAX_PHRASE_WORDS, bare, gloss_entries

_SENSES_PATH = Path(__file__).resolve().parents[1] / "data" / "gloss_senses_ar_en.tsv"


@lru_cache(maxsize=2)
def _cued_senses(path: str | None = None) -> dict[str, tuple[tuple[str, frozenset[str], str], ...]]:
    """Ambiguous words' senses with their cue words: folded arabic → ((english, cues, written form), ...),
    the default sense first."""
    from assistant.text.normalize import fold

    path = Path(path or os.environ.get("ASSISTANT_GLOSS_SENSES") or _SENSES_PATH)
    table: dict[str, list[tuple[str, frozenset[str], str]]] = {}
    if not path.is_file():
        return {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 2:
            continue
        written, english = parts[0].strip(), parts[1].strip()
        cues = frozenset(("<" + fold(c.strip()[1:])) if c.strip().startswith("<") else fold(c.strip()) for c in (parts[2] if len(parts) > 2 else "").split("|") if c.strip())
        table.setdefault(fold(written), []).append((english, cues, written))
    return {k: tuple(v) for k, v in table.items()}


class _Sense(tuple):
    """One candidate gloss: ``(english, section, position of the form in its line, line number, form)``."""

    english = property(lambda self: self[0])
    section = property(lambda self: self[1])
    rank = property(lambda self: (self[2], self[3]))
    form = property(lambda self: self[4])


@lru_cache(maxsize=1)
def _reverse_senses() -> dict[tuple[str, ...], list[_Sense]]:
    """Arabic form (folded words) → every English entry that lists it, best default first.

    The default is the entry listing the form earliest, then the earlier line in the file (the file
    lists the common sense of a word first; the old rule, the shortest English, glossed رئيس as "head").
    """
    from assistant.text.normalize import fold, raw_tokens

    table: dict[tuple[str, ...], list[_Sense]] = {}
    for english, forms, section, number in gloss_entries():
        for position, form in enumerate(forms):
            key = tuple(raw_tokens(fold(form)))
            if not key or (len(key) == 1 and len(key[0]) < 3):
                continue
            senses = table.setdefault(key, [])
            if all(s.english != english for s in senses):
                senses.append(_Sense((english, section, position, number, form)))
    for senses in table.values():
        senses.sort(key=lambda s: s.rank)
    return table


def _reverse_index() -> dict[tuple[str, ...], str]:
    """Arabic form (folded words) → its default English gloss."""
    return {key: senses[0].english for key, senses in _reverse_senses().items()}


_HAMZA_ALEFS = "أإآ"


def _hamza_clash(surface: str, form: str) -> bool:
    """True when both spellings carry a hamza seat on an alef and they differ (أمام "in front of" is not
    إمام "imam"): folding merges them for search, but a gloss must not."""
    return any(a in _HAMZA_ALEFS and b in _HAMZA_ALEFS and a != b for a, b in zip(surface, form))


# Single-letter proclitics (and, so, with/by, for/to, like): stripping one off a short word makes a
# different word (بعيد "far / shortly after" is not ب + عيد "eid"), so it needs a longer remainder.
_ONE_LETTER_CLITICS = ("و", "ف", "ب", "ل", "ك")


def _stems(token: str, known: frozenset[str]) -> list[str]:
    """The token, then what is left after one conjunction/preposition/article prefix.

    A one-letter prefix is stripped only when at least four letters remain and the whole token is not
    itself a dictionary word (FreeDict's headwords, when installed).
    """
    out = [token]
    if token.endswith("ا") and len(token) > 3 and not token.endswith(("ها", "نا", "وا")):  # accusative: عقدا -> عقد
        out.append(token[:-1])
    for prefix in CLITICS:
        rest = token[len(prefix):]
        if not token.startswith(prefix) or len(rest) < 3:
            continue
        if prefix in _ONE_LETTER_CLITICS and (len(rest) < 4 or token in known):
            continue
        out.append(rest)
        break
    return out


_TRANSLIT = {
    "ا": "a", "أ": "a", "إ": "i", "آ": "a", "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d",
    "ذ": "dh", "ر": "r", "ز": "z", "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "ع": "", "غ": "gh",
    "ف": "f", "ق": "q", "ك": "k", "ل": "l", "م": "m", "ن": "n", "ه": "h", "ة": "a", "ى": "a", "ء": "", "ئ": "",
    "ؤ": "", "پ": "p", "چ": "ch", "ڤ": "v", "گ": "g",
}


def transliterate(word: str) -> str:
    """A readable Latin spelling of an Arabic name (غوتيريش → "Ghutirish", البرهان → "al-Burhan").

    Short vowels are not written in Arabic, so this is a rough guide, not the name's usual English
    spelling; it tells a reader that the word is a name and roughly how it sounds.
    """
    prefix = ""
    if word.startswith("ال") and len(word) > 4:
        prefix, word = "al-", word[2:]
    out = []
    for i, ch in enumerate(word):
        nxt = word[i + 1] if i + 1 < len(word) else ""
        if ch in "وي":
            consonant = i == 0 or (nxt != "" and nxt in "اويى") or (bool(out) and out[-1][-1:] in "aeiou")
            out.append(("w" if ch == "و" else "y") if consonant else ("u" if ch == "و" else "i"))
        else:
            out.append(_TRANSLIT.get(ch, ch if ch.isascii() else ""))
    text = "".join(out)
    return prefix + text[:1].upper() + text[1:] if text else ""


# Sections whose entries introduce a person: a following word the lexicon does not know is a name.
_TITLE_SECTIONS = ("TITLES AND ROLES",)
# Sections a name may follow a title through ("the Russian foreign minister", "UN secretary general").
_BRIDGE_SECTIONS = ("GEOGRAPHY: COUNTRIES AND DEMONYMS", "PEOPLES, LANGUAGES, RELIGIONS", "ORGANIZATIONS: INTERNATIONAL",
                    "ORGANIZATIONS: STATE INSTITUTIONS")
# Sections too general to say what a passage is about: they do not support a sense of a neighbour.
_GENERIC_SECTIONS = ("MORE VERBS", "GENERAL NEWS NOUNS", "GENERAL ADJECTIVES", "TIME: GENERAL", "NUMBERS",
                     "ACTIONS: MILITARY AND POLITICAL VERBS", "UNITS AND QUANTITIES")
NEIGHBOURS = 4
_FUTURE_OR_VERB = re.compile(r"^(س[يتن]\w{4,}|[يت]ست\w{3,}|است\w{3,}|[يتن]ت\w{3,})$")


# Prepositions and particles missing from the search stopwords that often follow a name.
_FUNCTION_WORDS = frozenset("لدي نحو ضد عبر خلال قبل بعد حيث دون لدى عقب اثر اثناء وسط".split())


def freedict_available() -> bool:
    """True when Debian's FreeDict Arabic-English dictionary is installed (see ``assistant.freedict``)."""
    from assistant.text import freedict

    return freedict.available()


def _common_word(token: str, known: frozenset[str]) -> bool:
    """True when ``token`` (folded) is an ordinary word: the lexicon or FreeDict knows it or its stem
    (without a prefix, an accusative ending ا, or a pronoun suffix), or it looks like a verb."""
    if _FUTURE_OR_VERB.match(token) or token in _FUNCTION_WORDS:
        return True
    if token.endswith("ا") and len(token) >= 5:  # an indefinite accusative (جديدا, قائلا), not a name
        return True
    forms = {token, bare(token)}
    forms |= {f[:-1] for f in list(forms) if f.endswith("ا") and len(f) > 3}
    forms |= {f[:-2] for f in list(forms) if f.endswith(("ها", "هم")) and len(f) > 4}
    forms |= {f[:-1] + "ه" for f in list(forms) if f.endswith("ت") and len(f) > 3}
    senses = _reverse_senses()
    return any((f,) in senses or f in known for f in forms)


def gloss_arabic(text: str, max_terms: int = 10, *, dictionary: str = "lexicon",
                 skip_words: frozenset[str] | set[str] = frozenset()) -> list[tuple[str, str]]:
    """Dictionary gloss of an Arabic passage: ``(arabic words, english)`` in reading order.

    Not a translation: it names the places, institutions, titles, names and news words a reader without
    Arabic can use to check that a quoted passage is about what they asked.

    - Phrases before words: the longest lexicon phrase (up to four words) at each place wins.
    - A word with several senses takes the one its neighbours support: for the ambiguous news words of
      ``data/gloss_senses_ar_en.tsv`` (عمل work/labour, بعيد shortly after/far, ...) the sense with a cue
      word within ``NEIGHBOURS`` words; for other words the sense whose lexicon topic (section) the
      neighbouring glosses share; else the first sense.
    - Words nobody knows right after a person's title ("the Russian foreign minister ...") are a name,
      transliterated.
    - ``dictionary``: "lexicon" (the hand-made news lexicon), "freedict" (Debian's FreeDict alone) or
      "both" (the lexicon, then FreeDict for words it lacks). FreeDict is read only when installed and
      asked for: on the labelled set it lowered precision (see bench/gloss_precision.py).
    - ``skip_words``: folded words not to gloss (names the caller shows already).
    """
    from assistant.text import freedict
    from assistant.text.normalize import ARABIC_STOPWORDS, _TOKEN, clean_for_embedding, fold

    use_lexicon = dictionary in ("lexicon", "both")
    use_freedict = dictionary in ("freedict", "both") and freedict.available()
    senses_of = _reverse_senses() if use_lexicon else {}
    cued = _cued_senses() if use_lexicon else {}
    if not senses_of and not use_freedict:
        return []
    cleaned = clean_for_embedding(text)
    found_tokens = [m for m in _TOKEN.finditer(cleaned) if m.group() != "_"]
    originals = [m.group() for m in found_tokens]
    tokens = [fold(t) for t in originals]
    # joined[k]: token k follows token k-1 with only spaces between (a name does not run across a comma,
    # a colon or a quote mark)
    joined = [k > 0 and not cleaned[found_tokens[k - 1].end() : m.start()].strip() for k, m in enumerate(found_tokens)]
    # FreeDict's headwords would also stop wrong prefix splits, but on the labelled set they changed
    # nothing (bench/gloss_precision.py), so the product does not pay for loading it.
    known = freedict.headwords() if use_freedict else frozenset()

    def lookup(i: int, n: int) -> list[_Sense] | None:
        """Lexicon senses of tokens[i:i+n] (also with clitics stripped), best default first."""
        words = tokens[i : i + n]
        keys = [(stem, *words[1:]) for stem in _stems(words[0], known)]
        if n > 1:
            keys.append(tuple([bare(words[0])] + [bare(w) for w in words[1:]]))
        if n == 1 and words[0].endswith("ه"):  # a pronoun suffix: بمهامها -> مهام
            keys.append((bare(words[0])[:-1] + "ه",))
        surface = " ".join(originals[i : i + n])
        matches: dict[str, list] = {}  # english -> [best sense, keys it matched]
        for number, key in enumerate(dict.fromkeys(keys)):
            for sense in senses_of.get(key, ()):
                tail = surface[-len(sense.form):] if len(surface) >= len(sense.form) else surface
                if _hamza_clash(tail, sense.form):
                    continue
                entry = matches.setdefault(sense.english, [sense, {}])
                entry[1][number] = min(entry[1].get(number, 99), sense.rank[0])
                if sense.rank < entry[0].rank:
                    entry[0] = sense
        # An entry that lists the word as written and has its bare form first (اليوم and يوم: "today") is
        # that word's own sense; otherwise the lexicon's order (يوم: "day"; حكومة: "government", not
        # "cabinet", which lists حكومة second).
        ranked = sorted(matches.values(), key=lambda e: (not (0 in e[1] and 0 in [p for k, p in e[1].items() if k]),
                                                         e[0].rank))
        return [e[0] for e in ranked] or None

    def cue_senses(i: int) -> tuple[tuple[str, frozenset[str], str], ...] | None:
        for stem in _stems(tokens[i], known):
            senses = cued.get(stem)
            if senses and not _hamza_clash(originals[i][-len(senses[0][2]):], senses[0][2]):
                return senses
        return None

    # 1. phrases before words: segment the passage into lexicon spans
    spans: list[tuple[int, int, list[_Sense] | tuple]] = []
    i = 0
    while i < len(tokens):
        for n in range(min(MAX_PHRASE_WORDS, len(tokens) - i), 0, -1):
            if n == 1 and (tokens[i] in ARABIC_STOPWORDS or tokens[i] in skip_words):
                continue
            found = lookup(i, n) if n > 1 else (cue_senses(i) or lookup(i, n))
            if found:
                spans.append((i, i + n, found))
                i += n
                break
        else:
            i += 1

    # 2. each ambiguous span takes the sense its neighbours support
    chosen: dict[int, _Sense] = {}
    for start, end, senses in spans:
        window = set()
        for k in range(max(0, start - NEIGHBOURS), min(len(tokens), end + NEIGHBOURS)):
            if not start <= k < end:
                window.update((tokens[k], bare(tokens[k])))
        if isinstance(senses, tuple):  # cued senses of an ambiguous word
            # A cue "<word" must be the word right before ("على بعد" is "at a distance of").
            before = {"<" + tokens[start - 1]} if start else set()
            english = next((e for e, cues, _ in senses[1:] if cues & (window | before)), senses[0][0])
            chosen[start] = _Sense((english, "", 0, 0, ""))
            continue
        if len(senses) == 1:
            chosen[start] = senses[0]
            continue
        near = {s.section for other_start, other_end, other in spans if other_start != start and not isinstance(other, tuple)
                and (abs(other_start - end) <= NEIGHBOURS or abs(start - other_end) <= NEIGHBOURS)
                for s in other if s.section not in _GENERIC_SECTIONS}
        # Supported senses first; among equals, the default order of lookup() (the word as written first).
        chosen[start] = min(enumerate(senses), key=lambda item: (item[1].section not in near, item[0]))[1]

    # 3. names after titles, FreeDict for the rest (when asked), in reading order
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    covered = {k for start, end, _ in spans for k in range(start, end)}
    by_start = {start: (end, chosen[start]) for start, end, _ in spans}

    def add(arabic: str, english: str) -> None:
        if english not in seen and len(out) < max_terms:
            seen.add(english)
            out.append((arabic, english))

    def name_word(k: int) -> bool:
        return (k < len(tokens) and k not in covered and tokens[k] not in ARABIC_STOPWORDS and tokens[k] not in skip_words
                and not tokens[k].isdigit() and not _common_word(tokens[k], known))

    i = 0
    after_title = False
    while i < len(tokens) and len(out) < max_terms:
        if i in by_start:
            end, sense = by_start[i]
            add(" ".join(tokens[i:end]), sense.english)
            if sense.section in _TITLE_SECTIONS and not sense.form.split()[0].endswith(("ة", "ه")):  # a person, not an office
                after_title = True
            elif sense.section not in _BRIDGE_SECTIONS:
                after_title = False
            i = end
            continue
        if after_title and name_word(i):
            j = i + 1
            while j - i < 3 and name_word(j) and joined[j]:
                j += 1
            add(" ".join(tokens[i:j]), " ".join(transliterate(w) for w in originals[i:j]))
            after_title = False
            i = j
            continue
        after_title = False
        if use_freedict and tokens[i] not in ARABIC_STOPWORDS and tokens[i] not in skip_words:
            for stem in _stems(tokens[i], known):
                found = freedict.senses(stem)
                if found:
                    add(tokens[i], found[0])
                    break
        i += 1
    return out
