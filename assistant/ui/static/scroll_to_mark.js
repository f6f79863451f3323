() => {
  let n = 40;
  const go = () => {
    const m = document.querySelector('#doc-viewer #doc-cite');
    if (m && m.offsetParent) { m.scrollIntoView({block: 'center'}); return; }
    if (n-- > 0) setTimeout(go, 100);
  };
  setTimeout(go, 50);
}
