"""HTML rendering of answers, sources, conversations and lookups for the web UI (the viewer, the
Documents tab and the About panel are in ``panels``).

Pure functions of records: every piece of document, passage or user text is escaped, and every run of
text in the other writing direction is isolated (``<bdi>``), so mixed Arabic/English lines keep their
order and punctuation.
"""

from __future__ import annotations

import html
import re
import unicodedata
import urllib.parse
from typing import Mapping, Sequence

from assistant.export import answer_markdown
from assistant.text.normalize import detect_language
from assistant.records import Answer, Citation, Hit

LABELS = {
    "en": {
        "you": "You",
        "assistant": "Assistant",
        "sources": "Sources",
        "closest": "Closest passages (none is a confident match)",
        "more": "Show all retrieved passages ({n})",
        "page": "page",
        "open": "Open document at this passage",
        "translation": "Machine translation (English)",
        "searching": "Searching the documents",
        "error": "Could not answer",
        "retrieved": "retrieved #{n}",
        "score": "score",
        "published": "published",
        "missing": "Not found in the sources",
        "copy": "Copy as Markdown",
        "download": "Download .md",
    },
    "ar": {
        "you": "أنت",
        "assistant": "المساعد",
        "sources": "المصادر",
        "closest": "أقرب المقاطع (لا يوجد تطابق مؤكد)",
        "more": "عرض كل المقاطع المسترجعة ({n})",
        "page": "صفحة",
        "open": "افتح المستند عند هذا المقطع",
        "translation": "ترجمة آلية (إنجليزية)",
        "searching": "جارٍ البحث في المستندات",
        "error": "تعذّرت الإجابة",
        "retrieved": "مقطع مسترجع #{n}",
        "score": "الدرجة",
        "published": "نُشر",
        "missing": "لم يرد في المصادر",
        "copy": "نسخ بصيغة Markdown",
        "download": "تنزيل ‎.md",
    },
}


# -- small helpers -----------------------------------------------------------------------------------
def esc(text: object) -> str:
    """HTML-escape any text (quotes too, so it is safe inside attributes)."""
    return html.escape("" if text is None else str(text), quote=True)


def lang_of(text: str) -> str:
    return "ar" if text and detect_language(text) == "ar" else "en"


def dir_of(lang: str) -> str:
    return "rtl" if lang == "ar" else "ltr"


def _labels(lang: str) -> dict[str, str]:
    return LABELS["ar" if lang == "ar" else "en"]


def _strength(ch: str) -> str | None:
    """``"rtl"`` or ``"ltr"`` for a character with a strong direction, else None (digits, punctuation, space)."""
    kind = unicodedata.bidirectional(ch)
    if kind in ("R", "AL"):
        return "rtl"
    if kind == "L":
        return "ltr"
    return None


def bidi(text: object, base: str = "ltr") -> str:
    """``text`` escaped, each run written in the other direction than ``base`` wrapped in ``<bdi dir=...>``.

    A run starts and ends on a strong character of the other direction and keeps the spaces, digits and
    punctuation between them; punctuation at its edges (a closing quote, a full stop, a ``[1]``) stays
    outside, in the line's own direction. Without this an Arabic quote inside an English line drags its
    punctuation along (``ومحيطها"."``) and a Latin id inside an Arabic title is reordered. The one
    exception: an English run's own sentence-final stop in an Arabic line goes inside (else it is drawn
    before the sentence's first word).
    """
    text = "" if text is None else str(text)
    other = "ltr" if base == "rtl" else "rtl"
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if _strength(text[i]) != other:
            j = i
            while j < n and _strength(text[j]) != other:
                j += 1
            out.append(esc(text[i:j]))
            i = j
            continue
        # A run of the other direction: extend to its last strong character before a strong character of
        # the base direction or a line break.
        j = last = i
        while j < n and text[j] != "\n":
            strength = _strength(text[j])
            if strength == base:
                break
            if strength == other:
                last = j
            j += 1
        if other == "ltr":
            # An English sentence quoted in an Arabic line keeps its own full stop: left outside the
            # isolate it would be drawn on the far (left) side, before the sentence's first word.
            while last + 1 < n and text[last + 1] in ".!?…":
                last += 1
        out.append(f'<bdi dir="{other}">{esc(text[i:last + 1])}</bdi>')
        i = last + 1
    return "".join(out)


def highlight(text: str, start: int, end: int, mark_id: str | None = None, base: str | None = None) -> str:
    """``text`` escaped, with ``text[start:end]`` wrapped in ``<mark>`` (offsets are clipped).

    With ``base`` ("ltr"/"rtl") each piece also has its runs of the other direction isolated.
    """
    render = (lambda t: bidi(t, base)) if base else esc
    start = max(0, min(len(text), start))
    end = max(start, min(len(text), end))
    if end <= start:
        return render(text)
    ident = f' id="{esc(mark_id)}"' if mark_id else ""
    return f"{render(text[:start])}<mark class=\"evidence\"{ident}>{render(text[start:end])}</mark>{render(text[end:])}"


