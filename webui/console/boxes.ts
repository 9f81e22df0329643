// The operator's mailboxes: the list with its search and pages (#/boites), a new box
// (#/boites/nouvelle), one box with its members, certificates, key and storage (#/boite/<address>). Every
// call is the admin API's; a box outside the admin's scope is the API's refusal, shown.
import { ApiError, messageOf } from '../common/api.js';
import { fill, h, longDate, shortDate } from '../common/dom.js';
import { TYPE_LABEL, boxApi, boxHref, isBalType } from './labels.js';
import type { Bal, BalType, OpenPgpKey } from './types.js';
import type { ViewContext } from './views.js';
import { storageSection } from './storage.js';

const PAGE = 25;
const STATUS: Record<Bal['status'], string> = { active: 'ouverte', closed: 'fermée' };

function listHref(v: { q?: string; type?: string; status?: string; page?: number }): string {
  const p = new URLSearchParams();
  if (v.q) p.set('q', v.q);
  if (v.type) p.set('type', v.type);
  if (v.status) p.set('statut', v.status);
  if (v.page && v.page > 1) p.set('p', String(v.page));
  const qs = p.toString();
  return `#/boites${qs ? `?${qs}` : ''}`;
}

export const field = (id: string, label: string, control: HTMLElement, help?: string) =>
  h('div', { class: 'champ' }, h('label', { for: id }, label), help ? h('p', { id: `${id}-aide`, class: 'aide' }, help) : null, control);
const select = (id: string, options: Array<[string, string]>, value: string) => h('select', { id, name: id }, options.map(([v, l]) => h('option', { value: v, selected: v === value }, l)));

export async function boxesView(ctx: ViewContext, main: HTMLElement, _params: string[], query: URLSearchParams): Promise<string> {
  const q = (query.get('q') ?? '').slice(0, 200);
  const type = isBalType(query.get('type')) ? query.get('type')! : '';
  const status = query.get('statut') === 'active' || query.get('statut') === 'closed' ? query.get('statut')! : '';
  const page = Math.min(100_000, Math.max(1, Number(query.get('p')) || 1));
  const api = new URLSearchParams({ limit: String(PAGE + 1), offset: String((page - 1) * PAGE) });
  if (q) api.set('q', q);
  if (type) api.set('type', type);
  if (status) api.set('status', status);
  // One more than a page: whether a next page exists, without counting them all.
  const rows = await ctx.api.get<Bal[]>(`/api/v1/bals?${api}`);
  const more = rows.length > PAGE;
  const shown = rows.slice(0, PAGE);

  const words = h('input', { id: 'recherche', name: 'q', type: 'search', maxlength: 200, value: q, 'aria-describedby': 'recherche-aide' });
  const typeSel = select('type', [['', 'Tous'], ...(Object.entries(TYPE_LABEL) as Array<[string, string]>)], type);
  const statusSel = select('statut', [['', 'Toutes'], ['active', 'Ouvertes'], ['closed', 'Fermées']], status);
  const form = h(
    'form',
    { role: 'search', class: 'filtres', 'aria-label': 'Rechercher des boîtes' },
    field('recherche', 'Rechercher', words, 'Adresse, nom ou description.'),
    field('type', 'Type', typeSel),
    field('statut', 'État', statusSel),
    h('button', { type: 'submit' }, 'Afficher'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go(listHref({ q: words.value.trim(), type: typeSel.value, status: statusSel.value }));
  });
  const at = (p: number) => listHref({ q, type, status, page: p });
  const filtered = Boolean(q || type || status);
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Boîtes aux lettres'),
    h('p', {}, h('a', { href: '#/boites/nouvelle', class: 'bouton' }, 'Créer une boîte')),
    form,
    h(
      'p',
      { class: 'resume', role: 'status' },
      shown.length === 0 ? (filtered ? 'Aucune boîte ne correspond à cette recherche.' : 'Aucune boîte dans votre périmètre.') : `Page ${page} : boîtes ${(page - 1) * PAGE + 1} à ${(page - 1) * PAGE + shown.length}${more ? '' : ' (dernière page)'}`,
    ),
    shown.length
      ? h(
          'div',
          { class: 'table-defile' },
          h(
            'table',
            { class: 'liste' },
            h('caption', { class: 'lecteur' }, `Boîtes aux lettres, page ${page}`),
            h('thead', {}, h('tr', {}, ['Adresse', 'Nom', 'Type', 'État', 'Créée le'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              shown.map((b) =>
                h(
                  'tr',
                  {},
                  h('td', { class: 'objet' }, h('a', { href: boxHref(b.address) }, b.address)),
                  h('td', {}, b.displayName ?? b.description ?? ''),
                  h('td', {}, TYPE_LABEL[b.type]),
                  h('td', {}, STATUS[b.status]),
                  h('td', { class: 'date' }, shortDate(b.createdAt)),
                ),
              ),
            ),
          ),
        )
      : null,
    page > 1 || more
      ? h('nav', { class: 'pages', 'aria-label': 'Pages de la liste' }, page > 1 ? h('a', { href: at(page - 1), rel: 'prev' }, 'Page précédente') : null, h('span', {}, `Page ${page}`), more ? h('a', { href: at(page + 1), rel: 'next' }, 'Page suivante') : null)
      : null,
  );
  return filtered ? 'Boîtes aux lettres (recherche)' : 'Boîtes aux lettres';
}

/** A mistake in a form the page itself sees (nothing chosen, nothing changed): its sentence is shown as it is. */
export class FormError extends Error {}

/** A form's submit that calls the API: the button waits, a refusal is said in the form's alert. */
export function submitting(form: HTMLFormElement, error: HTMLElement, run: () => Promise<void>) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]');
    error.textContent = '';
    if (button) button.disabled = true;
    try {
      await run();
    } catch (err) {
      error.textContent = err instanceof FormError ? err.message : messageOf(err);
      error.focus();
    } finally {
      if (button) button.disabled = false;
    }
  });
}

