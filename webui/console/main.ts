// The operator console: a national or regional admin logs in and manages the operator's
// mailboxes and reads the journal. Everything goes through the admin API (annuaire/admin/)
// with the session in its HttpOnly cookie; this page holds no token and decides nothing —
// what an admin may see or do is the API's answer (core/policy), the page only shows it.
import { ApiError, apiClient, messageOf } from '../common/api.js';
import { announce, fill, h } from '../common/dom.js';
import { showLogin } from '../common/login.js';
import { SESSION_EXPIRED, startPage } from '../common/start.js';
import type { AdminAccount } from './types.js';
import { mustEnrol } from './admins.js';
import { views, type View, type ViewContext } from './views.js';

const app = document.getElementById('app')!;
document.body.classList.add('console');
const PRODUCT = "Console de l'opérateur MSSanté";
let account: AdminAccount | null = null;
/** Said at the top of the next view (e.g. "Boîte créée"). */
let notice: string | null = null;

const LOGIN = '/api/v1/web/login';
const api = apiClient({
  csrfCookie: '__Host-mss-admin-csrf',
  // The admin API answers 401 for a session that ended (expired, logged out elsewhere); on the login itself it is a wrong password.
  ended: (e, path) => e.status === 401 && path !== LOGIN,
  onExpired() {
    if (!account) return;
    account = null;
    login(SESSION_EXPIRED);
  },
});

function login(message: string | null) {
  showLogin(app, api, { heading: "Console de l'opérateur", product: PRODUCT, path: LOGIN, psc: '/api/v1/web/psc/start', otp: true, account: (r) => (r as { account: AdminAccount }).account }, message, (a) => {
    account = a;
    void render();
  });
}

async function logout() {
  try {
    await api.send('POST', '/api/v1/logout');
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) return void announce(messageOf(e));
  }
  account = null;
  history.replaceState(null, '', location.pathname);
  login('Vous êtes déconnecté.');
}

const SECTIONS: Array<[string, string, RegExp]> = [
  ['#/', 'Tableau de bord', /^#?\/?$/],
  ['#/boites', 'Boîtes aux lettres', /^#\/boite/],
  ['#/personnes', 'Personnes', /^#\/personnes/],
  ['#/journal', 'Journal', /^#\/journal/],
  ['#/imports', 'Imports nationaux', /^#\/imports/],
  ['#/comptes', 'Comptes admin', /^#\/compte/],
  ['#/securite', 'Validation en deux étapes', /^#\/securite/],
];

function frame(main: HTMLElement) {
  const out = h('button', { type: 'button', class: 'sortie' }, 'Se déconnecter');
  out.addEventListener('click', () => void logout());
  const a = account!;
  const scope = a.role === 'national' ? 'national' : `régional : ${[...a.domains, ...a.structures].join(', ')}`;
  fill(
    app,
    h(
      'header',
      { class: 'bandeau' },
      h('p', { class: 'marque' }, PRODUCT),
      h('p', { class: 'qui' }, 'Connecté : ', h('strong', {}, a.login), ` (${scope})`),
      out,
    ),
    h(
      'nav',
      { class: 'onglets', 'aria-label': 'Sections' },
      h('ul', {}, SECTIONS.map(([href, label, re]) => h('li', {}, h('a', { href, 'aria-current': re.test(location.hash) ? 'page' : false }, label)))),
    ),
    main,
  );
}

function route(): { view: View; params: string[]; query: URLSearchParams } | null {
  const [path, qs] = location.hash.replace(/^#/, '').split('?');
  for (const v of views) {
    const m = v.path.exec(path || '/');
    if (m) {
      try {
        return { view: v, params: m.slice(1).map((p) => decodeURIComponent(p ?? '')), query: new URLSearchParams(qs ?? '') };
      } catch {
        return null;
      }
    }
  }
  return null;
}

let rendering = 0;
async function render() {
  if (!account) return;
  const turn = ++rendering;
  const main = h('main', { id: 'contenu', tabindex: -1, 'aria-busy': 'true' }, h('p', {}, 'Chargement…'));
  frame(main);
  const r = route();
  const ctx: ViewContext = {
    api,
    account,
    stillCurrent: () => turn === rendering && account !== null,
    go(href, said) {
      notice = said ?? null;
      if (location.hash === href) void render();
      else location.hash = href;
    },
  };
  try {
    if (!r) throw new ApiError(404, 'NOT_FOUND', location.hash);
    const said = notice;
    notice = null;
    const title = await r.view.show(ctx, main, r.params, r.query);
    if (!ctx.stillCurrent()) return;
    if (said) main.querySelector('h1')?.after(h('p', { class: 'avis', role: 'status' }, said));
    document.title = `${title} — ${PRODUCT}`;
    announce(title);
  } catch (e) {
    if (!ctx.stillCurrent()) return;
    // admin.requireTotp: until this account enrols its second factor, the API refuses all else.
    if (mustEnrol(e) && location.hash !== '#/securite') return ctx.go('#/securite', 'Votre compte doit d\'abord activer la validation en deux étapes.');
    document.title = `Erreur — ${PRODUCT}`;
    fill(main, h('h1', { tabindex: -1 }, 'Erreur'), h('p', { role: 'alert', class: 'erreur' }, messageOf(e)));
  }
  main.removeAttribute('aria-busy');
  main.querySelector<HTMLElement>('h1')?.focus();
}

startPage<AdminAccount>(api, {
  ended: (e) => e.status === 401,
  render: () => void render(),
  loggedIn(a) {
    account = a;
    void render();
  },
  login,
});
