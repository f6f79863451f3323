let seen = '';
watch('value', () => {
  const users = element.querySelectorAll('.turn.user');
  const state = users.length + (element.querySelector('.turn.bot.pending') ? 'p' : 'a');
  if (state !== seen) {
    seen = state;
    if (users.length) reveal(users[users.length - 1], 'start');
  }
});
