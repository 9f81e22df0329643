// Clinical documents in a message (an IHE_XDM.zip or a CDA attachment): what they are —
// patient, document type, author, date, confidentiality and DMP visibility —, their
// human-readable part in a sandboxed frame, the hand-off to the DMP with a visibility choice
// and every hand-off's outcome; and the page of an organisational box's DMP rule. What is
// shown comes from the webmail API (dmp/ reads the documents on the server).
import { messageOf, type ApiClient } from '../common/api.js';
import { fill, h, longDate } from '../common/dom.js';
import type { ClinicalAttachment, ClinicalDocument, DmpOutcome, DmpRuleAnswer, Masking, Message } from './types.js';

const enc = encodeURIComponent;

export const MASKING_LABELS: Record<Masking, string> = {
  normal: 'Visible (pas de masquage)',
  'masque-ps': 'Masqué aux professionnels de santé',
  'invisible-patient': 'Invisible pour le patient',
  'invisible-representants-legaux': 'Invisible pour les représentants légaux',
};
const MASKINGS = Object.keys(MASKING_LABELS) as Masking[];

const frDay = (iso: string | null) => (iso ? iso.split('-').reverse().join('/') : '');
const row = (label: string, value: string | null | undefined) => (value ? [h('dt', {}, label), h('dd', {}, value)] : []);

/** The narrative of a document in a frame that runs nothing: no script, no form, no navigation, no access to the page. */
function narrativeFrame(html: string, title: string): HTMLIFrameElement {
  const frame = h('iframe', { class: 'corps-html document-clinique', title: `Contenu lisible du document : ${title}`, sandbox: '', referrerpolicy: 'no-referrer' });
  frame.srcdoc = `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${title.replace(/[<&>"]/g, '')}</title></head><body>${html}</body></html>`;
  return frame;
}

function documentView(d: ClinicalDocument, n: number): HTMLElement {
  const p = d.patient;
  const title = d.title ?? d.type?.display ?? `Document ${n}`;
  const patient = [p.family?.toUpperCase(), p.given].filter(Boolean).join(' ');
  return h(
    'article',
    { class: 'document', 'aria-label': `Document : ${title}` },
    h('h4', {}, title),
    h(
      'dl',
      { class: 'entetes' },
      row('Patient', patient || '(non indiqué)'),
      row('Né(e) le', frDay(p.birthDate)),
      row('INS', p.ins ? `${p.ins}${p.insKind ? ` (${p.insKind})` : ''}` : '(absent)'),
      row('Type de document', d.type ? `${d.type.display ?? d.type.code} (${d.type.code})` : null),
      row('Auteur', d.authors.map((a) => [a.name, a.institution].filter(Boolean).join(', ')).filter(Boolean).join(' ; ')),
      row('Date du document', longDate(d.date)),
      row('Confidentialité', d.confidentiality.map((c) => c.display ?? c.code).join(', ')),
      row('Visibilité DMP', d.masking.map((m) => MASKING_LABELS[m] ?? m).join(', ')),
    ),
    d.narrative ? narrativeFrame(d.narrative, title) : h('p', { class: 'aide' }, d.narrativeError ? `Le texte du document ne peut pas être affiché : ${d.narrativeError}` : 'Ce document n’a pas de partie lisible à afficher ici.'),
  );
}

function attachmentView(a: ClinicalAttachment): HTMLElement {
  return h(
    'section',
    { class: 'piece-clinique', 'aria-label': `Documents de ${a.filename}` },
    h('h3', {}, `${a.kind === 'xdm' ? 'Archive IHE_XDM' : 'Document CDA'} : ${a.filename}`),
    a.error ? h('p', { class: 'erreur' }, `Pièce refusée, rien n’en est affiché : ${a.error}`) : a.documents.map((d, i) => documentView(d, i + 1)),
  );
}

function outcomesList(list: DmpOutcome[]): HTMLElement {
  return h(
    'section',
    { 'aria-labelledby': 'titre-envois-dmp' },
    h('h3', { id: 'titre-envois-dmp' }, 'Envois au DMP de ce message'),
    list.length
      ? h(
          'ul',
          { class: 'envois' },
          list.map((o) =>
            h(
              'li',
              {},
              h('strong', {}, o.status === 'success' ? 'Réussi' : 'Échec'),
              ` — ${longDate(o.submittedAt)}, par ${o.actor}${o.masking ? `, ${MASKING_LABELS[o.masking] ?? o.masking}` : ''}`,
              o.errors.length ? h('ul', {}, o.errors.map((e) => h('li', {}, `${e.code} : ${e.context ?? ''}`))) : null,
            ),
          ),
        )
      : h('p', {}, 'Ce message n’a pas encore été envoyé au DMP.'),
  );
}