_MARKER = re.compile(r"\[(\d{1,3})\]")


def link_markers(escaped: str, turn: int, markers: set[int]) -> str:
    """Turn ``[n]`` markers of escaped answer text into links to source entry ``src-<turn>-<n>``."""

    def repl(match: re.Match) -> str:
        n = int(match.group(1))
        if n not in markers:
            return match.group(0)
        target = f"src-{turn}-{n}"
        return f'<a class="cite" href="#{target}" data-target="{target}" title="source {n}">[{n}]</a>'

    return _MARKER.sub(repl, escaped)


# -- rendering ---------------------------------------------------------------------------------------
def _source_meta(doc_id: str, page: int | None, lang: str, published: str = "", site: str = "",
                 extra: str = "") -> str:
    """The grey line under a source title: id, page, publication date, site (each isolated)."""
    L = _labels(lang)
    meta = [f'<bdi class="doc-id" dir="ltr">{esc(doc_id)}</bdi>']
    if page:
        meta.append(f"{esc(L['page'])} {int(page)}")
    if published:
        meta.append(f'<span class="published">{esc(L["published"])} <bdi dir="ltr">{esc(published)}</bdi></span>')
    if site:
        meta.append(f'<bdi class="site" dir="auto">{esc(site)}</bdi>')
    if extra:
        meta.append(extra)
    # Each item is its own <bdi>/<span>, so the separators stay between them in either direction.
    return f'<div class="src-meta">{" · ".join(meta)}</div>'


def render_passage(
    entry_id: str,
    label: str,
    *,
    title: str,
    doc_id: str,
    page: int | None,
    text: str,
    text_start: int,
    hl_start: int,
    hl_end: int,
    lang: str,
    translation: str | None = None,
    extra: str = "",
    published: str = "",
    site: str = "",
    evidence: bool = True,
) -> str:
    """One source entry: title, doc id, page, date, site, the passage with the evidence highlighted
    (unless ``evidence`` is False: closest passages of an abstention), and an open button."""
    L = _labels(lang)
    passage_dir = dir_of(lang_of(text))
    body = (highlight(text, hl_start - text_start, hl_end - text_start, base=passage_dir) if evidence
            else bidi(text, passage_dir))
    parts = [
        f'<div class="src" id="{esc(entry_id)}" dir="{dir_of(lang)}">',
        f'<div class="src-head"><span class="src-label">{esc(label)}</span> '
        f'<bdi class="src-title" dir="auto">{esc(title)}</bdi></div>',
        _source_meta(doc_id, page, lang, published, site, extra),
        f'<div class="src-text" dir="{passage_dir}">{body}</div>',
    ]
    if translation:
        parts.append(
            f'<div class="src-translation" dir="ltr"><span class="tr-label">{esc(L["translation"])}:</span> '
            f"{bidi(translation, 'ltr')}</div>"
        )
    parts.append(
        f'<button type="button" class="open-doc" data-doc="{esc(doc_id)}" data-start="{int(hl_start)}" '
        f'data-end="{int(hl_end)}">{esc(L["open"])} ↗</button>'
    )
    parts.append("</div>")
    return "".join(parts)


def _hit_entry(hit: Hit, entry_id: str, label: str, lang: str, show_score: bool = False,
               meta: Mapping[str, Mapping[str, str]] | None = None, evidence: bool = True) -> str:
    L = _labels(lang)
    extra = f'{esc(L["score"])} {hit.score:.3f}' if show_score else ""
    doc_meta = (meta or {}).get(hit.chunk.doc_id, {})
    return render_passage(
        entry_id, label, title=hit.title or hit.chunk.doc_id, doc_id=hit.chunk.doc_id, page=hit.chunk.page,
        text=hit.chunk.text, text_start=hit.chunk.start, hl_start=hit.best_start, hl_end=hit.best_end,
        lang=lang, extra=extra, published=hit.published or doc_meta.get("published", ""),
        site=doc_meta.get("site", ""), evidence=evidence,
    )


def _citation_entry(c: Citation, answer: Answer, turn: int, meta: Mapping[str, Mapping[str, str]] | None = None) -> str:
    hit = next((h for h in answer.passages if h.chunk.chunk_id == c.chunk_id), None)
    if hit is not None:
        text, text_start, page = hit.chunk.text, hit.chunk.start, c.page or hit.chunk.page
    else:  # a citation outside the retrieved passages: show the quote itself
        text, text_start, page = c.quote, c.start, c.page
    translation = answer.translations.get(c.marker) if answer.translations else None
    doc_meta = (meta or {}).get(c.doc_id, {})
    return render_passage(
        f"src-{turn}-{c.marker}", f"[{c.marker}]", title=c.title or c.doc_id, doc_id=c.doc_id, page=page,
        text=text, text_start=text_start, hl_start=c.start, hl_end=c.end, lang=answer.language,
        translation=translation, published=c.published or doc_meta.get("published", ""),
        site=doc_meta.get("site", ""),
    )


