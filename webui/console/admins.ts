// Admin accounts (#/comptes, #/compte/<login>) and one's own second factor (#/securite).
// What an admin sees and may change is the API's answer (core/policy): a national account
// sees every account; a regional one, the regional accounts inside its own scope, and the
// API refuses it a national account or a wider scope — the page shows the refusal.
import { ApiError } from '../common/api.js';
import { fill, h, shortDate } from '../common/dom.js';
import { field, FormError, submitting } from './boxes.js';
import { oncePassword } from './persons.js';
import type { AdminAccount } from './types.js';
import type { ViewContext } from './views.js';

export const accountHref = (login: string) => `#/compte/${encodeURIComponent(login)}`;
const accountApi = (login: string) => `/api/v1/admins/${encodeURIComponent(login)}`;
const ROLE: Record<AdminAccount['role'], string> = { national: 'national', regional: 'régional' };
const scopeText = (a: AdminAccount) => (a.role === 'national' ? 'tout le territoire' : [...a.domains, ...a.structures].join(', '));
/** "a.fr, b.fr" or one a line → the list the API takes. */
const listOf = (s: string) => s.split(/[\s,;]+/).map((x) => x.trim()).filter(Boolean);

/** Role, domains and structures: the same fields to create an account and to change its scope. */
function scopeFields(prefix: string, a?: AdminAccount) {
  const role = h('select', { id: `${prefix}-role`, name: 'role' }, (['regional', 'national'] as const).map((r) => h('option', { value: r, selected: (a?.role ?? 'regional') === r }, ROLE[r])));
  const domains = h('textarea', { id: `${prefix}-domaines`, name: 'domains', rows: 2, spellcheck: 'false', 'aria-describedby': `${prefix}-domaines-aide` }, a?.domains.join('\n') ?? '');
  const structures = h('textarea', { id: `${prefix}-structures`, name: 'structures', rows: 2, spellcheck: 'false', 'aria-describedby': `${prefix}-structures-aide` }, a?.structures.join('\n') ?? '');
  return {
    nodes: [
      field(`${prefix}-role`, 'Rôle', role),
      field(`${prefix}-domaines`, 'Domaines du périmètre', domains, 'Un domaine par ligne (ou séparés par des virgules). Sans objet pour un compte national.'),
      field(`${prefix}-structures`, 'Structures du périmètre', structures, 'FINESS ou SIRET, un par ligne. Sans objet pour un compte national.'),
    ],
    value: () => ({ role: role.value, domains: listOf(domains.value), structures: listOf(structures.value) }),
  };
}

export async function adminsView(ctx: ViewContext, main: HTMLElement): Promise<string> {
  const rows = await ctx.api.get<AdminAccount[]>('/api/v1/admins');
  const createError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const login = h('input', { id: 'c-login', name: 'login', required: true, minlength: 2, maxlength: 64, spellcheck: 'false', autocomplete: 'off' });
  const scope = scopeFields('c');
  const create = h('form', { class: 'formulaire', 'aria-labelledby': 'titre-creer-compte' }, h('h2', { id: 'titre-creer-compte' }, 'Créer un compte administrateur'), field('c-login', 'Identifiant', login), scope.nodes, createError, h('button', { type: 'submit' }, 'Créer le compte'));
  const created = h('div', { class: 'resultat' });
  submitting(create, createError, async () => {
    const r = await ctx.api.send<{ account: AdminAccount; password: string }>('POST', '/api/v1/admins', { login: login.value.trim(), ...scope.value() });
    fill(created, h('p', { class: 'avis' }, 'Compte ', h('a', { href: accountHref(r.account.login) }, r.account.login), ' créé.'), oncePassword(r.account.login, r.password));
    create.reset();
  });
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Comptes administrateurs'),
    h('p', { class: 'resume' }, ctx.account.role === 'national' ? 'Tous les comptes de la console et de l\'API d\'administration.' : 'Les comptes régionaux dont le périmètre est inclus dans le vôtre.'),
    h(
      'div',
      { class: 'table-defile' },
      h(
        'table',
        { class: 'liste' },
        h('caption', { class: 'lecteur' }, 'Comptes administrateurs'),
        h('thead', {}, h('tr', {}, ['Identifiant', 'Rôle', 'Périmètre', 'État', 'Dernière connexion'].map((c) => h('th', { scope: 'col' }, c)))),
        h(
          'tbody',
          {},
          rows.map((a) =>
            h(
              'tr',
              {},
              h('td', { class: 'objet' }, h('a', { href: accountHref(a.login) }, a.login)),
              h('td', {}, ROLE[a.role]),
              h('td', { class: 'objet' }, scopeText(a)),
              h('td', {}, [a.active ? 'actif' : 'désactivé', a.totp ? 'double authentification' : null].filter(Boolean).join(', ')),
              h('td', { class: 'date' }, shortDate(a.lastLoginAt)),
            ),
          ),
        ),
      ),
    ),
    create,
    created,
  );
  return 'Comptes administrateurs';
}

