// The dashboard (#/): the admin's figures at a glance, in its scope (GET /api/v1/dashboard).
import { fill, h, longDate, shortDate } from '../common/dom.js';
import { TYPE_PLURAL, boxHref, journalEventHref } from './labels.js';
import { indicatorsSection } from './indicators.js';
import type { BalType, Dashboard } from './types.js';
import type { ViewContext } from './views.js';

const nf = new Intl.NumberFormat('fr-FR');
const n = (x: number) => nf.format(x);
const plural = (x: number, one: string, many: string) => `${n(x)} ${x > 1 ? many : one}`;
const KIND: Record<string, string> = { activity: 'Professionnels (RPPS, activités)', mssante: 'Adresses MSSanté' };

function card(title: string, id: string, ...body: Array<Node | string | null>) {
  return h('section', { class: 'carte', 'aria-labelledby': id }, h('h2', { id }, title), ...body);
}
const pairs = (rows: Array<[string, string]>) => h('dl', {}, rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));

const COUNT: Record<string, string> = { seen: 'distinctes', inserted: 'ajoutées', updated: 'modifiées', unchanged: 'inchangées', deactivated: 'désactivées', merged: 'fusionnées' };

/** What an import changed, table by table: "ajoutées 12, modifiées 3…" as the importer counted it. */
function countsText(counts: Dashboard['imports'][number]['counts']): string {
  const parts: string[] = [];
  for (const [table, c] of Object.entries(counts)) {
    if (typeof c === 'number') parts.push(`${table} ${n(c)}`);
    else if (c && typeof c === 'object') parts.push(`${table} : ${Object.entries(c).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${COUNT[k] ?? k} ${n(v as number)}`).join(', ')}`);
  }
  return parts.join(' ; ');
}

export async function dashboardView(ctx: ViewContext, main: HTMLElement): Promise<string> {
  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const d = await ctx.api.get<Dashboard>(`/api/v1/dashboard?since=${encodeURIComponent(midnight.toISOString())}`);
  const total = d.boxes.reduce((s, b) => s + b.active, 0);
  const closed = d.boxes.reduce((s, b) => s + b.closed, 0);

  const alerts: Array<Node> = [];
  for (const c of d.alerts.certificates) {
    const past = new Date(c.notAfter) < new Date();
    alerts.push(h('li', {}, `Certificat applicatif de `, h('a', { href: boxHref(c.address) }, c.address), past ? ` expiré le ${longDate(c.notAfter)}` : ` expire le ${longDate(c.notAfter)}`, ` (${c.subject}).`));
  }
  if (d.alerts.serverCertificate) alerts.push(h('li', {}, `Le certificat serveur de la plateforme expire le ${longDate(d.alerts.serverCertificate.notAfter)} (${d.alerts.serverCertificate.subject}).`));
  if (d.alerts.deferred)
    alerts.push(h('li', {}, `${plural(d.alerts.deferred.count, 'message différé', 'messages différés')} : la remise a échoué et sera retentée${d.alerts.deferred.oldest ? ` (le plus ancien reçu le ${shortDate(d.alerts.deferred.oldest)})` : ''}.`));
  if (d.alerts.dmp) {
    const l = d.alerts.dmp.latest;
    alerts.push(
      h(
        'li',
        {},
        `${plural(d.alerts.dmp.count, 'envoi au DMP a échoué', 'envois au DMP ont échoué')} depuis le ${shortDate(d.alerts.dmp.since)}`,
        l ? [' ; le dernier pour ', h('a', { href: boxHref(l.bal) }, l.bal), ` le ${shortDate(l.at)}${l.error ? ` (${l.error})` : ''}`] : null,
        '.',
      ),
    );
  }

  const scope = d.scope === 'national' ? 'Périmètre national : toutes les boîtes de l\'opérateur.' : `Périmètre régional : ${[...ctx.account.domains, ...ctx.account.structures].join(', ')}.`;
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Tableau de bord'),
    h('p', { class: 'resume' }, scope),
    h(
      'section',
      { 'aria-labelledby': 'titre-alertes', class: alerts.length ? 'alerte' : 'avis' },
      h('h2', { id: 'titre-alertes' }, alerts.length ? `Alertes (${alerts.length})` : 'Alertes'),
      alerts.length ? h('ul', { class: 'alertes' }, alerts) : h('p', {}, 'Aucune alerte : pas de certificat proche de son échéance, pas de message différé, pas d\'échec d\'envoi au DMP.'),
    ),
    h(
      'div',
      { class: 'cartes' },
      card(
        'Boîtes aux lettres',
        'titre-boites',
        h(
          'table',
          { class: 'liste' },
          h('caption', { class: 'lecteur' }, 'Boîtes par type'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'Ouvertes'), h('th', { scope: 'col' }, 'Fermées'))),
          h(
            'tbody',
            {},
            (['PER', 'ORG', 'APP', 'CAB'] as BalType[]).map((t) => {
              const b = d.boxes.find((x) => x.type === t) ?? { active: 0, closed: 0 };
              return h('tr', {}, h('th', { scope: 'row' }, h('a', { href: `#/boites?type=${t}` }, TYPE_PLURAL[t])), h('td', {}, n(b.active)), h('td', {}, n(b.closed)));
            }),
            h('tr', {}, h('th', { scope: 'row' }, 'Total'), h('td', {}, n(total)), h('td', {}, n(closed))),
          ),
        ),
      ),
      card(
        "Messages aujourd'hui",
        'titre-messages',
        d.traffic
          ? pairs([
              ['Reçus des autres opérateurs', n(d.traffic.received)],
              ['Envoyés par vos utilisateurs', n(d.traffic.sent)],
            ])
          : h('p', {}, 'La messagerie (SMTP) ne fonctionne pas sur cette plateforme.'),
      ),
      card(
        "File d'attente",
        'titre-file',
        d.traffic
          ? pairs([
              ['Messages en attente', n(d.traffic.queued)],
              ['Le plus ancien', d.traffic.oldest ? `reçu le ${shortDate(d.traffic.oldest)}` : 'aucun'],
              ['Dont différés', n(d.traffic.deferred)],
            ])
          : h('p', {}, 'La messagerie (SMTP) ne fonctionne pas sur cette plateforme.'),
      ),
      card(
        "Dernier import de l'annuaire",
        'titre-import',
        d.imports.length
          ? h(
              'ul',
              { class: 'imports' },
              d.imports.map((i) =>
                h(
                  'li',
                  {},
                  h('strong', {}, KIND[i.kind] ?? i.kind),
                  pairs([
                    ['Fichier', i.file],
                    ['Extraction du', longDate(i.extractionDate)],
                    ['Importé le', `${shortDate(i.importedAt)} par ${i.actor}`],
                    ['Lignes lues', n(i.lines)],
                    ['Lignes rejetées', n(i.rejected)],
                    ['Changements', countsText(i.counts) || 'aucun'],
                  ]),
                  i.journalSeq ? h('p', {}, h('a', { href: journalEventHref(i.journalSeq) }, `Rapport complet (événement n° ${i.journalSeq} du journal)`)) : null,
                ),
              ),
            )
          : h('p', {}, "Aucune extraction nationale n'a encore été importée."),
      ),
    ),
    indicatorsSection(ctx),
  );
  return 'Tableau de bord';
}
