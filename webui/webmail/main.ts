// The browser webmail: a person logs in, picks a box (their own, or an organisational one
// they are a member of), a folder, a message. Everything goes through the webmail API
// (webmail-api/) with the session in its HttpOnly cookie; this page holds no token.
import { ApiError, apiClient, messageOf } from '../common/api.js';
import { announce, fill, h } from '../common/dom.js';
import { showLogin } from './login.js';
import { SESSION_EXPIRED, startPage } from '../common/start.js';
import { composeView, type ComposeSource } from './compose.js';
import { dmpRuleView } from './dmp.js';
import { isSort, listHref, listView, messageView, side, type ListView } from './mail.js';
import type { Bal, Folder, Person } from './types.js';

const app = document.getElementById('app')!;
let person: Person | null = null;
let bals: Bal[] = [];
let folders: { bal: string; list: Folder[] } | null = null;
/** Said at the top of the next view (e.g. "Message envoyé"). */
let notice: string | null = null;

const api = apiClient({
  csrfCookie: '__Host-mss-webmail-csrf',
  onExpired() {
    // A session that ended (expiry, logout elsewhere, password change): back to the login, saying why.
    if (!person) return;
    person = null;
    showLogin(app, api, SESSION_EXPIRED, loggedIn);
  },
});

/** #/b/<box>/<folder>[/<uid>][?p=<page>&q=<words>&tri=<order>], or #/ecrire/<box>[?repondre|tous|transferer=<folder>/<uid>|brouillon=<folder>/<uid>] */
function route(): { bal: string; folder: string; uid: number | null; view: ListView; compose: ComposeSource | null; rule?: boolean } | null {
  const first: ListView = { page: 1, q: '', sort: 'date-desc' };
  try {
    const rule = /^#\/regle-dmp\/([^/?]+)$/.exec(location.hash);
    if (rule) return { bal: decodeURIComponent(rule[1]), folder: 'INBOX', uid: null, view: first, compose: null, rule: true };
    const c = /^#\/ecrire\/([^/?]+)(?:\?(.*))?$/.exec(location.hash);
    if (c) return { bal: decodeURIComponent(c[1]), folder: 'INBOX', uid: null, view: first, compose: composeSource(new URLSearchParams(c[2] ?? '')) };
    const m = /^#\/b\/([^/?]+)\/([^/?]+)(?:\/([0-9]+))?(?:\?(.*))?$/.exec(location.hash);
    if (!m) return null;
    const p = new URLSearchParams(m[4] ?? '');
    const tri = p.get('tri');
    const view: ListView = { page: Math.min(1_000_000, Math.max(1, Number(p.get('p')) || 1)), q: (p.get('q') ?? '').slice(0, 200), sort: isSort(tri) ? tri : 'date-desc' };
    return { bal: decodeURIComponent(m[1]), folder: decodeURIComponent(m[2]), uid: m[3] ? Number(m[3]) : null, view, compose: null };
  } catch {
    return null;
  }
}

/** What a compose address starts from; an unreadable one is a new message. */
function composeSource(p: URLSearchParams): ComposeSource {
  for (const [key, kind] of [['repondre', 'reply'], ['tous', 'reply-all'], ['transferer', 'forward'], ['brouillon', 'draft']] as const) {
    const m = /^(.+)\/([0-9]{1,10})$/.exec(p.get(key) ?? '');
    if (m) return { kind, folder: m[1], uid: Number(m[2]) };
  }
  return { kind: 'new' };
}

async function logout() {
  try {
    await api.send('POST', '/api/v1/logout');
  } catch (e) {
    if (!(e instanceof ApiError && e.code === 'WEBMAIL_SESSION_INVALID')) return void announce(messageOf(e));
  }
  person = null;
  bals = [];
  folders = null;
  history.replaceState(null, '', location.pathname);
  showLogin(app, api, 'Vous êtes déconnecté.', loggedIn);
}

