// Where a box is stored, for a national account, when the mail store is shared by several
// back ends (mailstore.cluster): the back end and its pair, and a move to another back end
// (POST …/move). Within the pair the answer is immediate; to another pair the mail is
// copied first, and the page follows the move step by step until it ends.
import { ApiError } from '../common/api.js';
import { h, longDate } from '../common/dom.js';
import { boxApi } from './labels.js';
import type { ViewContext } from './views.js';
import { field, submitting } from './boxes.js';

interface Backend {
  name: string;
  partner: string | null;
  boxes: number;
}
interface Placement {
  backend: string;
  partner: string | null;
  placedAt: string;
}
interface Move {
  id: string;
  state: 'running' | 'done' | 'failed';
  steps: string[];
  result: { from: string; to: string; across: boolean; messages?: number } | null;
  error: { step: string; on: string | null; detail: string } | null;
}

/** How long the page waits between two looks at a running move. */
const POLL_MS = 1000;

/** The section, or null: not a national account, or an embedded store (no back end registered). */
export async function storageSection(ctx: ViewContext, address: string, here: string): Promise<HTMLElement | null> {
  if (ctx.account.role !== 'national') return null;
  const backends = await ctx.api.get<Backend[]>('/api/v1/mailstore/backends');
  if (!backends.length) return null;
  let placed: Placement | null = null;
  try {
    placed = await ctx.api.get<Placement>(`${boxApi(address)}/placement`);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
  }
  const where = placed
    ? h('p', {}, `Stockée sur ${placed.backend}${placed.partner ? ` (réplique sur ${placed.partner})` : ' (sans réplique)'} depuis le ${longDate(placed.placedAt)}.`)
    : h('p', {}, "Pas encore placée : elle l'est à sa première distribution ou connexion.");
  if (!placed) return h('section', { 'aria-labelledby': 'titre-stockage' }, h('h2', { id: 'titre-stockage' }, 'Stockage'), where);

  const samePair = (b: Backend) => b.name === placed!.partner || b.partner === placed!.backend;
  const target = h(
    'select',
    { id: 'deplacer-vers', name: 'backend', required: true, 'aria-describedby': 'deplacer-vers-aide' },
    backends
      .filter((b) => b.name !== placed!.backend)
      .map((b) => h('option', { value: b.name }, `${b.name} — ${samePair(b) ? 'même paire : seule la carte change' : 'autre paire : le courrier est copié'} (${b.boxes} boîte${b.boxes > 1 ? 's' : ''})`)),
  );
  const freeze = h('input', { id: 'gel', name: 'freezeSeconds', type: 'number', min: 5, max: 3600, step: 1, value: 300, required: true, 'aria-describedby': 'gel-aide' });
  const error = h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
  const steps = h('ol', { class: 'etapes', role: 'log', 'aria-live': 'polite', 'aria-label': 'Étapes du déplacement' });
  const form = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-deplacer' },
    h('h3', { id: 'titre-deplacer' }, 'Déplacer la boîte'),
    field('deplacer-vers', 'Vers le serveur', target, 'Dans la même paire, la réplique y est déjà. Vers une autre paire, le courrier est copié pendant que la boîte reste utilisable, puis elle est gelée un instant pour la dernière copie.'),
    field('gel', 'Gel maximal (secondes)', freeze, 'Pendant la dernière copie, les distributions attendent et les connexions sont refusées ; un déplacement plus long que ce gel est abandonné, la boîte reste où elle était.'),
    error,
    steps,
    h('button', { type: 'submit' }, 'Déplacer'),
  );
  submitting(form, error, async () => {
    steps.replaceChildren();
    let move = await ctx.api.send<Move>('POST', `${boxApi(address)}/move`, { backend: target.value, freezeSeconds: Number(freeze.value) });
    for (;;) {
      steps.replaceChildren(...move.steps.map((s) => h('li', {}, s)));
      if (move.state !== 'running' || !ctx.stillCurrent()) break;
      await new Promise((r) => setTimeout(r, POLL_MS));
      move = await ctx.api.get<Move>(`/api/v1/mailstore/moves/${move.id}`);
    }
    if (move.state === 'failed') {
      error.textContent = `Le déplacement a échoué à l'étape « ${move.error!.step} »${move.error!.on ? ` ; la boîte reste sur ${move.error!.on}, utilisable` : ''}. (${move.error!.detail})`;
      error.focus();
      return;
    }
    const r = move.result;
    if (r) ctx.go(here, `Boîte déplacée de ${r.from} vers ${r.to}${r.across ? ` (${r.messages ?? 0} message${(r.messages ?? 0) > 1 ? 's' : ''} copié${(r.messages ?? 0) > 1 ? 's' : ''})` : ''}.`);
  });
  return h('section', { 'aria-labelledby': 'titre-stockage' }, h('h2', { id: 'titre-stockage' }, 'Stockage'), where, form);
}
