// Writing a message: from a box the person may send as (their own, an organisational box
// they are a member of: the submission server decides, core/policy), recipients picked in
// the annuaire as they type (GET /api/v1/annuaire, the ARIA 1.2 combobox pattern) or typed
// whole. Whether an address may receive MSSanté mail is the platform's decision: a refused
// recipient comes back with the server's reason, shown as is.
import { ApiError, messageOf, type ApiClient } from '../common/api.js';
import { announce, fill, h, longDate, size } from '../common/dom.js';
import type { Address, Attachment, Bal, Message } from './types.js';

interface Recipient {
  name: string;
  mail: string;
  profession: string | null;
  organisation: string | null;
  service: string | null;
}
interface Sent {
  accepted: string[];
  rejected: Array<{ address: string; reply: string }>;
  sentFolder: string | null;
}

const ADDRESS = /^[^\s@<>,;:"()[\]\\]+@[^\s@<>,;:"()[\]\\]+$/;
const describe = (r: Recipient) => [r.profession, r.service, r.organisation].filter(Boolean).join(' — ');

/** A recipients field (À, Cc): the chosen addresses as a list with a remove button each, and the search box. */
function recipientsField(api: ApiClient, id: string, label: string, initial: string[] = []): { el: HTMLElement; addresses(): string[]; pending(): string } {
  const chosen: string[] = [...initial];
  const list = h('ul', { class: 'choisis', 'aria-label': `Destinataires (${label})` });
  const listbox = h('ul', { id: `${id}-propositions`, role: 'listbox', class: 'propositions', 'aria-label': `Propositions de l'annuaire (${label})`, hidden: true });
  const input = h('input', {
    id,
    type: 'text',
    role: 'combobox',
    'aria-autocomplete': 'list',
    'aria-expanded': 'false',
    'aria-controls': listbox.id,
    'aria-describedby': `${id}-aide`,
    autocomplete: 'off',
    spellcheck: 'false',
    maxlength: 254,
  });
  const hint = h('p', { id: `${id}-aide`, class: 'aide' }, "Tapez un nom, une profession, une ville ou une adresse (2 caractères au moins) ; flèches haut et bas pour choisir, Entrée pour ajouter.");
  let options: Recipient[] = [];
  let active = -1;
  let asked = 0;
  let timer: number | undefined;

  const redraw = () => {
    fill(
      list,
      chosen.map((a, i) => {
        const remove = h('button', { type: 'button', class: 'retirer', 'aria-label': `Retirer ${a}` }, '×');
        remove.addEventListener('click', () => {
          chosen.splice(i, 1);
          redraw();
          announce(`${a} retiré`);
          input.focus();
        });
        return h('li', {}, h('span', {}, a), remove);
      }),
    );
  };
  const close = () => {
    listbox.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const add = (address: string) => {
    const a = address.trim();
    if (!a) return;
    if (!chosen.some((c) => c.toLowerCase() === a.toLowerCase())) chosen.push(a);
    input.value = '';
    close();
    redraw();
    announce(`${a} ajouté`);
  };
  const highlight = (i: number) => {
    active = i;
    listbox.querySelectorAll('[role=option]').forEach((o, j) => o.setAttribute('aria-selected', String(j === i)));
    if (i >= 0) input.setAttribute('aria-activedescendant', `${id}-option-${i}`);
    else input.removeAttribute('aria-activedescendant');
  };
  const show = (found: Recipient[], truncated: boolean) => {
    options = found;
    fill(
      listbox,
      found.map((r, i) => {
        const o = h('li', { id: `${id}-option-${i}`, role: 'option', 'aria-selected': 'false' }, h('span', { class: 'nom' }, `${r.name} <${r.mail}>`), describe(r) ? h('span', { class: 'detail' }, describe(r)) : null);
        // mousedown, not click: the input keeps the focus.
        o.addEventListener('mousedown', (e) => {
          e.preventDefault();
          add(r.mail);
        });
        return o;
      }),
    );
    listbox.hidden = found.length === 0;
    input.setAttribute('aria-expanded', String(found.length > 0));
    highlight(-1);
    announce(found.length === 0 ? "Aucune proposition dans l'annuaire" : `${found.length} proposition${found.length > 1 ? 's' : ''}${truncated ? ' (liste tronquée, précisez)' : ''}`);
  };
  const search = async (q: string) => {
    const turn = ++asked;
    try {
      const r = await api.get<{ results: Recipient[]; truncated: boolean }>(`/api/v1/annuaire?q=${encodeURIComponent(q)}`);
      if (turn === asked && input.value.trim() === q) show(r.results.filter((x) => x.mail), r.truncated);
    } catch (e) {
      if (turn === asked) announce(messageOf(e));
    }
  };
  input.addEventListener('input', () => {
    window.clearTimeout(timer);
    const q = input.value.trim();
    if (q.length < 2) return close();
    // A short pause after the last key: one search per word typed, not per letter.
    timer = window.setTimeout(() => void search(q), 250);
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' && options.length) {
      e.preventDefault();
      if (listbox.hidden) return show(options, false);
      highlight(Math.min(active + 1, options.length - 1));
    } else if (e.key === 'ArrowUp' && options.length && !listbox.hidden) {
      e.preventDefault();
      highlight(Math.max(active - 1, 0));
    } else if (e.key === 'Enter') {
      if (active >= 0 && !listbox.hidden) {
        e.preventDefault();
        add(options[active].mail);
      } else if (ADDRESS.test(input.value.trim())) {
        e.preventDefault();
        add(input.value);
      }
    } else if (e.key === 'Escape' && !listbox.hidden) {
      e.preventDefault();
      close();
    }
  });
  input.addEventListener('blur', () => close());
  redraw();
  const el = h('div', { class: 'champ destinataires' }, h('label', { for: id }, label), list, hint, h('div', { class: 'combo' }, input, listbox));
  return { el, addresses: () => [...chosen], pending: () => input.value.trim() };
}

