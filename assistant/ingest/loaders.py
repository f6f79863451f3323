"""Read files into ``Document`` records: txt, md, html, pdf, docx (and web pages, through ``assistant.web``).

Every failure is a ``DocumentError`` subclass naming the file and the reason, so a batch can skip the
file and report it at the end.
"""

from __future__ import annotations

import hashlib
import re
import time
import unicodedata
from pathlib import Path

from assistant.text.dates import date_from_text
from assistant.errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    UnsupportedFileError,
)
from assistant.records import Document
from assistant.ingest.web import Feed, Sitemap, WebItem, WebPage
from assistant.ingest.web import is_url as _is_url
from assistant.ingest.html import html_meta_date, html_to_text

SUPPORTED_SUFFIXES = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html", ".pdf": "pdf",
                      ".docx": "docx"}
DEFAULT_MAX_BYTES = 20 * 1024 * 1024

_ARABIC = re.compile(r"[\u0621-\u064A]")
_LETTER = re.compile(r"[^\W\d_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Characters a shell acts on (command separators, substitution, redirection, globs, quotes, history)
# and that mean markup in HTML. A document id never contains them, so an id printed in a hint such as
# "assistant remove ID" or shown in the UI is inert wherever it is pasted.
_UNSAFE_ID_CHARS = re.compile(r"[;|&$`<>*?'\"!\\]+")
_MB = 1024 * 1024

# File signatures ("magic numbers") of common binary formats, checked before a file with a text
# extension is decoded, so the message can say what the file really is.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (a .docx, .xlsx, .odt or .zip file?)"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.doc, .xls or .ppt)"),
    (b"{\\rtf", "an RTF document"),
    (b"\x7fELF", "a Linux program (ELF)"),
    (b"\x1f\x8b\x08", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"OggS\x00", "an Ogg audio or video file"),
)


def sniff_binary(raw: bytes) -> str | None:
    """What a file is when its first bytes are a known binary signature ("a PNG image"), else None."""
    if b"%PDF-" in raw[:1024]:
        return "a PDF file"
    for signature, what in _SIGNATURES:
        if raw.startswith(signature):
            return what
    if raw.startswith(b"MZ") and b"\x00" in raw[:64]:
        return "a Windows program (.exe or .dll)"
    if raw.startswith(b"RIFF") and raw[8:12] in (b"WAVE", b"AVI ", b"WEBP"):
        return "a media file (.wav, .avi or .webp)"
    if raw[4:8] == b"ftyp":
        return "an MP4/MOV video or a HEIC image"
    if raw.startswith(b"ID3") and len(raw) > 5 and raw[3] < 10:
        return "an MP3 audio file"
    return None


