"""Whether a Latin word and an Arabic word spell the same short name.

A name of three consonants (Malik, Khalid, Hasan) has a skeleton too short to tell it from the
ordinary words sharing it (مالك / ملك / يملك). What the skeleton drops tells them apart: an Arabic long
vowel (ا، و، ي) is written as a vowel in the Latin spelling at the same place (مالك: Malik, not mulk;
خالد: Khalid, not khuld), and neither adds a letter before the first consonant (يخلد is not Khalid).
"""

from __future__ import annotations

import re

from assistant.text.normalize import _AR_CLASSES, _LATIN_CLASSES, _LATIN_DIGRAPHS, is_arabic_token

# Arabic long vowel letter → the Latin vowels (and glides) that write it.
_ARABIC_VOWELS = {"ا": "aeâ", "ي": "iey", "و": "uow"}
_LATIN_VOWELS = frozenset("aeiouyw")
_NOT_LETTER = re.compile(r"[^a-z]")


def _latin_slots(word: str) -> tuple[list[str], list[str]]:
    """(consonant classes, vowel groups): ``groups[i]`` are the vowels before consonant ``i``, the last
    group those after the last consonant; doubled consonants are one."""
    word = _NOT_LETTER.sub("", word.lower().removesuffix("'s"))
    consonants: list[str] = []
    groups = [""]
    i = 0
    while i < len(word):
        cls = None
        for digraph, digraph_cls in _LATIN_DIGRAPHS:
            if digraph_cls and word.startswith(digraph, i):
                cls, i = digraph_cls, i + len(digraph)
                break
        if cls is None:
            ch = word[i]
            i += 1
            if ch in _LATIN_VOWELS:
                groups[-1] += ch
                continue
            soft_c = ch == "c" and word[i : i + 1] in ("e", "i", "y")
            cls = "S" if soft_c else _LATIN_CLASSES.get(ch, "")
        for part in cls:
            if consonants and consonants[-1] == part and not groups[-1]:
                continue
            consonants.append(part)
            groups.append("")
    return consonants, groups


def _arabic_slots(token: str) -> tuple[list[str], list[str]]:
    """``_latin_slots`` of a folded Arabic word: its long vowel letters in the groups; ع and hamza,
    which Latin spellings write as a vowel, an apostrophe or nothing, stand as ``*`` (anything goes)."""
    if token.startswith("ال") and len(token) > 4:
        token = token[2:]
    if token.endswith("ه") and len(token) > 3:
        token = token[:-1]
    consonants: list[str] = []
    groups = [""]
    for ch in token:
        if ch in _ARABIC_VOWELS:
            # An initial alif carries a hamza (أ، إ folded alike): any vowel (Anas, Idris, Umm).
            groups[-1] += "*" if ch == "ا" and not consonants else ch
            continue
        cls = "T" if ch == "ث" else _AR_CLASSES.get(ch, "")  # ث is written th (Thabit, Kathir)
        if not cls:
            if ch in "عءئؤ":
                groups[-1] += "*"
            continue
        if consonants and consonants[-1] == cls and not groups[-1]:
            continue
        consonants.append(cls)
        groups.append("")
    return consonants, groups


_TA_MARBUTA = re.compile(r"(?<=[aeiou])h$")


def latin_name_stem(word: str) -> str:
    """A Latin name as its Arabic spelling's skeleton sees it: lower case, without "'s", and without
    the final h that writes a ta marbuta (Hurairah / هريرة, Fatimah / فاطمة; the Arabic side drops
    its final ه the same way)."""
    word = word.lower().removesuffix("'s")
    return _TA_MARBUTA.sub("", word) if len(word) > 4 else word


def same_short_name(latin: str, arabic: str, strict: bool = False) -> bool:
    """True when ``latin`` and the folded ``arabic`` have the same consonants and every Arabic long
    vowel stands where the Latin spelling has a vowel that writes it: Malik / مالك, Khalid / خالد,
    Hasan / حسن (short vowels are not written), but not Malik / يملك nor Khalid / خلود. ``strict``
    (for two consonants, which match many words) also asks for one long vowel, ع or hamza at least."""
    if is_arabic_token(latin) or not is_arabic_token(arabic):
        return False
    lat_consonants, lat_groups = _latin_slots(latin)
    ar_consonants, ar_groups = _arabic_slots(arabic)
    if not lat_consonants or lat_consonants != ar_consonants:
        return False
    if strict and not any(ar_groups):
        return False
    for lat, ar in zip(lat_groups, ar_groups):
        for letter in ar.replace("*", ""):
            if not any(v in lat for v in _ARABIC_VOWELS[letter]):
                return False
    # Nothing written before the first consonant in one spelling and not the other (يخلد, Akhlad).
    return bool(lat_groups[0]) == bool(ar_groups[0])
