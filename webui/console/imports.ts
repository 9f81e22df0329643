// National imports (#/imports), national admins only — the API decides (core/policy):
// - the liste blanche: the file is previewed (what would be added, removed, changed), then
//   applied exactly as previewed (the API checks the file's and the list in place's SHA-256);
// - an annuaire extraction: the file is sent as it is (the browser streams it from disk), its
//   upload shown, then the import's progress as the API streams it, and at the end its report:
//   counts, rejected lines with their reasons, the full report to download.
import { ApiError, messageOf } from '../common/api.js';
import { announce, fill, h, longDate, size } from '../common/dom.js';
import { field } from './boxes.js';
import { journalEventHref } from './labels.js';
import type { ExtractionJob, TableCounts, WhitelistPreview } from './import-types.js';
import type { ViewContext } from './views.js';

const nf = new Intl.NumberFormat('fr-FR');
const n = (x: number) => nf.format(x);
/** Names listed per kind of change in a preview; the counts say the rest. */
const LISTED = 200;
/** The file names the API accepts: as published, they carry the extraction date. */
const EXTRACTION_NAME = /^[\w.-]{1,200}\.(txt|zip)$/;

/** The refusals of these pages in French, with the API's own sentence for the details. */
function importMessage(e: unknown): string {
  if (!(e instanceof ApiError)) return messageOf(e);
  const why = ` (${e.detail})`;
  switch (e.code) {
    case 'WHITELIST_INVALID':
      return `Ce fichier n'est pas une liste blanche utilisable ; rien n'a changé.${why}`;
    case 'WHITELIST_OLDER':
      return `Cette liste blanche est plus ancienne que celle en place ; rien n'a changé.${why}`;
    case 'WHITELIST_PREVIEW_MISMATCH':
      return `La liste n'a pas été appliquée : elle n'est plus celle que vous avez prévisualisée (fichier différent, ou un autre import a eu lieu entre-temps). Prévisualisez-la de nouveau.${why}`;
    case 'HTTP_BODY_TOO_LARGE':
      return `Le fichier est trop volumineux pour être accepté ; rien n'a été importé.${why}`;
    case 'ADMIN_OUT_OF_SCOPE':
      return `Les imports nationaux sont réservés aux administrateurs nationaux.${why}`;
    default:
      return messageOf(e);
  }
}

/** An import's own refusal of a file (in the job's outcome), in French. */
const FAILURE: Record<string, string> = {
  ANNUAIRE_UNKNOWN_FILE: "ce n'est pas une extraction que la plateforme sait lire",
  ANNUAIRE_NO_DATE: "la date de l'extraction ne se lit pas dans le nom du fichier",
  ANNUAIRE_FUTURE_EXTRACTION: "l'extraction est datée dans le futur",
  ANNUAIRE_OLDER_EXTRACTION: "l'extraction est plus ancienne que la dernière importée",
  ANNUAIRE_ZIP_REFUSED: "l'archive est refusée",
  ANNUAIRE_READ_FAILED: 'le fichier ne peut pas être lu',
};

const errorBox = () => h('p', { class: 'erreur', role: 'alert', tabindex: -1 });
function show(error: HTMLElement, e: unknown) {
  error.textContent = importMessage(e);
  error.focus();
}

/** A list of names, the first LISTED of them, in a disclosure closed by default. */
function names(title: string, list: string[]) {
  if (!list.length) return null;
  const shown = list.slice(0, LISTED);
  return h(
    'details',
    {},
    h('summary', {}, `${title} (${n(list.length)})`),
    h('ul', { class: 'domaines' }, shown.map((d) => h('li', {}, d))),
    list.length > shown.length ? h('p', {}, `… et ${n(list.length - shown.length)} autres.`) : null,
  );
}

