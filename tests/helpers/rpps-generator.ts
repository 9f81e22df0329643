// Synthetic but realistic national extractions, in the exact published layout (headers
// from REFERENCE.md, pipe-separated, trailing `|` on activity lines), deterministic from a
// seed: accented names, real profession labels, one line per professional × activity (so
// RPPS ids repeat), structures shared between professionals, PER and ORG boxes, a few
// addresses on two lines. A "next month" version of the same population has a chosen share
// of changed, new and vanished entries. Used by the tests and by bench/annuaire-import.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import iconv from 'iconv-lite';
import { ACTIVITY_HEADER, ACTIVITY_HEADER_52, MSSANTE_HEADER } from '../../annuaire/import/formats.js';

export type GenEncoding = 'utf8' | 'utf8-bom' | 'win1252';

export interface GenOptions {
  /** Data lines of the base month (the header not counted, nor injected bad lines). */
  lines: number;
  seed?: number;
  /** 0 = the base extraction; 1 = the next month's, derived with the shares below. */
  month?: 0 | 1;
  /** Shares (0..1) of the base population that change, vanish, and that is added, in month 1. */
  changed?: number;
  vanished?: number;
  added?: number;
  /** Activity file layout: 56 columns (current) or 52 (before 2023). */
  columns?: 52 | 56;
  /** Malformed lines to inject, spread through the file; onBad learns their line numbers. */
  malformed?: number;
  onBad?: (lineNo: number, kind: string) => void;
}

/** Marks a spot the encoder turns into a byte invalid in the target encoding. */
export const BAD_BYTE = '\uE000';

// --- deterministic randomness -------------------------------------------------------

/** A 32-bit hash of a few integers: the same person gets the same attributes every month. */
function h(...xs: number[]): number {
  let a = 0x9e3779b9;
  for (const x of xs) {
    a = Math.imul(a ^ (x | 0), 0x85ebca6b);
    a ^= a >>> 13;
    a = Math.imul(a, 0xc2b2ae35);
    a ^= a >>> 16;
  }
  return a >>> 0;
}
const pick = <T>(arr: readonly T[], n: number) => arr[n % arr.length];
const frac = (n: number) => n / 0x1_0000_0000;

// --- vocabulary ---------------------------------------------------------------------

