"""Publication dates: find the date a document states near its top, and compare dates.

``date_from_text`` reads the first lines of a document (a dateline such as "2020-06-05",
"5 June 2020", "June 5, 2020", "٥ يونيو ٢٠٢٠" or "الجمعة 5 حزيران 2020") and returns the date as
``YYYY-MM-DD``, or "" when the top of the document states none. Arabic month names are recognised in
the three families newsrooms use (Egyptian/Gulf يناير..ديسمبر, Levantine كانون الثاني..كانون الأول,
Maghrebi جانفي..ديسمبر), and digits in both sets (ASCII and Arabic-Indic/Persian).

Only the top of a document counts: a date in the middle of an article is usually an event date
("the truce of 5 June 2020"), not the date the article was published.
"""

from __future__ import annotations

import datetime as _dt
import re

__all__ = ["date_from_text", "parse_date", "iso_date_or_empty", "check_date_arg"]

# How much of the top of a document may hold its dateline.
HEAD_LINES = 3
HEAD_CHARS = 300

_DIGITS = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")

_EN_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4, "may": 5,
    "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
# Arabic month names. Alef/hamza and ta marbuta/ha spellings vary, so keys are folded by _fold_ar.
_AR_MONTHS_RAW = {
    # Egyptian / Gulf (transliterated Gregorian)
    "يناير": 1, "فبراير": 2, "مارس": 3, "أبريل": 4, "ابريل": 4, "إبريل": 4, "مايو": 5, "يونيو": 6, "يونيه": 6,
    "يوليو": 7, "يوليه": 7, "أغسطس": 8, "اغسطس": 8, "سبتمبر": 9, "أكتوبر": 10, "اكتوبر": 10, "نوفمبر": 11,
    "ديسمبر": 12,
    # Levantine / Iraqi (Syriac names)
    "كانون الثاني": 1, "شباط": 2, "آذار": 3, "اذار": 3, "نيسان": 4, "أيار": 5, "ايار": 5, "حزيران": 6,
    "تموز": 7, "آب": 8, "اب": 8, "أيلول": 9, "ايلول": 9, "تشرين الأول": 10, "تشرين الاول": 10,
    "تشرين الثاني": 11, "كانون الأول": 12, "كانون الاول": 12,
    # Maghrebi (French-derived)
    "جانفي": 1, "فيفري": 2, "أفريل": 4, "افريل": 4, "ماي": 5, "جوان": 6, "جويلية": 7, "جويلة": 7, "أوت": 8,
    "اوت": 8,
}


def _fold_ar(word: str) -> str:
    return re.sub("[أإآ]", "ا", word).replace("ة", "ه").replace("ى", "ي")


_AR_MONTHS = {_fold_ar(k): v for k, v in _AR_MONTHS_RAW.items()}
# Longest names first so "كانون الثاني" wins over a shorter prefix.
_AR_MONTH_ALT = "|".join(sorted((re.escape(k) for k in _AR_MONTHS), key=len, reverse=True))
_EN_MONTH_ALT = "|".join(sorted(_EN_MONTHS, key=len, reverse=True))

_D = r"(?P<d>\d{1,2})"
_Y = r"(?P<y>(?:19|20)\d\d)"
_PATTERNS = [
    # 2020-06-05, 2020/06/05, 2020.06.05 (ISO order; also the date part of an ISO timestamp)
    re.compile(r"(?<!\d)" + _Y + r"[-/.](?P<m>\d{1,2})[-/.]" + _D + r"(?!\d)"),
    # 05/06/2020, 5-6-2020: day first, as Arabic and British newsrooms write it
    re.compile(r"(?<!\d)" + _D + r"[-/.](?P<m>\d{1,2})[-/.]" + _Y + r"(?!\d)"),
    # 5 June 2020, 5th Jun. 2020
    re.compile(r"(?<!\d)" + _D + r"(?:st|nd|rd|th)?\s+(?P<mn>" + _EN_MONTH_ALT + r")\.?,?\s+" + _Y + r"(?!\d)", re.I),
    # June 5, 2020
    re.compile(r"\b(?P<mn>" + _EN_MONTH_ALT + r")\.?\s+" + _D + r"(?:st|nd|rd|th)?,?\s+" + _Y + r"(?!\d)", re.I),
    # ٥ يونيو ٢٠٢٠, الجمعة 5 حزيران 2020, 5 كانون الثاني (يناير) 2020
    re.compile(r"(?<!\d)" + _D + r"\s+(?:من\s+)?(?P<ma>" + _AR_MONTH_ALT + r")(?:\s*[(/]\s*[^\d()]{2,12}\s*[)/]?)?\s*[،,]?\s+"
               + _Y + r"(?!\d)"),
]


def parse_date(text: str) -> str:
    """The first date found anywhere in ``text`` as ``YYYY-MM-DD``, or "" (invalid dates are ignored)."""
    text = _fold_ar(text.translate(_DIGITS))
    best: tuple[int, str] | None = None
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            if groups.get("mn"):
                month = _EN_MONTHS[groups["mn"].lower()]
            elif groups.get("ma"):
                month = _AR_MONTHS[re.sub(r"\s+", " ", groups["ma"])]
            else:
                month = int(groups["m"])
            try:
                value = _dt.date(int(groups["y"]), month, int(groups["d"]))
            except ValueError:
                continue
            if best is None or match.start() < best[0]:
                best = (match.start(), value.isoformat())
            break
    return best[1] if best else ""


def date_from_text(text: str) -> str:
    """The publication date a document states in its first lines, as ``YYYY-MM-DD``, or "".

    Looks at the first ``HEAD_LINES`` non-empty lines (at most ``HEAD_CHARS`` characters): a dateline
    under the headline counts, a date deep in the body does not.
    """
    lines = [line.strip() for line in text[: HEAD_CHARS * 4].splitlines() if line.strip()][:HEAD_LINES]
    return parse_date("\n".join(lines)[:HEAD_CHARS])


def iso_date_or_empty(value: object) -> str:
    """A ``datetime``/``date``/ISO-like string as ``YYYY-MM-DD``; "" for None or anything unparseable."""
    if value is None:
        return ""
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.strftime("%Y-%m-%d")
    match = re.match(r"\s*((?:19|20)\d\d)-(\d\d)-(\d\d)", str(value))
    if not match:
        return ""
    try:
        return _dt.date(*map(int, match.groups())).isoformat()
    except ValueError:
        return ""


def check_date_arg(value: str | None, name: str) -> str | None:
    """Validate a ``--since``/``--until`` value (``YYYY-MM-DD``); returns it, or raises ``ValueError``."""
    if value is None or value == "":
        return None
    try:
        return _dt.date.fromisoformat(value.strip()).isoformat()
    except ValueError:
        raise ValueError(f"{name} must be a date like 2020-06-05, got {value!r}") from None
