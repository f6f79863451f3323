"""OCR for PDF pages without a text layer (scanned statements, newspaper pages).

Each such page is rasterized with ``pdftoppm`` (poppler-utils) and read by the ``tesseract`` binary
with the Arabic and English models (``ara+eng``), all from Debian's packages::

    apt-get install -y tesseract-ocr tesseract-ocr-ara tesseract-ocr-eng poppler-utils

(``scripts/setup.sh`` installs them when it runs as root). Tesseract writes Arabic in logical order,
so the text needs none of the visual-order repairs of ``assistant.pdf``; it is NFKC-normalized,
stripped of bidi controls, and the lines of each paragraph are joined (see ``clean_ocr_text``).

The binaries are called with an argument list (never a shell), a per-page time limit, and inside a
temporary folder that is removed afterwards.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import tempfile
import unicodedata
from functools import lru_cache
from pathlib import Path

__all__ = ["OCR_LANGUAGES", "INSTALL_HINT", "ocr_unavailable_reason", "ocr_image", "ocr_pdf_pages", "clean_ocr_text", "tsv_to_text"]

log = logging.getLogger("assistant")

OCR_LANGUAGES = "ara+eng"
INSTALL_HINT = ("install OCR with: apt-get install -y tesseract-ocr tesseract-ocr-ara tesseract-ocr-eng poppler-utils "
                "(scripts/setup.sh does it when run as root), then ingest the file again")
# 300 dpi is what Tesseract is trained for; lower loses Arabic dots and diacritics, higher only costs time.
DPI = 300
PAGE_TIMEOUT_SECONDS = 180.0

_CONTROLS = re.compile(r"[\u061C\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF\x0c]")
_SPACES = re.compile(r"[^\S\n]+")


@lru_cache(maxsize=1)
def ocr_unavailable_reason() -> str | None:
    """None when ``tesseract`` (with Arabic and English) and ``pdftoppm`` are installed, else why not
    and how to install them. Cached: checked once per process."""
    missing = [name for name in ("tesseract", "pdftoppm") if shutil.which(name) is None]
    if missing:
        return f"OCR is not available ({' and '.join(missing)} not installed); {INSTALL_HINT}"
    try:
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"OCR is not available (tesseract does not run: {exc}); {INSTALL_HINT}"
    languages = set(listed.stdout.split()) | set(listed.stderr.split())
    absent = [lang for lang in OCR_LANGUAGES.split("+") if lang not in languages]
    if absent:
        return f"OCR is not available (tesseract lacks the {', '.join(absent)} model); {INSTALL_HINT}"
    return None


def clean_ocr_text(text: str) -> str:
    """Tesseract output as stored text: NFKC, no bidi controls or form feeds, one space between words;
    the lines of a paragraph joined into one (a line break in a scan is layout, not meaning; an English
    word hyphenated across lines is rejoined), paragraphs separated by one newline as in the other loaders."""
    text = unicodedata.normalize("NFKC", _CONTROLS.sub("\n", text)).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [_SPACES.sub(" ", line).strip() for line in block.split("\n")]
        joined = " ".join(line for line in lines if line)
        joined = _HYPHENATED.sub(r"\1\2", joined)
        joined = _HYPHENATED_NAME.sub(r"\1-\2", joined)  # Jean-\nPaul stays Jean-Paul
        if joined:
            paragraphs.append(joined)
    return "\n".join(paragraphs)


_HYPHENATED = re.compile(r"([a-z])- ([a-z])")
_HYPHENATED_NAME = re.compile(r"([A-Za-z])- ([A-Z])")


def _environment() -> dict[str, str]:
    # One OpenMP thread per tesseract: the machines are shared, and page-level parallelism is not
    # worth the contention for a handful of scanned pages.
    return {**os.environ, "OMP_THREAD_LIMIT": os.environ.get("OMP_THREAD_LIMIT", "1")}


def ocr_image(image: Path | str, languages: str = OCR_LANGUAGES, timeout: float = PAGE_TIMEOUT_SECONDS) -> str:
    """The cleaned text Tesseract reads in one image file.

    Raises:
        RuntimeError: tesseract failed or ran past ``timeout`` (the message says which).
    """
    try:
        # TSV output numbers each word's block, paragraph and line: lines of one paragraph are joined
        # (a line break in a scan is layout), paragraphs become lines. Words come in logical order,
        # right to left for Arabic.
        done = subprocess.run(["tesseract", str(image), "stdout", "-l", languages, "--psm", "3", "tsv"],
                              capture_output=True, timeout=timeout, check=False, env=_environment())
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"tesseract ran past {timeout:g} s") from exc
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"tesseract failed ({detail[0]})")
    return clean_ocr_text(tsv_to_text(done.stdout.decode("utf-8", "replace")))


_SENTENCE_END = re.compile(r"[.!?؟:»\"”)]$")


def tsv_to_text(tsv: str) -> str:
    """Tesseract's TSV output as text: paragraphs separated by a blank line, words in order.

    Tesseract's own paragraph numbers are unreliable on widely spaced lines (each line becomes a
    block), so a paragraph ends where a typesetter ends one: a line that closes a sentence and stops
    clearly short of the full line width. Other line breaks are wrapping and are joined.
    """
    lines: dict[tuple[int, int, int, int], list] = {}  # (page, block, par, line) -> [left, right, words]
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5" or not cols[11].strip():
            continue
        key = (int(cols[1]), int(cols[2]), int(cols[3]), int(cols[4]))
        left, width = int(cols[6]), int(cols[8])
        entry = lines.setdefault(key, [left, left + width, []])
        entry[0], entry[1] = min(entry[0], left), max(entry[1], left + width)
        entry[2].append(cols[11].strip())
    ordered = [lines[key] for key in sorted(lines)]
    if not ordered:
        return ""
    full = max(line[1] - line[0] for line in ordered)
    paragraphs: list[list[str]] = [[]]
    for line in ordered:
        text = " ".join(line[2])
        paragraphs[-1].append(text)
        if _SENTENCE_END.search(text) and line[1] - line[0] < 0.85 * full:
            paragraphs.append([])
    return "\n\n".join("\n".join(p) for p in paragraphs if p)


def ocr_pdf_pages(path: Path, page_numbers: list[int], *, dpi: int = DPI,
                  timeout: float = PAGE_TIMEOUT_SECONDS) -> dict[int, str]:
    """Rasterize and OCR the given 1-based pages of the PDF at ``path``.

    Returns ``{page number: text}`` for the pages that were read (a page that fails or times out is
    logged and left out, so one bad page does not cost the rest). Call ``ocr_unavailable_reason``
    first: this assumes the binaries are installed.
    """
    out: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="assistant-ocr-") as tmp:
        for number in page_numbers:
            prefix = Path(tmp) / f"page{number}"
            try:
                subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", "-f", str(number), "-l", str(number),
                                "-singlefile", str(path), str(prefix)],
                               capture_output=True, timeout=timeout, check=True)
                out[number] = ocr_image(prefix.with_suffix(".png"), timeout=timeout)
            except (subprocess.SubprocessError, RuntimeError, OSError) as exc:
                log.warning("OCR of %s page %d failed: %s", path, number, exc)
            finally:
                prefix.with_suffix(".png").unlink(missing_ok=True)
    return out