function frame(main: HTMLElement, sideNav: HTMLElement | null) {
  const out = h('button', { type: 'button', class: 'sortie' }, 'Se déconnecter');
  out.addEventListener('click', () => void logout());
  fill(
    app,
    h('header', { class: 'bandeau' }, h('p', { class: 'marque' }, 'Messagerie MSSanté'), h('p', { class: 'qui' }, 'Connecté : ', h('strong', {}, person?.login ?? '')), out),
    h('div', { class: 'cadre' }, sideNav, main),
  );
}

async function loadBals() {
  bals = await api.get<Bal[]>('/api/v1/bals?unseen=true');
}

async function loadFolders(bal: string) {
  folders = { bal, list: await api.get<Folder[]>(`/api/v1/bals/${encodeURIComponent(bal)}/folders`) };
}

let rendering = 0;
async function render() {
  if (!person) return;
  const turn = ++rendering;
  const r = route();
  if (!r) {
    try {
      if (!bals.length) await loadBals();
    } catch (e) {
      // An ended session has already brought the login back (onExpired).
      if (person) frame(h('main', { id: 'contenu', tabindex: -1 }, h('h1', {}, 'Erreur'), h('p', { role: 'alert', class: 'erreur' }, messageOf(e))), null);
      return;
    }
    const first = bals[0];
    if (!first) {
      const main = h('main', { id: 'contenu', tabindex: -1 }, h('h1', {}, 'Aucune boîte aux lettres'), h('p', {}, "Aucune boîte aux lettres ne vous est ouverte. Adressez-vous à votre opérateur."));
      return frame(main, null);
    }
    return void location.replace(listHref(first.address, 'INBOX'));
  }
  const main = h('main', { id: 'contenu', tabindex: -1, 'aria-busy': 'true' }, h('p', {}, 'Chargement…'));
  try {
    await Promise.all([loadBals(), folders?.bal === r.bal && r.uid !== null ? null : loadFolders(r.bal)]);
  } catch (e) {
    if (turn !== rendering || !person) return;
    frame(main, side(bals, r.bal, null, r.folder));
    fill(main, h('h1', { tabindex: -1 }, 'Boîte inaccessible'), h('p', { role: 'alert', class: 'erreur' }, messageOf(e)));
    return;
  }
  if (turn !== rendering || !person) return;
  frame(main, side(bals, r.bal, folders?.list ?? null, r.folder));
  const folder = folders?.list.find((f) => f.path === r.folder) ?? { path: r.folder, name: r.folder, specialUse: null };
  try {
    const said = notice;
    notice = null;
    const title = r.rule
      ? await dmpRuleView(api, main, r.bal)
      : r.compose
      ? await composeView(api, main, bals, r.bal, r.compose, (n, next) => {
          notice = n;
          const drafts = folders?.list.find((f) => f.specialUse === '\\Drafts')?.path;
          location.hash = listHref(r.bal, next === 'drafts' && drafts ? drafts : 'INBOX');
        })
      : r.uid === null
        ? await listView(api, main, r.bal, folder, r.view) : await messageView(api, main, r.bal, r.folder, r.uid, listHref(r.bal, r.folder, r.view));
    if (turn !== rendering) return;
    if (said) main.querySelector('h1')?.after(h('p', { class: 'avis', role: 'status' }, said));
    document.title = `${title} — Messagerie MSSanté`;
    announce(title);
  } catch (e) {
    if (turn !== rendering || !person) return;
    fill(main, h('h1', { tabindex: -1 }, 'Erreur'), h('p', { role: 'alert', class: 'erreur' }, messageOf(e)));
  }
  main.removeAttribute('aria-busy');
  main.querySelector<HTMLElement>('h1')?.focus();
}

function loggedIn(p: Person) {
  person = p;
  bals = [];
  folders = null;
  void render();
}

startPage<Person>(api, {
  ended: (e) => e.code === 'WEBMAIL_SESSION_INVALID',
  render: () => void render(),
  loggedIn,
  login: (notice) => showLogin(app, api, notice, loggedIn),
});
