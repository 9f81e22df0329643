// The two national extraction files this importer reads, as published by the Annuaire
// Santé (see ../shared/REFERENCE.md). Columns are matched by NAME: the activity file grew
// from 52 to 56 columns in 2023, and nothing promises the order stays put.

export type FileKind = 'activity' | 'mssante';

/** `PS_LibreAcces_Personne_activite` header, current 56-column form, exactly as published. */
export const ACTIVITY_HEADER = [
  "Type d'identifiant PP", 'Identifiant PP', 'Identification nationale PP', "Code civilité d'exercice", "Libellé civilité d'exercice",
  'Code civilité', 'Libellé civilité', "Nom d'exercice", "Prénom d'exercice", 'Code profession', 'Libellé profession',
  'Code catégorie professionnelle', 'Libellé catégorie professionnelle', 'Code type savoir-faire', 'Libellé type savoir-faire',
  'Code savoir-faire', 'Libellé savoir-faire', 'Code mode exercice', 'Libellé mode exercice', 'Numéro SIRET site', 'Numéro SIREN site',
  'Numéro FINESS site', 'Numéro FINESS établissement juridique', 'Identifiant technique de la structure', 'Raison sociale site',
  'Enseigne commerciale site', 'Complément destinataire (coord. structure)', 'Complément point géographique (coord. structure)',
  'Numéro Voie (coord. structure)', 'Indice répétition voie (coord. structure)', 'Code type de voie (coord. structure)',
  'Libellé type de voie (coord. structure)', 'Libellé Voie (coord. structure)', 'Mention distribution (coord. structure)',
  'Bureau cedex (coord. structure)', 'Code postal (coord. structure)', 'Code commune (coord. structure)', 'Libellé commune (coord. structure)',
  'Code pays (coord. structure)', 'Libellé pays (coord. structure)', 'Téléphone (coord. structure)', 'Téléphone 2 (coord. structure)',
  'Télécopie (coord. structure)', 'Adresse e-mail (coord. structure)', 'Code Département (structure)', 'Libellé Département (structure)',
  'Ancien identifiant de la structure', "Autorité d'enregistrement", "Code secteur d'activité", "Libellé secteur d'activité",
  'Code section tableau pharmaciens', 'Libellé section tableau pharmaciens', 'Code rôle', 'Libellé rôle', 'Code genre activité',
  'Libellé genre activité',
] as const;

/** Files published before 2023 stop after the pharmacists' section: 52 columns. */
export const ACTIVITY_HEADER_52 = ACTIVITY_HEADER.slice(0, 52);

/** `Extraction_Correspondance_MSSante`: 31 columns; the irregular capitalisation is the file's. */
export const MSSANTE_HEADER = [
  'Type de BAL', 'Adresse BAL', 'Type Identifiant PP', 'Identifiant PP', 'Identification nationale PP', 'Type identifiant structure',
  'Identification Structure', 'Service de rattachement', "Civilité d'exercice", "Nom d'exercice", "Prénom d'exercice",
  'Catégorie profession', 'Libellé de catégorie profession', 'Code Profession', 'Libellé Profession', 'Code savoir-faire',
  'Libellé savoir-faire', 'Dématérialisation', 'Raison Sociale structure BAL', 'Enseigne commerciale structure BAL',
  'L2COMPLEMENTLOCALISATION structure BAL', 'L3COMPLEMENTDISTRIBUTION structure BAL', 'L4NUMEROVOIE structure BAL',
  'L4COMPLEMENTNUMEROVOIE structure BAL', 'NL4TYPEVOIE structure BAL', 'L4LIBELLEVOIE structure BAL', 'L5LIEUDITMENTION structure BAL',
  'L6LIGNEACHEMINEMENT structure BAL', 'Code postal structure BAL', 'Département structure BAL', 'Pays structure BAL',
] as const;

export type ActivityColumn = (typeof ACTIVITY_HEADER)[number];
export type MssanteColumn = (typeof MSSANTE_HEADER)[number];

export interface HeaderInfo {
  kind: FileKind;
  /** Field count of every data line (the trailing `|`, when the header has one, counts as a field). */
  fieldCount: number;
  /** Column name → field index; a column missing from an older layout maps to -1. */
  index: Map<string, number>;
  /** Columns of the header we do not know (kept for the report, ignored otherwise). */
  unknown: string[];
  /** Known optional columns the file lacks (the 52-column activity layout lacks 4). */
  missing: string[];
}

export class HeaderError extends Error {}

/**
 * Recognises the file from its header line (already decoded, BOM removed). Throws
 * HeaderError with a sentence fit for the user when the header is not one we read.
 */
export function parseHeader(line: string): HeaderInfo {
  const names = line.split('|');
  const fieldCount = names.length;
  // The activity file ends every line, header included, with `|`: one extra empty field.
  while (names.length && names[names.length - 1] === '') names.pop();
  const set = new Set(names);
  let kind: FileKind;
  let required: readonly string[];
  let optional: readonly string[] = [];
  if (set.has('Adresse BAL') && set.has('Type de BAL')) {
    kind = 'mssante';
    required = MSSANTE_HEADER;
  } else if (set.has('Identification nationale PP') && set.has('Code mode exercice')) {
    kind = 'activity';
    required = ACTIVITY_HEADER_52;
    optional = ACTIVITY_HEADER.slice(52);
  } else {
    throw new HeaderError(
      `its header is neither PS_LibreAcces_Personne_activite nor Extraction_Correspondance_MSSante (it starts with "${line.slice(0, 60)}")`,
    );
  }
  const lacking = required.filter((c) => !set.has(c));
  if (lacking.length) throw new HeaderError(`its header lacks the column(s) ${lacking.map((c) => `"${c}"`).join(', ')}`);
  const dup = names.find((n, i) => n !== '' && names.indexOf(n) !== i);
  if (dup) throw new HeaderError(`its header names the column "${dup}" twice`);
  const index = new Map<string, number>();
  names.forEach((n, i) => index.set(n, i));
  for (const c of optional) if (!index.has(c)) index.set(c, -1);
  const known = new Set<string>([...required, ...optional]);
  return {
    kind,
    fieldCount,
    index,
    unknown: names.filter((n) => n !== '' && !known.has(n)),
    missing: optional.filter((c) => index.get(c) === -1),
  };
}

/**
 * The extraction date is in the file name: `…_AAAAMMJJhhmm.txt` (also AAAAMMJJ and
 * AAAAMMJJhhmmss). Returns a UTC Date, or undefined when the name carries none.
 */
export function extractionDateFromName(name: string): Date | undefined {
  const base = name.split(/[\\/]/).pop() ?? name;
  const m = /_(\d{8}|\d{12}|\d{14})(?:\.[A-Za-z]+)*$/.exec(base);
  if (!m) return undefined;
  return parseCompactDate(m[1]);
}

/** AAAAMMJJ[hhmm[ss]] or an ISO date (`2024-03-01`, `2024-03-01T08:00`) → UTC Date; undefined if invalid. */
export function parseCompactDate(s: string): Date | undefined {
  let m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?$/.exec(s);
  m ??= /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?)?Z?$/.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, se));
  // Date.UTC rolls 2024-02-31 over to March: a round trip catches impossible dates.
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || se > 59) return undefined;
  return date;
}
