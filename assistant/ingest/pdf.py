"""Text extraction from PDF files, with the repairs Arabic PDFs need.

``extract_pdf_pages`` returns one string per page (index 0 is page 1), read with ``pypdf``.

Arabic text comes out of PDFs damaged in two ways, depending on the program that made the file:

* **Presentation forms.** Many producers (Chromium/Skia, Word, ...) map each shaped glyph to its
  contextual form (U+FB50–U+FDFF, U+FE70–U+FEFF): "ﻣﺪﻳﻨﺔ" instead of "مدينة", "ﻻ" for "لا".
  NFKC folds them back to the base letters (lam-alef ligatures become two letters).
* **Visual order.** Glyphs are drawn left to right, so a reader that follows their positions gets each
  Arabic line backwards: letters reversed and words in reverse order (".ةنيدملا يف" for "في المدينة.").
  pypdf's default ("plain") mode tries to undo this itself but moves numbers, Latin words and
  punctuation to the wrong places ("الزاوية45. كيلومترا" for "الزاوية 45 كيلومترا."). For pages that
  hold Arabic this module therefore uses pypdf's "layout" mode, which gives a clean visual order, and
  turns every line that scores as reversed back into logical order, keeping runs of digits and Latin
  text left to right (an approximate inverse of the Unicode bidi algorithm).

Whether a line is reversed is decided by ``_orientation_margin``: each Arabic word scores in both
orientations (common function words, the article "ال", a final ta marbuta / alef maqsura, and for
presentation forms whether a word starts with an initial form or a final form), and the line is
flipped only when the reversed reading scores higher. Text already in logical order is left alone;
lines with no evidence either way follow the majority of the other lines of the page.

Errors are the ``DocumentError`` subclasses from ``assistant.errors``: ``EncryptedDocumentError``,
``CorruptDocumentError`` (damaged, truncated, not a PDF, no pages) and ``EmptyDocumentError``
(empty file, or pages without a text layer). A file that cannot be opened at all (missing,
permission denied) raises the ``OSError`` from ``open``.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import threading
import unicodedata
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.errors import CorruptDocumentError, EmptyDocumentError, EncryptedDocumentError

if TYPE_CHECKING:
    from pypdf import PageObject

__all__ = ["extract_pdf_pages", "fix_arabic_visual_order", "normalize_pdf_text"]

ENCRYPTED_MESSAGE = "the PDF is encrypted; remove the password (e.g. qpdf --decrypt) and ingest it again"
BOMB_MESSAGE = (
    "the PDF holds a compressed stream that expands past the safe size limit (a decompression bomb, or a huge "
    "embedded image); it was not read. Export the text to a new PDF and ingest that"
)
NO_TEXT_LAYER_MESSAGE = (
    "the PDF has no text layer (scanned pages?); run OCR on it first, e.g. ocrmypdf, then ingest the result"
)
# What the loader says when OCR ran on every page and read nothing (a blank page, a picture, a bad scan).
OCR_FOUND_NOTHING_MESSAGE = (
    "the PDF has no text layer (scanned pages?), and OCR (Tesseract, Arabic and English) read no text on its "
    "pages: a picture, a blank page or a very poor scan"
)

# --------------------------------------------------------------------------------------------------
# Character classes

# Bidi controls and zero-width characters: marks (LRM, RLM, ALM), embeddings/overrides, isolates,
# zero-width space/joiners and the BOM. They carry no text and break word matching.
_CONTROLS = re.compile(r"[\u061C\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF]")
_SPACES = re.compile(r"[^\S\n]+")  # any whitespace except a newline (NBSP, tabs, ...)
_SPACE_BEFORE_MARK = re.compile(r" (?=[\u064B-\u0652])")  # NFKC of isolated harakat (U+FE70...) adds a space
_BLANK_LINES = re.compile(r"\n{3,}")

# Arabic letters proper (after NFKC), for scoring words.
_AR_WORD = re.compile(r"[\u0621-\u063A\u0641-\u064A\u0671-\u06D3\u06FA-\u06FF]+")
# Any Arabic letter, presentation forms included, to decide whether a page needs the Arabic path.
_HAS_ARABIC = re.compile(r"[\u0621-\u064A\u0671-\u06D3\uFB50-\uFDFF\uFE70-\uFEFC]")
_RTL_CHARS = re.compile(r"[\u0590-\u08FF\uFB1D-\uFDFF\uFE70-\uFEFC]")
_LTR_CHARS = re.compile(r"[A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF]")
_SCORING_STRIP = re.compile(r"[\u0610-\u061A\u064B-\u065F\u0670\u0640]")  # harakat and tatweel

_MIRROR = {
    "(": ")", ")": "(", "[": "]", "]": "[", "{": "}", "}": "{", "<": ">", ">": "<",
    "«": "»", "»": "«", "‹": "›", "›": "‹", "﴾": "﴿", "﴿": "﴾",
}
_OPENERS = {"(": ")", "[": "]", "{": "}", "«": "»", "‹": "›", "﴾": "﴿"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}

# Frequent Arabic function words and short verbs, in logical order. A word whose reversal is also in the
# list would vote for both orientations, so such pairs are removed below.
_FUNCTION_WORDS_RAW = """
في من على إلى الى عن أن ان إن مع هذا هذه ذلك تلك التي الذي الذين اللذين كان كانت يكون قد لقد لم لن ما لا
أو او ثم بين بعد قبل حتى عند كل غير منذ خلال حول ضد دون لدى إذا اذا إلا الا هو هي هم نحن أنه انه أنها انها
عليه عليها فيه فيها منه منها به بها لها وقد وفي ومن وعلى وإلى والى وأن وان وقال قال يوم عام أي أيضا ايضا
كما حيث بعض ولا ولم وهو وهي إنه انه إنها انها عبر لكن ولكن بل مثل أمس اليوم أكثر أمام وراء تحت فوق ليس
""".split()
_FUNCTION_WORDS = frozenset(w for w in _FUNCTION_WORDS_RAW if w[::-1] not in _FUNCTION_WORDS_RAW or w[::-1] == w)
_REVERSED_FUNCTION_WORDS = frozenset(w[::-1] for w in _FUNCTION_WORDS if w[::-1] != w)
_ARTICLE = re.compile(r"^(?:[وفبكل]?ال|لل)..")  # al- with an optional one-letter prefix, word of 4+ letters
_ENDS_ONLY = "ةى"  # ta marbuta and alef maqsura end words; they never start one


# --------------------------------------------------------------------------------------------------
# Public helpers


def normalize_pdf_text(text: str) -> str:
    """Clean text extracted from one PDF page.

    Removes bidi controls and zero-width characters, turns visually ordered Arabic lines back into
    logical order (see the module docstring; lines without decisive evidence follow the majority of
    the page), applies NFKC (presentation forms and lam-alef ligatures become base letters), collapses
    runs of spaces, strips each line and keeps at most one blank line in a row. Line breaks are kept;
    nothing is de-hyphenated.
    """
    text = _CONTROLS.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    # A page that is mostly Arabic has right-to-left paragraphs, even where a line holds more Latin.
    page_rtl = len(_RTL_CHARS.findall(text)) > len(_LTR_CHARS.findall(text))
    margins = [_orientation_margin(line) if _HAS_ARABIC.search(line) else None for line in lines]
    flipped = sum(1 for m in margins if m is not None and m > 0)
    kept = sum(1 for m in margins if m is not None and m < 0)
    flip_ties = flipped > kept
    out: list[str] = []
    for line, margin in zip(lines, margins):
        if margin is not None and (margin > 0 or (margin == 0 and flip_ties)):
            line = _visual_to_logical(line, base_rtl=True if page_rtl else None)
        out.append(_finish_line(line))
    return _BLANK_LINES.sub("\n\n", "\n".join(out)).strip("\n")


def fix_arabic_visual_order(line: str, *, base_rtl: bool | None = None) -> str:
    """Return ``line`` in logical order if it looks like visually ordered (reversed) Arabic, else unchanged.

    The Arabic is reversed (letters and word order) while runs of digits and Latin text keep their
    left-to-right order, and brackets are mirrored when that balances them. Lines that are already in
    logical order, or that give no evidence either way, are returned as they are. Only the order is
    changed: presentation forms stay as they are (``normalize_pdf_text`` folds them).

    ``base_rtl`` is the paragraph direction: ``True`` for a right-to-left paragraph (the whole line is
    reversed, so "Microsoft ةكرش" becomes "شركة Microsoft"), ``False`` for a left-to-right one (each
    Arabic stretch is reversed in place), ``None`` to guess from the line (right-to-left when it has at
    least as many Arabic as Latin letters).
    """
    if not _HAS_ARABIC.search(line):
        return line
    if _orientation_margin(line) > 0:
        return _visual_to_logical(line, base_rtl=base_rtl)
    return line


# --------------------------------------------------------------------------------------------------
# Scoring


def _word_score(word: str) -> int:
    """Evidence that an Arabic word (NFKC letters, no harakat) is in logical order: > 0 yes, < 0 no."""
    score = 0
    if word in _FUNCTION_WORDS:
        score += 2
    elif word in _REVERSED_FUNCTION_WORDS:
        score -= 2
    if len(word) >= 2:
        if _ARTICLE.match(word):
            score += 1
        if word[-1] in _ENDS_ONLY:
            score += 1
        if word[0] in _ENDS_ONLY:
            score -= 1
    return score


def _form(ch: str) -> str:
    decomposition = unicodedata.decomposition(ch)
    return decomposition.split(" ", 1)[0] if decomposition.startswith("<") else ""


def _forms_score(text: str) -> int:
    """Evidence from presentation forms: a word starts with an initial form and ends with a final form."""
    score = 0
    for word in re.findall(r"[\uFB50-\uFDFF\uFE70-\uFEFC\u0621-\u064A]+", text):
        if len(word) < 2:
            continue
        first, last = _form(word[0]), _form(word[-1])
        score += (first == "<initial>") - (first == "<final>") + (last == "<final>") - (last == "<initial>")
    return score


def _score(text: str) -> int:
    folded = _SCORING_STRIP.sub("", unicodedata.normalize("NFKC", text))
    return sum(_word_score(w) for w in _AR_WORD.findall(folded)) + _forms_score(text)


def _orientation_margin(line: str) -> int:
    """How much better ``line`` reads reversed than as it is (> 0: it is visual order and needs fixing)."""
    return _score(_visual_to_logical(line)) - _score(line)


# --------------------------------------------------------------------------------------------------
# Visual to logical reordering


def _units(text: str) -> list[str]:
    """Split into base characters with their combining marks attached (marks must not be reversed)."""
    units: list[str] = []
    for ch in text:
        if units and unicodedata.combining(ch):
            units[-1] += ch
        else:
            units.append(ch)
    return units


def _bidi_class(unit: str) -> str:
    cls = unicodedata.bidirectional(unit[0])
    if cls in ("R", "AL"):
        return "R"
    if cls == "L":
        return "L"
    if cls in ("EN", "AN"):
        return "D"
    if cls in ("CS", "ES", "ET"):
        return cls
    return "N"


def _number_classes(classes: list[str]) -> list[str]:
    """Mark whole numbers as "D": a separator between two digits ("1,000.5", "2024/01/15", "10-20") and
    currency/percent signs next to digits ("15%", "$3") join the number (bidi rules W4 and W5)."""
    out = list(classes)
    n = len(out)
    for i in range(1, n - 1):
        if out[i] in ("CS", "ES") and out[i - 1] == "D" and classes[i + 1] == "D":
            out[i] = "D"
    for i in range(n):
        if out[i] == "ET":
            j = i
            while j < n and out[j] == "ET":
                j += 1
            if (i > 0 and out[i - 1] == "D") or (j < n and out[j] == "D"):
                for k in range(i, j):
                    out[k] = "D"
    return out


def _ltr_runs(classes: list[str]) -> list[tuple[int, int]]:
    """Left-to-right runs (start, end exclusive) inside a right-to-left stretch, in visual positions.

    A stretch without Arabic that contains a Latin letter is one run from its first to its last Latin
    letter or digit ("Reuters", "WHO 300", "COVID-19"); without Latin letters each number is its own run,
    because numbers separated by spaces follow the right-to-left order of the line.
    """
    classes = _number_classes(classes)
    runs: list[tuple[int, int]] = []
    n = len(classes)
    i = 0
    while i < n:
        if classes[i] == "R":
            i += 1
            continue
        j = i
        while j < n and classes[j] != "R":
            j += 1
        strong = [k for k in range(i, j) if classes[k] in ("L", "D")]
        if strong:
            if any(classes[k] == "L" for k in strong):
                runs.append((strong[0], strong[-1] + 1))
            else:
                k = strong[0]
                while k <= strong[-1]:
                    if classes[k] == "D":
                        start = k
                        while k < j and classes[k] == "D":
                            k += 1
                        runs.append((start, k))
                    else:
                        k += 1
        i = j
    return runs


def _reverse_rtl(units: list[str], classes: list[str], mirror: bool) -> list[str]:
    """Reverse a right-to-left stretch given in visual order, keeping its left-to-right runs intact."""
    blocks: list[list[str]] = []
    runs = dict(_ltr_runs(classes))
    i = 0
    while i < len(units):
        if i in runs:
            blocks.append(units[i : runs[i]])
            i = runs[i]
        else:
            unit = units[i]
            if mirror and unit[0] in _MIRROR:
                unit = _MIRROR[unit[0]] + unit[1:]
            blocks.append([unit])
            i += 1
    return [unit for block in reversed(blocks) for unit in block]


def _reorder(units: list[str], mirror: bool, base_rtl: bool | None = None) -> list[str]:
    classes = [_bidi_class(u) for u in units]
    if base_rtl is None:
        base_rtl = classes.count("R") >= classes.count("L")
    if base_rtl:
        return _reverse_rtl(units, classes, mirror)
    # Mostly left-to-right text with Arabic words in it: reverse each Arabic stretch in place.
    out: list[str] = []
    i = 0
    n = len(units)
    while i < n:
        if classes[i] != "R":
            out.append(units[i])
            i += 1
            continue
        j = i
        last_r = i
        while j < n and classes[j] != "L":
            if classes[j] == "R":
                last_r = j
            j += 1
        out.extend(_reverse_rtl(units[i : last_r + 1], classes[i : last_r + 1], mirror))
        i = last_r + 1
    return out


def _bracket_errors(text: str) -> int:
    stack: list[str] = []
    errors = 0
    for ch in text:
        if ch in _OPENERS:
            stack.append(ch)
        elif ch in _CLOSERS:
            if stack and stack[-1] == _CLOSERS[ch]:
                stack.pop()
            else:
                errors += 1
    return errors + len(stack)


def _visual_to_logical(line: str, base_rtl: bool | None = None) -> str:
    units = _units(line)
    mirrored = "".join(_reorder(units, mirror=True, base_rtl=base_rtl))
    if not any(u[0] in _MIRROR for u in units):
        return mirrored
    # Producers map a mirrored bracket glyph either to the character drawn or to the one typed; keep
    # whichever reading pairs the brackets up (drawn shape, i.e. mirroring, when both do).
    plain = "".join(_reorder(units, mirror=False, base_rtl=base_rtl))
    return plain if _bracket_errors(plain) < _bracket_errors(mirrored) else mirrored


def _finish_line(line: str) -> str:
    line = unicodedata.normalize("NFKC", line)
    line = _SPACE_BEFORE_MARK.sub("", line)
    return _SPACES.sub(" ", line).strip()


# --------------------------------------------------------------------------------------------------
# Reading PDFs

_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved_level = logging.NOTSET


@contextmanager
def _quiet_pypdf() -> Iterator[None]:
    """Silence the ``pypdf`` logger (it warns about every small defect) and its Python warnings."""
    global _quiet_depth, _quiet_saved_level
    logger = logging.getLogger("pypdf")
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved_level = logger.level
            logger.setLevel(logging.CRITICAL + 1)
        _quiet_depth += 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                logger.setLevel(_quiet_saved_level)


def _page_text(page: PageObject) -> str:
    """Text of one page: plain mode, or layout mode (visual order, repaired later) when it holds Arabic."""
    plain = page.extract_text() or ""
    if not _HAS_ARABIC.search(plain):
        return plain
    try:
        layout = page.extract_text(extraction_mode="layout", layout_mode_space_vertically=False)
    except Exception:  # noqa: BLE001 - layout mode is an improvement; plain text is a fine fallback
        return plain
    return layout if layout and layout.strip() else plain


# Exceptions pypdf lets through for damaged files, besides its own PyPdfError hierarchy.
_DAMAGE = (ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError, RecursionError,
           struct.error, zlib.error, UnicodeError, OverflowError, ZeroDivisionError, NotImplementedError)


def extract_pdf_pages(path: Path, *, allow_empty: bool = False) -> list[str]:
    """Return the normalized text of each page of the PDF at ``path`` (index 0 is page 1).

    Pages without text are returned as empty strings, but a PDF where no page has any text raises
    ``EmptyDocumentError`` (unless ``allow_empty``: the loader then tries OCR on those pages).
    Encrypted PDFs are opened when the empty password works.

    Raises:
        EncryptedDocumentError: the PDF needs a password.
        CorruptDocumentError: not a PDF, truncated or damaged, or no pages.
        EmptyDocumentError: the file is empty, or no page has a text layer.
        OSError: the file cannot be read at all (missing, permission denied).
    """
    path = Path(path)
    data = path.read_bytes()
    if not data.strip():
        raise EmptyDocumentError(path, "the file is empty")
    if b"%PDF-" not in data[:1024]:
        raise CorruptDocumentError(path, "not a PDF file (no %PDF- header)")
    if b"%%EOF" not in data:
        # A cut-off file. pypdf may still rebuild some pages from the objects it finds, which would give
        # partial text, so it is refused before reading.
        raise CorruptDocumentError(path, "the PDF is truncated (no %%EOF end marker); download or export it again")
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, PyPdfError

        try:
            from pypdf.errors import LimitReachedError
        except ImportError:  # pragma: no cover - older pypdf
            LimitReachedError = ()  # type: ignore[assignment,misc]
    except ImportError as exc:  # pragma: no cover - pypdf is a required dependency
        from assistant.errors import MissingDependencyError

        raise MissingDependencyError("pypdf", purpose="reading PDF files") from exc

    with _quiet_pypdf():
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise EncryptedDocumentError(path, ENCRYPTED_MESSAGE)
            pages = reader.pages
            count = len(pages)
            if count == 0:
                raise CorruptDocumentError(path, "the PDF has no pages (damaged or truncated?)")
            raw_pages = [_page_text(pages[i]) for i in range(count)]
        except (EncryptedDocumentError, CorruptDocumentError):
            raise
        except DependencyError as exc:
            # AES-encrypted (even with an empty password): pypdf needs the optional 'cryptography' package,
            # both to check the password and, lazily, to decrypt each page.
            raise EncryptedDocumentError(
                path,
                "the PDF is AES-encrypted and reading it needs the 'cryptography' package (pip install cryptography); "
                "or remove the encryption (e.g. qpdf --decrypt) and ingest it again",
            ) from exc
        except LimitReachedError as exc:  # a stream that inflates past pypdf's safety limit (~75 MB)
            raise CorruptDocumentError(path, BOMB_MESSAGE) from exc
        except PyPdfError as exc:
            raise CorruptDocumentError(path, _damage_reason(exc)) from exc
        except _DAMAGE as exc:
            raise CorruptDocumentError(path, _damage_reason(exc)) from exc

    texts = [normalize_pdf_text(text) for text in raw_pages]
    if not allow_empty and not any(t.strip() for t in texts):
        raise EmptyDocumentError(path, NO_TEXT_LAYER_MESSAGE)
    return texts


def _damage_reason(exc: BaseException) -> str:
    detail = str(exc).strip() or type(exc).__name__
    return f"the PDF is damaged and cannot be read ({detail}); download or export it again"


_CREATION_DATE = re.compile(rb"/CreationDate\s*\(\s*(?:D:)?((?:19|20)\d\d)(\d\d)(\d\d)")


def pdf_creation_date(data: bytes) -> str:
    """The PDF's ``/CreationDate`` as ``YYYY-MM-DD``, or "" when absent or unreadable.

    This is when the file was made, not when the text was published; loaders use it only when the
    text states no date of its own.
    """
    import datetime as dt

    match = _CREATION_DATE.search(data)
    if match is None:  # the info dictionary may sit in a compressed object stream
        try:
            from pypdf import PdfReader

            with _quiet_pypdf():
                info = PdfReader(io.BytesIO(data), strict=False).metadata
                raw = str(info.get("/CreationDate", "")) if info else ""
        except Exception:  # noqa: BLE001 - a missing date is not an error
            return ""
        match = _CREATION_DATE.search(b"/CreationDate(" + raw.encode("latin-1", "replace"))
        if match is None:
            return ""
    try:
        return dt.date(*(int(g) for g in match.groups())).isoformat()
    except ValueError:
        return ""