export async function adminView(ctx: ViewContext, main: HTMLElement, [name]: string[]): Promise<string> {
  // No route reads one account: the list is already narrowed to what this admin may see.
  const a = (await ctx.api.get<AdminAccount[]>('/api/v1/admins')).find((x) => x.login.toLowerCase() === name.toLowerCase());
  if (!a) {
    fill(main, h('h1', { tabindex: -1 }, 'Compte introuvable'), h('p', {}, `Aucun compte « ${name} » dans votre périmètre.`), h('p', {}, h('a', { href: '#/comptes' }, 'Revenir aux comptes')));
    return 'Compte introuvable';
  }
  const self = a.login === ctx.account.login;
  const scopeError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const scope = scopeFields('m', a);
  const change = h('form', { class: 'formulaire', 'aria-labelledby': 'titre-perimetre' }, h('h2', { id: 'titre-perimetre' }, 'Rôle et périmètre'), scope.nodes, scopeError, h('button', { type: 'submit' }, 'Enregistrer le périmètre'));
  submitting(change, scopeError, async () => {
    await ctx.api.send('PATCH', accountApi(a.login), scope.value());
    ctx.go(accountHref(a.login), 'Périmètre enregistré.');
  });

  const actError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const said = h('div', { class: 'resultat' });
  const toggle = h('form', { class: 'formulaire', 'aria-labelledby': 'titre-etat' }, h('h2', { id: 'titre-etat' }, a.active ? 'Désactiver le compte' : 'Réactiver le compte'), h('p', { class: 'aide' }, a.active ? 'Ses sessions prennent fin aussitôt ; il ne peut plus se connecter.' : 'Il pourra de nouveau se connecter.'), h('button', { type: 'submit', class: 'secondaire' }, a.active ? 'Désactiver' : 'Réactiver'));
  submitting(toggle, actError, async () => {
    if (self && a.active) throw new FormError('Un compte ne peut pas se désactiver lui-même : un autre administrateur doit le faire.');
    await ctx.api.send('POST', `${accountApi(a.login)}/${a.active ? 'disable' : 'enable'}`);
    ctx.go(accountHref(a.login), a.active ? 'Compte désactivé.' : 'Compte réactivé.');
  });
  const withTotp = h('input', { id: 'r-totp', name: 'resetTotp', type: 'checkbox' });
  const reset = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-reinit' },
    h('h2', { id: 'titre-reinit' }, 'Réinitialiser les accès'),
    h('p', { class: 'aide' }, 'Un nouveau mot de passe, affiché une seule fois ; les sessions ouvertes prennent fin.'),
    h('div', { class: 'champ' }, withTotp, ' ', h('label', { for: 'r-totp' }, 'Retirer aussi la validation en deux étapes (téléphone perdu)')),
    h('button', { type: 'submit', class: 'secondaire' }, 'Réinitialiser'),
  );
  submitting(reset, actError, async () => {
    if (self) throw new FormError('Un compte ne peut pas réinitialiser ses propres accès : un autre administrateur doit le faire.');
    const r = await ctx.api.send<{ account: AdminAccount; password: string }>('POST', `${accountApi(a.login)}/reset`, { resetTotp: withTotp.checked });
    fill(said, oncePassword(r.account.login, r.password));
  });

  fill(
    main,
    h('h1', { tabindex: -1 }, `Compte ${a.login}`),
    h(
      'dl',
      { class: 'fiche' },
      h('dt', {}, 'Rôle'),
      h('dd', {}, ROLE[a.role]),
      h('dt', {}, 'Périmètre'),
      h('dd', {}, scopeText(a)),
      h('dt', {}, 'État'),
      h('dd', {}, a.active ? 'actif' : 'désactivé'),
      h('dt', {}, 'Validation en deux étapes'),
      h('dd', {}, a.totp ? 'activée' : 'non activée'),
      h('dt', {}, 'Créé le'),
      h('dd', {}, `${shortDate(a.createdAt)} par ${a.createdBy}`),
      h('dt', {}, 'Dernière connexion'),
      h('dd', {}, shortDate(a.lastLoginAt) || 'jamais'),
    ),
    change,
    actError,
    said,
    toggle,
    reset,
    h('p', {}, h('a', { href: '#/comptes' }, 'Revenir aux comptes')),
  );
  return `Compte ${a.login}`;
}