def _export_tools(answer: Answer, turn: int, meta: Mapping[str, Mapping[str, str]] | None) -> str:
    """"Copy as Markdown" and "Download .md" for a final answer (the same text as ``ask --format markdown``)."""
    meta = meta or {}
    markdown = answer_markdown(answer, sites={k: v.get("site", "") for k, v in meta.items() if v.get("site")},
                               published={k: v.get("published", "") for k, v in meta.items() if v.get("published")})
    L = _labels(answer.language)
    href = "data:text/markdown;charset=utf-8," + urllib.parse.quote(markdown)
    return (f'<div class="export" dir="{dir_of(answer.language)}">'
            f'<button type="button" class="copy-md" data-turn="{turn}">{esc(L["copy"])}</button>'
            f'<a class="download-md" download="answer-{turn}.md" href="{esc(href)}">{esc(L["download"])}</a>'
            f'<span class="copied" aria-live="polite"></span>'
            f'<textarea class="md-source" hidden readonly>{esc(markdown)}</textarea></div>')


def render_answer(answer: Answer, turn: int, show_all: bool = False, final: bool = True,
                  meta: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """An assistant message: answer text with linked markers, notice, sources, other passages.

    ``meta`` maps a document id to ``{"published", "site"}`` shown beside its sources. An abstention
    (``outcome == "abstain"``) lists the closest passages without an evidence highlight: nothing in
    them was judged to answer.
    """
    lang = "ar" if answer.language == "ar" else "en"
    base = dir_of(lang)
    L = _labels(lang)
    markers = {c.marker for c in answer.citations}
    abstain = answer.outcome == "abstain" or answer.abstained
    body = "".join(
        f'<p dir="{base}">{link_markers(bidi(line, base), turn, markers)}</p>' if line.strip() else '<div class="gap"></div>'
        for line in answer.text.split("\n")
    )
    out = [f'<div class="turn bot{" abstained" if abstain else ""}" id="turn-{turn}" dir="{base}" lang="{lang}">',
           f'<div class="who">{esc(L["assistant"])}</div>', f'<div class="answer">{body}']
    if not final:
        out.append('<span class="typing" aria-label="…"></span>')
    out.append("</div>")
    if answer.outcome == "partial" and answer.missing:
        out.append(f'<div class="notice missing" dir="{base}">{esc(L["missing"])}: '
                   f'{", ".join(bidi(m, base) for m in answer.missing)}</div>')
    if answer.notice:
        out.append(f'<div class="notice" dir="{base}">{bidi(answer.notice, base)}</div>')
    # Partial answers of a model have no citations yet: sources appear with the verified answer.
    if final or answer.citations:
        cited_chunks = {c.chunk_id for c in answer.citations}
        if answer.citations and not abstain:
            out.append(f'<div class="sources"><div class="sources-title">{esc(L["sources"])}</div>')
            out.extend(_citation_entry(c, answer, turn, meta) for c in sorted(answer.citations, key=lambda c: c.marker))
            out.append("</div>")
            others = [h for h in answer.passages if h.chunk.chunk_id not in cited_chunks]
            if others:
                out.append(f'<details class="more"{" open" if show_all else ""}><summary>{esc(L["more"].format(n=len(others)))}</summary>')
                out.extend(_hit_entry(h, f"src-{turn}-p{h.rank}", L["retrieved"].format(n=h.rank), lang, meta=meta)
                           for h in others)
                out.append("</details>")
        elif answer.passages:
            out.append(f'<div class="sources closest"><div class="sources-title">{esc(L["closest"])}</div>')
            out.extend(_hit_entry(h, f"src-{turn}-p{h.rank}", L["retrieved"].format(n=h.rank), lang, meta=meta,
                                  evidence=False) for h in answer.passages)
            out.append("</div>")
    if final:
        out.append(_export_tools(answer, turn, meta))
    out.append("</div>")
    return "".join(out)


def render_user(text: str) -> str:
    lang = lang_of(text)
    L = _labels(lang)
    return (f'<div class="turn user" dir="{dir_of(lang)}" lang="{lang}"><div class="who">{esc(L["you"])}</div>'
            f'<div class="question"><p dir="{dir_of(lang)}">{bidi(text, dir_of(lang))}</p></div></div>')


WELCOME = (
    '<div class="welcome">'
    '<p dir="ltr">Ask about the indexed news in <b>English</b> or <b>Arabic</b>. Answers quote the documents '
    'verbatim; every <span class="cite-demo">[n]</span> links to its source passage, and each source opens the '
    'whole document at that place.</p>'
    '<p dir="rtl" lang="ar">اسأل عن الأخبار المفهرسة بالعربية أو بالإنجليزية. تقتبس الإجابات من المستندات حرفيًا، '
    'وكل رقم <bdi dir="ltr" class="cite-demo">[n]</bdi> يقود إلى المقطع المصدر.</p></div>'
)

HEADER = (
    '<div id="app-header"><h1><span lang="en">News Assistant</span> <span class="sep" aria-hidden="true">·</span> '
    '<bdi lang="ar" dir="rtl">مساعد الأخبار</bdi></h1>'
    '<p class="tagline">Cited answers from the indexed news, in English and Arabic.</p></div>'
)


def render_conversation(turns: Sequence[dict], show_all: bool = False) -> str:
    """The whole conversation; ``turns`` holds ``{"role": "user", "text"}`` and
    ``{"role": "assistant", "answer": Answer | None, "final": bool, "error": str | None, "lang", "meta"}``."""
    if not turns:
        return f'<div class="conv empty">{WELCOME}</div>'
    out = ['<div class="conv">']
    bot_turn = 0
    for turn in turns:
        if turn["role"] == "user":
            out.append(render_user(turn["text"]))
            continue
        bot_turn += 1
        lang = turn.get("lang", "en")
        base = dir_of(lang)
        L = _labels(lang)
        if turn.get("error"):
            out.append(f'<div class="turn bot error" id="turn-{bot_turn}" dir="{base}" lang="{lang}">'
                       f'<div class="who">{esc(L["assistant"])}</div><div class="answer">'
                       f'<p class="err" dir="{base}"><b>{esc(L["error"])}:</b> {bidi(turn["error"], base)}</p></div></div>')
        elif turn.get("answer") is None:
            out.append(f'<div class="turn bot pending" id="turn-{bot_turn}" dir="{base}" lang="{lang}">'
                       f'<div class="who">{esc(L["assistant"])}</div><div class="answer"><p>{esc(L["searching"])}'
                       f'<span class="typing"></span></p></div></div>')
        else:
            out.append(render_answer(turn["answer"], bot_turn, show_all, turn.get("final", True), turn.get("meta")))
    out.append("</div>")
    return "".join(out)


def render_conversation_list(items: Sequence[Mapping], current: str | None) -> str:
    """Past conversations, newest first: each a button (custom event ``open_conv``) titled by its first question."""
    if not items:
        return '<p class="conv-empty">No earlier conversations in this browser yet.</p>'
    out = ['<ul class="conv-list">']
    for item in items:
        title = item.get("title") or "(untitled)"
        lang = lang_of(title)
        when = esc(str(item.get("updated", ""))[:16].replace("T", " "))
        selected = ' aria-current="true"' if item.get("id") == current else ""
        count = int(item.get("questions", 0))
        out.append(f'<li><button type="button" class="open-conv" data-conv="{esc(item.get("id", ""))}"{selected}>'
                   f'<bdi class="conv-title" dir="{dir_of(lang)}">{esc(title)}</bdi>'
                   f'<span class="conv-meta"><bdi dir="ltr">{when}</bdi> · {count} question{"s" if count != 1 else ""}'
                   f'</span></button></li>')
    out.append("</ul>")
    return "".join(out)


def render_lookup(phrase: str, hits: Sequence[Hit], weak: bool, meta: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """Ranked passages for a citation lookup; no generated text."""
    lang = lang_of(phrase)
    base = dir_of(lang)
    if not hits:
        msg = "No passage in the index matches this." if lang == "en" else "لا يوجد مقطع في الفهرس يطابق هذا."
        return f'<div class="lookup" dir="{base}"><p class="notice">{esc(msg)}</p></div>'
    head = ("Where the documents say" if lang == "en" else "أين تذكر المستندات")
    out = [f'<div class="lookup" dir="{base}" lang="{lang}">',
           f'<div class="sources-title">{esc(head)}: “<bdi dir="{base}">{bidi(phrase, base)}</bdi>”</div>']
    if weak:
        msg = ("No passage matches this closely; these are the nearest ones." if lang == "en"
               else "لا يوجد مقطع يطابق هذا بدقة؛ هذه أقرب المقاطع.")
        out.append(f'<p class="notice">{esc(msg)}</p>')
    out.extend(_hit_entry(h, f"lk-{h.rank}", f"#{h.rank}", lang, show_score=True, meta=meta) for h in hits)
    out.append("</div>")
    return "".join(out)
