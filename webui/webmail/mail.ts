// The mail views: the box switcher and folders (side), a folder's message list with its
// pages, and a message. Links are real links (#/b/<box>/<folder>[/<uid>]): keyboard,
// back button and "open in a new tab" work as on any site.
import { messageOf, type ApiClient } from '../common/api.js';
import { announce, fill, h, longDate, shortDate, size } from '../common/dom.js';
import { clinicalSection } from './dmp.js';
import type { Address, Attachment, Bal, Folder, Message, Page, Person } from './types.js';

const enc = encodeURIComponent;
export const PAGE_SIZE = 25;

/** How a list is shown: its page, search words, order. */
export interface ListView {
  page: number;
  q: string;
  sort: SortKey;
}
export const SORTS = {
  'date-desc': "Date (les plus récents d'abord)",
  'date-asc': "Date (les plus anciens d'abord)",
  'from-asc': 'Expéditeur (A à Z)',
  'subject-asc': 'Objet (A à Z)',
} as const;
export type SortKey = keyof typeof SORTS;
export const isSort = (k: string | null): k is SortKey => k !== null && Object.hasOwn(SORTS, k);

export function listHref(bal: string, folder: string, v: Partial<ListView> = {}): string {
  const p = new URLSearchParams();
  if (v.page && v.page > 1) p.set('p', String(v.page));
  if (v.q) p.set('q', v.q);
  if (v.sort && v.sort !== 'date-desc') p.set('tri', v.sort);
  const qs = p.toString();
  return `#/b/${enc(bal)}/${enc(folder)}${qs ? `?${qs}` : ''}`;
}
/** A message, remembering the list it was opened from (for "Retour à la liste"). */
export const messageHref = (bal: string, folder: string, uid: number, from: Partial<ListView> = {}) => listHref(bal, folder, from).replace(/^(#\/b\/[^/?]+\/[^/?]+)/, `$1/${uid}`);
export const composeHref = (bal: string, from?: { key: 'repondre' | 'tous' | 'transferer' | 'brouillon'; folder: string; uid: number }) =>
  `#/ecrire/${enc(bal)}${from ? `?${from.key}=${enc(`${from.folder}/${from.uid}`)}` : ''}`;
export const dmpRuleHref = (bal: string) => `#/regle-dmp/${enc(bal)}`;
const boxApi = (bal: string) => `/api/v1/bals/${enc(bal)}`;

const SPECIAL: Record<string, string> = { '\\Sent': 'Envoyés', '\\Trash': 'Corbeille', '\\Drafts': 'Brouillons', '\\Junk': 'Indésirables', '\\Archive': 'Archives' };
export const folderLabel = (f: Pick<Folder, 'path' | 'name' | 'specialUse'>) => (f.path.toUpperCase() === 'INBOX' ? 'Boîte de réception' : (f.specialUse && SPECIAL[f.specialUse]) || f.name);
const balLabel = (b: Bal) => b.description || b.address;
const unseenText = (n: number) => (n === 1 ? '1 non lu' : `${n} non lus`);
const who = (a: Address[]) => a.map((x) => x.name || x.address || '').filter(Boolean).join(', ') || '(inconnu)';
const full = (a: Address[]) => a.map((x) => (x.name && x.address ? `${x.name} <${x.address}>` : x.address || x.name || '')).join(', ');

/** The side: every box the person may open, with its unread count, and the folders of the current one. */
export function side(bals: Bal[], current: string, folders: Folder[] | null, currentFolder: string): HTMLElement {
  return h(
    'div',
    { class: 'cote' },
    h('p', { class: 'ecrire' }, h('a', { href: composeHref(current), class: 'bouton' }, 'Nouveau message')),
    h(
      'nav',
      { 'aria-labelledby': 'titre-boites' },
      h('h2', { id: 'titre-boites' }, 'Boîtes aux lettres'),
      h(
        'ul',
        { class: 'boites' },
        bals.map((b) =>
          h(
            'li',
            {},
            h(
              'a',
              { href: listHref(b.address, 'INBOX'), 'aria-current': b.address === current ? 'page' : false, class: 'boite' },
              h('span', { class: 'nom' }, balLabel(b)),
              b.description ? h('span', { class: 'adresse' }, b.address) : null,
              h('span', { class: 'type' }, b.type === 'PER' ? 'personnelle' : b.type === 'ORG' ? 'organisationnelle' : b.type === 'APP' ? 'applicative' : 'cabinet'),
              typeof b.unseen === 'number' && b.unseen > 0 ? h('span', { class: 'compte' }, unseenText(b.unseen)) : null,
            ),
          ),
        ),
      ),
    ),
    bals.find((b) => b.address === current)?.type === 'ORG' ? h('p', { class: 'regle' }, h('a', { href: dmpRuleHref(current) }, 'Règle DMP de la boîte')) : null,
    folders
      ? h(
          'nav',
          { 'aria-labelledby': 'titre-dossiers' },
          h('h2', { id: 'titre-dossiers' }, 'Dossiers'),
          h(
            'ul',
            { class: 'dossiers' },
            folders.map((f) =>
              h(
                'li',
                {},
                h('a', { href: listHref(current, f.path), 'aria-current': f.path === currentFolder ? 'page' : false }, h('span', { class: 'nom' }, folderLabel(f)), f.unseen > 0 ? h('span', { class: 'compte' }, unseenText(f.unseen)) : null),
              ),
            ),
          ),
        )
      : null,
  );
}

/** A page of a folder's messages. */
export async function listView(api: ApiClient, main: HTMLElement, bal: string, folder: Folder | { path: string; name: string; specialUse: null }, view: ListView): Promise<string> {
  const { page, q } = view;
  const [sort, order] = view.sort.split('-');
  const r = await api.get<Page>(`${boxApi(bal)}/folders/${enc(folder.path)}/messages?page=${page}&pageSize=${PAGE_SIZE}&sort=${sort}&order=${order}${q ? `&q=${enc(q)}` : ''}`);
  const pages = Math.max(1, Math.ceil(r.total / PAGE_SIZE));
  const at = (p: number) => listHref(bal, folder.path, { ...view, page: p });
  const title = `${folderLabel(folder)} — ${bal}`;
  const rows = r.messages.map((m) =>
    h(
      'tr',
      { class: m.flags.seen ? '' : 'non-lu' },
      h(
        'td',
        { class: 'etat' },
        m.flags.seen ? null : h('span', { class: 'pastille non-lu' }, 'Non lu'),
        m.flags.flagged ? h('span', { class: 'pastille suivi' }, 'Suivi') : null,
        m.flags.answered ? h('span', { class: 'pastille repondu' }, 'Répondu') : null,
        m.hasAttachments ? h('span', { class: 'pastille pj' }, 'Pièce jointe') : null,
      ),
      h('td', { class: 'de' }, who(m.from)),
      // A draft opens where it is written.
      h('td', { class: 'objet' }, h('a', { href: folder.specialUse === '\\Drafts' ? composeHref(bal, { key: 'brouillon', folder: folder.path, uid: m.uid }) : messageHref(bal, folder.path, m.uid, view) }, m.subject || '(sans objet)')),
      h('td', { class: 'date' }, h('time', { datetime: m.date ?? '' }, shortDate(m.date))),
    ),
  );
  const pager = h(
    'nav',
    { class: 'pages', 'aria-label': 'Pages de la liste' },
    page > 1 ? h('a', { href: at(page - 1), rel: 'prev' }, 'Page précédente') : null,
    h('span', {}, `Page ${page} sur ${pages}`),
    page < pages ? h('a', { href: at(page + 1), rel: 'next' }, 'Page suivante') : null,
  );
  // Search words and order are applied with the button (a change of the list on a mere selection would surprise: WCAG 3.2.2).
  const words = h('input', { id: 'recherche', name: 'q', type: 'search', maxlength: 200, value: q, 'aria-describedby': 'recherche-aide' });
  const sortSelect = h('select', { id: 'tri', name: 'tri' }, Object.entries(SORTS).map(([k, label]) => h('option', { value: k, selected: k === view.sort }, label)));
  const search = h(
    'form',
    { role: 'search', class: 'recherche', 'aria-label': 'Rechercher et trier' },
    h('div', { class: 'champ' }, h('label', { for: 'recherche' }, 'Rechercher dans ce dossier'), h('p', { id: 'recherche-aide', class: 'aide' }, "Expéditeur, objet, texte ou date, tels qu'ils sont écrits."), words),
    h('div', { class: 'champ' }, h('label', { for: 'tri' }, 'Trier par'), sortSelect),
    h('button', { type: 'submit' }, 'Afficher'),
  );
  search.addEventListener('submit', (e) => {
    e.preventDefault();
    location.hash = listHref(bal, folder.path, { page: 1, q: words.value.trim(), sort: isSort(sortSelect.value) ? sortSelect.value : 'date-desc' });
  });
  const none = q ? `Aucun message ne correspond à « ${q} ».` : 'Aucun message dans ce dossier.';
  fill(
    main,
    h('h1', { tabindex: -1 }, title),
    search,
    h(
      'p',
      { class: 'resume' },
      r.total === 0 ? none : `${r.total} message${r.total > 1 ? 's' : ''}${q ? ` correspondant à « ${q} »` : ''}`,
      q ? [' — ', h('a', { href: listHref(bal, folder.path, { sort: view.sort }) }, 'Effacer la recherche')] : null,
    ),
    r.total === 0
      ? null
      : h(
          'table',
          { class: 'liste' },
          h('caption', { class: 'lecteur' }, `Messages, page ${page} sur ${pages}`),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'État'), h('th', { scope: 'col' }, 'Expéditeur'), h('th', { scope: 'col' }, 'Objet'), h('th', { scope: 'col' }, 'Date'))),
          h('tbody', {}, rows),
        ),
    pages > 1 ? pager : null,
  );
  return title;
}

