element.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.open-conv');
  if (btn) { ev.preventDefault(); trigger('open_conv', {id: btn.dataset.conv}); }
});
