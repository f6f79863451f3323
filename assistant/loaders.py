"""Read files into ``Document`` records: txt, md, html, pdf.

Every failure is a ``DocumentError`` subclass naming the file and the reason, so a batch can skip the
file and report it at the end.
"""

from __future__ import annotations

import hashlib
import html
import re
import time
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

from .errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFileError,
)
from .records import Document

SUPPORTED_SUFFIXES = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf"}
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_ARABIC = re.compile(r"[\u0621-\u064A]")
_LETTER = re.compile(r"[^\W\d_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def doc_id_for(path: Path) -> str:
    """The document id of a file: its name without extension, stripped of control characters."""
    stem = path.stem if path.suffix.lower() in SUPPORTED_SUFFIXES else path.name
    stem = _CONTROL.sub("", stem).strip()
    return stem or "document"


def decode_text(raw: bytes, path: Path) -> str:
    """Decode bytes of a text file: UTF-8 (with or without BOM), UTF-16 (BOM or not), or Windows-1256.

    Raises:
        CorruptDocumentError: the bytes are binary or in no encoding we can trust.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return _checked(raw[3:].decode("utf-8", errors="strict"), path)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _checked(raw.decode("utf-16"), path)
        except UnicodeDecodeError as exc:
            raise CorruptDocumentError(path, f"broken UTF-16 text ({exc.reason})") from exc
    head = raw[:8192]
    if b"\x00" in head:
        # UTF-16 without BOM has a zero in every other byte for ASCII, and Arabic (U+06xx) has 0x06.
        zeros_even = head[0::2].count(0) / max(1, len(head[0::2]))
        zeros_odd = head[1::2].count(0) / max(1, len(head[1::2]))
        for encoding, ratio in (("utf-16-le", zeros_odd), ("utf-16-be", zeros_even)):
            if ratio > 0.3:
                try:
                    return _checked(raw.decode(encoding), path)
                except (UnicodeDecodeError, CorruptDocumentError):
                    pass
        raise CorruptDocumentError(path, "binary data, not text (it contains NUL bytes)")
    try:
        return _checked(raw.decode("utf-8"), path)
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1256")
    except UnicodeDecodeError as exc:
        raise CorruptDocumentError(path, "not valid UTF-8 or Windows-1256 text; re-save it as UTF-8") from exc
    letters = _LETTER.findall(text)
    if letters and len(_ARABIC.findall(text)) / len(letters) > 0.5:
        return _checked(text, path)
    raise CorruptDocumentError(path, "not valid UTF-8 text (and it does not look like Windows-1256 Arabic); re-save it as UTF-8")


def _checked(text: str, path: Path) -> str:
    sample = text[:20000]
    if sample and len(_CONTROL.findall(sample)) / len(sample) > 0.02:
        raise CorruptDocumentError(path, "binary data, not text (too many control characters)")
    return text


class _TextExtractor(HTMLParser):
    """HTML to text: drops scripts, styles and page chrome, keeps block structure as line breaks."""

    _SKIP = {"script", "style", "noscript", "template", "svg", "iframe", "nav", "footer", "form", "button", "head"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
              "article", "header", "blockquote", "pre", "hr", "dd", "dt", "figcaption"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.title = ""
        self.h1 = ""
        self._in_title = False
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP and tag != "head":
            self.skip_depth += 1
        if tag == "title":
            self._in_title = True
        if tag == "h1":
            self._in_h1 = True
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_startendtag(self, tag, attrs):
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP and tag != "head" and self.skip_depth:
            self.skip_depth -= 1
        if tag == "title":
            self._in_title = False
        if tag == "h1":
            self._in_h1 = False
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
            return
        if self.skip_depth:
            return
        if self._in_h1:
            self.h1 += data
        self.parts.append(data)


def html_to_text(markup: str) -> tuple[str, str]:
    """Return ``(text, title)`` of an HTML page."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    text = "\n".join(line for line in lines if line)
    title = " ".join((parser.title or parser.h1).split())
    return html.unescape(text), title


def _title_from_text(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else line[:100].rsplit(" ", 1)[0] + "…"
    return fallback


def load_document(path: Path | str, *, max_bytes: int = DEFAULT_MAX_BYTES, doc_id: str | None = None) -> Document:
    """Read one file into a ``Document``.

    Raises:
        UnsupportedFileError, EmptyDocumentError, CorruptDocumentError, EncryptedDocumentError,
        DocumentTooLargeError: with the path and reason.
    """
    path = Path(path)
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UnsupportedFileError(path, f"unsupported file type {path.suffix or '(no extension)'!r}; "
                                         f"supported: {', '.join(sorted(set(SUPPORTED_SUFFIXES)))}")
    if not path.is_file():
        raise CorruptDocumentError(path, "not a readable file")
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentTooLargeError(
            path, f"the file is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB limit; split it or raise --max-file-mb"
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise EmptyDocumentError(path, "the file is empty")
    digest = hashlib.sha256(raw).hexdigest()
    doc_id = doc_id or doc_id_for(path)
    pages: tuple[tuple[int, int], ...] = ()
    title = ""
    if kind == "pdf":
        if not raw.startswith(b"%PDF"):
            raise CorruptDocumentError(path, "not a PDF file (no %PDF header)")
        from .pdf import extract_pdf_pages

        page_texts = extract_pdf_pages(path)
        parts, spans, offset = [], [], 0
        for page_text in page_texts:
            parts.append(page_text)
            spans.append((offset, offset + len(page_text)))
            offset += len(page_text) + 2
        text = "\n\n".join(parts)
        pages = tuple(spans)
    else:
        if raw.startswith(b"%PDF"):
            raise CorruptDocumentError(path, f"this is a PDF file with a {path.suffix} extension; rename it to .pdf")
        text = decode_text(raw, path)
        text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
        if kind == "html":
            text, title = html_to_text(text)
    if not text.strip() or not any(ch.isalnum() for ch in text):
        raise EmptyDocumentError(path, "the file holds no text" + (" (whitespace only)" if raw.strip() == b"" or not text.strip() else ""))
    return Document(
        doc_id=doc_id,
        title=title or _title_from_text(text, doc_id),
        source=str(path.resolve()),
        text=text,
        content_hash=digest,
        pages=pages,
        added_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        kind=kind,
    )


def expand_paths(paths: list[Path | str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Files to ingest from files and folders, plus ``(path, reason)`` for paths that cannot be used.

    Folders are walked recursively for supported suffixes, in a stable order; hidden files are skipped.
    """
    files: list[Path] = []
    problems: list[tuple[str, str]] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES and not any(
                    part.startswith(".") for part in child.relative_to(path).parts
                ):
                    files.append(child)
        elif path.is_file():
            files.append(path)
        else:
            problems.append((str(path), "no such file or folder"))
    return files, problems
