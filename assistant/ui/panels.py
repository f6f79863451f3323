"""HTML of the side panels of the web UI: the document viewer, the Documents tab (the table, the
removal question, the ingest status) and the About panel. Pure functions, escaped and bidi-isolated as
in ``render``."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from assistant.records import Document, DocumentInfo
from assistant.ui.render import bidi, dir_of, esc, highlight, lang_of

# The viewer shows at most this many characters around the cited span of a very long document.
VIEWER_MAX_CHARS = 200_000


def render_document(doc: Document, start: int = 0, end: int = 0) -> str:
    """The whole document, the span ``[start, end)`` highlighted as ``<mark id="doc-cite">``."""
    text = doc.text
    start = max(0, min(len(text), int(start)))
    end = max(start, min(len(text), int(end)))
    lang = lang_of(text[:4000])
    base = dir_of(lang)
    window = (0, len(text))
    if len(text) > VIEWER_MAX_CHARS:
        lo = max(0, start - VIEWER_MAX_CHARS // 2)
        window = (lo, min(len(text), lo + VIEWER_MAX_CHARS))
    spans = list(doc.pages) or [(0, len(text))]
    meta = [f'<bdi class="doc-id" dir="ltr">{esc(doc.doc_id)}</bdi>', esc(doc.kind.upper())]
    if doc.pages:
        meta.append(f"{len(doc.pages)} pages")
    if getattr(doc, "published", ""):
        meta.append(f'<span class="published">published <bdi dir="ltr">{esc(doc.published)}</bdi></span>')
    if getattr(doc, "site", ""):
        meta.append(f'<bdi class="site" dir="auto">{esc(doc.site)}</bdi>')
    meta.append(f'<bdi dir="auto">{esc(Path(doc.source).name)}</bdi>')
    if doc.added_at:
        meta.append(f"added <bdi dir=\"ltr\">{esc(doc.added_at[:16].replace('T', ' '))}</bdi>")
    out = [f'<div class="viewer" data-doc="{esc(doc.doc_id)}">',
           f'<div class="viewer-head"><div class="viewer-title" dir="auto">{esc(doc.title)}</div>',
           f'<div class="src-meta" dir="ltr">{" · ".join(meta)}</div>']
    if end > start:
        out.append('<a class="jump" href="#doc-cite">Jump to the cited passage ↓</a>')
    if window != (0, len(text)):
        out.append(f'<p class="notice">Long document: showing characters {window[0]:,}–{window[1]:,} of {len(text):,}.</p>')
    out.append(f'</div><div class="viewer-body" dir="{base}" lang="{lang}">')
    first_mark = True
    for number, (p_start, p_end) in enumerate(spans, 1):
        p_start, p_end = max(p_start, window[0]), min(p_end, window[1])
        if p_end <= p_start:
            continue
        if doc.pages:
            out.append(f'<div class="page-no" id="page-{number}">— {number} —</div>')
        piece = text[p_start:p_end]
        s, e = max(start, p_start) - p_start, min(end, p_end) - p_start
        if e > s:
            out.append(f'<div class="page-text">{highlight(piece, s, e, "doc-cite" if first_mark else None, base=base)}</div>')
            first_mark = False
        else:
            out.append(f'<div class="page-text">{bidi(piece, base)}</div>')
    out.append("</div></div>")
    return "".join(out)


def render_documents_table(docs: Sequence[DocumentInfo]) -> str:
    """The Documents list: full title, id, date and site when known, counts, Open and Remove buttons."""
    if not docs:
        return '<p class="notice">The index is empty: add documents above.</p>'
    rows = []
    for d in docs:
        added = esc((d.added_at or "")[:16].replace("T", " "))
        pages = esc(d.pages) if d.pages else "–"
        published = d.published or ""
        site = d.site or ""
        source = (f'<bdi class="site" dir="auto">{esc(site)}</bdi>' if site else "")
        if published:
            source = f'<bdi dir="ltr" class="published">{esc(published)}</bdi>' + (" · " + source if source else "")
        doc_id = esc(d.doc_id)
        rows.append(
            f'<tr data-doc="{doc_id}"><td class="t-title"><bdi dir="auto">{esc(d.title)}</bdi></td>'
            f'<td><bdi class="doc-id" dir="ltr">{doc_id}</bdi></td><td class="t-source">{source or "–"}</td>'
            f'<td>{esc(d.kind)}</td><td class="num">{pages}</td><td class="num">{int(d.chunks)}</td>'
            f'<td class="num"><bdi dir="ltr">{added}</bdi></td>'
            f'<td class="actions"><button type="button" class="open-doc" data-doc="{doc_id}" data-start="0" data-end="0">Open</button>'
            f'<button type="button" class="remove-doc" data-doc="{doc_id}">Remove…</button></td></tr>'
        )
    return ('<table class="docs"><thead><tr><th>Title</th><th>Document id</th><th>Published · site</th><th>Type</th>'
            '<th>Pages</th><th>Passages</th><th>Added</th><th></th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def render_remove_confirm(doc: DocumentInfo) -> str:
    """The question asked before a removal: the full title and the id exactly as stored."""
    passages = int(doc.chunks or 0)
    return (f'<div class="confirm" role="alertdialog" aria-label="Confirm removal">'
            f'<p>Remove this document from the index?</p>'
            f'<p class="confirm-title"><bdi dir="auto">{esc(doc.title)}</bdi></p>'
            f'<p><bdi class="doc-id" dir="ltr">{esc(doc.doc_id)}</bdi> · {passages} passage{"" if passages == 1 else "s"}</p>'
            f'<p class="hint">You can undo this right after.</p></div>')


def render_ingest_status(lines_ok: Sequence[str], problems: Sequence[tuple[str, str]], summary: str = "") -> str:
    out = ['<div class="ingest-status">']
    if summary:
        out.append(f'<p class="ok">{bidi(summary, "ltr")}</p>')
    for line in lines_ok:
        out.append(f'<p class="ok" dir="ltr">{bidi(line, "ltr")}</p>')
    if problems:
        out.append('<div class="problems"><b>Not added:</b><ul>')
        out.extend(f'<li><bdi dir="auto">{esc(name)}</bdi>: {bidi(reason, "ltr")}</li>' for name, reason in problems)
        out.append("</ul></div>")
    out.append("</div>")
    return "".join(out)


def render_about(settings: Mapping[str, str], notes: Sequence[str]) -> str:
    """The About · settings panel: how answers are made here, and what an administrator can change."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td><bdi dir=\"auto\">{esc(v)}</bdi></td></tr>" for k, v in settings.items())
    tips = "".join(f'<li dir="ltr">{bidi(n, "ltr")}</li>' for n in notes)
    return f'<div class="about"><table class="settings">{rows}</table>' + (f'<ul class="admin-notes">{tips}</ul>' if tips else "") + "</div>"