/** The message's HTML in a sandboxed frame: no script, no form, no access to this page; links open outside. */
function htmlFrame(html: string, subject: string): HTMLIFrameElement {
  const frame = h('iframe', { class: 'corps-html', title: `Contenu du message : ${subject}`, sandbox: 'allow-popups allow-popups-to-escape-sandbox', referrerpolicy: 'no-referrer' });
  frame.srcdoc = `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Message</title></head><body>${html}</body></html>`;
  return frame;
}

const IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

/**
 * An attachment: its download link, and where it is safe a preview — an image shown in the
 * page on demand, a PDF opened in a tab. Both come from the API with inline disposition,
 * nosniff and a CSP sandbox; nothing else (HTML, SVG, XML, text) is ever shown inline.
 */
function attachmentItem(path: string, a: Attachment): HTMLElement {
  const name = a.filename ?? `Pièce jointe ${a.index + 1}`;
  const url = `${path}/attachments/${a.index}`;
  const li = h('li', {}, h('a', { href: url, download: a.filename ?? `piece-jointe-${a.index}` }, name), ` (${a.contentType}, ${size(a.size)})`);
  if (a.contentType === 'application/pdf') li.append(' — ', h('a', { href: `${url}?inline=true`, target: '_blank', rel: 'noopener noreferrer' }, `Ouvrir ${name} dans un nouvel onglet`));
  if (IMAGES.has(a.contentType)) {
    const show = h('button', { type: 'button', class: 'secondaire', 'aria-expanded': 'false' }, `Aperçu de ${name}`);
    const slot = h('div', { class: 'apercu' });
    show.addEventListener('click', () => {
      const open = show.getAttribute('aria-expanded') === 'true';
      show.setAttribute('aria-expanded', String(!open));
      fill(slot, open ? null : h('img', { src: `${url}?inline=true`, alt: `Aperçu de la pièce jointe ${name}` }));
    });
    li.append(' ', show, slot);
  }
  return li;
}

