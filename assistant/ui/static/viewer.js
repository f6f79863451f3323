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
