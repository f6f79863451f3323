element.addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.remove-doc');
  if (btn) { ev.preventDefault(); trigger('remove_doc', {doc_id: btn.dataset.doc}); }
});