function previewOf(p: WhitelistPreview): HTMLElement {
  const changed = p.changes.slice(0, LISTED);
  return h(
    'section',
    { 'aria-labelledby': 'titre-apercu', class: 'carte' },
    h('h3', { id: 'titre-apercu' }, p.dryRun ? 'Ce que cette liste changerait' : 'Ce qui a changé'),
    h(
      'dl',
      {},
      h('dt', {}, 'Liste générée le'),
      h('dd', {}, longDate(p.generatedAt)),
      h('dt', {}, 'Domaines dans la liste'),
      h('dd', {}, n(p.domains)),
      h('dt', {}, 'Ajoutés'),
      h('dd', {}, n(p.added.length)),
      h('dt', {}, 'Retirés'),
      h('dd', {}, n(p.removed.length)),
      h('dt', {}, 'Modifiés'),
      h('dd', {}, n(p.changed.length)),
      h('dt', {}, 'Entrées inutilisables'),
      h('dd', {}, n(p.rejected.length)),
    ),
    p.unchanged ? h('p', {}, 'Cette liste est déjà celle en place : rien à appliquer.') : null,
    names('Domaines ajoutés', p.added),
    names('Domaines retirés', p.removed),
    changed.length
      ? h(
          'details',
          {},
          h('summary', {}, `Domaines modifiés (${n(p.changed.length)})`),
          h(
            'div',
            { class: 'table-defile' },
            h(
              'table',
              { class: 'liste' },
              h('caption', { class: 'lecteur' }, 'Domaines modifiés : champ, avant, après'),
              h('thead', {}, h('tr', {}, ['Domaine', 'Champ', 'Avant', 'Après'].map((c) => h('th', { scope: 'col' }, c)))),
              h(
                'tbody',
                {},
                changed.flatMap((c) => c.fields.map((f) => h('tr', {}, h('th', { scope: 'row' }, c.domain), h('td', {}, f.field), h('td', {}, f.before ?? '—'), h('td', {}, f.after ?? '—')))),
              ),
            ),
          ),
        )
      : null,
    p.rejected.length
      ? h('details', {}, h('summary', {}, `Entrées inutilisables (${n(p.rejected.length)})`), h('ul', {}, p.rejected.slice(0, LISTED).map((r) => h('li', {}, `${r.name} : ${r.reason}`))))
      : null,
  );
}

/** The file picked, the form's error and result cleared; null, with the error said, when none is. */
function pickedFile(input: HTMLInputElement, error: HTMLElement, result: HTMLElement): File | null {
  const file = input.files?.[0];
  error.textContent = '';
  fill(result);
  if (file) return file;
  error.textContent = 'Choisissez un fichier.';
  error.focus();
  return null;
}

function whitelistSection(ctx: ViewContext): HTMLElement {
  const input = h('input', { id: 'lb-fichier', name: 'fichier', type: 'file', accept: '.xml,application/xml,text/xml', required: true, 'aria-describedby': 'lb-fichier-aide' });
  const error = errorBox();
  const result = h('div', { class: 'resultat' });
  const form = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-liste-blanche' },
    h('h2', { id: 'titre-liste-blanche' }, 'Liste blanche'),
    h('p', {}, "Le fichier listeblanchemssante.xml publié par l'ANS. Vous verrez ce qu'il change avant de l'appliquer."),
    field('lb-fichier', 'Fichier de la liste blanche', input, 'Fichier XML ; une liste plus ancienne que celle en place est refusée.'),
    error,
    h('button', { type: 'submit' }, 'Prévisualiser les changements'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = pickedFile(input, error, result);
    if (!file) return;
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    button.disabled = true;
    try {
      const p = await ctx.api.sendFile<WhitelistPreview>('/api/v1/imports/whitelist?dryRun=true', file, 'application/xml');
      const apply = h('button', { type: 'button' }, 'Appliquer ces changements');
      const applyError = errorBox();
      apply.addEventListener('click', async () => {
        applyError.textContent = '';
        apply.disabled = true;
        try {
          // The same file, with what the preview was computed on: the API applies only that.
          const q = new URLSearchParams({ sha256: p.sha256, base: p.base ?? 'none' });
          const done = await ctx.api.sendFile<WhitelistPreview>(`/api/v1/imports/whitelist?${q}`, file, 'application/xml');
          fill(
            result,
            h('p', { class: 'avis', role: 'status', tabindex: -1 }, `Liste blanche appliquée : ${n(done.added.length)} domaine(s) ajouté(s), ${n(done.removed.length)} retiré(s), ${n(done.changed.length)} modifié(s). Chaque changement est inscrit au journal.`),
            previewOf(done),
            h('p', {}, h('a', { href: '#/journal?type=whitelist.imported' }, 'Voir les imports de la liste blanche dans le journal')),
          );
          result.querySelector<HTMLElement>('.avis')?.focus();
        } catch (err) {
          apply.disabled = false;
          show(applyError, err);
        }
      });
      fill(result, previewOf(p), applyError, p.unchanged ? null : apply);
      announce(`Aperçu prêt : ${n(p.added.length)} ajouté(s), ${n(p.removed.length)} retiré(s), ${n(p.changed.length)} modifié(s).`);
      result.querySelector<HTMLElement>('h3')?.setAttribute('tabindex', '-1');
      result.querySelector<HTMLElement>('h3')?.focus();
    } catch (err) {
      show(error, err);
    } finally {
      button.disabled = false;
    }
  });
  return h('div', {}, form, result);
}

