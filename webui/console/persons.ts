// Local accounts (#/personnes): search them, create one (its generated password is shown
// once), reset a password. A regional admin sees and acts on the persons attached to the
// boxes of its scope only — the API's answer.
import { messageOf } from '../common/api.js';
import { fill, h, shortDate } from '../common/dom.js';
import { field, submitting } from './boxes.js';
import { boxHref } from './labels.js';
import type { Person } from './types.js';
import type { ViewContext } from './views.js';

const PAGE = 25;
const href = (q: string, page = 1) => {
  const p = new URLSearchParams();
  if (q) p.set('q', q);
  if (page > 1) p.set('p', String(page));
  const qs = p.toString();
  return `#/personnes${qs ? `?${qs}` : ''}`;
};

/** A password given once by the API: shown in a status region, with what to do with it. */
export const oncePassword = (login: string, password: string) =>
  h('div', { class: 'avis', role: 'status' }, h('p', {}, `Mot de passe de ${login}, affiché une seule fois : `, h('code', { class: 'secret' }, password)), h('p', { class: 'aide' }, 'Transmettez-le à la personne par un canal sûr ; elle pourra le changer.'));

export async function personsView(ctx: ViewContext, main: HTMLElement, _params: string[], query: URLSearchParams): Promise<string> {
  const q = (query.get('q') ?? '').slice(0, 200);
  const page = Math.min(100_000, Math.max(1, Number(query.get('p')) || 1));
  const api = new URLSearchParams({ limit: String(PAGE + 1), offset: String((page - 1) * PAGE) });
  if (q) api.set('q', q);
  const rows = await ctx.api.get<Person[]>(`/api/v1/persons?${api}`);
  const more = rows.length > PAGE;
  const shown = rows.slice(0, PAGE);
  const said = h('div', { class: 'resultat' });
  const listError = h('p', { class: 'erreur', role: 'alert' });

  const words = h('input', { id: 'p-recherche', name: 'q', type: 'search', maxlength: 200, value: q, 'aria-describedby': 'p-recherche-aide' });
  const search = h('form', { role: 'search', class: 'filtres', 'aria-label': 'Rechercher des personnes' }, field('p-recherche', 'Rechercher', words, 'Identifiant, nom, prénom ou identifiant national.'), h('button', { type: 'submit' }, 'Afficher'));
  search.addEventListener('submit', (e) => {
    e.preventDefault();
    ctx.go(href(words.value.trim()));
  });

  const body = shown.map((p) => {
    const reset = h('button', { type: 'button', class: 'secondaire', 'aria-label': `Nouveau mot de passe pour ${p.login}` }, 'Nouveau mot de passe');
    reset.addEventListener('click', async () => {
      listError.textContent = '';
      reset.disabled = true;
      try {
        const r = await ctx.api.send<{ password: string }>('POST', `/api/v1/persons/${encodeURIComponent(p.login)}/reset-credentials`, {});
        fill(said, oncePassword(p.login, r.password));
      } catch (e) {
        listError.textContent = messageOf(e);
      } finally {
        reset.disabled = false;
      }
    });
    return h(
      'tr',
      {},
      h('td', {}, p.login),
      h('td', {}, [p.prenom, p.nom].filter(Boolean).join(' ')),
      h('td', {}, p.idnps ?? ''),
      h('td', {}, [p.active ? 'actif' : 'inactif', p.hasTotp ? 'double authentification' : null].filter(Boolean).join(', ')),
      h('td', { class: 'date' }, shortDate(p.createdAt)),
      h('td', {}, reset),
    );
  });

  // A new account; a regional admin must tie it to an organisational box of its scope.
  const createError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const login = h('input', { id: 'n-login', name: 'login', required: true, minlength: 2, maxlength: 128, spellcheck: 'false', autocomplete: 'off' });
  const prenom = h('input', { id: 'n-prenom', name: 'prenom', maxlength: 100 });
  const nom = h('input', { id: 'n-nom', name: 'nom', maxlength: 100 });
  const idnps = h('input', { id: 'n-idnps', name: 'idnps', minlength: 9, maxlength: 12, spellcheck: 'false', 'aria-describedby': 'n-idnps-aide' });
  const memberOf = h('input', { id: 'n-membre', name: 'memberOf', maxlength: 254, spellcheck: 'false', required: ctx.account.role === 'regional', 'aria-describedby': 'n-membre-aide' });
  const create = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-creer-personne' },
    h('h2', { id: 'titre-creer-personne' }, 'Créer un compte'),
    field('n-login', 'Identifiant', login),
    field('n-prenom', 'Prénom (facultatif)', prenom),
    field('n-nom', 'Nom (facultatif)', nom),
    field('n-idnps', 'Identifiant national (facultatif)', idnps, 'RPPS ou ADELI précédé de son chiffre de type, pour un professionnel.'),
    field('n-membre', ctx.account.role === 'regional' ? 'Membre de la boîte' : 'Membre de la boîte (facultatif)', memberOf, 'Adresse d\'une boîte organisationnelle à laquelle l\'ajouter aussitôt.'),
    createError,
    h('button', { type: 'submit' }, 'Créer le compte'),
  );
  const created = h('div', { class: 'resultat' });
  submitting(create, createError, async () => {
    const opt = (i: HTMLInputElement, k: string) => (i.value.trim() ? { [k]: i.value.trim() } : {});
    const r = await ctx.api.send<{ person: Person; password: string; memberOf?: { address: string } }>('POST', '/api/v1/persons', {
      login: login.value.trim(),
      ...opt(prenom, 'prenom'),
      ...opt(nom, 'nom'),
      ...opt(idnps, 'idnps'),
      ...opt(memberOf, 'memberOf'),
    });
    fill(
      created,
      h('p', { class: 'avis' }, `Compte ${r.person.login} créé`, r.memberOf ? [' et ajouté à ', h('a', { href: boxHref(r.memberOf.address) }, r.memberOf.address)] : null, '.'),
      oncePassword(r.person.login, r.password),
    );
    create.reset();
  });

  const at = (p: number) => href(q, p);
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Personnes'),
    h('p', { class: 'resume' }, ctx.account.role === 'national' ? 'Les comptes locaux de la plateforme.' : 'Les comptes locaux rattachés aux boîtes de votre périmètre (titulaires et membres).'),
    search,
    said,
    listError,
    shown.length
      ? h(
          'div',
          { class: 'table-defile' },
          h(
            'table',
            { class: 'liste' },
            h('caption', { class: 'lecteur' }, `Personnes, page ${page}`),
            h('thead', {}, h('tr', {}, ['Identifiant', 'Nom', 'Identifiant national', 'État', 'Créé le', 'Action'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, body),
          ),
        )
      : h('p', {}, q ? 'Aucune personne ne correspond à cette recherche.' : 'Aucune personne.'),
    page > 1 || more ? h('nav', { class: 'pages', 'aria-label': 'Pages de la liste' }, page > 1 ? h('a', { href: at(page - 1), rel: 'prev' }, 'Page précédente') : null, h('span', {}, `Page ${page}`), more ? h('a', { href: at(page + 1), rel: 'next' }, 'Page suivante') : null) : null,
    create,
    created,
  );
  return 'Personnes';
}
