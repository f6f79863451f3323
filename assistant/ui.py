"""The Gradio web UI: chat with cited answers, citation lookup, document upload and viewer.

The UI only renders ``Answer`` records and search hits; retrieval, answering and loading live in
``Assistant``. Every piece of document, passage or user text goes through ``html.escape`` before it
reaches the page, and every message block carries its own ``dir`` so Arabic reads right-to-left.

    from assistant import Assistant
    from assistant.ui import serve
    serve(Assistant(), host="127.0.0.1", port=7860)
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a newsroom machine

import html
import ipaddress
import json
import logging
import re
import shutil
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import gradio as gr

from .errors import AssistantError, ConfigError, DocumentError
from .loaders import SUPPORTED_SUFFIXES, load_document, sanitize_filename
from .normalize import detect_language
from .records import Answer, Citation, Document, Hit

log = logging.getLogger("assistant.ui")

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_UPLOAD_FILES = 20
UPLOAD_TYPES = sorted(SUPPORTED_SUFFIXES)
# The viewer shows at most this many characters around the cited span of a very long document.
VIEWER_MAX_CHARS = 200_000
DEFAULT_SEEDS = Path(__file__).resolve().parent.parent / "seeds"

EXAMPLES = [
    "What did Lavrov announce?",
    "ماذا أعلن لافروف؟",
    "Who will lead the Russian embassy?",
    "ماذا قال غوتيريش عن ليبيا؟",
]
LOOKUP_EXAMPLES = [
    "Tarhuna is 95 km from Tripoli",
    "ترهونة تبعد 95 كيلومترا عن طرابلس",
]

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


def highlight(text: str, start: int, end: int, mark_id: str | None = None) -> str:
    """``text`` escaped, with ``text[start:end]`` wrapped in ``<mark>`` (offsets are clipped)."""
    start = max(0, min(len(text), start))
    end = max(start, min(len(text), end))
    if end <= start:
        return esc(text)
    ident = f' id="{esc(mark_id)}"' if mark_id else ""
    return f"{esc(text[:start])}<mark class=\"evidence\"{ident}>{esc(text[start:end])}</mark>{esc(text[end:])}"


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


class _RWLock:
    """Many readers (questions, lookups) or one writer (upload, remove) at a time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting_writers = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writer or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# -- rendering ---------------------------------------------------------------------------------------
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
) -> str:
    """One source entry: title, doc id, page, passage with the evidence highlighted, open button."""
    L = _labels(lang)
    passage_dir = dir_of(lang_of(text))
    meta = [f'<bdi class="doc-id" dir="ltr">{esc(doc_id)}</bdi>']
    if page:
        meta.append(f"{esc(L['page'])} {int(page)}")
    if extra:
        meta.append(extra)
    parts = [
        f'<div class="src" id="{esc(entry_id)}" dir="{dir_of(lang)}">',
        f'<div class="src-head"><span class="src-label">{esc(label)}</span> '
        f'<bdi class="src-title" dir="auto">{esc(title)}</bdi></div>',
        f'<div class="src-meta">{" · ".join(meta)}</div>',
        f'<div class="src-text" dir="{passage_dir}">{highlight(text, hl_start - text_start, hl_end - text_start)}</div>',
    ]
    if translation:
        parts.append(
            f'<div class="src-translation" dir="ltr"><span class="tr-label">{esc(L["translation"])}:</span> '
            f"{esc(translation)}</div>"
        )
    parts.append(
        f'<button type="button" class="open-doc" data-doc="{esc(doc_id)}" data-start="{int(hl_start)}" '
        f'data-end="{int(hl_end)}">{esc(L["open"])} ↗</button>'
    )
    parts.append("</div>")
    return "".join(parts)


def _hit_entry(hit: Hit, entry_id: str, label: str, lang: str, show_score: bool = False) -> str:
    L = _labels(lang)
    extra = f'{esc(L["score"])} {hit.score:.3f}' if show_score else ""
    return render_passage(
        entry_id, label, title=hit.title or hit.chunk.doc_id, doc_id=hit.chunk.doc_id, page=hit.chunk.page,
        text=hit.chunk.text, text_start=hit.chunk.start, hl_start=hit.best_start, hl_end=hit.best_end,
        lang=lang, extra=extra,
    )


def _citation_entry(c: Citation, answer: Answer, turn: int) -> str:
    hit = next((h for h in answer.passages if h.chunk.chunk_id == c.chunk_id), None)
    if hit is not None:
        text, text_start, page = hit.chunk.text, hit.chunk.start, c.page or hit.chunk.page
    else:  # a citation outside the retrieved passages: show the quote itself
        text, text_start, page = c.quote, c.start, c.page
    translation = answer.translations.get(c.marker) if answer.translations else None
    return render_passage(
        f"src-{turn}-{c.marker}", f"[{c.marker}]", title=c.title or c.doc_id, doc_id=c.doc_id, page=page,
        text=text, text_start=text_start, hl_start=c.start, hl_end=c.end, lang=answer.language,
        translation=translation,
    )


