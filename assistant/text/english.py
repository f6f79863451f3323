"""Is a capitalized English word a name, or a common word written with a capital?

A question capitalizes more than names: the first word of a sentence or quotation ("Whenever he
woke..."), honorifics ("the Messenger", "the Prophet"), a reporting verb opening a translated report
("Narrated Abu Hurairah"). Taken as names, such words are "missing" from every passage in the other
script and make a good answer look unsupported.

Webster's Second International (``web2``, public domain, shipped by the ``english-words`` package)
writes proper nouns with a capital and common words in lower case. A word is common when that list
has it (or the stem of its inflected form) in lower case and never with a capital: ``Messenger`` and
``Narrated`` are common words; ``Cairo``, ``Mark`` (also a name) and ``Lavrov`` (not listed) stay
names. Without the package every word is left as written (a capitalized word is a name).
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _web2() -> frozenset[str]:
    try:
        from english_words import get_english_words_set
    except ImportError:
        return frozenset()
    return frozenset(get_english_words_set(["web2"], lower=False, alpha=True))


def _stems(word: str) -> list[str]:
    """``word`` and the forms an English inflection may have been added to (companions → companion,
    narrated → narrate, stopped → stop, cities → city)."""
    out = [word]
    for suffix, replacements in (("ies", ("y",)), ("ied", ("y",)), ("es", ("", "e")), ("s", ("",)),
                                 ("ed", ("", "e")), ("ing", ("", "e")), ("ly", ("",))):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            out.extend(base + r for r in replacements)
            if len(base) >= 4 and base[-1] == base[-2] and suffix in ("ed", "ing"):
                out.append(base[:-1])
    return out


@lru_cache(maxsize=1 << 14)
def common_word(word: str) -> bool:
    """True when ``word`` (any case) is a common English word that web2 never writes as a name.

    An acronym (``US``, ``UN``) is never a common word, and neither is a word web2 does not know.
    """
    if len(word) < 2 or word.isupper():
        return False
    words = _web2()
    if not words:
        return False
    lower = word.lower()
    for stem in _stems(lower):
        if stem in words:
            return stem.capitalize() not in words and lower.capitalize() not in words
    return False
