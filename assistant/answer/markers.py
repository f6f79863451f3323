"""Citation markers in a model's reply: ``[1]``, ``[2, 3]``, ``[1-2]``, ``[المقطع ١]`` parsed with a bounds
check, so a number that is not one of the given passages is dropped, never remapped."""

from __future__ import annotations

import re
from collections.abc import Collection

#: Arabic-Indic and Persian digits to ASCII.
ARABIC_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")
_NUMBER = r"[0-9٠-٩۰-۹]+"
# "[1]", "[2, 3]", "[1،2]", "[1-2]", "[Passage 1]", "[source 2]", "[المقطع 1]"
_MARKER = re.compile(
    rf"\[\s*(?:(?:passages?|sources?|p|المقطع|مقطع)\s*)?({_NUMBER}(?:\s*(?:[,،;&-]|and|و)\s*{_NUMBER})*)\s*\]",
    re.IGNORECASE,
)
_PLACEHOLDER_MARKER = re.compile(r"\s?\[n\]")
#: An unfinished marker at the end of a reply still being written ("... [1").
INCOMPLETE_TAIL = re.compile(r"\[[^\]\n]{0,24}$")


def parse_markers(group: str) -> list[int]:
    """Numbers of one bracket group's inside: ``"2, 3"`` -> ``[2, 3]``, ``"1-3"`` -> ``[1, 2, 3]``."""
    group = group.translate(ARABIC_DIGITS)
    numbers: list[int] = []
    for part in re.split(r"\s*(?:[,،;&]|and|و)\s*", group):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            low, _, high = part.partition("-")
            if low.strip().isdigit() and high.strip().isdigit():
                a, b = int(low), int(high)
                if a <= b and b - a < 10:
                    numbers.extend(range(a, b + 1))
                else:  # a nonsense range is invalid as a whole
                    numbers.append(0)
            continue
        if part.isdigit():
            numbers.append(int(part))
    return numbers


def _valid_set(given: int | Collection[int]) -> Collection[int]:
    return range(1, given + 1) if isinstance(given, int) else given


def clean_markers(text: str, given: int | Collection[int]) -> tuple[str, list[int]]:
    """Rewrite every marker group as ``[a][b]`` keeping only the numbers of passages that were given.

    ``given`` is the set of passage numbers in the prompt, or ``n`` for ``1..n``.

    Returns the text and the valid numbers in order of first appearance. A group with no valid number
    is removed together with the space before it; numbers are never shifted to another passage.
    """
    used: list[int] = []
    numbers = _valid_set(given)

    def fix(match: re.Match[str]) -> str:
        valid = [m for m in dict.fromkeys(parse_markers(match.group(1))) if m in numbers]
        for m in valid:
            if m not in used:
                used.append(m)
        return "".join(f"[{m}]" for m in valid)

    out = _MARKER.sub(fix, text)
    out = _PLACEHOLDER_MARKER.sub("", out)
    out = re.sub(r"[ \t]+(?=[.,;:!?؟،]|$)", "", out, flags=re.MULTILINE)  # space left before punctuation
    out = re.sub(r"[ \t]{2,}", " ", out)
    return out.strip(), used