def render_answer(answer: Answer, turn: int, show_all: bool = False, final: bool = True) -> str:
    """An assistant message: answer text with linked markers, notice, sources, other passages."""
    lang = "ar" if answer.language == "ar" else "en"
    L = _labels(lang)
    markers = {c.marker for c in answer.citations}
    lines = [line for line in answer.text.split("\n")]
    body = "".join(
        f'<p dir="auto">{link_markers(esc(line), turn, markers)}</p>' if line.strip() else '<div class="gap"></div>'
        for line in lines
    )
    out = [f'<div class="turn bot{" abstained" if answer.abstained else ""}" id="turn-{turn}" dir="{dir_of(lang)}" lang="{lang}">',
           f'<div class="who">{esc(L["assistant"])}</div>', f'<div class="answer">{body}']
    if not final:
        out.append('<span class="typing" aria-label="…"></span>')
    out.append("</div>")
    if answer.notice:
        out.append(f'<div class="notice" dir="auto">{esc(answer.notice)}</div>')
    # Partial answers of a model have no citations yet: sources appear with the verified answer.
    if final or answer.citations:
        cited_chunks = {c.chunk_id for c in answer.citations}
        if answer.citations:
            out.append(f'<div class="sources"><div class="sources-title">{esc(L["sources"])}</div>')
            out.extend(_citation_entry(c, answer, turn) for c in sorted(answer.citations, key=lambda c: c.marker))
            out.append("</div>")
            others = [h for h in answer.passages if h.chunk.chunk_id not in cited_chunks]
            if others:
                out.append(f'<details class="more"{" open" if show_all else ""}><summary>{esc(L["more"].format(n=len(others)))}</summary>')
                out.extend(_hit_entry(h, f"src-{turn}-p{h.rank}", L["retrieved"].format(n=h.rank), lang) for h in others)
                out.append("</details>")
        elif answer.passages:
            out.append(f'<div class="sources closest"><div class="sources-title">{esc(L["closest"])}</div>')
            out.extend(_hit_entry(h, f"src-{turn}-p{h.rank}", L["retrieved"].format(n=h.rank), lang) for h in answer.passages)
            out.append("</div>")
    out.append("</div>")
    return "".join(out)


def render_user(text: str) -> str:
    lang = lang_of(text)
    L = _labels(lang)
    return (f'<div class="turn user" dir="{dir_of(lang)}" lang="{lang}"><div class="who">{esc(L["you"])}</div>'
            f'<div class="question"><p dir="auto">{esc(text)}</p></div></div>')


WELCOME = (
    '<div class="welcome">'
    '<p dir="ltr">Ask about the indexed news in <b>English</b> or <b>Arabic</b>. Answers quote the documents '
    'verbatim; every <span class="cite-demo">[n]</span> links to its source passage, and each source opens the '
    'whole document at that place.</p>'
    '<p dir="rtl" lang="ar">اسأل عن الأخبار المفهرسة بالعربية أو بالإنجليزية. تقتبس الإجابات من المستندات حرفيًا، '
    'وكل رقم <span class="cite-demo">[n]</span> يقود إلى المقطع المصدر.</p></div>'
)


def render_conversation(turns: Sequence[dict], show_all: bool = False) -> str:
    """The whole conversation; ``turns`` holds ``{"role": "user", "text"}`` and
    ``{"role": "assistant", "answer": Answer | None, "final": bool, "error": str | None, "lang"}``."""
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
        L = _labels(lang)
        if turn.get("error"):
            out.append(f'<div class="turn bot error" id="turn-{bot_turn}" dir="{dir_of(lang)}" lang="{lang}">'
                       f'<div class="who">{esc(L["assistant"])}</div><div class="answer">'
                       f'<p class="err" dir="auto"><b>{esc(L["error"])}:</b> {esc(turn["error"])}</p></div></div>')
        elif turn.get("answer") is None:
            out.append(f'<div class="turn bot pending" id="turn-{bot_turn}" dir="{dir_of(lang)}" lang="{lang}">'
                       f'<div class="who">{esc(L["assistant"])}</div><div class="answer"><p>{esc(L["searching"])}'
                       f'<span class="typing"></span></p></div></div>')
        else:
            out.append(render_answer(turn["answer"], bot_turn, show_all, turn.get("final", True)))
    out.append("</div>")
    return "".join(out)


def render_lookup(phrase: str, hits: Sequence[Hit], weak: bool) -> str:
    """Ranked passages for a citation lookup; no generated text."""
    lang = lang_of(phrase)
    if not hits:
        msg = "No passage in the index matches this." if lang == "en" else "لا يوجد مقطع في الفهرس يطابق هذا."
        return f'<div class="lookup" dir="{dir_of(lang)}"><p class="notice">{esc(msg)}</p></div>'
    head = ("Where the documents say" if lang == "en" else "أين تذكر المستندات")
    out = [f'<div class="lookup" dir="{dir_of(lang)}" lang="{lang}">',
           f'<div class="sources-title">{esc(head)}: <bdi dir="auto">“{esc(phrase)}”</bdi></div>']
    if weak:
        msg = ("No passage matches this closely; these are the nearest ones." if lang == "en"
               else "لا يوجد مقطع يطابق هذا بدقة؛ هذه أقرب المقاطع.")
        out.append(f'<p class="notice">{esc(msg)}</p>')
    out.extend(_hit_entry(h, f"lk-{h.rank}", f"#{h.rank}", lang, show_score=True) for h in hits)
    out.append("</div>")
    return "".join(out)