const FIRST = ['Hélène', 'Françoise', 'Zoé', 'Noël', 'Bérénice', 'Ægir', 'Jérôme', 'Cécile', 'Anaïs', 'Loïc', 'Gaëlle', 'Thérèse', 'Léa', 'Maël', 'Inès', 'Raphaël', 'Élodie', 'Béatrice', 'Jean-François', 'Chloé', 'Œnone', 'Aurélien'];
const LAST = ['DUPONT', 'LEFÈVRE', 'MÜLLER', 'GARÇON', 'BÉRANGER', 'NOËL', 'CHÂTEAU', "D'ALEMBERT", 'LÉGER', 'FAURÉ', 'ÉTIENNE', 'MOREAU', 'PERRIN', 'HÉBERT', 'CÔTÉ', 'BŒUF', 'GRÉGOIRE', 'FRANÇOIS', 'MARTIN', 'DESCHAMPS'];
const PROFESSIONS: Array<[string, string, Array<[string, string, string, string]>]> = [
  ['10', 'Médecin', [['S', 'Spécialité ordinale', 'SM54', 'Médecine générale'], ['S', 'Spécialité ordinale', 'SM04', 'Cardiologie et maladies vasculaires'], ['S', 'Spécialité ordinale', 'SM40', 'Pédiatrie'], ['S', 'Spécialité ordinale', 'SM42', 'Psychiatrie']]],
  ['40', 'Chirurgien-Dentiste', [['S', 'Spécialité ordinale', 'SCD01', 'Orthopédie dento-faciale'], ['', '', '', '']]],
  ['50', 'Sage-Femme', [['', '', '', '']]],
  ['60', 'Infirmier', [['', '', '', '']]],
  ['21', 'Pharmacien', [['', '', '', '']]],
  ['70', 'Masseur-Kinésithérapeute', [['', '', '', '']]],
  ['80', 'Pédicure-Podologue', [['', '', '', '']]],
  ['91', 'Orthophoniste', [['', '', '', '']]],
  ['92', 'Orthoptiste', [['', '', '', '']]],
  ['96', 'Psychomotricien', [['', '', '', '']]],
];
const MODES: Array<[string, string]> = [['L', 'Libéral, indépendant, artisan, commerçant'], ['S', 'Salarié'], ['B', 'Bénévole']];
const ROLES: Array<[string, string]> = [['FON-01', 'Titulaire de cabinet'], ['FON-05', 'Remplaçant'], ['FON-11', 'Collaborateur libéral']];
const STREETS: Array<[string, string, string]> = [['R', 'Rue', 'de la République'], ['AV', 'Avenue', 'Émile Zola'], ['BD', 'Boulevard', 'des Châtaigniers'], ['PL', 'Place', 'Sainte-Thérèse'], ['CHE', 'Chemin', 'du Moulin à Vent'], ['R', 'Rue', "de l'Église"]];
const TOWNS: Array<[string, string, string, string, string]> = [
  ['75056', 'Paris', '75011', '75', 'Paris'], ['69123', 'Lyon', '69003', '69', 'Rhône'], ['13055', 'Marseille', '13005', '13', 'Bouches-du-Rhône'],
  ['25056', 'Besançon', '25000', '25', 'Doubs'], ['45234', 'Orléans', '45000', '45', 'Loiret'], ['30189', 'Nîmes', '30000', '30', 'Gard'],
  ['42218', 'Saint-Étienne', '42000', '42', 'Loire'], ['16015', 'Angoulême', '16000', '16', 'Charente'], ['27229', 'Évreux', '27000', '27', 'Eure'],
  ['2A004', 'Ajaccio', '20000', '2A', 'Corse-du-Sud'],
];
const SECTORS: Array<[string, string, string]> = [['SA07', 'Cabinet individuel', 'CABINET'], ['SA01', 'Etablissement public de santé', 'CENTRE HOSPITALIER'], ['SA05', 'Centre de santé', 'CENTRE DE SANTÉ'], ['SA08', 'Cabinet de groupe', 'MAISON DE SANTÉ']];
const SERVICES = ['Secrétariat', 'Cardiologie', 'Urgences', 'Pédiatrie', 'Médecine polyvalente', 'Laboratoire'];

export const ascii = (s: string) =>
  s.replace(/Æ/g, 'AE').replace(/æ/g, 'ae').replace(/Œ/g, 'OE').replace(/œ/g, 'oe').normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^A-Za-z0-9-]/g, '').toLowerCase();

// --- the population -------------------------------------------------------------------

const rpps = (i: number) => `10${String(i).padStart(9, '0')}`;

interface Person {
  i: number;
  idnps: string;
  first: string;
  last: string;
  profession: (typeof PROFESSIONS)[number];
  sf: [string, string, string, string];
  category: [string, string];
  civ: [string, string];
  activities: number;
}

/** Month 1 changes a person (or its structures) when this is below `changed`. */
const changes = (i: number, o: GenOptions) => o.month === 1 && frac(h(i, 7, o.seed ?? 1)) < (o.changed ?? 0);
const vanishes = (i: number, o: GenOptions) => o.month === 1 && frac(h(i, 11, o.seed ?? 1)) < (o.vanished ?? 0);

function person(i: number, o: GenOptions): Person {
  const r = h(i, o.seed ?? 1);
  const profession = pick(PROFESSIONS, r % 97 < 40 ? 0 : r % 97);
  const female = (r >>> 8) % 2 === 0;
  let last = pick(LAST, r >>> 12);
  // The kind of change month 1 brings a person: a new name, or a category change.
  const change = changes(i, o) ? h(i, 13) % 2 : -1;
  if (change === 0) last = `${last}-${pick(LAST, r >>> 3)}`;
  return {
    i,
    idnps: '8' + rpps(i),
    first: pick(FIRST, r >>> 4),
    last,
    profession,
    sf: pick(profession[2], r >>> 16),
    category: change === 1 ? ['M', 'Militaire'] : ['C', 'Civil'],
    civ: female ? ['MME', 'Madame'] : ['M', 'Monsieur'],
    activities: 1 + (r % 10 < 3 ? 1 : 0) + (r % 10 === 0 ? 1 : 0),
  };
}

