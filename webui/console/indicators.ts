// The dashboard's monthly indicators (GET /api/v1/indicators, annuaire/indicators): a month
// picker and, for the admin's scope, small bar charts. Each chart is a table (what a screen
// reader reads) whose last column draws the bar in plain SVG, hidden from assistive
// technology: the figure is already in the row. No chart library, no inline style (the CSP).
import { fill, h } from '../common/dom.js';
import type { ViewContext } from './views.js';

interface Row {
  domain: string;
  boxes: Record<string, number>;
  messages: Record<string, number>;
  refused: Record<string, number>;
  dmp: Record<string, number>;
  logins: Record<string, number>;
}
interface Indicators {
  month: string;
  scope: 'national' | 'regional';
  rows: Row[];
}

const nf = new Intl.NumberFormat('fr-FR');
const LABELS: Record<string, Record<string, string>> = {
  boxes: { PER: 'Personnelles', ORG: 'Organisationnelles', APP: 'Applicatives', CAB: 'Cabinet' },
  messages: {
    sentInside: 'Envoyés dans l’opérateur',
    receivedInside: 'Reçus dans l’opérateur',
    toOperators: 'Vers d’autres opérateurs',
    fromOperators: 'D’autres opérateurs',
    toPatients: 'Vers des patients',
    fromPatients: 'De patients',
  },
  dmp: { success: 'Réussis', failure: 'Échoués' },
  logins: { password: 'Mot de passe', certificate: 'Certificat', psc: 'Pro Santé Connect', any: 'Toutes méthodes' },
};
const TITLES: Array<[keyof Omit<Row, 'domain'>, string]> = [
  ['messages', 'Messages'],
  ['boxes', 'Boîtes ouvertes dans le mois'],
  ['logins', 'Personnes connectées'],
  ['dmp', 'Envois au DMP'],
  ['refused', 'Refus SMTP par motif'],
];
const SVG = 'http://www.w3.org/2000/svg';

/** A horizontal bar, `value` out of `max`, 100 units wide. */
function bar(value: number, max: number): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 100 10');
  svg.setAttribute('class', 'barre');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('preserveAspectRatio', 'none');
  const rect = document.createElementNS(SVG, 'rect');
  rect.setAttribute('width', String(max ? Math.max(value ? 1 : 0, (100 * value) / max) : 0));
  rect.setAttribute('height', '10');
  svg.append(rect);
  return svg;
}

function chart(id: string, title: string, figures: Record<string, number>, labels: Record<string, string> = {}): HTMLElement {
  const entries = Object.entries(figures);
  const max = Math.max(0, ...entries.map(([, v]) => v));
  return h(
    'table',
    { class: 'liste graphique', id },
    h('caption', {}, title),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Indicateur'), h('th', { scope: 'col' }, 'Nombre'), h('th', { scope: 'col' }, h('span', { class: 'lecteur' }, 'Barre')))),
    h(
      'tbody',
      {},
      entries.length
        ? entries.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, labels[k] ?? k), h('td', {}, nf.format(v)), h('td', {}, bar(v, max))))
        : h('tr', {}, h('td', { colspan: 3 }, 'aucun')),
    ),
  );
}

/** The month before the current one, as the monthly report is usually read. */
const lastMonth = () => {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
};

export function indicatorsSection(ctx: ViewContext): HTMLElement {
  const month = h('input', { type: 'month', id: 'mois-indicateurs', name: 'mois', value: lastMonth(), required: true, pattern: '[0-9]{4}-[0-9]{2}' });
  const out = h('div', { class: 'indicateurs', 'aria-live': 'polite' });
  const show = async () => {
    fill(out, h('p', {}, 'Chargement…'));
    try {
      const x = await ctx.api.get<Indicators>(`/api/v1/indicators?month=${encodeURIComponent(month.value)}`);
      fill(
        out,
        x.rows.map((r, i) =>
          h(
            'section',
            { 'aria-labelledby': `indicateurs-${i}` },
            h('h3', { id: `indicateurs-${i}` }, r.domain === '*' ? `Tout l’opérateur — ${x.month}` : `${r.domain} — ${x.month}`),
            h('div', { class: 'cartes' }, TITLES.map(([k, t]) => chart(`indicateurs-${i}-${k}`, t, r[k], LABELS[k]))),
          ),
        ),
      );
    } catch (e) {
      fill(out, h('p', { class: 'erreur', role: 'alert' }, `Les indicateurs ne peuvent pas être affichés : ${(e as Error).message}`));
    }
  };
  const form = h(
    'form',
    {
      class: 'filtres',
      onsubmit: (e: Event) => {
        e.preventDefault();
        void show();
      },
    },
    h('label', { for: 'mois-indicateurs' }, 'Mois (UTC)'),
    month,
    h('button', { type: 'submit' }, 'Afficher'),
  );
  void show();
  return h('section', { class: 'carte', 'aria-labelledby': 'titre-indicateurs' }, h('h2', { id: 'titre-indicateurs' }, 'Indicateurs mensuels'), form, out);
}