def render_document(doc: Document, start: int = 0, end: int = 0) -> str:
    """The whole document, the span ``[start, end)`` highlighted as ``<mark id="doc-cite">``."""
    text = doc.text
    start = max(0, min(len(text), int(start)))
    end = max(start, min(len(text), int(end)))
    lang = lang_of(text[:4000])
    window = (0, len(text))
    if len(text) > VIEWER_MAX_CHARS:
        lo = max(0, start - VIEWER_MAX_CHARS // 2)
        window = (lo, min(len(text), lo + VIEWER_MAX_CHARS))
    spans = list(doc.pages) or [(0, len(text))]
    meta = [f'<bdi class="doc-id" dir="ltr">{esc(doc.doc_id)}</bdi>', esc(doc.kind.upper())]
    if doc.pages:
        meta.append(f"{len(doc.pages)} pages")
    meta.append(f'<bdi dir="ltr">{esc(Path(doc.source).name)}</bdi>')
    if doc.added_at:
        meta.append(f"added {esc(doc.added_at[:16].replace('T', ' '))}")
    out = [f'<div class="viewer" data-doc="{esc(doc.doc_id)}">',
           f'<div class="viewer-head"><div class="viewer-title" dir="auto">{esc(doc.title)}</div>',
           f'<div class="src-meta">{" · ".join(meta)}</div>']
    if end > start:
        out.append('<a class="jump" href="#doc-cite">Jump to the cited passage ↓</a>')
    if window != (0, len(text)):
        out.append(f'<p class="notice">Long document: showing characters {window[0]:,}–{window[1]:,} of {len(text):,}.</p>')
    out.append(f'</div><div class="viewer-body" dir="{dir_of(lang)}" lang="{lang}">')
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
            out.append(f'<div class="page-text">{highlight(piece, s, e, "doc-cite" if first_mark else None)}</div>')
            first_mark = False
        else:
            out.append(f'<div class="page-text">{esc(piece)}</div>')
    out.append("</div></div>")
    return "".join(out)


def render_documents_table(docs: Sequence[dict]) -> str:
    if not docs:
        return '<p class="notice">The index is empty: add documents above.</p>'
    rows = []
    for d in docs:
        added = esc((d.get("added_at") or "")[:16].replace("T", " "))
        pages = esc(d["pages"]) if d.get("pages") else "–"
        rows.append(
            f'<tr><td class="t-title" dir="auto">{esc(d["title"])}</td>'
            f'<td><bdi class="doc-id" dir="ltr">{esc(d["doc_id"])}</bdi></td><td>{esc(d["kind"])}</td>'
            f'<td class="num">{pages}</td><td class="num">{int(d["chunks"])}</td><td class="num">{added}</td>'
            f'<td><button type="button" class="open-doc" data-doc="{esc(d["doc_id"])}" data-start="0" data-end="0">Open</button></td></tr>'
        )
    return ('<table class="docs"><thead><tr><th>Title</th><th>Document id</th><th>Type</th><th>Pages</th>'
            '<th>Passages</th><th>Added</th><th></th></tr></thead><tbody>' + "".join(rows) + "</tbody></table>")


def render_ingest_status(lines_ok: Sequence[str], problems: Sequence[tuple[str, str]], summary: str = "") -> str:
    out = ['<div class="ingest-status">']
    if summary:
        out.append(f'<p class="ok">{esc(summary)}</p>')
    for line in lines_ok:
        out.append(f'<p class="ok" dir="auto">{esc(line)}</p>')
    if problems:
        out.append('<div class="problems"><b>Not added:</b><ul>')
        out.extend(f'<li><bdi dir="auto">{esc(name)}</bdi>: {esc(reason)}</li>' for name, reason in problems)
        out.append("</ul></div>")
    out.append("</div>")
    return "".join(out)


# -- JavaScript and CSS ------------------------------------------------------------------------------
# Click handling inside the HTML panels: [n] links scroll to their source; "open document" buttons
# send the document id and span to Python (``open_doc`` event).
PANEL_JS = """
const scroller = (el) => {
  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
    const s = getComputedStyle(p);
    if (/(auto|scroll)/.test(s.overflowY) && p.scrollHeight > p.clientHeight) return p;
  }
  return null;
};
// Scroll el into view inside its own scroll box (the page stays put); where = 'start' or 'center'.
const reveal = (el, where) => {
  const box = scroller(el);
  if (!box) { el.scrollIntoView({block: where}); return; }
  const top = el.getBoundingClientRect().top - box.getBoundingClientRect().top;
  const offset = where === 'center' ? (box.clientHeight - Math.min(el.offsetHeight, box.clientHeight)) / 2 : 8;
  box.scrollTop += top - offset;
};
element.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.open-doc');
  if (btn) {
    ev.preventDefault();
    trigger('open_doc', {doc_id: btn.dataset.doc, start: Number(btn.dataset.start) || 0, end: Number(btn.dataset.end) || 0});
    return;
  }
  const link = ev.target.closest('a.cite');
  if (link) {
    ev.preventDefault();
    const target = element.querySelector('#' + CSS.escape(link.dataset.target));
    if (target) {
      const details = target.closest('details');
      if (details) details.open = true;
      reveal(target, 'center');
      target.classList.remove('flash'); void target.offsetWidth; target.classList.add('flash');
    }
  }
});
"""

# The conversation scrolls so that the newest question is at the top when it is asked and again when
# its answer arrives (not on every streamed token, so a reader is not pulled away).
CONVERSATION_JS = PANEL_JS + """
let seen = '';
watch('value', () => {
  const users = element.querySelectorAll('.turn.user');
  const state = users.length + (element.querySelector('.turn.bot.pending') ? 'p' : 'a');
  if (state !== seen) {
    seen = state;
    if (users.length) reveal(users[users.length - 1], 'start');
  }
});
"""

VIEWER_JS = """
const show = () => {
  const m = element.querySelector('#doc-cite');
  if (m && m.offsetParent) { m.scrollIntoView({block: 'center'}); m.classList.remove('flash'); void m.offsetWidth; m.classList.add('flash'); return true; }
  return false;
};
const retry = (n) => { if (!show() && n > 0) setTimeout(() => retry(n - 1), 100); };
element.addEventListener('click', (ev) => {
  const a = ev.target.closest('a.jump');
  if (a) { ev.preventDefault(); show(); }
});
watch('value', () => retry(30));
retry(10);
"""

SCROLL_TO_MARK_JS = """
() => {
  let n = 40;
  const go = () => {
    const m = document.querySelector('#doc-viewer #doc-cite');
    if (m && m.offsetParent) { m.scrollIntoView({block: 'center'}); return; }
    if (n-- > 0) setTimeout(go, 100);
  };
  setTimeout(go, 50);
}
"""

# Text inputs follow what is typed: Arabic right-to-left, English left-to-right.
PAGE_JS = """
() => {
  const fix = () => document.querySelectorAll('textarea, input[type=text]').forEach(t => {
    if (t.getAttribute('dir') !== 'auto') t.setAttribute('dir', 'auto');
  });
  fix();
  new MutationObserver(fix).observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ['dir']});
}
"""

CSS = """
.gradio-container { width: 100% !important; max-width: 1180px !important; margin: 0 auto !important; }
#app-header h1 { font-size: 1.45rem; margin: 0; }
#app-header p { margin: .2rem 0 0; color: var(--body-text-color-subdued); }
[lang=ar], [dir=rtl] { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "DejaVu Sans", system-ui, sans-serif; }
.conv { display: flex; flex-direction: column; gap: 14px; padding: 4px 2px 10px; }
.conv.empty .welcome { color: var(--body-text-color-subdued); padding: 18px; border: 1px dashed var(--border-color-primary); border-radius: 10px; }
.welcome p { margin: .35rem 0; line-height: 1.7; }
.cite-demo { color: var(--color-accent); font-weight: 600; }
.turn { border-radius: 12px; padding: 10px 14px; line-height: 1.65; max-width: 100%; }
.turn .who { font-size: .75rem; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: var(--body-text-color-subdued); margin-bottom: 2px; }
.turn[lang=ar] .who { text-transform: none; letter-spacing: 0; }
.turn.user { background: var(--color-accent-soft); align-self: stretch; border: 1px solid var(--border-color-accent-subdued, transparent); }
.turn.bot { background: var(--background-fill-primary); border: 1px solid var(--border-color-primary); box-shadow: 0 1px 2px rgba(0,0,0,.04); }
.turn.bot.abstained .answer { color: var(--body-text-color-subdued); }
.turn.error { border-color: #e5a0a0; background: #fff6f6; }
.turn p { margin: .15rem 0; }
.turn[lang=ar] .answer, .turn[lang=ar] .question { font-size: 1.08rem; line-height: 1.9; }
.answer .gap { height: .35rem; }
a.cite { font-weight: 700; text-decoration: none; color: var(--color-accent); padding: 0 1px; border-radius: 3px; unicode-bidi: isolate; }
a.cite:hover { background: var(--color-accent-soft); }
.notice { font-size: .85rem; color: #8a6100; background: #fff8e6; border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.sources { margin-top: 10px; border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
.sources-title { font-weight: 700; font-size: .9rem; margin: 2px 0 6px; }
.src { border-inline-start: 3px solid var(--color-accent); background: var(--background-fill-secondary); border-radius: 6px; padding: 8px 12px; margin: 8px 0; scroll-margin: 80px; }
.src.flash { animation: flash 1.4s ease-out; }
@keyframes flash { 0% { box-shadow: 0 0 0 3px var(--color-accent); } 100% { box-shadow: 0 0 0 0 transparent; } }
.src-head { font-weight: 600; }
.src-label { color: var(--color-accent); margin-inline-end: 4px; }
.src-meta { font-size: .8rem; color: var(--body-text-color-subdued); margin: 2px 0 4px; }
.doc-id { font-family: var(--font-mono); font-size: .78rem; background: var(--background-fill-primary); border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 4px; }
.src-text { white-space: pre-wrap; unicode-bidi: plaintext; line-height: 1.8; font-size: .95rem; }
.src-text[dir=rtl] { font-size: 1.02rem; }
mark.evidence { background: #ffe58a; color: inherit; border-radius: 3px; padding: 1px 0; }
.src-translation { font-size: .85rem; margin-top: 4px; color: var(--body-text-color-subdued); }
.tr-label { font-weight: 600; }
button.open-doc { margin-top: 6px; font-size: .8rem; padding: 2px 10px; border-radius: 999px; border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); color: var(--color-accent); cursor: pointer; }
button.open-doc:hover { background: var(--color-accent-soft); }
details.more { margin-top: 6px; }
details.more summary { cursor: pointer; font-size: .85rem; color: var(--body-text-color-subdued); }
.typing::after { content: " …"; animation: blink 1s infinite; }
@keyframes blink { 50% { opacity: .3; } }
.lookup .src { background: var(--background-fill-primary); border: 1px solid var(--border-color-primary); border-inline-start: 3px solid var(--color-accent); }
.viewer-head { padding: 6px 0 8px; border-bottom: 1px solid var(--border-color-primary); }
.viewer-title { font-weight: 700; font-size: 1.1rem; }
.viewer-body { white-space: pre-wrap; unicode-bidi: plaintext; line-height: 1.9; padding: 10px 4px; }
.viewer-body[dir=rtl] { font-size: 1.08rem; }
.viewer-body mark { background: #ffe58a; scroll-margin: 120px; }
.viewer-body mark.flash { animation: flash 1.4s ease-out; }
.page-no { text-align: center; color: var(--body-text-color-subdued); font-size: .8rem; margin: 10px 0; }
a.jump { font-size: .85rem; }
table.docs { width: 100%; border-collapse: collapse; font-size: .9rem; border: none !important; }
table.docs th, table.docs td { border: none !important; border-bottom: 1px solid var(--border-color-primary) !important; padding: 6px 8px; text-align: start; vertical-align: top; background: transparent; }
table.docs tr, table.docs thead, table.docs tbody { border: none !important; }
table.docs th { font-size: .8rem; color: var(--body-text-color-subdued); font-weight: 600; }
table.docs td.t-title { max-width: 420px; }
table.docs td.num { white-space: nowrap; }
.ingest-status .ok { color: #1d6b35; margin: 2px 0; }
.ingest-status .problems { color: #9b1c1c; background: #fff4f4; border-radius: 6px; padding: 6px 10px; margin-top: 6px; }
.ingest-status ul { margin: 4px 0 0; padding-inline-start: 20px; }
.dark mark.evidence, .dark .viewer-body mark { background: #7a5d00; color: #fff; }
.dark .notice { background: #3a2f10; color: #ffd98a; }
.dark .turn.error { background: #3a1d1d; border-color: #7a3b3b; }
.dark .ingest-status .ok { color: #7fd49a; }
.dark .ingest-status .problems { background: #3a1d1d; color: #ffb4b4; }
#index-status { font-size: .85rem; color: var(--body-text-color-subdued); text-align: end; }
"""


# -- the app -----------------------------------------------------------------------------------------
class AssistantUI:
    """Event handlers around one ``Assistant``; ``build()`` returns the ``gr.Blocks``."""

    def __init__(self, assistant: Any) -> None:
        self.assistant = assistant
        self.lock = _RWLock()

    # -- paths --------------------------------------------------------------------------------------
    @property
    def uploads_dir(self) -> Path:
        return Path(self.assistant.uploads_dir)

    # -- API ------------------------------------------------------------------------------------------
    def api_ask(self, question: str, history_json: str = "[]") -> dict:
        """Answer a question with citations; the same JSON as ``assistant ask --json``.

        history_json: JSON list of {"role": "user"|"assistant", "content": str} (earlier turns), or "" / "[]".
        """
        try:
            history = json.loads(history_json) if history_json and history_json.strip() else []
        except ValueError as exc:
            raise gr.Error(f"history_json is not valid JSON: {exc}") from None
        if not isinstance(history, list):
            raise gr.Error('history_json must be a JSON list of {"role", "content"} objects')
        try:
            with self.lock.read():
                return self.assistant.ask(question, history).to_dict()
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    def api_lookup(self, phrase: str, k: int = 5) -> list:
        """Citation lookup: the passages where the corpus says ``phrase`` (``assistant lookup --json``)."""
        try:
            with self.lock.read():
                return [h.to_dict() for h in self.assistant.search(phrase, k=int(k)).hits]
        except AssistantError as exc:
            raise gr.Error(str(exc)) from None

    def api_documents(self) -> list:
        """The indexed documents (``assistant list --json``)."""
        with self.lock.read():
            return self.assistant.documents()

    # -- chat -----------------------------------------------------------------------------------------
    @staticmethod
    def _history(turns: Sequence[dict]) -> list[dict]:
        history = []
        for i, turn in enumerate(turns):
            if turn["role"] == "assistant" and turn.get("answer") is not None and turn.get("final", True):
                history.append({"role": "user", "content": turns[i - 1]["text"]})
                history.append({"role": "assistant", "content": turn["answer"].text})
        return history

    def on_ask(self, question: str, turns: list, show_all: bool):
        turns = list(turns or [])
        question = (question or "").strip()
        if not question:
            yield gr.skip(), turns, gr.skip()
            return
        history = self._history(turns)
        lang = lang_of(question)
        turns.append({"role": "user", "text": question})
        turns.append({"role": "assistant", "answer": None, "final": False, "lang": lang})
        yield render_conversation(turns, show_all), turns, ""
        try:
            stream = self.assistant.ask_stream(question, history)
            while True:
                with self.lock.read():  # held while computing, never while the generator is suspended
                    answer = next(stream, None)
                if answer is None:
                    break
                turns[-1] = {"role": "assistant", "answer": answer, "final": False, "lang": answer.language}
                yield render_conversation(turns, show_all), turns, gr.skip()
            if turns[-1].get("answer") is None:
                raise AssistantError("No answer was produced.")
            turns[-1]["final"] = True
        except AssistantError as exc:
            turns[-1] = {"role": "assistant", "error": str(exc), "lang": lang}
        except Exception as exc:  # keep the UI alive and say what happened
            log.exception("answering %r failed", question)
            turns[-1] = {"role": "assistant", "error": f"Internal error ({exc.__class__.__name__}): {exc}", "lang": lang}
        yield render_conversation(turns, show_all), turns, gr.skip()

    def on_clear(self):
        return render_conversation([]), []

    def on_show_all(self, turns: list, show_all: bool):
        return render_conversation(turns or [], show_all)

    # -- lookup ---------------------------------------------------------------------------------------
    def on_lookup(self, phrase: str):
        phrase = (phrase or "").strip()
        if not phrase:
            return '<p class="notice">Paste a phrase or a claim to look up.</p>'
        try:
            with self.lock.read():
                result = self.assistant.search(phrase, k=8)
                weak = self.assistant.should_abstain(result) if hasattr(self.assistant, "should_abstain") else False
        except AssistantError as exc:
            return f'<p class="notice" dir="auto">{esc(exc)}</p>'
        return render_lookup(phrase, result.hits, weak)

    # -- viewer ---------------------------------------------------------------------------------------
    def on_open_doc(self, evt: gr.EventData):
        data = getattr(evt, "_data", None) or {}
        doc_id = str(data.get("doc_id") or "")
        try:
            start, end = int(data.get("start") or 0), int(data.get("end") or 0)
        except (TypeError, ValueError):
            start = end = 0
        try:
            with self.lock.read():
                doc = self.assistant.document(doc_id)
            body = render_document(doc, start, end)
        except AssistantError as exc:
            body = f'<p class="notice" dir="auto">{esc(exc)}</p>'
        return body, gr.Tabs(selected="viewer")

    # -- documents ------------------------------------------------------------------------------------
    def _docs_outputs(self):
        with self.lock.read():
            docs = self.assistant.documents()
        choices = [(f"{d['title'][:70]} ({d['doc_id']})", d["doc_id"]) for d in docs]
        return render_documents_table(docs), gr.Dropdown(choices=choices, value=None), self._status_text(docs)

    @staticmethod
    def _status_text(docs: Sequence[dict]) -> str:
        passages = sum(int(d["chunks"]) for d in docs)
        return f"{len(docs)} documents · {passages} passages indexed"

    def on_load(self):
        return self._docs_outputs()

    def on_ingest(self, files: list | None, progress=gr.Progress()):
        files = [f for f in (files or []) if f]
        if not files:
            return (render_ingest_status([], [], "Choose one or more .txt, .md, .html or .pdf files first."),
                    *self._docs_outputs(), gr.skip())
        if len(files) > MAX_UPLOAD_FILES:
            msg = f"You chose {len(files)} files; add at most {MAX_UPLOAD_FILES} at a time. Nothing was added."
            return render_ingest_status([], [("upload", msg)]), *self._docs_outputs(), gr.skip()
        problems: list[tuple[str, str]] = []
        staging = self.uploads_dir / ".staging" / uuid.uuid4().hex
        placed: dict[Path, tuple[str, Path | None]] = {}  # target -> (shown name, backup of the old file)
        progress(0, desc="Checking files")
        with self.lock.write():
            try:
                staging.mkdir(parents=True, exist_ok=True)
                seen: set[str] = set()
                for number, item in enumerate(files, 1):
                    src = Path(item if isinstance(item, (str, Path)) else getattr(item, "name", str(item)))
                    shown = sanitize_filename(src.name)
                    progress((number - 1, len(files)), desc=f"Checking {shown}")
                    problem = self._check_upload(src, shown, seen)
                    if problem:
                        problems.append((shown, problem))
                        continue
                    staged = staging / str(number) / shown
                    staged.parent.mkdir(parents=True)
                    shutil.copyfile(src, staged)
                    try:  # read it once before it touches the index: bad files never get in
                        load_document(staged, max_bytes=MAX_UPLOAD_BYTES)
                    except DocumentError as exc:
                        problems.append((shown, exc.reason))
                        continue
                    except Exception as exc:
                        problems.append((shown, f"could not be read ({exc.__class__.__name__}: {exc})"))
                        continue
                    seen.add(shown.lower())
                    target = self.uploads_dir / shown
                    backup = None
                    if target.exists():
                        backup = staged.parent / (shown + ".previous")
                        os.replace(target, backup)
                    os.replace(staged, target)
                    placed[target] = (shown, backup)
                report = None
                if placed:
                    def on_progress(stage: str, done: int, total: int) -> None:
                        what = "Reading" if stage == "reading" else "Embedding passages"
                        progress((done, max(total, 1)), desc=f"{what} {done}/{total}")

                    try:
                        report = self.assistant.ingest(list(placed), progress=on_progress)
                    except AssistantError as exc:
                        problems.append(("index", str(exc)))
                        report = None
                    failed = set()
                    if report is None:
                        failed = set(placed)
                    else:
                        for path, reason in report.skipped:
                            match = next((t for t in placed if _same_path(t, path)), None)
                            if match is not None:
                                failed.add(match)
                                problems.append((placed[match][0], reason))
                            else:
                                problems.append((Path(path).name, reason))
                    for target, (shown, backup) in placed.items():
                        if target in failed:  # put things back as they were
                            if backup is not None:
                                os.replace(backup, target)
                            else:
                                target.unlink(missing_ok=True)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        lines = []
        summary = ""
        if report is not None:
            if report.added:
                lines.append("Added: " + ", ".join(report.added))
            if report.updated:
                lines.append("Updated: " + ", ".join(report.updated))
            if report.unchanged:
                lines.append("Already indexed, unchanged: " + ", ".join(report.unchanged))
            summary = report.summary()
        return render_ingest_status(lines, problems, summary), *self._docs_outputs(), None

    def on_ingest_url(self, text: str | None, kind: str = "page", progress=gr.Progress()):
        """Fetch web articles (one URL per line), or every page of a feed or sitemap, into the index.

        The app is a server, so its URL box must not become a way into the newsroom's network: private
        and loopback addresses are refused unless ``ASSISTANT_ALLOW_PRIVATE_URLS=1`` is set.
        """
        from .web import Feed, FetchPolicy, Fetcher, Sitemap, WebPage

        urls = [u for u in (text or "").split() if u]
        if not urls:
            return render_ingest_status([], [], "Paste one or more http(s) URLs first."), *self._docs_outputs(), gr.skip()
        fetcher = Fetcher(FetchPolicy(allow_private=os.environ.get("ASSISTANT_ALLOW_PRIVATE_URLS") == "1"))
        make = {"feed": Feed, "sitemap": Sitemap}.get(kind, WebPage)
        items = [make(url, fetcher) for url in urls[:MAX_UPLOAD_FILES]]

        def on_progress(stage: str, done: int, total: int) -> None:
            what = "Fetching" if stage == "reading" else "Embedding passages"
            progress((done, max(total, 1)), desc=f"{what} {done}/{total}")

        with self.lock.write():
            try:
                report = self.assistant.ingest(items, progress=on_progress)
            except AssistantError as exc:
                return render_ingest_status([], [("index", str(exc))]), *self._docs_outputs(), gr.skip()
        lines = [f"{label}: {', '.join(ids)}" for label, ids in (("Added", report.added), ("Updated", report.updated),
                                                                   ("Already indexed, unchanged", report.unchanged)) if ids]
        return render_ingest_status(lines, report.skipped, report.summary()), *self._docs_outputs(), ""

    @staticmethod
    def _check_upload(src: Path, shown: str, seen: set[str]) -> str | None:
        suffix = Path(shown).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            return f"unsupported file type {suffix or '(no extension)'!r}; supported: .txt, .md, .html, .pdf, .docx"
        try:
            size = src.stat().st_size
        except OSError:
            return "the upload did not arrive; try again"
        if size > MAX_UPLOAD_BYTES:
            limit = MAX_UPLOAD_BYTES
            shown_limit = f"{limit / (1024 * 1024):g} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
            return f"the file is {size / (1024 * 1024):.1f} MB, over the {shown_limit} limit"
        if shown.lower() in seen:
            return "another file in this upload has the same name"
        return None

    def on_remove(self, doc_id: str | None):
        if not doc_id:
            return '<p class="notice">Choose a document to remove.</p>', *self._docs_outputs()
        try:
            with self.lock.write():
                source = self.assistant.document(doc_id).source
                removed = self.assistant.remove(doc_id)
                path = Path(source)
                if _inside(path, self.uploads_dir):  # our own copy of an uploaded file
                    path.unlink(missing_ok=True)
            msg = render_ingest_status([f"Removed {doc_id} ({removed} passages)."], [])
        except AssistantError as exc:
            msg = render_ingest_status([], [(doc_id, str(exc))])
        return msg, *self._docs_outputs()

    # -- layout ---------------------------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        with gr.Blocks(title="News Assistant · مساعد الأخبار", analytics_enabled=False) as demo:
            with gr.Row(equal_height=True):
                gr.HTML(
                    '<div id="app-header"><h1>News Assistant <span lang="ar" dir="rtl">· مساعد الأخبار</span></h1>'
                    "<p>Cited answers from the indexed news, in English and Arabic.</p></div>",
                    js_on_load=None,
                )
                index_status = gr.Markdown("", elem_id="index-status")
            turns = gr.State([])
            with gr.Tabs(selected="chat") as tabs:
                with gr.Tab("Ask", id="chat"):
                    conversation = gr.HTML(render_conversation([]), elem_id="conversation", js_on_load=CONVERSATION_JS,
                                           min_height=200, max_height="62vh")
                    with gr.Row(equal_height=True):
                        question = gr.Textbox(
                            show_label=False, placeholder="Ask in English or Arabic… · اكتب سؤالك بالعربية أو بالإنجليزية…",
                            lines=1, max_lines=6, scale=8, elem_id="question", autofocus=True, submit_btn=False,
                        )
                        ask_btn = gr.Button("Ask · اسأل", variant="primary", scale=1, min_width=110, elem_id="ask-btn")
                    with gr.Row():
                        gr.Examples(EXAMPLES, inputs=[question], label="Examples · أمثلة")
                    with gr.Row():
                        show_all = gr.Checkbox(label="Show all retrieved passages", value=False, elem_id="show-all",
                                               scale=3)
                        clear_btn = gr.Button("New conversation", size="sm", scale=1, elem_id="clear-btn")
                with gr.Tab("Citation lookup", id="lookup"):
                    gr.Markdown("Paste a phrase or a claim, in English or Arabic, to see **where the documents say it**: "
                                "ranked passages with the matching sentence highlighted. No generated text.")
                    with gr.Row(equal_height=True):
                        phrase = gr.Textbox(show_label=False, placeholder="e.g. Tarhuna is 95 km from Tripoli",
                                            lines=1, max_lines=6, scale=8, elem_id="lookup-input", submit_btn=False)
                        lookup_btn = gr.Button("Find sources", variant="primary", scale=1, min_width=110, elem_id="lookup-btn")
                    gr.Examples(LOOKUP_EXAMPLES, inputs=[phrase], label="Examples · أمثلة")
                    lookup_out = gr.HTML("", elem_id="lookup-results", js_on_load=PANEL_JS)
                with gr.Tab("Documents", id="documents"):
                    with gr.Row():
                        with gr.Column(scale=3):
                            files = gr.File(
                                label=f"Add documents: .txt .md .html .pdf .docx (up to {MAX_UPLOAD_FILES} files, 20 MB each)",
                                file_count="multiple", file_types=UPLOAD_TYPES, elem_id="upload", height=180,
                            )
                            ingest_btn = gr.Button("Add to index", variant="primary", elem_id="ingest-btn")
                            url_box = gr.Textbox(label="Or add web articles by URL (one per line)", lines=2,
                                                 placeholder="https://example.com/news/article.html", elem_id="url-input")
                            url_kind = gr.Radio([("Articles", "page"), ("RSS/Atom feed", "feed"), ("Sitemap", "sitemap")],
                                                value="page", show_label=False, elem_id="url-kind")
                            url_btn = gr.Button("Fetch and add", elem_id="url-btn")
                        with gr.Column(scale=2):
                            ingest_status = gr.HTML("", elem_id="ingest-status", js_on_load=None)
                            remove_choice = gr.Dropdown(label="Remove a document", choices=[], value=None,
                                                        elem_id="remove-choice", interactive=True)
                            remove_btn = gr.Button("Remove from index", variant="stop", size="sm", elem_id="remove-btn")
                    docs_table = gr.HTML("", elem_id="docs-table", js_on_load=PANEL_JS)
                with gr.Tab("Document viewer", id="viewer"):
                    viewer = gr.HTML('<p class="notice">Open a document from a source, a lookup result or the '
                                     "Documents list.</p>", elem_id="doc-viewer", js_on_load=VIEWER_JS, max_height="75vh")

            private = {"api_visibility": "private"}
            ask_inputs = [question, turns, show_all]
            ask_outputs = [conversation, turns, question]
            question.submit(self.on_ask, ask_inputs, ask_outputs, show_progress="hidden", **private)
            ask_btn.click(self.on_ask, ask_inputs, ask_outputs, show_progress="hidden", **private)
            clear_btn.click(self.on_clear, None, [conversation, turns], queue=False, **private)
            show_all.change(self.on_show_all, [turns, show_all], conversation, queue=False, show_progress="hidden", **private)

            phrase.submit(self.on_lookup, phrase, lookup_out, **private)
            lookup_btn.click(self.on_lookup, phrase, lookup_out, **private)

            for panel in (conversation, lookup_out, docs_table):
                panel.open_doc(self.on_open_doc, None, [viewer, tabs], show_progress="hidden", **private).then(
                    None, js=SCROLL_TO_MARK_JS, **private)

            docs_outputs = [docs_table, remove_choice, index_status]
            ingest_btn.click(self.on_ingest, files, [ingest_status, *docs_outputs, files], show_progress="full",
                             **private)
            remove_btn.click(self.on_remove, remove_choice, [ingest_status, *docs_outputs], **private)
            url_btn.click(self.on_ingest_url, [url_box, url_kind], [ingest_status, *docs_outputs, url_box],
                          show_progress="full", **private)
            demo.load(self.on_load, None, docs_outputs, show_progress="hidden", **private)

            gr.api(self.api_ask, api_name="ask")
            gr.api(self.api_lookup, api_name="lookup")
            gr.api(self.api_documents, api_name="documents")
        return demo


def _same_path(a: Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (OSError, ValueError):
        return False


def build_app(assistant: Any) -> gr.Blocks:
    """The Gradio app for ``assistant`` (launch it with ``launch_kwargs()`` or use ``serve``)."""
    return AssistantUI(assistant).build()


def theme() -> gr.themes.Base:
    # System fonts only: the app must work without internet access (no Google Fonts).
    return gr.themes.Soft(
        primary_hue="blue",
        neutral_hue="slate",
        font=["system-ui", "Segoe UI", "Noto Sans", "Noto Sans Arabic", "DejaVu Sans", "sans-serif"],
        font_mono=["ui-monospace", "DejaVu Sans Mono", "monospace"],
    )


def launch_kwargs() -> dict:
    """Arguments for ``Blocks.launch`` that the app needs (theme, CSS, page script, limits)."""
    return {"theme": theme(), "css": CSS, "js": PAGE_JS, "max_file_size": MAX_UPLOAD_BYTES, "ssr_mode": False,
            "show_error": True, "footer_links": ["api"]}


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_auth(auth: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if auth is None or auth == "":
        return None
    if isinstance(auth, tuple):
        return auth
    user, sep, password = str(auth).partition(":")
    if not sep or not user or not password:
        raise ConfigError("auth must look like USER:PASSWORD (both non-empty)")
    return user, password


def index_seeds(assistant: Any, seeds: Path | str | None = None, out=sys.stderr) -> None:
    """Index the seed folder into an empty index, printing progress to the console."""
    folder = Path(seeds) if seeds else DEFAULT_SEEDS
    if not folder.is_dir():
        print(f"The index is empty and there is no seed folder {folder}; add documents in the Documents tab.", file=out)
        return
    print(f"The index {assistant.index_dir} is empty: indexing {folder} ...", file=out, flush=True)
    last = [0.0]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 0.5:
            last[0] = now
            what = "reading files" if stage == "reading" else "embedding passages"
            print(f"  {what}: {done}/{total}", file=out, flush=True)

    report = assistant.ingest([folder], progress=progress)
    print(f"Indexed {folder}: {report.summary()}", file=out, flush=True)
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}", file=out, flush=True)


def serve(assistant: Any, host: str = "127.0.0.1", port: int = 7860, auth: str | tuple[str, str] | None = None,
          seeds: Path | str | None = None, *, block: bool = True) -> Any:
    """Index the seeds on first start (empty index), then launch the app on ``host:port``.

    Binding to a non-loopback address without ``auth`` ("user:password") prints a warning.
    """
    credentials = parse_auth(auth)
    host = host or "127.0.0.1"
    if not _is_loopback(host) and credentials is None:
        print(f"WARNING: serving on {host} without a login: anyone who can reach this machine can read and change "
              "the index. Use --auth USER:PASSWORD (or $ASSISTANT_AUTH), or bind 127.0.0.1.", file=sys.stderr, flush=True)
    started = time.perf_counter()
    if assistant.data.n_live == 0:
        index_seeds(assistant, seeds)
    else:
        print(f"Loaded the index {assistant.index_dir}: {assistant.data.n_live} passages "
              f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)
    demo = build_app(assistant)
    demo.queue(default_concurrency_limit=4)
    return demo.launch(server_name=host, server_port=int(port), auth=credentials, prevent_thread_lock=not block,
                       **launch_kwargs())