def display_path(path: Path | str) -> str:
    """``path`` as printable text: bytes of a non-UTF-8 file name (kept by Python as surrogate escapes,
    which cannot be written to JSON, a terminal or a page) become U+FFFD."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def doc_id_for(path: Path) -> str:
    """The document id of a file: its name without extension.

    Control and invisible formatting characters (bidi overrides, zero-width characters) are removed
    and shell or markup metacharacters (``;|&$`<>*?'"!\\``) become ``_``, so an id is safe to print
    in a command hint or a page; letters of any script, digits, spaces and ``-_.()[]`` are kept.
    """
    stem = path.stem if path.suffix.lower() in SUPPORTED_SUFFIXES else path.name
    stem = "".join(" " if ch.isspace() else ch for ch in unicodedata.normalize("NFC", stem))
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C")
    stem = _UNSAFE_ID_CHARS.sub("_", stem)
    stem = " ".join(stem.split())
    return stem or "document"


def sanitize_filename(name: str, *, max_stem: int = 120) -> str:
    """A safe local file name for an uploaded file called ``name``.

    Only the last path component is kept (``../`` and ``..\\`` prefixes, absolute paths and drive
    letters are dropped); control and formatting characters are removed; runs of spaces, shell
    metacharacters and other punctuation become one ``_``; leading dots (hidden files, ``..``) are
    stripped. Letters of any script (Arabic included), digits, ``-`` and ``.`` are kept, and the
    extension is lowercased. A name with nothing left becomes ``document`` (plus its extension).

        >>> sanitize_filename("../../etc/passwd.txt")
        'passwd.txt'
        >>> sanitize_filename("a; rm -rf ~ `x` $(y).pdf")
        'a_rm_-rf_x_y.pdf'
        >>> sanitize_filename("تقرير الصحة.PDF")
        'تقرير_الصحة.pdf'
    """
    name = unicodedata.normalize("NFC", str(name)).replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    stem = "".join(ch if ch.isalnum() or ch in "-._" or unicodedata.category(ch) in ("Mn", "Mc") else "_" for ch in stem)
    stem = re.sub(r"_{2,}", "_", stem).strip("._- ")[:max_stem] or "document"
    suffix = re.sub(r"[^A-Za-z0-9]", "", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


def decode_text(raw: bytes, path: Path) -> str:
    """Decode bytes of a text file: UTF-8 (with or without BOM), UTF-16 (BOM or not), or Windows-1256.

    Raises:
        CorruptDocumentError: the bytes are binary or in no encoding we can trust.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        try:
            return _checked(raw[3:].decode("utf-8", errors="strict"), path)
        except UnicodeDecodeError as exc:
            raise CorruptDocumentError(path, f"broken UTF-8 text after a UTF-8 byte order mark (at byte {exc.start + 3}); "
                                             "re-save it as UTF-8") from exc
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return _checked(raw.decode("utf-16"), path)
        except UnicodeDecodeError as exc:
            raise CorruptDocumentError(path, f"broken UTF-16 text ({exc.reason})") from exc
    head = raw[:8192]
    if b"\x00" in head:
        # UTF-16 without BOM: every other byte is the high byte of a character, and text in one or two
        # scripts uses few of them (0x00 for ASCII spaces, digits and Latin, 0x06 for Arabic), where
        # random binary data spreads over all 256 values.
        candidates = sorted(((_high_byte_share(head[1::2]), "utf-16-le"), (_high_byte_share(head[0::2]), "utf-16-be")),
                            reverse=True)
        for share, encoding in candidates:
            if share >= 0.9 and len(raw) % 2 == 0:
                try:
                    text = _checked(raw.decode(encoding), path)
                except (UnicodeDecodeError, CorruptDocumentError):
                    continue
                if "\x00" not in text:
                    return text
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


def _high_byte_share(high: bytes) -> float:
    """Share of the four most common values among the would-be high bytes of UTF-16 text."""
    if not high:
        return 0.0
    counts = sorted((high.count(bytes([b])) for b in set(high)), reverse=True)
    return sum(counts[:4]) / len(high)


def _checked(text: str, path: Path) -> str:
    sample = text[:20000]
    if sample and len(_CONTROL.findall(sample)) / len(sample) > 0.02:
        raise CorruptDocumentError(path, "binary data, not text (too many control characters)")
    return text


def _ocr_textless_pages(path: Path, page_texts: list[str]) -> tuple[list[str], tuple[int, ...]]:
    """Pages without a text layer read by OCR when it is installed; returns the page texts and the
    numbers of the pages OCR filled.

    Raises:
        EmptyDocumentError: no page has text, and OCR is not installed (the message says how to
            install it) or read nothing.
    """
    from assistant.ingest.ocr import ocr_pdf_pages, ocr_unavailable_reason
    from assistant.ingest.pdf import NO_TEXT_LAYER_MESSAGE, OCR_FOUND_NOTHING_MESSAGE

    blank = [number for number, text in enumerate(page_texts, 1) if not text.strip()]
    if not blank:
        return page_texts, ()
    unavailable = ocr_unavailable_reason()
    if unavailable is not None:
        if len(blank) == len(page_texts):
            raise EmptyDocumentError(path, f"{NO_TEXT_LAYER_MESSAGE}; or {unavailable}")
        return page_texts, ()  # some pages have text: keep them rather than refuse the file
    texts = list(page_texts)
    filled = []
    for number, text in sorted(ocr_pdf_pages(path, blank).items()):
        if text.strip():
            texts[number - 1] = text
            filled.append(number)
    if not any(t.strip() for t in texts):
        raise EmptyDocumentError(path, OCR_FOUND_NOTHING_MESSAGE)
    return texts, tuple(filled)


def _title_from_text(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line if len(line) <= 120 else line[:100].rsplit(" ", 1)[0] + "…"
    return fallback


def load_document(path: Path | str | WebPage, *, max_bytes: int = DEFAULT_MAX_BYTES, doc_id: str | None = None) -> Document:
    """Read one file, or fetch one web page (a ``web.WebPage`` or an ``http(s)://`` string), into a ``Document``.

    Raises:
        UnsupportedFileError, EmptyDocumentError, CorruptDocumentError, EncryptedDocumentError,
        DocumentTooLargeError: with the path and reason. For web pages, ``FetchError`` and
        ``RefusedURLError`` with the URL and reason (the page's size cap is the fetcher's).
    """
    if isinstance(path, WebPage) or _is_url(path):
        from assistant.ingest.web import load_web_page

        return load_web_page(path)  # type: ignore[arg-type]
    path = Path(path)
    if display_path(path) != str(path):
        raise CorruptDocumentError(display_path(path), "the file name is not valid UTF-8 (saved on another system?); "
                                                       "rename the file and add it again")
    kind = SUPPORTED_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise UnsupportedFileError(path, f"unsupported file type {path.suffix or '(no extension)'!r}; "
                                         f"supported: {', '.join(sorted(set(SUPPORTED_SUFFIXES)))}")
    if not path.is_file():
        raise CorruptDocumentError(path, "not a readable file (a folder, device or broken link?)")
    too_large = "the file is {:.1f} MB, over the {:g} MB limit; split it or raise --max-file-mb"
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentTooLargeError(path, too_large.format(size / _MB, max_bytes / _MB))
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)  # never more than the limit, even if the file grew meanwhile
    except OSError as exc:
        raise CorruptDocumentError(path, f"the file cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > max_bytes:
        raise DocumentTooLargeError(path, too_large.format(path.stat().st_size / _MB, max_bytes / _MB))
    if not raw:
        raise EmptyDocumentError(path, "the file is empty (0 bytes)")
    if not raw.strip():
        raise EmptyDocumentError(path, "the file is empty (only whitespace)")
    digest = hashlib.sha256(raw).hexdigest()
    doc_id = doc_id or doc_id_for(path)
    pages: tuple[tuple[int, int], ...] = ()
    ocr_pages: tuple[int, ...] = ()
    title = author = ""
    # A date the file itself carries (PDF /CreationDate, .docx created): when the file was made, which
    # is only a fallback for the publication date when the text states none.
    file_date = ""
    what = sniff_binary(raw)
    if kind == "docx":
        if not raw.startswith(b"PK\x03\x04"):
            raise CorruptDocumentError(path, f"not a Word .docx file (it is {what or 'not a zip archive'}); "
                                             "open it in Word or LibreOffice and save it as .docx")
        from assistant.ingest.word import extract_docx

        word = extract_docx(path, raw)
        text, title, author, file_date = word.text, word.title, word.author, word.created
        text = unicodedata.normalize("NFC", text)
    elif kind == "pdf":
        if what != "a PDF file":
            detail = f"it is {what}" if what else "no %PDF header"
            raise CorruptDocumentError(path, f"not a PDF file ({detail})")
        from assistant.ingest.pdf import extract_pdf_pages, pdf_creation_date

        page_texts = extract_pdf_pages(path, allow_empty=True)
        page_texts, ocr_pages = _ocr_textless_pages(path, page_texts)
        file_date = pdf_creation_date(raw)
        parts, spans, offset = [], [], 0
        for page_text in page_texts:
            parts.append(page_text)
            spans.append((offset, offset + len(page_text)))
            offset += len(page_text) + 2
        text = "\n\n".join(parts)
        pages = tuple(spans)
    else:
        if what == "a PDF file":
            raise CorruptDocumentError(path, f"this is a PDF file with a {path.suffix} extension; rename it to .pdf")
        if what:
            raise CorruptDocumentError(
                path, f"binary file: this is {what}, not text; save it as .txt, .md, .html or .pdf and add that instead"
            )
        text = decode_text(raw, path)
        text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
        if kind == "html":
            file_date = html_meta_date(text)
            text, title = html_to_text(text)
    if not text.strip():
        raise EmptyDocumentError(path, "the file is empty (only whitespace)" if kind != "html" else
                                 "the page has no visible text (only markup, scripts or styles)")
    if not any(ch.isalnum() for ch in text):
        raise EmptyDocumentError(path, "the file holds no words (only punctuation, symbols or invisible characters)")
    return Document(
        doc_id=doc_id,
        title=title or _title_from_text(text, doc_id),
        source=str(path.resolve()),
        text=text,
        content_hash=digest,
        pages=pages,
        added_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        kind=kind,
        published=date_from_text(text) or file_date,
        author=author,
        ocr_pages=ocr_pages,
    )


def expand_paths(paths: list[Path | str | WebItem]) -> tuple[list[Path | WebPage], list[tuple[str, str]]]:
    """Files and web pages to ingest, plus ``(path or URL, reason)`` for items that cannot be used.

    Folders are walked recursively for supported suffixes, in a stable order; hidden files are skipped.
    Web items (``web.WebPage``, ``web.Feed``, ``web.Sitemap`` or a URL string) become the pages they
    list; a feed or sitemap is fetched here, a page later, by ``load_document``.
    """
    files: list[Path | WebPage] = []
    problems: list[tuple[str, str]] = []
    for item in paths:
        if isinstance(item, (WebPage, Feed, Sitemap)) or _is_url(item):
            from assistant.ingest.web import expand_web

            pages, web_problems = expand_web(item)  # type: ignore[arg-type]
            files.extend(pages)
            problems.extend(web_problems)
            continue
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
            problems.append((display_path(path), "no such file or folder"))
    return _unique(files), problems


def _unique(items: list[Path | WebPage]) -> list[Path | WebPage]:
    """``items`` without repeats, first kept: a file named twice or also inside a listed folder, a URL
    given directly and listed by a feed. Ingesting one document twice in a batch would index it twice."""
    from assistant.ingest.web import normalize_url

    seen: set[str] = set()
    out = []
    for item in items:
        if isinstance(item, WebPage):
            key = "url:" + normalize_url(item.url)
        else:
            try:
                key = "file:" + str(item.resolve())
            except OSError:
                key = "file:" + str(item)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
