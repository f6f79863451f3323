"""One normalizer for queries and documents.

Three levels, each a pure function of a string:

* ``clean_for_embedding``: what the dense model sees. NFKC (folds Arabic presentation forms), diacritics
  and tatweel removed, Arabic-Indic digits to ASCII, scraping glue repaired ("., " joins, a heading
  glued to the next word). Letters are kept as written: the model was trained on ordinary Arabic.
* ``fold``: what lexical matching sees. ``clean_for_embedding`` plus alef/ya/ta-marbuta/hamza-seat
  unification and lower-casing.
* ``tokenize``: folded text split by a Unicode-aware pattern, stop words dropped, light Arabic stemming.

The original text is never changed: offsets into it stay valid, and it is what users see.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

NORMALIZER_VERSION = "5"

# Harakat, Quranic marks, superscript alef; tatweel separately.
_DIACRITICS = re.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u06D6-\u06DC\u06DF-\u06E8\u06EA-\u06ED\u08D3-\u08FF]")
_TATWEEL = "\u0640"
_BIDI_AND_ZW = re.compile(r"[\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF\u00AD]")
_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_FOLD_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه", "ؤ": "و", "ئ": "ي", "ک": "ك", "ی": "ي", "گ": "ك"})

_ARABIC_LETTER = "\u0621-\u063A\u0641-\u064A"
# Ta marbuta and alef maqsura only end words, so a letter right after one means two words were glued
# ("مسيرة تركيةوكان" is a sub-heading glued to the next sentence).
_GLUED_AFTER_FINAL = re.compile(rf"([ةى])(?=[{_ARABIC_LETTER}])")
# "., " (sentence joined by a scraper) and a full stop glued to the next Arabic word ("حفتر.وقال").
_DOT_COMMA = re.compile(r"\.\s*,\s*")
_DOT_GLUED = re.compile(rf"(?<=[^\d\s.])\.(?=[{_ARABIC_LETTER}])")
_SPACES = re.compile(r"\s+")

_TOKEN = re.compile(r"\w+", re.UNICODE)
_ARABIC_CHARS = re.compile(rf"[{_ARABIC_LETTER}]")
_LATIN_CHARS = re.compile(r"[A-Za-z]")


def clean_for_embedding(text: str) -> str:
    """Return text prepared for the dense model (see module docstring)."""
    text = unicodedata.normalize("NFKC", text)
    text = _BIDI_AND_ZW.sub("", text)
    text = _DIACRITICS.sub("", text).replace(_TATWEEL, "")
    text = text.translate(_DIGITS)
    text = _DOT_COMMA.sub(". ", text)
    text = _DOT_GLUED.sub(". ", text)
    text = _GLUED_AFTER_FINAL.sub(r"\1 ", text)
    return _SPACES.sub(" ", text).strip()


def fold(text: str) -> str:
    """Return text folded for lexical matching (see module docstring)."""
    return clean_for_embedding(text).translate(_FOLD_LETTERS).lower()


# Function words that carry no topic. Folded spellings.
ARABIC_STOPWORDS = frozenset(
    """في من على الي عن ان او ام ثم لا ما لم لن مع هذا هذه ذلك تلك هو هي هم هن انه انها التي الذي الذين
    كان كانت قد لقد كما قال قالت وقال وقالت اي كل بعض غير بين حول عند منذ حتي الا اذا اذ لكن بل ايضا
    وفي ومن وعلى والي وان او وكان وقد ولا وما به بها له لها لهم فيه فيها منه منها عليه عليها اليه
    هل ماذا متي اين كيف لماذا كم من ما هناك هنا الان يكون تكون""".split()
)
ENGLISH_STOPWORDS = frozenset(
    """a an the of in on at to for from by with about into over after before between and or but not no
    is are was were be been being do does did has have had will would shall should can could may might
    what which who whom whose when where why how that this these those there here it its he she they
    them his her their our we you your i me my as if than then so such also any all some more most
    according say said tell told mentioned reports report reported its itself himself herself themselves
    am being both each few further once only other own same too very just don doesn didn isn wasn
    up down out off under again why whom into through during above below s t many much""".split()
)

# Light stemming after Larkey et al.'s light10: strip one conjunction/preposition + article prefix and
# one common suffix, but never below three letters (proper names are short and must survive).
_PREFIXES = ("وال", "بال", "كال", "فال", "لل", "ال", "و", "ب", "ل")
_SUFFIXES = ("هما", "كما", "ات", "ان", "ين", "ون", "يه", "ها", "هم", "هن", "نا", "يا", "ه", "ي")


@lru_cache(maxsize=200_000)
def stem_arabic(token: str) -> str:
    """Light-stem one folded Arabic token."""
    if len(token) <= 3:
        return token
    for prefix in _PREFIXES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            # A lone و/ف/ب/ل is only a prefix when enough of the word is left (وزير must stay).
            if len(prefix) == 1 and len(token) - 1 < 4:
                continue
            token = token[len(prefix) :]
            break
    for suffix in _SUFFIXES:
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            token = token[: -len(suffix)]
            break
    return token


_DEFINITE = ("وال", "بال", "كال", "فال", "لل", "ال")


@lru_cache(maxsize=200_000)
def article_stem(word: str) -> str | None:
    """The stem of a one-word Arabic noun in the other state of definiteness: with the article when it
    has none (بنزين → البنزين → بنز), without it when it has one (البرلمان → برلمان → رلم). The light
    stemmer reads the two states differently when the word starts or ends like an affix (بنزين loses its
    ب as if a preposition, البنزين its ين as if a plural), so a lexicon form in one state misses the
    text's word in the other. None when it is the same stem or not one Arabic word. For the question side
    only; the index keeps ``tokenize``'s terms."""
    token = fold(word)
    if " " in token or not is_arabic_token(token):
        return None
    bare = next((token[len(p):] for p in _DEFINITE if token.startswith(p)), None)
    other = stem_arabic("ال" + token) if bare is None else stem_arabic(bare) if len(bare) >= 3 else None
    return other if other and other != stem_arabic(token) else None


