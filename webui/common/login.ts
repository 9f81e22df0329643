// The login page of every console of the platform (webmail, operator console): identifiant,
// password and — where the API takes one — the six-digit code of the second factor (the API
// does not say who has one before the password is checked, so the field is always there and
// left empty by the others). The API's web login sets the session cookie; the page never
// sees the token.
import { ApiError, messageOf, type ApiClient } from './api.js';
import { announce, fill, h } from './dom.js';

export interface LoginPage<T> {
  /** The page's heading, e.g. 'Messagerie sécurisée de santé'. */
  heading: string;
  /** The product, for the window title. */
  product: string;
  /** The API's web login (POST, JSON {login, password[, otp]}). */
  path: string;
  /** Whether to ask for the second factor's code. */
  otp: boolean;
  /** The logged-in account from the login's answer. */
  account(answer: unknown): T;
  /** The API's Pro Santé Connect start (GET, a navigation); absent: no PSC button. */
  psc?: string;
}

/** Why a Pro Santé Connect login came back refused (#psc-erreur=<failure>), said to the person. */
export const PSC_ERRORS: Record<string, string> = {
  denied: 'La connexion a été refusée ou annulée sur Pro Santé Connect.',
  'no-account': "Aucun compte de cette plateforme n'est rattaché à votre identifiant national (RPPS). Adressez-vous à votre administrateur.",
  'no-national-id': "Pro Santé Connect n'a pas transmis votre identifiant national (RPPS).",
  state: "La réponse de Pro Santé Connect ne correspond pas à une connexion commencée dans ce navigateur (ou elle a expiré). Recommencez.",
  'bad-id-token': "La réponse de Pro Santé Connect n'a pas pu être vérifiée. Recommencez.",
  unavailable: 'Pro Santé Connect ne répond pas pour le moment. Réessayez dans un instant.',
  'not-configured': "La connexion par Pro Santé Connect n'est pas activée sur cette plateforme.",
};

/** The refusal a PSC login came back with, once (the fragment is removed from the address). */
function pscRefusal(): string | null {
  const m = /^#psc-erreur=([\w-]+)$/.exec(location.hash);
  if (!m) return null;
  history.replaceState(null, '', location.pathname + location.search);
  return PSC_ERRORS[m[1]] ?? "La connexion par Pro Santé Connect n'a pas abouti. Recommencez.";
}

export function showLogin<T>(app: HTMLElement, api: ApiClient, page: LoginPage<T>, notice: string | null, done: (account: T) => void): void {
  document.title = `Connexion — ${page.product}`;
  const error = h('p', { id: 'login-erreur', class: 'erreur', role: 'alert' }, pscRefusal() ?? '');
  const login = h('input', { id: 'login', name: 'login', autocomplete: 'username', required: true, maxlength: 254, spellcheck: 'false', autocapitalize: 'none' });
  const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, maxlength: 1024 });
  const otp = page.otp ? h('input', { id: 'otp', name: 'otp', inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, 'aria-describedby': 'otp-aide' }) : null;
  const submit = h('button', { type: 'submit' }, 'Se connecter');
  const form = h(
    'form',
    { class: 'connexion', 'aria-labelledby': 'titre' },
    h('div', { class: 'champ' }, h('label', { for: 'login' }, 'Identifiant'), login),
    h('div', { class: 'champ' }, h('label', { for: 'password' }, 'Mot de passe'), password),
    otp
      ? h('div', { class: 'champ' }, h('label', { for: 'otp' }, 'Code de vérification'), h('p', { id: 'otp-aide', class: 'aide' }, 'Les six chiffres de votre application, si la validation en deux étapes est activée sur votre compte. Sinon, laissez vide.'), otp)
      : null,
    submit,
  );
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    submit.disabled = true;
    submit.textContent = 'Connexion…';
    try {
      const body = { login: login.value.trim(), password: password.value, ...(otp?.value ? { otp: otp.value.trim() } : {}) };
      const r = await api.send<unknown>('POST', page.path, body);
      password.value = '';
      done(page.account(r));
    } catch (e) {
      error.textContent = e instanceof ApiError && e.code === 'BAD_REQUEST' && otp?.value ? 'Le code de vérification doit compter six chiffres.' : messageOf(e);
      submit.disabled = false;
      submit.textContent = 'Se connecter';
      password.focus();
    }
  });
  // Pro Santé Connect: a plain link (a navigation to the API, which sends the browser on to PSC).
  const psc = page.psc ? h('p', { class: 'psc' }, h('a', { id: 'psc', class: 'bouton', href: page.psc }, 'Se connecter avec Pro Santé Connect')) : null;
  fill(app, h('main', { id: 'contenu', class: 'page-connexion', tabindex: -1 }, h('h1', { id: 'titre' }, page.heading), notice ? h('p', { class: 'avis', role: 'status' }, notice) : null, error, form, psc));
  if (notice) announce(notice);
  login.focus();
}
