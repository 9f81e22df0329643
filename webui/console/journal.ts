// The journal (#/journal): the audit trail, newest first, filtered by type, actor, subject and
// time; one event (#/journal/<n>) with its details and the export of its proof (a ZIP that
// openssl checks). A regional admin reads what the API gives it: the events of its scope.
import { messageOf } from '../common/api.js';
import { fill, h, longDate } from '../common/dom.js';
import { boxHref, journalEventHref } from './labels.js';
import type { JournalEvent } from './types.js';
import type { ViewContext } from './views.js';

const PAGE = 50;
const FILTERS = ['type', 'acteur', 'sujet', 'depuis', 'jusqua'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number] | 'avant', string>>;

function listHref(f: Filters): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  const qs = p.toString();
  return `#/journal${qs ? `?${qs}` : ''}`;
}

/** datetime-local (the browser's local time, no zone) → an instant for the API; '' when empty or unreadable. */
const instant = (local: string) => {
  const t = local ? new Date(local) : null;
  return t && !Number.isNaN(t.getTime()) ? t.toISOString() : '';
};
const dateTime = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'short', timeStyle: 'medium' });
const field = (id: string, label: string, control: HTMLElement, help?: string) =>
  h('div', { class: 'champ' }, h('label', { for: id }, label), help ? h('p', { id: `${id}-aide`, class: 'aide' }, help) : null, control);

export async function journalView(ctx: ViewContext, main: HTMLElement, _params: string[], query: URLSearchParams): Promise<string> {
  const f: Filters = {};
  for (const k of [...FILTERS, 'avant'] as const) {
    const v = (query.get(k) ?? '').slice(0, 254);
    if (v) f[k] = v;
  }
  const api = new URLSearchParams({ limit: String(PAGE + 1) });
  if (f.type) api.set('typePrefix', f.type);
  if (f.acteur) api.set('actor', f.acteur);
  if (f.sujet) api.set('subject', f.sujet);
  if (f.depuis && instant(f.depuis)) api.set('since', instant(f.depuis));
  if (f.jusqua && instant(f.jusqua)) api.set('until', instant(f.jusqua));
  if (f.avant && /^[0-9]{1,15}$/.test(f.avant)) api.set('beforeSeq', f.avant);
  const rows = await ctx.api.get<JournalEvent[]>(`/api/v1/journal?${api}`);
  const more = rows.length > PAGE;
  const shown = rows.slice(0, PAGE);

  const input = (id: string, name: keyof Filters, attrs: Record<string, string | number> = {}) => h('input', { id, name, value: f[name] ?? '', maxlength: 254, spellcheck: 'false', autocomplete: 'off', ...attrs });
  const type = input('f-type', 'type', { 'aria-describedby': 'f-type-aide' });
  const actor = input('f-acteur', 'acteur', { 'aria-describedby': 'f-acteur-aide' });
  const subject = input('f-sujet', 'sujet', { 'aria-describedby': 'f-sujet-aide' });
  const since = input('f-depuis', 'depuis', { type: 'datetime-local', step: 1 });
  const until = input('f-jusqua', 'jusqua', { type: 'datetime-local', step: 1 });
  const form = h(
    'form',
    { role: 'search', class: 'filtres', 'aria-label': 'Filtrer le journal' },
    field('f-type', 'Type', type, 'Le début suffit : « bal. », « admin.login ».'),
    field('f-acteur', 'Acteur', actor, 'Par exemple admin:ars-bretagne, system.'),
    field('f-sujet', 'Sujet', subject, 'Adresse de boîte, identifiant de personne, identifiant de message.'),
    field('f-depuis', 'Depuis', since),
    field('f-jusqua', "Jusqu'à", until),
    h('button', { type: 'submit' }, 'Filtrer'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go(listHref({ type: type.value.trim(), acteur: actor.value.trim(), sujet: subject.value.trim(), depuis: since.value, jusqua: until.value }));
  });
  const { avant: _a, ...withoutPage } = f;
  const filtered = FILTERS.some((k) => f[k]);
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Journal'),
    h('p', { class: 'resume' }, ctx.account.role === 'national' ? 'Tous les événements de la plateforme, les plus récents en premier.' : 'Les événements de votre périmètre (ses boîtes, leurs titulaires et membres, votre compte), les plus récents en premier.'),
    form,
    h('p', { class: 'resume', role: 'status' }, shown.length ? `${shown.length} événement${shown.length > 1 ? 's' : ''}${f.avant ? ` antérieurs au n° ${f.avant}` : ''}${more ? ' (il y en a d\'autres)' : ''}.` : filtered ? 'Aucun événement ne correspond à ces filtres.' : 'Aucun événement.'),
    filtered ? h('p', {}, h('a', { href: '#/journal' }, 'Effacer les filtres')) : null,
    shown.length
      ? h(
          'div',
          { class: 'table-defile' },
          h(
            'table',
            { class: 'liste' },
            h('caption', { class: 'lecteur' }, 'Événements du journal'),
            h('thead', {}, h('tr', {}, ['N°', 'Date', 'Type', 'Acteur', 'Sujet'].map((c) => h('th', { scope: 'col' }, c)))),
            h(
              'tbody',
              {},
              shown.map((e) =>
                h(
                  'tr',
                  {},
                  h('td', {}, h('a', { href: journalEventHref(e.seq), 'aria-label': `Événement n° ${e.seq}` }, String(e.seq))),
                  h('td', { class: 'date' }, h('time', { datetime: e.at }, dateTime.format(new Date(e.at)))),
                  h('td', {}, e.type),
                  h('td', { class: 'objet' }, e.actor),
                  h('td', { class: 'objet' }, e.subject ?? ''),
                ),
              ),
            ),
          ),
        )
      : null,
    f.avant || more
      ? h(
          'nav',
          { class: 'pages', 'aria-label': 'Pages du journal' },
          f.avant ? h('a', { href: listHref(withoutPage) }, 'Les plus récents') : null,
          more ? h('a', { href: listHref({ ...withoutPage, avant: String(shown[shown.length - 1].seq) }), rel: 'next' }, 'Événements plus anciens') : null,
        )
      : null,
  );
  return filtered ? 'Journal (filtré)' : 'Journal';
}