/**
 * One's own second factor: a new secret with its otpauth:// URI (for an authenticator app;
 * no QR code is drawn, to keep the page free of a library), then the first code confirms it.
 * Where admin.requireTotp asks it of the account, every other page sends here first.
 */
export async function totpView(ctx: ViewContext, main: HTMLElement): Promise<string> {
  const me = await ctx.api.get<AdminAccount>('/api/v1/me');
  const error = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const steps = h('div', {});
  const start = h('form', { class: 'formulaire', 'aria-labelledby': 'titre-activer' }, h('h2', { id: 'titre-activer' }, me.totp ? 'Changer de téléphone' : 'Activer la validation en deux étapes'), error, h('button', { type: 'submit' }, me.totp ? 'Enrôler une nouvelle application' : 'Commencer'));
  submitting(start, error, async () => {
    const r = await ctx.api.send<{ secret: string; uri: string }>('POST', '/api/v1/me/totp');
    const confirmError = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
    const code = h('input', { id: 't-code', name: 'code', required: true, inputmode: 'numeric', autocomplete: 'one-time-code', pattern: '[0-9]{6}', maxlength: 6, 'aria-describedby': 't-code-aide' });
    const confirm = h('form', { class: 'formulaire', 'aria-labelledby': 'titre-confirmer' }, h('h2', { id: 'titre-confirmer' }, 'Confirmer avec un premier code'), field('t-code', 'Code de vérification', code, 'Les six chiffres que votre application affiche maintenant.'), confirmError, h('button', { type: 'submit' }, 'Confirmer'));
    submitting(confirm, confirmError, async () => {
      await ctx.api.send('POST', '/api/v1/me/totp/confirm', { code: code.value.trim() });
      ctx.go('#/securite', 'Validation en deux étapes activée : chaque connexion demandera désormais un code.');
    });
    fill(
      steps,
      h(
        'div',
        { class: 'avis', role: 'status' },
        h('p', {}, 'Dans votre application d\'authentification, ajoutez un compte avec cette clé : ', h('code', { class: 'secret', id: 't-secret' }, r.secret)),
        h('p', { class: 'aide' }, 'Ou le lien complet : ', h('code', { id: 't-uri' }, r.uri)),
        h('p', { class: 'aide' }, 'Elle n\'est affichée qu\'une fois ; tant qu\'elle n\'est pas confirmée, la connexion reste inchangée.'),
      ),
      confirm,
    );
    code.focus();
  });
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Validation en deux étapes'),
    h('p', {}, me.totp ? 'Elle est activée : chaque connexion demande le code de votre application.' : 'Elle n\'est pas activée : une connexion ne demande que le mot de passe.'),
    start,
    steps,
  );
  return 'Validation en deux étapes';
}

/** Where a refusal of the API sends the page: an account that must enrol its second factor goes to its page. */
export const mustEnrol = (e: unknown) => e instanceof ApiError && e.code === 'ADMIN_TOTP_ENROLMENT_REQUIRED';