/**
 * Sends the file with XMLHttpRequest, which (unlike fetch) tells how much of the body went,
 * and reads the API's answer as it streams in: one JSON job per line.
 */
function uploadExtraction(ctx: ViewContext, path: string, file: File, o: { sent(loaded: number, total: number): void; job(j: ExtractionJob): void }): Promise<ExtractionJob> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let read = 0;
    let last: ExtractionJob | null = null;
    const lines = () => {
      if (xhr.status !== 202) return;
      const text = xhr.responseText;
      for (let i = text.indexOf('\n', read); i >= 0; i = text.indexOf('\n', read)) {
        const line = text.slice(read, i);
        read = i + 1;
        if (line) o.job((last = JSON.parse(line) as ExtractionJob));
      }
    };
    xhr.upload.addEventListener('progress', (e) => o.sent(e.loaded, e.lengthComputable ? e.total : file.size));
    xhr.addEventListener('progress', lines);
    xhr.addEventListener('load', () => {
      lines();
      if (xhr.status === 202 && last) return resolve(last);
      let p: { title?: string; detail?: string } = {};
      try {
        p = JSON.parse(xhr.responseText) as typeof p;
      } catch {
        /* not a problem document */
      }
      reject(ctx.api.refused(new ApiError(xhr.status, p.title ?? `HTTP_${xhr.status}`, p.detail ?? xhr.statusText), path));
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'NETWORK', 'the platform cannot be reached')));
    xhr.open('POST', path);
    xhr.setRequestHeader('accept', 'application/x-ndjson');
    xhr.setRequestHeader('content-type', /\.zip$/i.test(file.name) ? 'application/zip' : 'application/octet-stream');
    xhr.setRequestHeader('x-csrf-token', ctx.api.csrfToken());
    xhr.send(file);
  });
}

const COUNT: Array<[keyof TableCounts, string]> = [
  ['inserted', 'Ajoutées'],
  ['updated', 'Modifiées'],
  ['unchanged', 'Inchangées'],
  ['deactivated', 'Désactivées'],
  ['merged', 'Lignes fusionnées'],
];
const TABLE: Record<string, string> = { persons: 'Professionnels', structures: 'Structures', activities: 'Activités', addresses: 'Adresses MSSanté' };

