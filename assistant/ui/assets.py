"""The web UI's JavaScript and CSS (kept apart from the Python so each reads as one piece)."""

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
// Scroll el into view inside its own scroll box; where = 'start' or 'center'. Without a box (phones,
// a short conversation) the page scrolls only when el is out of sight: scrolling a visible turn to the
// top cut the header off after every answer.
const reveal = (el, where) => {
  const box = scroller(el);
  if (!box) {
    const r = el.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight - 80) el.scrollIntoView({block: where});
    return;
  }
  const top = el.getBoundingClientRect().top - box.getBoundingClientRect().top;
  const offset = where === 'center' ? (box.clientHeight - Math.min(el.offsetHeight, box.clientHeight)) / 2 : 8;
  box.scrollTop += top - offset;
};
// "Copy as Markdown": the answer's Markdown (the same as `assistant ask --format markdown`) to the clipboard.
const copyMarkdown = async (btn) => {
  const box = btn.closest('.export');
  const text = box.querySelector('textarea.md-source').value;
  const done = box.querySelector('.copied');
  try {
    await navigator.clipboard.writeText(text);
    done.textContent = 'Copied';
  } catch (err) {  // no clipboard access (plain http on another host): select the text for Ctrl+C
    const area = box.querySelector('textarea.md-source');
    area.hidden = false; area.focus(); area.select();
    done.textContent = 'Press Ctrl+C to copy';
  }
  setTimeout(() => { done.textContent = ''; }, 2500);
};
element.addEventListener('click', (ev) => {
  const copy = ev.target.closest('button.copy-md');
  if (copy) { ev.preventDefault(); copyMarkdown(copy); return; }
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

# The Documents list: "Remove…" asks Python to show the confirmation (``remove_doc`` event).
DOCS_JS = PANEL_JS + """
element.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.remove-doc');
  if (btn) { ev.preventDefault(); trigger('remove_doc', {doc_id: btn.dataset.doc}); }
});
"""

# Past conversations: a click opens one (``open_conv`` event).
CONV_LIST_JS = """
element.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.open-conv');
  if (btn) { ev.preventDefault(); trigger('open_conv', {id: btn.dataset.conv}); }
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
  // Gradio scopes the app's CSS inside its content box; the page margin (32 px a side) is outside it,
  // and on a phone it is what pushed the last tab onto a second row.
  const narrow = document.createElement('style');
  narrow.textContent = '@media (max-width: 640px) { .gradio-container > .main.app { padding: 8px !important; } }';
  document.head.appendChild(narrow);
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

#app-header h1 .sep { color: var(--body-text-color-subdued); font-weight: 400; }
#app-header h1 bdi { unicode-bidi: isolate; }
bdi { unicode-bidi: isolate; }
/* The conversation scrolls in its own box (max_height) on wide screens only; on a phone the page
   scrolls (a nested scroll box inside a scrolling page traps the thumb): see the media query below. */
.export { display: flex; gap: 10px; align-items: center; margin-top: 8px; flex-wrap: wrap; }
button.copy-md, a.download-md { font-size: .8rem; padding: 2px 10px; border-radius: 999px; border: 1px solid var(--border-color-primary); background: var(--background-fill-primary); color: var(--color-accent); cursor: pointer; text-decoration: none; }
.export .copied { font-size: .8rem; color: var(--body-text-color-subdued); }
.export textarea.md-source:not([hidden]) { width: 100%; min-height: 8rem; font-family: var(--font-mono); font-size: .8rem; }
.notice.missing { color: var(--body-text-color); }
.src-meta .published, .src-meta .site { white-space: nowrap; }
ul.conv-list { list-style: none; padding: 0; margin: 0; display: flex; flex-direction: column; gap: 4px; }
button.open-conv { width: 100%; text-align: start; display: flex; flex-wrap: wrap; justify-content: space-between; gap: 6px; padding: 6px 10px; border: 1px solid var(--border-color-primary); border-radius: 8px; background: var(--background-fill-primary); cursor: pointer; }
button.open-conv[aria-current=true] { border-color: var(--color-accent); background: var(--color-accent-soft); }
button.open-conv .conv-meta { font-size: .78rem; color: var(--body-text-color-subdued); }
.conv-empty { font-size: .85rem; color: var(--body-text-color-subdued); }
table.docs td.actions { white-space: nowrap; }
button.remove-doc { margin-top: 6px; margin-inline-start: 6px; font-size: .8rem; padding: 2px 10px; border-radius: 999px; border: 1px solid #e5a0a0; background: var(--background-fill-primary); color: #9b1c1c; cursor: pointer; }
#remove-confirm { border: 1px solid #e5a0a0; border-radius: 8px; padding: 6px; }
.confirm p { margin: 2px 0; }
.confirm .confirm-title { font-weight: 700; }
.confirm .hint { font-size: .8rem; color: var(--body-text-color-subdued); }
.about table.settings { font-size: .85rem; border-collapse: collapse; }
.about table.settings th { text-align: start; padding: 2px 12px 2px 0; color: var(--body-text-color-subdued); font-weight: 600; vertical-align: top; }
.about .admin-notes { font-size: .85rem; margin: 8px 0 0; padding-inline-start: 18px; }
/* Phones: a compact header, every tab on screen, the page (not a box) scrolls the answers. */
@media (max-width: 640px) {
  #header-row { gap: 0 !important; flex-direction: column !important; align-items: stretch; }
  #header-row > * { min-width: 0 !important; width: 100%; }
  #app-header h1 { font-size: 1.05rem; line-height: 1.3; white-space: nowrap; }
  #app-header .tagline { display: none; }
  #index-status { font-size: .72rem; text-align: start; }
  #index-status p { margin: 0; }
  #conversation, #conversation > *, #conversation .prose { max-height: none !important; overflow: visible !important; }
  #main-tabs .tab-container button { padding: 0 6px; font-size: .8rem; }
  #ask-row { flex-wrap: nowrap !important; gap: 6px !important; }
  #ask-row > * { min-width: 0 !important; }
  #ask-btn { min-width: 92px !important; flex-grow: 0 !important; white-space: nowrap; padding: 0 8px !important; }
  .turn { padding: 8px 10px; }
  table.docs, table.docs tbody, table.docs tr, table.docs td { display: block; width: 100%; }
  table.docs thead { display: none; }
  table.docs tr { border-bottom: 1px solid var(--border-color-primary); padding: 6px 0; }
  table.docs td { border: none !important; padding: 1px 4px; }
  table.docs td.t-title { max-width: none; font-weight: 600; }
}
"""
