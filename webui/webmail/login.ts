// The login page: login, password, and the six-digit code of the second factor for the
// people who have one (the API does not say who has one before the password is checked, so
// the field is always there and left empty by the others).
import { ApiError, messageOf, type ApiClient } from '../common/api.js';
import { announce, fill, h } from '../common/dom.js';
import type { Person } from './types.js';

export function showLogin(app: HTMLElement, api: ApiClient, notice: string | null, done: (p: Person) => void): void {
  document.title = 'Connexion — Messagerie MSSanté';
  const error = h('p', { id: 'login-erreur', class: 'erreur', role: 'alert' });
  const login = h('input', { id: 'login', name: 'login', autocomplete: 'username', required: true, maxlength: 254, spellcheck: 'false', autocapitalize: 'none' });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const otp = h('input', { id: 'otp', name: 'otp', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, 'aria-describedby': 'otp-aide' });
  const submit = h('button', { type: 'submit' }, 'Se connecter');
  const form = h(
    'form',
    { class: 'connexion', 'aria-labelledby': 'titre' },
    h('div', { class: 'champ' }, h('label', { for: 'login' }, 'Identifiant'), login),
    h('div', { class: 'champ' }, h('label', { for: 'password' }, 'Mot de passe'), password),
    h('div', { class: 'champ' }, h('label', { for: 'otp' }, 'Code de vérification'), h('p', { id: 'otp-aide', class: 'aide' }, 'Les six chiffres de votre application, si la validation en deux étapes est activée sur votre compte. Sinon, laissez vide.'), otp),
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    submit.textContent = 'Connexion…';
    try {
      const body = { login: login.value.trim(), password: password.value, ...(otp.value ? { otp: otp.value.trim() } : {}) };
      const r = await api.send<{ person: Person }>('POST', '/api/v1/web/login', body);
      password.value = '';
      done(r.person);
    } catch (e) {
      error.textContent = e instanceof ApiError && e.code === 'BAD_REQUEST' && otp.value ? 'Le code de vérification doit compter six chiffres.' : messageOf(e);
      submit.disabled = false;
      submit.textContent = 'Se connecter';
      password.focus();
    }
  });
  fill(
    app,
    h(
      'main',
      { id: 'contenu', class: 'page-connexion', tabindex: -1 },
      h('h1', { id: 'titre' }, 'Messagerie sécurisée de santé'),
      notice ? h('p', { class: 'avis', role: 'status' }, notice) : null,
      error,
      form,
    ),
  );
  if (notice) announce(notice);
  login.focus();
}