function reportOf(ctx: ViewContext, j: ExtractionJob): HTMLElement {
  const error = errorBox();
  const download = h('button', { type: 'button', class: 'secondaire' }, 'Télécharger le rapport des rejets (TSV)');
  const said = h('p', { role: 'status' });
  download.addEventListener('click', async () => {
    error.textContent = '';
    download.disabled = true;
    try {
      const tsv = await ctx.api.blob(`/api/v1/imports/extractions/jobs/${j.id}/report`);
      const file = `rejets-${j.name.replace(/\.(txt|zip)$/, '')}.tsv`;
      const a = h('a', { href: URL.createObjectURL(tsv), download: file, class: 'lecteur' }, 'rapport');
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
      said.textContent = `Rapport téléchargé : ${file}.`;
    } catch (err) {
      show(error, err);
    } finally {
      download.disabled = false;
    }
  });
  const results = j.outcome?.results ?? [];
  const failures = j.outcome?.failures ?? [];
  return h(
    'section',
    { 'aria-labelledby': 'titre-rapport', class: 'carte' },
    h('h3', { id: 'titre-rapport', tabindex: -1 }, j.dryRun ? "Rapport de l'import (simulation : rien n'a été appliqué)" : "Rapport de l'import"),
    j.error ? h('p', { class: 'erreur' }, `L'import s'est arrêté sur une erreur de la plateforme : ${j.error.detail}`) : null,
    failures.length ? h('div', { class: 'erreur' }, h('p', {}, 'Fichier non importé :'), h('ul', {}, failures.map((f) => h('li', {}, `${f.file} : ${FAILURE[f.code] ?? 'refusé'} (${f.detail})`)))) : null,
    ...results.map((r) =>
      h(
        'div',
        {},
        h(
          'dl',
          {},
          [
            ['Fichier', r.file],
            ["Date de l'extraction", longDate(r.extractionDate)],
            ['Lignes lues', n(r.lines)],
            ['Lignes rejetées', n(r.rejected)],
            ['Appliqué', r.applied ? (r.forced ? 'oui (forcé)' : 'oui') : 'non (simulation)'],
          ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
        ),
        r.journalSeq ? h('p', {}, h('a', { href: journalEventHref(r.journalSeq) }, `L'import dans le journal (événement n° ${r.journalSeq})`)) : null,
        h(
          'div',
          { class: 'table-defile' },
          h(
            'table',
            { class: 'liste' },
            h('caption', {}, 'Changements par table'),
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Table'), COUNT.map(([, label]) => h('th', { scope: 'col' }, label)))),
            h('tbody', {}, Object.entries(r.tables).map(([t, c]) => h('tr', {}, h('th', { scope: 'row' }, TABLE[t] ?? t), COUNT.map(([k]) => h('td', {}, n(c[k] ?? 0)))))),
          ),
        ),
      ),
    ),
    j.rejects.length
      ? h(
          'div',
          { class: 'table-defile' },
          h(
            'table',
            { class: 'liste' },
            h('caption', {}, j.rejected > j.rejects.length ? `Lignes rejetées (les ${n(j.rejects.length)} premières sur ${n(j.rejected)})` : `Lignes rejetées (${n(j.rejected)})`),
            h('thead', {}, h('tr', {}, ['Ligne', 'Raison', 'Contenu'].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', {}, j.rejects.map((x) => h('tr', {}, h('td', {}, n(x.line)), h('td', {}, x.reason), h('td', { class: 'extrait' }, x.text)))),
          ),
        )
      : h('p', {}, 'Aucune ligne rejetée.'),
    h('p', {}, download),
    said,
    error,
  );
}

function extractionSection(ctx: ViewContext): HTMLElement {
  const input = h('input', { id: 'ex-fichier', name: 'fichier', type: 'file', accept: '.txt,.zip,text/plain,application/zip', required: true, 'aria-describedby': 'ex-fichier-aide' });
  const dryRun = h('input', { id: 'ex-simulation', name: 'dryRun', type: 'checkbox' });
  const error = errorBox();
  const bar = h('progress', { id: 'ex-progression', max: 100, value: 0, 'aria-labelledby': 'ex-etape' });
  const step = h('p', { id: 'ex-etape' });
  const figures = h('p', { class: 'aide' });
  const progress = h('div', { class: 'progression', hidden: true }, step, bar, figures);
  const result = h('div', { class: 'resultat' });
  const form = h(
    'form',
    { class: 'formulaire', 'aria-labelledby': 'titre-extraction' },
    h('h2', { id: 'titre-extraction' }, "Extraction de l'annuaire national"),
    h('p', {}, 'Un fichier PS_LibreAcces_Personne_activite_…, Extraction_Correspondance_MSSante_… (.txt) ou leur archive .zip, tel que publié : son nom porte la date de l\'extraction.'),
    field('ex-fichier', "Fichier d'extraction", input, 'Le fichier est envoyé tel quel ; la progression de l\'envoi puis de l\'import s\'affiche.'),
    h('div', { class: 'champ case' }, dryRun, h('label', { for: 'ex-simulation' }, "Simulation : calculer les changements sans rien appliquer")),
    error,
    h('button', { type: 'submit' }, 'Envoyer et importer'),
  );
  const set = (text: string, value: number | null, detail = '') => {
    step.textContent = text;
    if (value === null) bar.removeAttribute('value');
    else bar.value = value;
    figures.textContent = detail;
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const file = pickedFile(input, error, result);
    if (!file) return;
    if (!EXTRACTION_NAME.test(file.name)) {
      error.textContent = `Le nom « ${file.name} » n'est pas celui d'une extraction publiée (lettres, chiffres, points, tirets, terminé par .txt ou .zip) : la date de l'extraction s'y lit.`;
      return error.focus();
    }
    const button = form.querySelector<HTMLButtonElement>('button[type="submit"]')!;
    button.disabled = true;
    progress.hidden = false;
    set(`Envoi du fichier ${file.name}`, 0, `0 sur ${size(file.size)}`);
    announce(`Envoi du fichier ${file.name} commencé.`);
    let phase = 'envoi';
    const q = new URLSearchParams({ name: file.name, ...(dryRun.checked ? { dryRun: 'true' } : {}) });
    try {
      const job = await uploadExtraction(ctx, `/api/v1/imports/extractions/jobs?${q}`, file, {
        sent: (loaded, total) => set(`Envoi du fichier ${file.name}`, total ? Math.floor((loaded / total) * 100) : null, `${size(loaded)} sur ${size(total)}`),
        job: (j) => {
          const counts = `${n(j.lines)} lignes lues, ${n(j.rejected)} rejetée(s)`;
          if (j.phase === 'reading') set(`Lecture de l'extraction : ${j.percent} %`, j.percent, counts);
          else if (j.phase === 'applying') set(j.dryRun ? 'Calcul des changements (simulation)…' : 'Application des changements…', null, counts);
          if (j.phase !== phase) {
            phase = j.phase;
            if (phase === 'reading') announce('Fichier reçu ; lecture de l\'extraction.');
            if (phase === 'applying') announce('Extraction lue ; application des changements.');
          }
        },
      });
      set(job.state === 'done' && !job.outcome?.failures.length ? 'Import terminé' : 'Import terminé avec des erreurs', 100, `${n(job.lines)} lignes lues, ${n(job.rejected)} rejetée(s)`);
      fill(result, reportOf(ctx, job));
      announce('Import terminé ; le rapport est affiché.');
      result.querySelector<HTMLElement>('h3')?.focus();
    } catch (err) {
      progress.hidden = true;
      show(error, err);
    } finally {
      button.disabled = false;
    }
  });
  return h('div', {}, form, progress, result);
}

export async function importsView(ctx: ViewContext, main: HTMLElement): Promise<string> {
  fill(
    main,
    h('h1', { tabindex: -1 }, 'Imports nationaux'),
    ctx.account.role === 'national'
      ? [h('p', { class: 'resume' }, 'La liste blanche des opérateurs et les extractions de l\'annuaire national. Chaque import est inscrit au journal.'), whitelistSection(ctx), extractionSection(ctx)]
      : h('p', { class: 'avis' }, 'Les imports nationaux (liste blanche, extractions de l\'annuaire) sont réservés aux administrateurs nationaux.'),
  );
  return 'Imports nationaux';
}