/** The clinical documents of a message, the DMP hand-off and its outcomes; null when the message carries none. */
export function clinicalSection(api: ApiClient, path: string, m: Message): HTMLElement | null {
  if (!m.documents && !m.documentsError) return null;
  const views = (m.documents ?? []).map((d) => d.view).filter((v): v is ClinicalAttachment => !!v);
  const outcomes = h('div', {}, outcomesList(m.dmp ?? []));
  const status = h('p', { class: 'etat-action', role: 'status' });
  const choices = MASKINGS.map((k, i) =>
    h('div', { class: 'choix' }, h('input', { type: 'radio', name: 'masquage', id: `masquage-${k}`, value: k, checked: i === 0 }), h('label', { for: `masquage-${k}` }, MASKING_LABELS[k])),
  );
  const send = h('button', { type: 'submit' }, 'Envoyer au DMP');
  const form = h('form', { class: 'envoi-dmp' }, h('fieldset', {}, h('legend', {}, 'Visibilité des documents dans le DMP'), choices), send);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const masking = (form.querySelector('input[name=masquage]:checked') as HTMLInputElement | null)?.value ?? 'normal';
    send.disabled = true;
    status.textContent = 'Envoi au DMP…';
    try {
      const r = await api.send<{ outcome: string; reason?: string; submissions: Array<{ errors: Array<{ code: string; context?: string }> }> }>('POST', `${path}/dmp`, { masking });
      status.textContent =
        r.outcome === 'success'
          ? `Documents envoyés au DMP (${MASKING_LABELS[masking as Masking]}).`
          : r.outcome === 'nothing'
            ? 'Ce message ne contient aucun document pour le DMP.'
            : `Le DMP a refusé les documents : ${r.reason ?? r.submissions.flatMap((s) => s.errors.map((x) => `${x.code} ${x.context ?? ''}`)).join(' ; ')}`;
      const again = await api.get<Message>(`${path}?markSeen=false`);
      fill(outcomes, outcomesList(again.dmp ?? []));
    } catch (err) {
      status.textContent = messageOf(err);
    } finally {
      send.disabled = false;
    }
  });
  const ok = views.some((v) => !v.error && v.documents.length);
  return h(
    'section',
    { class: 'clinique', 'aria-labelledby': 'titre-clinique' },
    h('h2', { id: 'titre-clinique' }, 'Documents cliniques'),
    m.documentsError ? h('p', { class: 'erreur' }, `Les documents ne peuvent pas être lus : ${m.documentsError.detail}`) : null,
    views.map(attachmentView),
    ok ? form : null,
    status,
    outcomes,
  );
}

/** #/regle-dmp/<box>: the box's DMP rule; the form only for those the platform lets set it. */
export async function dmpRuleView(api: ApiClient, main: HTMLElement, bal: string): Promise<string> {
  const path = `/api/v1/bals/${enc(bal)}/dmp-rule`;
  let r = await api.get<DmpRuleAnswer>(path);
  const title = `Règle DMP — ${bal}`;
  const state = h('p', { class: 'resume' });
  const status = h('p', { class: 'etat-action', role: 'status' });
  const draw = () => {
    state.textContent = r.rule
      ? `${r.rule.enabled ? 'Active' : 'Suspendue'} : chaque document clinique reçu dans cette boîte part au DMP, ${MASKING_LABELS[r.rule.masking as Masking] ?? r.rule.masking}. (Modifiée le ${longDate(r.rule.updatedAt)}.)`
      : 'Aucune règle : les documents reçus ne partent au DMP que si quelqu’un les y envoie depuis le message.';
  };
  draw();
  const select = h('select', { id: 'regle-masquage' }, MASKINGS.map((k) => h('option', { value: k, selected: r.rule?.masking === k }, MASKING_LABELS[k])));
  const enabled = h('input', { type: 'checkbox', id: 'regle-active', checked: r.rule ? r.rule.enabled : true });
  const save = h('button', { type: 'submit' }, 'Enregistrer la règle');
  const remove = h('button', { type: 'button', class: 'secondaire' }, 'Supprimer la règle');
  const act = async (fn: () => Promise<DmpRuleAnswer>, said: string) => {
    save.disabled = remove.disabled = true;
    try {
      r = await fn();
      draw();
      status.textContent = said;
    } catch (e) {
      status.textContent = messageOf(e);
    } finally {
      save.disabled = remove.disabled = false;
    }
  };
  const form = h(
    'form',
    { class: 'redaction', 'aria-label': 'Modifier la règle DMP' },
    h('div', { class: 'champ' }, h('label', { for: 'regle-masquage' }, 'Visibilité des documents envoyés'), select),
    h('div', { class: 'champ choix' }, enabled, h('label', { for: 'regle-active' }, 'Règle active')),
    h('div', { class: 'actions' }, save, remove),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void act(() => api.send('PUT', path, { masking: select.value, enabled: enabled.checked }), 'Règle enregistrée.');
  });
  remove.addEventListener('click', () => void act(() => api.send('DELETE', path), 'Règle supprimée.'));
  fill(
    main,
    h('h1', { tabindex: -1 }, title),
    h('p', {}, 'Une règle DMP envoie au dossier médical partagé du patient chaque document clinique (IHE_XDM, CDA) reçu dans cette boîte, avec la visibilité choisie.'),
    state,
    r.maySet ? form : h('p', { class: 'avis' }, `Vous ne pouvez pas modifier cette règle : ${r.why ?? ''}`),
    status,
  );
  return title;
}