export async function newBoxView(ctx: ViewContext, main: HTMLElement): Promise<string> {
  const domain = ctx.account.role === 'regional' && ctx.account.domains[0] ? ctx.account.domains[0] : '';
  const address = h('input', { id: 'adresse', name: 'address', required: true, maxlength: 254, autocomplete: 'off', spellcheck: 'false', placeholder: domain ? `secretariat@${domain}` : '', 'aria-describedby': 'adresse-aide' });
  const type = select('type', Object.entries(TYPE_LABEL) as Array<[string, string]>, 'ORG');
  const owner = h('input', { id: 'titulaire', name: 'owner', required: true, minlength: 9, maxlength: 20, 'aria-describedby': 'titulaire-aide', spellcheck: 'false' });
  const structure = h('input', { id: 'structure', name: 'structure', maxlength: 20, 'aria-describedby': 'structure-aide', spellcheck: 'false' });
  const displayName = h('input', { id: 'nom', name: 'displayName', maxlength: 200 });
  const description = h('input', { id: 'description', name: 'description', maxlength: 500 });
  const service = h('input', { id: 'service', name: 'service', maxlength: 200 });
  const listeRouge = h('input', { id: 'liste-rouge', name: 'listeRouge', type: 'checkbox' });
  const error = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const form = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-nouvelle' },
    field('adresse', 'Adresse', address, 'Adresse complète, dans un domaine de l\'opérateur.'),
    field('type', 'Type', type),
    field('titulaire', 'Titulaire', owner, 'Boîte personnelle ou de cabinet : RPPS, ADELI ou identifiant national du professionnel. Boîte organisationnelle ou applicative : FINESS ou SIRET de la structure.'),
    field('structure', 'Structure (facultatif)', structure, 'Boîte personnelle : FINESS ou SIRET de la structure où exerce le professionnel.'),
    field('nom', 'Nom affiché (facultatif)', displayName),
    field('description', 'Description (facultatif)', description),
    field('service', 'Service (facultatif)', service),
    h('div', { class: 'champ case' }, listeRouge, h('label', { for: 'liste-rouge' }, 'Liste rouge (la boîte n\'est pas publiée dans l\'annuaire)')),
    error,
    h('button', { type: 'submit' }, 'Créer la boîte'),
  );
  submitting(form, error, async () => {
    const opt = (i: HTMLInputElement) => (i.value.trim() ? i.value.trim() : undefined);
    const b = await ctx.api.send<Bal>('POST', '/api/v1/bals', {
      address: address.value.trim(),
      type: type.value as BalType,
      owner: owner.value.trim(),
      ...(opt(structure) ? { structure: opt(structure) } : {}),
      ...(opt(displayName) ? { displayName: opt(displayName) } : {}),
      ...(opt(description) ? { description: opt(description) } : {}),
      ...(opt(service) ? { service: opt(service) } : {}),
      ...(listeRouge.checked ? { listeRouge: true } : {}),
    });
    ctx.go(boxHref(b.address), `Boîte ${b.address} créée.`);
  });
  fill(main, h('p', {}, h('a', { href: '#/boites' }, 'Retour à la liste')), h('h1', { tabindex: -1, id: 'titre-nouvelle' }, 'Nouvelle boîte aux lettres'), form);
  return 'Nouvelle boîte aux lettres';
}