/** The base month's population: how many persons make `lines` activity lines. */
function populationSize(o: GenOptions): number {
  let n = 0;
  let i = 0;
  while (n < o.lines) n += person(i++, { ...o, month: 0 }).activities;
  return i;
}

function structureFields(s: number, o: GenOptions, changed: boolean): string[] {
  const r = h(s, 3, o.seed ?? 1);
  const [commune, town, cp, dep, depLabel] = pick(TOWNS, r);
  const [sect, sectLabel, kindName] = pick(SECTORS, r >>> 5);
  const [tv, tvLabel, voie] = pick(STREETS, r >>> 9);
  const siret = String(100000000 + (s % 900000000)).padStart(9, '0') + String(10000 + (s % 90000));
  const hospital = sect === 'SA01';
  const phone = `0${1 + (r % 5)}${String(r % 100000000).padStart(8, '0')}`;
  return [
    siret, siret.slice(0, 9), hospital ? String(100000000 + s) : '', hospital ? String(200000000 + s) : '', `R1${String(s).padStart(13, '0')}`,
    `${kindName} ${town.toUpperCase()} ${s}`, hospital ? `CH ${town}` : '', '', r % 7 === 0 ? 'Bâtiment Hélios' : '', String(1 + (r % 120)), r % 11 === 0 ? 'B' : '',
    tv, tvLabel, voie, '', '', cp, commune, town, '99000', 'France', changed ? `09${String(r % 100000000).padStart(8, '0')}` : phone, '', '',
    r % 3 === 0 ? `contact.${s}@cabinet-exemple.fr` : '', dep, depLabel, `4${String(s).padStart(8, '0')}`, 'ARS/ARS/ARS', sect, sectLabel,
  ];
}

function structureCount(o: GenOptions) {
  return Math.max(4, Math.floor(o.lines / 4));
}

/** The persons of this month, in file order (base persons, then month 1's new ones). */
function* persons(o: GenOptions): Generator<Person> {
  const base = populationSize(o);
  for (let i = 0; i < base; i++) if (!vanishes(i, o)) yield person(i, o);
  if (o.month === 1) {
    const extra = Math.round(base * (o.added ?? 0));
    for (let i = base; i < base + extra; i++) yield person(i, o);
  }
}

// --- the activity file ----------------------------------------------------------------

/** PS_LibreAcces_Personne_activite lines, header first, each ending with `|`. */
export function* activityLines(o: GenOptions): Generator<string> {
  const cols = o.columns ?? 56;
  const header = cols === 56 ? ACTIVITY_HEADER : ACTIVITY_HEADER_52;
  yield header.join('|') + '|';
  const S = structureCount(o);
  let produced = 0;
  let lineNo = 1;
  const bad = badPlan(o);
  for (const p of persons(o)) {
    for (let j = 0; j < p.activities; j++) {
      if (o.month !== 1 && produced >= o.lines) return;
      const s = (h(p.i, 5, o.seed ?? 1) + j * 7919) % S;
      const [mode, modeLabel] = pick(MODES, h(p.i, j, 17));
      const [role, roleLabel] = pick(ROLES, h(p.i, j, 19));
      const med = p.profession[0] === '10';
      const f = [
        '8', rpps(p.i), p.idnps, med ? 'DR' : '', med ? 'Docteur' : '', p.civ[0], p.civ[1], p.last, p.first,
        p.profession[0], p.profession[1], p.category[0], p.category[1], ...p.sf, mode, modeLabel,
        ...structureFields(s, o, o.month === 1 && frac(h(s, 23, o.seed ?? 1)) < (o.changed ?? 0)),
        p.profession[0] === '21' ? 'A' : '', p.profession[0] === '21' ? "Pharmaciens titulaires d'officine" : '', role, roleLabel, 'GENR01', 'Activité standard',
      ];
      yield f.slice(0, cols).join('|') + '|';
      produced++;
      lineNo++;
      if (bad.has(produced)) {
        lineNo++;
        const kind = bad.get(produced)!;
        o.onBad?.(lineNo, badKind('activity', kind));
        yield badActivityLine(kind, f.slice(0, cols), lineNo);
      }
    }
  }
}

