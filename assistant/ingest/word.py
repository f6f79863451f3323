"""Word ``.docx`` files to text with python-docx, in reading order.

Paragraphs, headings and tables come out in the order they appear in the body; a table row becomes
one line with its cells separated by `` | `` (a merged cell is written once). Content controls
(``w:sdt`` blocks, used by templates for title and date fields) are read too. Right-to-left runs need
no repair: Word stores text in logical order and marks direction with properties (``w:rtl``,
``w:bidi``), so the extracted Arabic reads correctly and the direction marks are kept as they are.

Errors are ``CorruptDocumentError`` naming the file: not a zip, a zip that is not a Word document,
a truncated file, or one whose XML would expand past ``MAX_UNZIPPED_BYTES`` (a zip bomb).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from assistant.text.dates import iso_date_or_empty
from assistant.errors import CorruptDocumentError, MissingDependencyError

__all__ = ["WordText", "extract_docx", "MAX_UNZIPPED_BYTES"]

# A real news .docx unzips to a few MB; images are not read, but the XML parts are. Past this the
# file is refused rather than inflated into memory.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass(frozen=True)
class WordText:
    """What a .docx holds: the text, its first heading (or Title), and the core properties."""

    text: str
    title: str
    author: str
    created: str  # YYYY-MM-DD of the file's creation (not a publication date), or ""


def extract_docx(path: Path, raw: bytes) -> WordText:
    """Read the .docx whose bytes are ``raw`` (``path`` names it in errors).

    Raises:
        CorruptDocumentError: not a Word document, damaged, truncated, or a zip bomb.
        MissingDependencyError: python-docx is not installed.
    """
    try:
        import docx
        from docx.opc.exceptions import PackageNotFoundError
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise MissingDependencyError("python-docx", purpose="reading Word .docx files") from exc
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" not in names:
                hint = " (an OpenDocument .odt? save it as .docx)" if "content.xml" in names else ""
                raise CorruptDocumentError(path, f"a zip archive but not a Word .docx document (no word/document.xml){hint}")
            if sum(info.file_size for info in archive.infolist()) > MAX_UNZIPPED_BYTES:
                raise CorruptDocumentError(path, f"the .docx unzips to more than {MAX_UNZIPPED_BYTES // 2**20} MB "
                                                 "(a zip bomb, or huge embedded media); save the text to a new file")
            bad = archive.testzip()
            if bad is not None:
                raise CorruptDocumentError(path, f"the .docx is damaged (part {bad} fails its checksum); save it again")
        document = docx.Document(io.BytesIO(raw))
    except CorruptDocumentError:
        raise
    except zipfile.BadZipFile as exc:
        raise CorruptDocumentError(path, f"not a readable .docx: the zip container is truncated or damaged ({exc})") from exc
    except PackageNotFoundError as exc:
        raise CorruptDocumentError(path, f"not a Word .docx document ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - lxml/zip/KeyError from a damaged package, all the same to the user
        raise CorruptDocumentError(path, f"the .docx is damaged and cannot be read ({type(exc).__name__}: {exc})") from exc

    lines: list[str] = []
    title = ""
    for block in _blocks(document.element.body, document):
        kind, text = block
        text = text.strip()
        if not text:
            continue
        if kind == "heading" and not title:
            title = " ".join(text.split())
        lines.append(text)
    props = document.core_properties
    title = (props.title or "").strip() or title
    return WordText(text="\n".join(lines), title=title, author=(props.author or "").strip(),
                    created=iso_date_or_empty(props.created))


def _blocks(element: Any, document: Any) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` for each paragraph (``"paragraph"``/``"heading"``) and table row (``"row"``), in order."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in element.iterchildren():
        tag = child.tag
        if tag == _W + "p":
            paragraph = Paragraph(child, document)
            style = ""
            try:
                style = (paragraph.style.name or "") if paragraph.style is not None else ""
            except (KeyError, AttributeError, ValueError):  # a style id missing from styles.xml
                pass
            heading = style.startswith("Heading") or style == "Title"
            yield ("heading" if heading else "paragraph"), paragraph.text
        elif tag == _W + "tbl":
            yield from _table_rows(Table(child, document), document)
        elif tag == _W + "sdt":
            content = child.find(_W + "sdtContent")
            if content is not None:
                yield from _blocks(content, document)


def _table_rows(table: Any, document: Any) -> Iterator[tuple[str, str]]:
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a horizontally merged cell is returned once per grid column
                continue
            seen.add(id(cell._tc))
            parts = [text.strip() for _, text in _blocks(cell._tc, document)]
            cells.append(" ".join(p for p in parts if p))
        if any(cells):
            yield "row", " | ".join(cells)