export async function boxView(ctx: ViewContext, main: HTMLElement, params: string[]): Promise<string> {
  const address = params[0];
  const b = await ctx.api.get<Bal>(boxApi(address));
  const here = boxHref(b.address);
  const row = (k: string, v: string | null | undefined) => (v ? [h('dt', {}, k), h('dd', {}, v)] : []);

  // Close / reopen, with the reason journalled.
  const stateError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const reason = h('input', { id: 'motif', name: 'reason', maxlength: 500 });
  const closing = b.status === 'active';
  const stateForm = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-etat' },
    h('h2', { id: 'titre-etat' }, closing ? 'Fermer la boîte' : 'Rouvrir la boîte'),
    closing ? h('p', { class: 'aide' }, 'Une boîte fermée ne peut plus être ouverte et le courrier qui lui est adressé est refusé. Son adresse n\'est jamais réattribuée.') : null,
    field('motif', 'Motif (facultatif, inscrit au journal)', reason),
    stateError,
    h('button', { type: 'submit', class: closing ? 'danger' : '' }, closing ? 'Fermer la boîte' : 'Rouvrir la boîte'),
  );
  submitting(stateForm, stateError, async () => {
    await ctx.api.send<Bal>('POST', `${boxApi(b.address)}/${closing ? 'close' : 'reopen'}`, reason.value.trim() ? { reason: reason.value.trim() } : {});
    ctx.go(here, closing ? 'Boîte fermée.' : 'Boîte rouverte.');
  });

  // Members of an organisational box.
  let members: HTMLElement | null = null;
  if (b.type === 'ORG') {
    const memberError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
    const login = h('input', { id: 'membre', name: 'login', required: true, maxlength: 128, spellcheck: 'false', autocomplete: 'off', 'aria-describedby': 'membre-aide' });
    const add = h('form', { class: 'filtres', 'aria-label': 'Ajouter un membre' }, field('membre', 'Identifiant de la personne', login, 'L\'identifiant de connexion d\'un compte local.'), h('button', { type: 'submit' }, 'Ajouter'));
    submitting(add, memberError, async () => {
      await ctx.api.send<Bal>('POST', `${boxApi(b.address)}/members`, { login: login.value.trim() });
      ctx.go(here, `${login.value.trim()} a été ajouté(e) aux membres.`);
    });
    const list = (b.members ?? []).map((m) => {
      const remove = h('button', { type: 'button', class: 'secondaire', 'aria-label': `Retirer ${m.login}` }, 'Retirer');
      remove.addEventListener('click', async () => {
        memberError.textContent = '';
        remove.disabled = true;
        try {
          await ctx.api.send<Bal>('DELETE', `${boxApi(b.address)}/members/${encodeURIComponent(m.login)}`);
          ctx.go(here, `${m.login} a été retiré(e) des membres.`);
        } catch (e) {
          memberError.textContent = messageOf(e);
          remove.disabled = false;
        }
      });
      return h('tr', {}, h('td', {}, m.login), h('td', {}, [m.prenom, m.nom].filter(Boolean).join(' ')), h('td', {}, m.idnps ?? ''), h('td', { class: 'date' }, shortDate(m.addedAt)), h('td', {}, remove));
    });
    members = h(
      'section',
      { 'aria-labelledby': 'titre-membres' },
      h('h2', { id: 'titre-membres' }, `Membres (${list.length})`),
      list.length
        ? h(
            'div',
            { class: 'table-defile' },
            h(
              'table',
              { class: 'liste' },
              h('caption', { class: 'lecteur' }, 'Membres de la boîte'),
              h('thead', {}, h('tr', {}, ['Identifiant', 'Nom', 'Identifiant national', 'Ajouté le', 'Action'].map((c) => h('th', { scope: 'col' }, c)))),
              h('tbody', {}, list),
            ),
          )
        : h('p', {}, 'Aucun membre.'),
      add,
      memberError,
    );
  }

  // Application certificates of a technical box: register one (a PEM file or pasted), revoke one.
  let certs: HTMLElement | null = null;
  if (b.type === 'APP') {
    const certError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
    const file = h('input', { id: 'cert-fichier', name: 'file', type: 'file', accept: '.pem,.crt,.cer,application/x-pem-file', 'aria-describedby': 'cert-fichier-aide' });
    const pasted = h('textarea', { id: 'cert-pem', name: 'pem', rows: 6, spellcheck: 'false', 'aria-describedby': 'cert-pem-aide' });
    const upload = h(
      'form',
      { class: 'formulaire', 'aria-labelledby': 'titre-cert-ajout' },
      h('h3', { id: 'titre-cert-ajout' }, 'Enregistrer un certificat'),
      field('cert-fichier', 'Fichier du certificat (PEM)', file, 'Le certificat du logiciel, suivi le cas échéant de ses autorités intermédiaires. Il doit porter l\'identifiant de la structure de la boîte.'),
      field('cert-pem', 'Ou le certificat collé (PEM)', pasted, 'Le texte qui commence par -----BEGIN CERTIFICATE-----.'),
      certError,
      h('button', { type: 'submit' }, 'Enregistrer le certificat'),
    );
    submitting(upload, certError, async () => {
      const pem = file.files?.[0] ? await file.files[0].text() : pasted.value.trim();
      if (!pem) throw new FormError('Choisissez un fichier ou collez le certificat.');
      await ctx.api.send<Bal>('POST', `${boxApi(b.address)}/certificates`, { pem });
      ctx.go(here, 'Certificat enregistré.');
    });
    const rows = (b.certificates ?? []).map((c) => {
      const revoke = c.revokedAt ? null : h('button', { type: 'button', class: 'danger', 'aria-label': `Révoquer le certificat ${c.subject}` }, 'Révoquer');
      revoke?.addEventListener('click', async () => {
        certError.textContent = '';
        revoke.disabled = true;
        try {
          await ctx.api.send<Bal>('DELETE', `${boxApi(b.address)}/certificates/${encodeURIComponent(c.fingerprint)}`);
          ctx.go(here, 'Certificat révoqué.');
        } catch (e) {
          certError.textContent = messageOf(e);
          revoke.disabled = false;
        }
      });
      return h(
        'tr',
        {},
        h('td', { class: 'objet' }, c.subject, h('br'), h('span', { class: 'aide' }, `SHA-256 ${c.fingerprint}`)),
        h('td', { class: 'date' }, `${shortDate(c.notBefore)} – ${shortDate(c.notAfter)}`),
        h('td', {}, c.revokedAt ? `révoqué le ${shortDate(c.revokedAt)}` : 'en vigueur'),
        h('td', {}, revoke),
      );
    });
    certs = h(
      'section',
      { 'aria-labelledby': 'titre-certificats' },
      h('h2', { id: 'titre-certificats' }, 'Certificats applicatifs'),
      rows.length
        ? h(
            'div',
            { class: 'table-defile' },
            h(
              'table',
              { class: 'liste' },
              h('caption', { class: 'lecteur' }, 'Certificats de la boîte'),
              h('thead', {}, h('tr', {}, ['Certificat', 'Validité', 'État', 'Action'].map((c) => h('th', { scope: 'col' }, c)))),
              h('tbody', {}, rows),
            ),
          )
        : h('p', {}, 'Aucun certificat enregistré.'),
      upload,
    );
  }

  const pgp = await openPgpSection(ctx, b.address, here);
  const storage = await storageSection(ctx, b.address, here);

  // What may change: names, service, responsible, liste rouge (the address and type never do).
  const editError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const text = (id: string, value: string | null, max: number) => h('input', { id, name: id, value: value ?? '', maxlength: max });
  const eName = text('m-nom', b.displayName, 200);
  const eDesc = text('m-description', b.description, 500);
  const eService = text('m-service', b.service, 200);
  const eResp = text('m-responsable', b.responsible, 200);
  const eRouge = h('input', { id: 'm-liste-rouge', name: 'listeRouge', type: 'checkbox', checked: b.listeRouge });
  const edit = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-modifier' },
    h('h2', { id: 'titre-modifier' }, 'Modifier la boîte'),
    field('m-nom', 'Nom affiché', eName),
    field('m-description', 'Description', eDesc),
    field('m-service', 'Service', eService),
    field('m-responsable', 'Responsable', eResp),
    h('div', { class: 'champ case' }, eRouge, h('label', { for: 'm-liste-rouge' }, "Liste rouge (la boîte n'est pas publiée dans l'annuaire)")),
    editError,
    h('button', { type: 'submit' }, 'Enregistrer les modifications'),
  );
  submitting(edit, editError, async () => {
    const change: Record<string, unknown> = {};
    const put = (k: keyof Bal, input: HTMLInputElement) => {
      if (input.value.trim() !== (b[k] ?? '')) change[k] = input.value.trim();
    };
    put('displayName', eName);
    put('description', eDesc);
    put('service', eService);
    put('responsible', eResp);
    if (eRouge.checked !== b.listeRouge) change.listeRouge = eRouge.checked;
    if (!Object.keys(change).length) throw new FormError('Rien n\'a changé.');
    await ctx.api.send<Bal>('PATCH', boxApi(b.address), change);
    ctx.go(here, 'Modifications enregistrées.');
  });

  fill(
    main,
    h('p', {}, h('a', { href: '#/boites' }, 'Retour à la liste')),
    h('h1', { tabindex: -1 }, b.address),
    h(
      'dl',
      { class: 'fiche' },
      row('Type', TYPE_LABEL[b.type]),
      row('État', b.status === 'active' ? 'ouverte' : `fermée le ${longDate(b.closedAt)}`),
      row('Nom affiché', b.displayName),
      row('Description', b.description),
      row('Service', b.service),
      row('Responsable', b.responsible),
      row(b.type === 'PER' || b.type === 'CAB' ? 'Titulaire (identifiant national)' : 'Structure titulaire', b.ownerId),
      row('Structure', b.type === 'PER' || b.type === 'CAB' ? b.structureId : null),
      row('Liste rouge', b.listeRouge ? 'oui (non publiée dans l\'annuaire)' : 'non'),
      row('Créée le', longDate(b.createdAt)),
      row('Rouverte le', b.reopenedAt ? longDate(b.reopenedAt) : null),
    ),
    h('p', {}, h('a', { href: `#/journal?sujet=${encodeURIComponent(b.address)}` }, 'Événements de cette boîte dans le journal')),
    members,
    certs,
    pgp,
    storage,
    edit,
    stateForm,
  );
  return b.address;
}