const BAD_ACTIVITY = ['columns', 'rpps', 'idnps', 'encoding'] as const;
const BAD_MSSANTE = ['columns', 'address', 'baltype', 'encoding'] as const;

/** After which good line each bad line goes, and its kind. */
function badPlan(o: GenOptions): Map<number, number> {
  const m = new Map<number, number>();
  const n = o.malformed ?? 0;
  for (let k = 0; k < n; k++) m.set(Math.max(1, Math.floor(((k + 1) * o.lines) / (n + 1))), k);
  return m;
}

function badActivityLine(k: number, f: string[], lineNo: number): string {
  // A ghost professional that is not in the population: the rest of the file is unaffected.
  const ghost = rpps(900_000_000 + lineNo);
  f = [...f];
  f[1] = ghost;
  f[2] = '8' + ghost;
  switch (BAD_ACTIVITY[k % BAD_ACTIVITY.length]) {
    case 'columns':
      return f.slice(0, -3).join('|') + '|';
    case 'rpps':
      f[1] = ghost.slice(1);
      f[2] = '8' + f[1];
      return f.join('|') + '|';
    case 'idnps':
      f[2] = '0' + ghost;
      return f.join('|') + '|';
    default:
      f[8] = `Hél${BAD_BYTE}ne`;
      return f.join('|') + '|';
  }
}

export const badKind = (kind: 'activity' | 'mssante', k: number) => (kind === 'activity' ? BAD_ACTIVITY : BAD_MSSANTE)[k % 4];

// --- the MSSanté file -------------------------------------------------------------------

/**
 * Extraction_Correspondance_MSSante lines, header first: for every 5 slots, 4 PER boxes of
 * persons and 1 ORG box of a structure's service; one PER box in 50 is listed twice
 * (attached to two activities), as ~169 are in the real file.
 */
export function* mssanteLines(o: GenOptions): Generator<string> {
  yield MSSANTE_HEADER.join('|');
  const base = o.lines;
  const extra = o.month === 1 ? Math.round(base * (o.added ?? 0)) : 0;
  const bad = badPlan(o);
  let produced = 0;
  let lineNo = 1;
  const emit = function* (f: string[]) {
    yield f.join('|');
    produced++;
    lineNo++;
    if (bad.has(produced)) {
      lineNo++;
      const k = bad.get(produced)!;
      o.onBad?.(lineNo, badKind('mssante', k));
      yield badMssanteLine(k, f, lineNo);
    }
  };
  for (let slot = 0; slot < base + extra; slot++) {
    if (o.month !== 1 && produced >= base) return;
    if (slot < base && vanishes(slot, o)) continue;
    const r = h(slot, 29, o.seed ?? 1);
    const [commune, town, cp, dep] = pick(TOWNS, r);
    const [, tvLabel, voie] = pick(STREETS, r >>> 7);
    const structure = `1${String(100000000 + slot).slice(1)}`;
    const addressLines = ['', '', String(1 + (r % 80)), '', tvLabel, voie, '', `${cp} ${town.toUpperCase()}`, cp, dep, 'France'];
    void commune;
    if (slot % 5 === 4) {
      const service = pick(SERVICES, r >>> 3);
      const local = `${ascii(service)}.${slot}`;
      yield* emit(['ORG', `${local}@ch-${ascii(town)}.mssante.fr`, '', '', '', '1', structure, changes(slot, o) ? `${service} et consultations` : service, '', '', '', '', '', '', '', '', '', 'N', `CENTRE HOSPITALIER ${town.toUpperCase()}`, '', ...addressLines]);
      continue;
    }
    const p = person(slot, o);
    // The address is immutable: it keeps the name the box was opened with.
    const born = person(slot, { ...o, month: 0 });
    const local = `${ascii(born.first)}.${ascii(born.last)}.${slot}`;
    const f = [
      'PER', `${local}@medecin.mssante.fr`, '8', rpps(slot), p.idnps, '', '', '', p.profession[0] === '10' ? 'DR' : '', p.last, p.first,
      p.category[0], p.category[1], p.profession[0], p.profession[1], p.sf[2], p.sf[3], r % 4 === 0 ? 'O' : 'N', `CABINET ${p.last}`, '', ...addressLines,
    ];
    yield* emit(f);
    if (r % 50 === 0) {
      const g = [...f];
      g[18] = `MAISON DE SANTÉ ${town.toUpperCase()}`;
      yield* emit(g);
    }
  }
}