_TA_BEFORE_PRONOUN = re.compile(r"ت(?:ه|ها|هم|هما|هن|كم|كما|نا|ي)$")


def word_forms(token: str) -> set[str]:
    """A folded Arabic token, its stem, and its form with a ta marbuta restored before a pronoun
    suffix (مغادرته → مغادره), for deciding whether a word is known."""
    forms = {token, stem_arabic(token)}
    if _TA_BEFORE_PRONOUN.search(token) and len(token) > 4:
        base = _TA_BEFORE_PRONOUN.sub("ه", token)
        forms.update({base, stem_arabic(base)})
    return forms


# Forms of one Arabic word built on the same letters: a verbal noun and the verb's tenses (مغادرة,
# يغادر, أغادر, غادر), a noun with its plural endings. Used only to decide whether a question's word is
# known to the corpus under another form, never as index terms.
_CORE_PREFIXES = ("م", "ي", "ت", "ن", "ا")
_CORE_SUFFIXES = ("ه", "ات", "ون", "ين", "وا", "ت", "ان")


@lru_cache(maxsize=200_000)
def arabic_relatives(token: str) -> frozenset[str]:
    """Forms sharing a folded Arabic token's letters once its light stem loses one tense or verbal-noun
    prefix (م ي ت ن ا) and one ending: the forms to look for before calling the word unknown."""
    cores = {stem_arabic(token), token}
    for form in list(cores):
        for prefix in _CORE_PREFIXES:
            if form.startswith(prefix) and len(form) - len(prefix) >= 3:
                cores.add(form[len(prefix):])
        for suffix in _CORE_SUFFIXES:
            if form.endswith(suffix) and len(form) - len(suffix) >= 3:
                cores.add(form[: -len(suffix)])
    cores = {c for c in cores if len(c) >= 3}
    return frozenset({c for c in cores} | {p + c for c in cores for p in _CORE_PREFIXES}
                     | {c + q for c in cores for q in _CORE_SUFFIXES})


def is_arabic_token(token: str) -> bool:
    return bool(_ARABIC_CHARS.match(token))


@lru_cache(maxsize=1)
def _english_stemmer():
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem_english(token: str) -> str:
    """Porter2 (Snowball) stem of a folded Latin token ("volunteers" → "volunt", "running" → "run").

    Names survive well enough: a stem is only an extra index term beside the word itself.
    """
    if len(token) <= 3 or not token.isascii() or not token.isalpha():
        return token
    return _english_stemmer().stemWord(token)


def stem(token: str) -> str:
    """Stem a folded token: light Arabic stemming, Snowball English stemming for Latin words."""
    if is_arabic_token(token):
        return stem_arabic(token)
    if token.isdigit():
        return token
    return stem_english(token)


def raw_tokens(folded: str) -> list[str]:
    """Split folded text into word tokens (Arabic, Latin and digits alike)."""
    return [t for t in _TOKEN.findall(folded) if t != "_"]


_FUTURE = re.compile(r"^س[يتن]\w{3,}$")