/** The sender asked for a read receipt: the person chooses to send it or not (RFC 8098: never automatic). */
function receiptRequest(api: ApiClient, path: string, m: Message): HTMLElement | null {
  if (!m.dispositionNotificationTo || m.flags.keywords.some((k) => k.toLowerCase() === '$mdnsent')) return null;
  const said = h('p', { role: 'status' });
  const box = h('section', { class: 'avis accuse', 'aria-labelledby': 'titre-accuse' });
  const answer = async (decline: boolean) => {
    try {
      await api.send('POST', `${path}/mdn`, decline ? { decline: true } : {});
      fill(box, h('p', { role: 'status' }, decline ? 'Accusé de lecture non envoyé.' : `Accusé de lecture envoyé à ${m.dispositionNotificationTo}.`));
    } catch (e) {
      said.textContent = messageOf(e);
    }
  };
  const send = h('button', { type: 'button' }, "Envoyer l'accusé de lecture");
  const refuse = h('button', { type: 'button', class: 'secondaire' }, 'Ne pas envoyer');
  send.addEventListener('click', () => void answer(false));
  refuse.addEventListener('click', () => void answer(true));
  fill(box, h('h2', { id: 'titre-accuse' }, 'Accusé de lecture demandé'), h('p', {}, `L'expéditeur demande un accusé de lecture, à ${m.dispositionNotificationTo}.`), h('div', { class: 'actions' }, send, refuse), said);
  return box;
}