interface Upload {
  filename: string;
  contentType: string;
  content: string;
  size: number;
}

/** A file's bytes as base64, for the JSON body. */
async function base64(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Attachments: a file picker, and files dropped on the zone; each listed with a remove button. */
function filesField(): { el: HTMLElement; list(): Array<Omit<Upload, 'size'>> } {
  const chosen: Upload[] = [];
  const picker = h('input', { type: 'file', id: 'fichiers', multiple: true, class: 'lecteur-fichiers' });
  const list = h('ul', { class: 'choisis', 'aria-label': 'Fichiers joints' });
  const redraw = () =>
    fill(
      list,
      chosen.map((f, i) => {
        const remove = h('button', { type: 'button', class: 'retirer', 'aria-label': `Retirer ${f.filename}` }, '×');
        remove.addEventListener('click', () => {
          chosen.splice(i, 1);
          redraw();
          announce(`${f.filename} retiré`);
        });
        return h('li', {}, h('span', {}, `${f.filename} (${size(f.size)})`), remove);
      }),
    );
  const add = async (fl: FileList | null) => {
    for (const f of Array.from(fl ?? [])) chosen.push({ filename: f.name, contentType: f.type || 'application/octet-stream', content: await base64(f), size: f.size });
    redraw();
    announce(`${chosen.length} fichier${chosen.length > 1 ? 's' : ''} joint${chosen.length > 1 ? 's' : ''}`);
  };
  picker.addEventListener('change', () => void add(picker.files).then(() => (picker.value = '')));
  const zone = h('div', { class: 'depot', id: 'depot' }, h('label', { for: 'fichiers' }, 'Joindre des fichiers'), h('p', { class: 'aide' }, 'Choisissez des fichiers, ou déposez-les dans ce cadre.'), picker, list);
  zone.addEventListener('dragover', (e) => {
    e.preventDefault();
    zone.classList.add('survol');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('survol'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('survol');
    void add(e.dataTransfer?.files ?? null);
  });
  return { el: zone, list: () => chosen.map(({ size: _s, ...u }) => u) };
}

/** What the page starts from: a blank message, a reply, a forward, or a draft of the box. */
export type ComposeSource = { kind: 'new' } | { kind: 'reply' | 'reply-all' | 'forward'; folder: string; uid: number } | { kind: 'draft'; uid: number; folder: string };

interface Prefill {
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  text: string;
  /** Attachments that go along without being uploaded again (a forward's, a draft's). */
  carried: Attachment[];
  original?: { folder: string; uid: number; action: 'reply' | 'forward' };
  draft?: number;
  title: string;
}

const addressesOf = (a: Address[]) => a.map((x) => x.address ?? '').filter(Boolean);
const prefixed = (prefix: string, subject: string) => (new RegExp(`^\\s*${prefix}\\s*:`, 'i').test(subject) ? subject : `${prefix}: ${subject}`);
const fullAddress = (a: Address[]) => a.map((x) => (x.name && x.address ? `${x.name} <${x.address}>` : x.address || x.name || '')).join(', ');

/** The fields a reply, a forward or a draft starts with (the original read without marking it seen). */
async function prefill(api: ApiClient, bal: string, source: ComposeSource): Promise<Prefill> {
  const blank: Prefill = { to: [], cc: [], bcc: [], subject: '', text: '', carried: [], title: 'Nouveau message' };
  if (source.kind === 'new') return blank;
  const m = await api.get<Message>(`/api/v1/bals/${encodeURIComponent(bal)}/messages/${encodeURIComponent(source.folder)}/${source.uid}?markSeen=false`);
  if (source.kind === 'draft') {
    return { ...blank, to: addressesOf(m.to), cc: addressesOf(m.cc), bcc: addressesOf(m.bcc ?? []), subject: m.subject, text: m.text ?? '', carried: m.attachments, draft: source.uid, title: 'Brouillon' };
  }
  const when = longDate(m.sentAt ?? m.date);
  if (source.kind === 'forward') {
    const head = ['-------- Message transféré --------', `Objet : ${m.subject}`, `Date : ${when}`, `De : ${fullAddress(m.from)}`, `À : ${fullAddress(m.to)}`, ...(m.cc.length ? [`Cc : ${fullAddress(m.cc)}`] : [])];
    return { ...blank, subject: prefixed('TR', m.subject), text: `\n\n${head.join('\n')}\n\n${m.text ?? ''}`, carried: m.attachments, original: { folder: source.folder, uid: source.uid, action: 'forward' }, title: 'Transférer' };
  }
  const me = bal.toLowerCase();
  const replyTo = addressesOf(m.replyTo.length ? m.replyTo : m.from);
  const others = source.kind === 'reply-all' ? [...addressesOf(m.to), ...addressesOf(m.cc)].filter((a) => a.toLowerCase() !== me && !replyTo.some((r) => r.toLowerCase() === a.toLowerCase())) : [];
  const quoted = (m.text ?? '').split(/\r?\n/).map((l) => `> ${l}`).join('\n');
  return {
    ...blank,
    to: replyTo,
    cc: [...new Set(others)],
    subject: prefixed('RE', m.subject),
    text: `\n\nLe ${when}, ${fullAddress(m.from)} a écrit :\n${quoted}\n`,
    original: { folder: source.folder, uid: source.uid, action: 'reply' },
    title: source.kind === 'reply-all' ? 'Répondre à tous' : 'Répondre',
  };
}

/** The compose page; `done` is told what happened and where the person goes next. */
export async function composeView(api: ApiClient, main: HTMLElement, bals: Bal[], from: string, source: ComposeSource, done: (notice: string, next?: string) => void): Promise<string> {
  const p = await prefill(api, from, source);
  // A reply, a forward and a draft belong to this box: they leave from it.
  const fixed = source.kind !== 'new';
  const fromSelect = h('select', { id: 'de', name: 'de', disabled: fixed }, bals.map((b) => h('option', { value: b.address, selected: b.address === from }, b.description ? `${b.description} <${b.address}>` : b.address)));
  const to = recipientsField(api, 'a', 'À', p.to);
  const cc = recipientsField(api, 'cc', 'Cc', p.cc);
  const bcc = recipientsField(api, 'cci', 'Cci', p.bcc);
  const subject = h('input', { id: 'objet', name: 'objet', type: 'text', maxlength: 998, required: true, value: p.subject });
  const text = h('textarea', { id: 'texte', name: 'texte', rows: 12 });
  text.value = p.text;
  const error = h('div', { class: 'erreur', role: 'alert' });
  const status = h('p', { class: 'etat-action', role: 'status' });
  const submit = h('button', { type: 'submit' }, 'Envoyer');
  const save = h('button', { type: 'button', class: 'secondaire' }, 'Enregistrer le brouillon');
  let draft = p.draft;
  let draftFolder = source.kind === 'draft' ? source.folder : null;
  const remove = h('button', { type: 'button', class: 'secondaire', hidden: draft === undefined }, 'Supprimer le brouillon');
  const carried = p.carried.length
    ? h(
        'section',
        { class: 'champ', 'aria-labelledby': 'titre-jointes' },
        h('h2', { id: 'titre-jointes' }, source.kind === 'forward' ? 'Pièces jointes du message transféré' : 'Pièces jointes du brouillon'),
        h('ul', { class: 'jointes' }, p.carried.map((a) => h('li', {}, `${a.filename ?? `Pièce jointe ${a.index + 1}`} (${size(a.size)})`))),
      )
    : null;
  const files = filesField();
  const xdm = h('input', { type: 'checkbox', id: 'xdm', name: 'xdm', 'aria-describedby': 'xdm-aide' });
  const noReply = h('input', { type: 'checkbox', id: 'sans-reponse', name: 'sans-reponse', 'aria-describedby': 'sans-reponse-aide' });
  const form = h(
    'form',
    { class: 'redaction', 'aria-labelledby': 'titre-redaction', novalidate: true },
    h('div', { class: 'champ' }, h('label', { for: 'de' }, 'De'), fromSelect),
    to.el,
    cc.el,
    bcc.el,
    h('div', { class: 'champ' }, h('label', { for: 'objet' }, 'Objet'), subject),
    h('div', { class: 'champ' }, h('label', { for: 'texte' }, 'Message'), text),
    carried,
    files.el,
    h(
      'div',
      { class: 'champ choix' },
      xdm,
      h('label', { for: 'xdm' }, 'Envoyer les documents CDA joints (.xml) en IHE_XDM.zip'),
      h('p', { id: 'xdm-aide', class: 'aide' }, "La plateforme construit l'archive IHE_XDM et les en-têtes MSSanté (X-MSS-INS, X-MSS-CODECDA) ; un objet laissé vide devient l'objet XDM (type de document, patient)."),
    ),
    h(
      'div',
      { class: 'champ choix' },
      noReply,
      h('label', { for: 'sans-reponse' }, 'Patient (Mon Espace Santé) : pas de réponse attendue'),
      h('p', { id: 'sans-reponse-aide', class: 'aide' }, 'Le message porte l’en-tête X-MSS-MES: FIN ; le patient ne pourra pas y répondre.'),
    ),
    error,
    status,
    h('div', { class: 'actions' }, submit, save, remove),
  );
  const box = () => encodeURIComponent(fromSelect.value);
  const typedIn = (f: ReturnType<typeof recipientsField>) => [...f.addresses(), ...(ADDRESS.test(f.pending()) ? [f.pending()] : [])];
  const fields = () => ({
    to: typedIn(to),
    cc: typedIn(cc),
    bcc: typedIn(bcc),
    subject: subject.value,
    text: text.value,
    ...(p.original ? { original: p.original } : {}),
    ...(draft !== undefined ? { draft } : {}),
    attachments: files.list(),
  });
  const busy = (b: boolean) => {
    for (const x of [submit, save, remove]) x.disabled = b;
  };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    fill(error);
    const f = fields();
    if (!f.to.length) return void fill(error, 'Ajoutez au moins un destinataire.');
    if (!f.subject.trim() && !xdm.checked) {
      fill(error, "Indiquez l'objet du message.");
      return subject.focus();
    }
    busy(true);
    submit.textContent = 'Envoi…';
    try {
      const r = await api.send<Sent>('POST', `/api/v1/bals/${box()}/send`, { ...f, ...(xdm.checked ? { xdm: true } : {}), ...(noReply.checked ? { noPatientReply: true } : {}) });
      if (r.rejected.length) {
        fill(error, h('p', {}, `Envoyé à ${r.accepted.join(', ')}. Refusé pour :`), h('ul', {}, r.rejected.map((x) => h('li', {}, `${x.address} — ${x.reply}`))));
        return;
      }
      done(`Message envoyé à ${r.accepted.join(', ')}.`);
    } catch (e) {
      const refused = e instanceof ApiError && (e.code === 'WEBMAIL_SEND_REFUSED' || e.code === 'WEBMAIL_SEND_FORBIDDEN');
      fill(error, refused ? `Envoi refusé par la plateforme : ${e.detail}` : messageOf(e));
    } finally {
      busy(false);
      submit.textContent = 'Envoyer';
    }
  });
  save.addEventListener('click', async () => {
    fill(error);
    busy(true);
    try {
      const r = await api.send<{ folder: string; uid: number | null }>('POST', `/api/v1/bals/${box()}/drafts`, fields());
      if (r.uid !== null) {
        draft = r.uid;
        draftFolder = r.folder;
        // The address names the new version (reloading reopens it), without drawing the page again.
        history.replaceState(null, '', `#/ecrire/${box()}?brouillon=${encodeURIComponent(`${r.folder}/${r.uid}`)}`);
      }
      remove.hidden = draft === undefined;
      status.textContent = 'Brouillon enregistré dans le dossier Brouillons.';
    } catch (e) {
      fill(error, messageOf(e));
    } finally {
      busy(false);
    }
  });
  remove.addEventListener('click', async () => {
    if (draft === undefined || draftFolder === null) return;
    fill(error);
    busy(true);
    try {
      const r = await api.send<{ movedTo: string | null }>('DELETE', `/api/v1/bals/${box()}/messages/${encodeURIComponent(draftFolder)}/${draft}`);
      done(r.movedTo ? 'Brouillon supprimé (placé dans la corbeille).' : 'Brouillon supprimé.', 'drafts');
    } catch (e) {
      fill(error, messageOf(e));
      busy(false);
    }
  });
  fill(main, h('h1', { id: 'titre-redaction', tabindex: -1 }, p.title), form);
  return p.title;
}
