"""Debian's FreeDict Arabic-English dictionary, read at run time when it is installed.

``apt-get install dict-freedict-ara-eng`` puts it under ``/usr/share/dictd`` (GPL; 53k headwords from
the Arabeyes word list). It is never copied into this repository: without it every function here
returns nothing and the glosses come from the hand-made lexicon alone. ``ASSISTANT_FREEDICT`` points
at another ``<name>.index`` / ``<name>.dict.dz`` pair (without the suffix), or is "off".
"""

from __future__ import annotations

import gzip
import os
import re
from functools import lru_cache
from pathlib import Path

DEFAULT = Path("/usr/share/dictd/freedict-ara-eng")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NUMBERED = re.compile(r"^\s*\d+\.\s*(.+)$")


def _path() -> Path | None:
    setting = os.environ.get("ASSISTANT_FREEDICT", "")
    if setting.lower() in ("off", "0", "no", "none"):
        return None
    base = Path(setting) if setting else DEFAULT
    if base.with_suffix(".index").is_file() and base.with_suffix(".dict.dz").is_file():
        return base
    return None


def _number(code: str) -> int:
    value = 0
    for ch in code:
        value = value * 64 + _B64.index(ch)
    return value


@lru_cache(maxsize=2)
def _load(base: str) -> dict[str, tuple[str, ...]]:
    from assistant.text.normalize import fold

    index = Path(base).with_suffix(".index").read_text(encoding="utf-8")
    # dictzip is gzip with random-access extras: a plain gzip read gives the whole text (about 2 MB).
    data = gzip.open(Path(base).with_suffix(".dict.dz")).read()
    table: dict[str, list[str]] = {}
    for line in index.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00database"):
            continue
        headword, offset, length = parts
        start = _number(offset)
        entry = data[start : start + _number(length)].decode("utf-8", "replace").splitlines()
        senses = []
        for sense_line in entry[1:]:
            match = _NUMBERED.match(sense_line)
            sense = (match.group(1) if match else sense_line).strip()
            if sense:
                senses.append(sense.lower())
        key = fold(headword).strip()
        if key and senses:
            table.setdefault(key, [])
            table[key].extend(s for s in senses if s not in table[key])
    return {k: tuple(v) for k, v in table.items()}


def available() -> bool:
    """True when the dictionary is installed (and not turned off with ``ASSISTANT_FREEDICT=off``)."""
    return _path() is not None


def senses(folded_word: str) -> tuple[str, ...]:
    """English senses of an Arabic word (folded, as ``normalize.fold`` gives it), most common first; () if unknown."""
    base = _path()
    if base is None:
        return ()
    return _load(str(base)).get(folded_word, ())


def headwords() -> frozenset[str]:
    """Every folded Arabic headword (empty when the dictionary is not installed)."""
    base = _path()
    return frozenset(_load(str(base))) if base is not None else frozenset()
