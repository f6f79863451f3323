"""An answer with its sources as Markdown, the way a journalist pastes sources into a draft.

One renderer for every door: the web UI's "Copy as Markdown" / "Download .md" and
``assistant ask --format markdown`` print exactly what ``answer_markdown`` returns.

    from assistant.export import answer_markdown
    print(answer_markdown(bot.ask("What did Lavrov announce?")))
"""

from __future__ import annotations

import re
from typing import Mapping

from assistant.records import Answer, Hit

# Per language: the words around the sources. Arabic answers get Arabic headings so a pasted block
# reads in one language.
_WORDS = {
    "en": {"question": "Question", "sources": "Sources", "closest": "Closest passages (none is a confident match)",
           "page": "page", "published": "published", "site": "site", "missing": "Not found in the sources",
           "translation": "Machine translation", "note": "Note"},
    "ar": {"question": "السؤال", "sources": "المصادر", "closest": "أقرب المقاطع (لا يوجد تطابق مؤكد)",
           "page": "صفحة", "published": "تاريخ النشر", "site": "الموقع", "missing": "لم يرد في المصادر",
           "translation": "ترجمة آلية", "note": "ملاحظة"},
}
# Markdown that would change how a title or a one-line field renders (links, emphasis, headings).
_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def _inline(text: str) -> str:
    """One line of plain text, safe inside Markdown (newlines folded, markup characters escaped)."""
    return _INLINE_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _blockquote(text: str) -> str:
    """``text`` verbatim as a Markdown block quote (each line prefixed, blank lines kept as ``>``)."""
    return "\n".join(f"> {line}".rstrip() for line in text.split("\n"))


def _source_line(label: str, title: str, doc_id: str, page: int | None, published: str, site: str,
                 words: Mapping[str, str]) -> str:
    parts = [f"`{doc_id}`"]
    if page:
        parts.append(f"{words['page']} {int(page)}")
    if published:
        parts.append(f"{words['published']} {published}")
    if site:
        parts.append(f"{words['site']} {_inline(site)}")
    return f"{label} **{_inline(title or doc_id)}** ({', '.join(parts)})"


def answer_markdown(answer: Answer, sites: Mapping[str, str] | None = None,
                    published: Mapping[str, str] | None = None) -> str:
    """The answer, then each source: title, document id, page, date and site when known, the quote.

    Args:
        answer: What ``Assistant.ask`` returned.
        sites: Optional ``doc_id -> site`` (the records' citations do not carry the site).
        published: Optional ``doc_id -> publication date`` for citations whose own date is empty.

    Returns:
        Markdown text ending in a newline. Every cited quote appears verbatim (``document.text[start:end]``)
        as a block quote under its ``[n]`` source line; an abstention lists the closest passages instead.
    """
    words = _WORDS["ar" if answer.language == "ar" else "en"]
    sites = sites or {}
    published = published or {}
    out = [f"**{words['question']}:** {_inline(answer.question)}", "", answer.text.strip()]
    if answer.missing:
        out += ["", f"*{words['missing']}: {_inline(', '.join(answer.missing))}*"]
    if answer.notice:
        out += ["", f"*{words['note']}: {_inline(answer.notice)}*"]
    if answer.citations:
        out += ["", f"**{words['sources']}**"]
        for c in sorted(answer.citations, key=lambda c: c.marker):
            date = c.published or published.get(c.doc_id, "")
            out += ["", _source_line(f"[{c.marker}]", c.title, c.doc_id, c.page, date, sites.get(c.doc_id, ""), words),
                    "", _blockquote(c.quote)]
            if answer.translations and c.marker in answer.translations:
                out += ["", f"*{words['translation']}:* {_inline(answer.translations[c.marker])}"]
    elif answer.passages:
        out += ["", f"**{words['closest']}**"]
        for hit in answer.passages:
            out += ["", _hit_line(hit, sites, published, words), "", _blockquote(hit.best_text or hit.chunk.text)]
    return "\n".join(out).rstrip() + "\n"


def _hit_line(hit: Hit, sites: Mapping[str, str], published: Mapping[str, str], words: Mapping[str, str]) -> str:
    doc_id = hit.chunk.doc_id
    return _source_line(f"{hit.rank}.", hit.title, doc_id, hit.chunk.page, hit.published or published.get(doc_id, ""),
                        sites.get(doc_id, ""), words)


def source_metadata(assistant: object, answer: Answer) -> tuple[dict[str, str], dict[str, str]]:
    """``(sites, published)`` by document id for the documents an answer cites or lists.

    Read from the index (``assistant.document``) because citations carry the date but not the site.
    A document that is gone (removed since) or an assistant without ``document`` gives nothing.
    """
    sites: dict[str, str] = {}
    dates: dict[str, str] = {}
    lookup = getattr(assistant, "document", None)
    if lookup is None:
        return sites, dates
    doc_ids = dict.fromkeys([c.doc_id for c in answer.citations] + [h.chunk.doc_id for h in answer.passages])
    for doc_id in doc_ids:
        try:
            doc = lookup(doc_id)
        except Exception:  # noqa: BLE001 - metadata is a nicety; the answer stands without it
            continue
        if getattr(doc, "site", ""):
            sites[doc_id] = doc.site
        if getattr(doc, "published", ""):
            dates[doc_id] = doc.published
    return sites, dates
