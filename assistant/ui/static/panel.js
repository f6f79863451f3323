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