/** The box's OpenPGP key (issue 16 §4): shown, registered (a file or pasted), removed. The API checks the key and says why it refuses one. */
async function openPgpSection(ctx: ViewContext, address: string, here: string): Promise<HTMLElement> {
  const path = `${boxApi(address)}/openpgp-key`;
  let key: OpenPgpKey | null = null;
  try {
    key = await ctx.api.get<OpenPgpKey>(path);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
  const error = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const file = h('input', { id: 'pgp-fichier', name: 'file', type: 'file', accept: '.asc,.pgp,.gpg,.txt,application/pgp-keys', 'aria-describedby': 'pgp-fichier-aide' });
  const pasted = h('textarea', { id: 'pgp-cle', name: 'armored', rows: 6, spellcheck: 'false', 'aria-describedby': 'pgp-cle-aide' });
  const form = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-pgp-ajout' },
    h('h3', { id: 'titre-pgp-ajout' }, key ? 'Remplacer la clé' : 'Enregistrer une clé publique'),
    field('pgp-fichier', 'Fichier de la clé publique (.asc)', file, 'Exportée par gpg --armor --export. Jamais la clé privée : elle reste chez le titulaire.'),
    field('pgp-cle', 'Ou la clé collée', pasted, 'Le texte qui commence par -----BEGIN PGP PUBLIC KEY BLOCK-----.'),
    error,
    h('button', { type: 'submit' }, 'Enregistrer la clé'),
  );
  submitting(form, error, async () => {
    const armored = file.files?.[0] ? await file.files[0].text() : pasted.value.trim();
    if (!armored) throw new FormError('Choisissez un fichier ou collez la clé.');
    await ctx.api.send<OpenPgpKey>('PUT', path, { armored });
    ctx.go(here, 'Clé OpenPGP enregistrée : le courrier de la boîte sera chiffré.');
  });
  let remove: HTMLElement | null = null;
  if (key) {
    const button = h('button', { type: 'button', class: 'danger' }, 'Retirer la clé');
    button.addEventListener('click', async () => {
      error.textContent = '';
      button.disabled = true;
      try {
        await ctx.api.send('DELETE', path);
        ctx.go(here, 'Clé OpenPGP retirée : le courrier de la boîte sera conservé en clair.');
      } catch (e) {
        error.textContent = messageOf(e);
        button.disabled = false;
      }
    });
    remove = button;
  }
  return h(
    'section',
    { 'aria-labelledby': 'titre-pgp' },
    h('h2', { id: 'titre-pgp' }, 'Chiffrement OpenPGP'),
    h(
      'p',
      {},
      key
        ? `Le courrier de cette boîte est conservé chiffré pour la clé ${key.fingerprint} (${key.algorithm}${key.userIds.length ? `, ${key.userIds.join(', ')}` : ''}${key.expiresAt ? `, expire le ${shortDate(key.expiresAt)}` : ''}) : seul un logiciel de messagerie qui détient la clé privée peut le lire, pas le webmail.`
        : 'Aucune clé : le courrier de cette boîte est conservé tel qu\'il arrive.',
    ),
    remove,
    form,
  );
}