/** One message: headers, marks, attachments, body. */
export async function messageView(api: ApiClient, main: HTMLElement, bal: string, folder: string, uid: number, back: string): Promise<string> {
  const path = `${boxApi(bal)}/messages/${enc(folder)}/${uid}`;
  const m = await api.get<Message>(path);
  const status = h('p', { class: 'etat-action', role: 'status' });
  const flagButton = h('button', { type: 'button', 'aria-pressed': String(m.flags.flagged) }, 'Suivi');
  flagButton.addEventListener('click', async () => {
    try {
      const f = await api.send<Message['flags']>('PATCH', path, { flagged: !m.flags.flagged });
      m.flags = f;
      flagButton.setAttribute('aria-pressed', String(f.flagged));
      status.textContent = f.flagged ? 'Message marqué comme suivi.' : 'Message retiré du suivi.';
    } catch (e) {
      status.textContent = messageOf(e);
    }
  });
  const unreadButton = h('button', { type: 'button' }, 'Marquer comme non lu');
  unreadButton.addEventListener('click', async () => {
    try {
      m.flags = await api.send<Message['flags']>('PATCH', path, { seen: false });
      // Back to the list, where it shows as unread (staying here would read it again).
      location.hash = back;
    } catch (e) {
      status.textContent = messageOf(e);
    }
  });
  const headerRow = (label: string, value: string) => (value ? [h('dt', {}, label), h('dd', {}, value)] : []);
  fill(
    main,
    h(
      'article',
      { class: 'message' },
      h('p', {}, h('a', { href: back }, 'Retour à la liste')),
      h('h1', { tabindex: -1 }, m.subject || '(sans objet)'),
      h('dl', { class: 'entetes' }, headerRow('De', full(m.from)), headerRow('À', full(m.to)), headerRow('Cc', full(m.cc)), headerRow('Date', longDate(m.sentAt ?? m.date))),
      h(
        'div',
        { class: 'actions' },
        h('a', { class: 'bouton', href: composeHref(bal, { key: 'repondre', folder, uid }) }, 'Répondre'),
        h('a', { class: 'bouton', href: composeHref(bal, { key: 'tous', folder, uid }) }, 'Répondre à tous'),
        h('a', { class: 'bouton', href: composeHref(bal, { key: 'transferer', folder, uid }) }, 'Transférer'),
        flagButton,
        unreadButton,
      ),
      status,
      receiptRequest(api, path, m),
      m.attachments.length
        ? h(
            'section',
            { 'aria-labelledby': 'titre-pj', class: 'pieces' },
            h('h2', { id: 'titre-pj' }, m.attachments.length > 1 ? `${m.attachments.length} pièces jointes` : '1 pièce jointe'),
            h('ul', {}, m.attachments.map((a) => attachmentItem(path, a))),
          )
        : null,
      clinicalSection(api, path, m),
      // A PGP/MIME message (a box with an OpenPGP key): said plainly, instead of an empty body.
      m.encrypted
        ? h('section', { 'aria-label': 'Contenu du message', class: 'corps chiffre' }, h('p', { role: 'note' }, m.encrypted.notice))
        : h('section', { 'aria-label': 'Contenu du message', class: 'corps' }, m.html ? htmlFrame(m.html, m.subject) : h('pre', { class: 'corps-texte' }, m.text ?? '')),
    ),
  );
  return m.subject || '(sans objet)';
}

export { announce, messageOf };
export type { Person };