function badMssanteLine(k: number, f: string[], lineNo: number): string {
  f = [...f];
  f[1] = `fantome.${lineNo}@medecin.mssante.fr`;
  f[3] = rpps(900_000_000 + lineNo);
  f[4] = '8' + f[3];
  if (f[0] === 'ORG') f.splice(2, 3, '8', f[3], f[4]);
  f[0] = 'PER';
  switch (BAD_MSSANTE[k % BAD_MSSANTE.length]) {
    case 'columns':
      return f.slice(0, -2).join('|');
    case 'address':
      f[1] = `fantome.${lineNo}@@medecin`;
      return f.join('|');
    case 'baltype':
      f[0] = 'XYZ';
      return f.join('|');
    default:
      f[9] = `NO${BAD_BYTE}L`;
      return f.join('|');
  }
}

// --- encoding and files -------------------------------------------------------------------

/** Encodes one line; BAD_BYTE becomes 0xFF in UTF-8 (never valid) and 0x81 in Windows-1252 (undefined there). */
export function encodeLine(line: string, enc: GenEncoding): Buffer {
  if (enc === 'win1252') {
    const b = iconv.encode(line.replaceAll(BAD_BYTE, '?'), 'win1252');
    if (line.includes(BAD_BYTE)) {
      const parts = line.split(BAD_BYTE).map((p) => iconv.encode(p, 'win1252'));
      return Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from([0x81]), p] : [p])));
    }
    return b;
  }
  if (!line.includes(BAD_BYTE)) return Buffer.from(line, 'utf8');
  const parts = line.split(BAD_BYTE).map((p) => Buffer.from(p, 'utf8'));
  return Buffer.concat(parts.flatMap((p, i) => (i ? [Buffer.from([0xff]), p] : [p])));
}

/** The whole file in memory (tests: small files). Lines end with CRLF, as the published files do. */
export function encodeFile(lines: Iterable<string>, enc: GenEncoding = 'utf8', eol = '\r\n'): Buffer {
  const parts: Buffer[] = enc === 'utf8-bom' ? [Buffer.from([0xef, 0xbb, 0xbf])] : [];
  for (const l of lines) parts.push(encodeLine(l + eol, enc));
  return Buffer.concat(parts);
}

/** Streams the lines to a file (the bench's million lines), flat memory. */
export async function writeExtraction(path: string, lines: Iterable<string>, enc: GenEncoding = 'utf8', eol = '\r\n'): Promise<number> {
  const out = createWriteStream(path);
  let bytes = 0;
  let buf: Buffer[] = enc === 'utf8-bom' ? [Buffer.from([0xef, 0xbb, 0xbf])] : [];
  let size = 0;
  for (const l of lines) {
    const b = encodeLine(l + eol, enc);
    buf.push(b);
    size += b.length;
    if (size >= 1 << 20) {
      bytes += size;
      if (!out.write(Buffer.concat(buf))) await once(out, 'drain');
      buf = [];
      size = 0;
    }
  }
  bytes += size;
  out.end(Buffer.concat(buf));
  await once(out, 'finish');
  return bytes;
}
