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