export async function eventView(ctx: ViewContext, main: HTMLElement, params: string[]): Promise<string> {
  const seq = Number(params[0]);
  const e = await ctx.api.get<JournalEvent>(`/api/v1/journal/${seq}`);
  const status = h('p', { class: 'etat-action', role: 'status' });
  const error = h('p', { class: 'erreur', role: 'alert' });
  const exportButton = h('button', { type: 'button' }, 'Exporter la preuve');
  exportButton.addEventListener('click', async () => {
    error.textContent = '';
    status.textContent = 'Préparation de la preuve…';
    exportButton.disabled = true;
    try {
      const zip = await ctx.api.blob(`/api/v1/journal/${seq}/proof`);
      const a = h('a', { href: URL.createObjectURL(zip), download: `preuve-evenement-${seq}.zip`, class: 'lecteur' }, 'preuve');
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      status.textContent = `Preuve de l'événement n° ${seq} téléchargée : preuve-evenement-${seq}.zip (vérifiable avec openssl ts -verify, voir README.txt).`;
    } catch (err) {
      status.textContent = '';
      error.textContent = messageOf(err);
    } finally {
      exportButton.disabled = false;
    }
  });
  const subject = e.subject && /^[^@\s]+@[^@\s]+$/.test(e.subject) ? h('a', { href: boxHref(e.subject) }, e.subject) : e.subject ?? '—';
  fill(
    main,
    h('p', {}, h('a', { href: '#/journal' }, 'Retour au journal')),
    h('h1', { tabindex: -1 }, `Événement n° ${e.seq}`),
    h(
      'dl',
      { class: 'fiche' },
      h('dt', {}, 'Date'),
      h('dd', {}, h('time', { datetime: e.at }, longDate(e.at))),
      h('dt', {}, 'Type'),
      h('dd', {}, e.type),
      h('dt', {}, 'Acteur'),
      h('dd', {}, h('a', { href: listHref({ acteur: e.actor }) }, e.actor)),
      h('dt', {}, 'Sujet'),
      h('dd', {}, subject),
      h('dt', {}, 'Empreinte (SHA-256)'),
      h('dd', { class: 'objet' }, e.hash),
    ),
    h('h2', {}, 'Détails'),
    h('pre', { class: 'details' }, JSON.stringify(e.details, null, 2)),
    h('h2', {}, 'Preuve'),
    h('p', { class: 'aide' }, "L'événement, son chemin dans l'arbre de Merkle de son lot scellé et le jeton d'horodatage RFC 3161 de ce lot, dans une archive ZIP vérifiable par un tiers avec openssl seul."),
    h('div', { class: 'actions' }, exportButton),
    status,
    error,
  );
  return `Événement n° ${e.seq}`;
}