def tokenize(text: str, *, keep_stopwords: bool = False) -> list[str]:
    """Fold, split and stem ``text`` into lexical terms for BM25.

    Each word yields its folded form and, when different, its stem: stemming alone would mangle
    names that begin like a prefix (لافروف is not ل + افروف), the folded form alone would miss
    السفارة for سفارة. A word matching in both forms scores twice, which is what we want.
    """
    terms: list[str] = []
    for token in raw_tokens(fold(text)):
        if not keep_stopwords and (token in ARABIC_STOPWORDS or token in ENGLISH_STOPWORDS):
            continue
        if len(token) < 2 and not token.isdigit():
            continue
        terms.append(token)
        stemmed = stem(token)
        if stemmed != token:
            terms.append(stemmed)
        if _FUTURE.match(token):
            # سيقودها "will lead it": also index the plain imperfect (يقود), which is how the
            # lexicon and most questions phrase the verb.
            terms.append(stem_arabic(token[1:]))
    return terms


def text_language(text: str) -> str:
    """``"ar"``, ``"en"`` or ``""`` (no letters) for a passage: which script most of its letters are in."""
    arabic = len(_ARABIC_CHARS.findall(text))
    latin = len(_LATIN_CHARS.findall(text))
    if not arabic and not latin:
        return ""
    return "ar" if arabic >= latin else "en"


def detect_language(text: str) -> str:
    """Return ``"ar"`` when Arabic letters dominate the text, else ``"en"``."""
    arabic = len(_ARABIC_CHARS.findall(text))
    latin = len(_LATIN_CHARS.findall(text))
    return "ar" if arabic > 0 and arabic >= latin else "en"


# --- Cross-script name skeletons ---------------------------------------------------------------------
# Proper names are spelled many ways in Arabic news (غوتيرش / غوتيريش / غوتيريس / جوتيريش) and
# written in Latin letters in English questions (Guterres). Mapping both scripts onto one consonant
# skeleton, with letters that transliterations confuse merged into one class and long vowels dropped,
# lets a name in any of these spellings find the others.
_AR_CLASSES = {
    "ب": "B", "پ": "B", "ت": "T", "ط": "T", "ث": "S", "ج": "G", "غ": "G", "ق": "G", "ك": "G",
    "ح": "H", "ه": "H", "خ": "H", "د": "D", "ض": "D", "ذ": "Z", "ز": "Z", "ظ": "Z", "ر": "R",
    "س": "S", "ش": "S", "ص": "S", "ف": "F", "ڤ": "F", "ل": "L", "م": "M", "ن": "N", "ع": "",
    "ء": "", "ا": "", "و": "", "ي": "", "ة": "",
}
_LATIN_DIGRAPHS = (("sch", "S"), ("tch", "S"), ("ch", "S"), ("sh", "S"), ("kh", "H"), ("gh", "G"),
                   ("th", "T"), ("ph", "F"), ("ck", "G"), ("dh", "Z"), ("ou", ""), ("cce", "S"), ("cci", "S"))
_LATIN_CLASSES = {
    "b": "B", "p": "B", "t": "T", "d": "D", "g": "G", "j": "G", "k": "G", "q": "G", "c": "G",
    "h": "H", "z": "Z", "r": "R", "s": "S", "x": "GS", "f": "F", "v": "F", "w": "", "l": "L",
    "m": "M", "n": "N", "a": "", "e": "", "i": "", "o": "", "u": "", "y": "",
}


@lru_cache(maxsize=200_000)
def skeleton(token: str) -> str:
    """Consonant skeleton of a folded token in Arabic or Latin script, doubled letters merged."""
    if is_arabic_token(token):
        if token.startswith("ال") and len(token) > 4:
            token = token[2:]
        if token.endswith("ه") and len(token) > 3:  # a folded ta marbuta
            token = token[:-1]
        out = [_AR_CLASSES.get(ch, "") for ch in token]
    else:
        token = token.lower()
        if token.endswith("'s"):
            token = token[:-2]
        out = []
        i = 0
        while i < len(token):
            for digraph, cls in _LATIN_DIGRAPHS:
                if token.startswith(digraph, i):
                    out.append(cls)
                    i += len(digraph)
                    break
            else:
                # c before e/i/y is a sibilant in English and Italian alike (Cecil, Buccino).
                soft_c = token[i] == "c" and token[i + 1 : i + 2] in ("e", "i", "y")
                out.append("S" if soft_c else _LATIN_CLASSES.get(token[i], ""))
                i += 1
    merged: list[str] = []
    for cls in "".join(out):
        if not merged or merged[-1] != cls:
            merged.append(cls)
    return "".join(merged)


def edit_distance_at_most_one(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one insertion, deletion or substitution."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = j = 0
    edited = False
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            i += 1
            j += 1
            continue
        if edited:
            return False
        edited = True
        if len(a) == len(b):
            i += 1
        j += 1
    return True
