// From one split line of an extraction file to one line of the staging table (PostgreSQL
// COPY text format), or the reason the line is rejected. Pure: no I/O, no database.
import type { FileKind, HeaderInfo } from './formats.js';
import { BAL_TYPES, checkAddress, checkPersonIds } from './validate.js';

/** [staging column, file column] */
type ColumnMap = ReadonlyArray<readonly [string, string]>;

export const PERSON_COLUMNS: ColumnMap = [
  ['id_type', "Type d'identifiant PP"],
  ['id_pp', 'Identifiant PP'],
  ['idnps', 'Identification nationale PP'],
  ['civilite_exercice_code', "Code civilité d'exercice"],
  ['civilite_exercice', "Libellé civilité d'exercice"],
  ['civilite_code', 'Code civilité'],
  ['civilite', 'Libellé civilité'],
  ['nom', "Nom d'exercice"],
  ['prenom', "Prénom d'exercice"],
  ['profession_code', 'Code profession'],
  ['profession', 'Libellé profession'],
  ['categorie_code', 'Code catégorie professionnelle'],
  ['categorie', 'Libellé catégorie professionnelle'],
  ['savoir_faire_type_code', 'Code type savoir-faire'],
  ['savoir_faire_type', 'Libellé type savoir-faire'],
  ['savoir_faire_code', 'Code savoir-faire'],
  ['savoir_faire', 'Libellé savoir-faire'],
];

export const STRUCTURE_COLUMNS: ColumnMap = [
  ['structure_id', 'Identifiant technique de la structure'],
  ['siret', 'Numéro SIRET site'],
  ['siren', 'Numéro SIREN site'],
  ['finess_site', 'Numéro FINESS site'],
  ['finess_ej', 'Numéro FINESS établissement juridique'],
  ['raison_sociale', 'Raison sociale site'],
  ['enseigne', 'Enseigne commerciale site'],
  ['complement_destinataire', 'Complément destinataire (coord. structure)'],
  ['complement_geo', 'Complément point géographique (coord. structure)'],
  ['numero_voie', 'Numéro Voie (coord. structure)'],
  ['indice_repetition', 'Indice répétition voie (coord. structure)'],
  ['type_voie_code', 'Code type de voie (coord. structure)'],
  ['type_voie', 'Libellé type de voie (coord. structure)'],
  ['voie', 'Libellé Voie (coord. structure)'],
  ['mention_distribution', 'Mention distribution (coord. structure)'],
  ['bureau_cedex', 'Bureau cedex (coord. structure)'],
  ['code_postal', 'Code postal (coord. structure)'],
  ['commune_code', 'Code commune (coord. structure)'],
  ['commune', 'Libellé commune (coord. structure)'],
  ['pays_code', 'Code pays (coord. structure)'],
  ['pays', 'Libellé pays (coord. structure)'],
  ['telephone', 'Téléphone (coord. structure)'],
  ['telephone2', 'Téléphone 2 (coord. structure)'],
  ['telecopie', 'Télécopie (coord. structure)'],
  ['email', 'Adresse e-mail (coord. structure)'],
  ['departement_code', 'Code Département (structure)'],
  ['departement', 'Libellé Département (structure)'],
  ['ancien_id', 'Ancien identifiant de la structure'],
  ['autorite_enregistrement', "Autorité d'enregistrement"],
  ['secteur_code', "Code secteur d'activité"],
  ['secteur', "Libellé secteur d'activité"],
];

/** What an activity row holds besides its person and structure (the person's idnps and structure_id link them). */
export const ACTIVITY_COLUMNS: ColumnMap = [
  ['idnps', 'Identification nationale PP'],
  ['structure_id', 'Identifiant technique de la structure'],
  ['profession_code', 'Code profession'],
  ['profession', 'Libellé profession'],
  ['categorie_code', 'Code catégorie professionnelle'],
  ['categorie', 'Libellé catégorie professionnelle'],
  ['savoir_faire_type_code', 'Code type savoir-faire'],
  ['savoir_faire_type', 'Libellé type savoir-faire'],
  ['savoir_faire_code', 'Code savoir-faire'],
  ['savoir_faire', 'Libellé savoir-faire'],
  ['mode_exercice_code', 'Code mode exercice'],
  ['mode_exercice', 'Libellé mode exercice'],
  ['section_pharmacien_code', 'Code section tableau pharmaciens'],
  ['section_pharmacien', 'Libellé section tableau pharmaciens'],
  ['role_code', 'Code rôle'],
  ['role', 'Libellé rôle'],
  ['genre_code', 'Code genre activité'],
  ['genre', 'Libellé genre activité'],
];

/**
 * The activity file has no activity id: an activity is identified by who, where, as what
 * (profession, savoir-faire), how (mode, role, genre). Two lines with the same key are
 * the same activity, merged. Labels are content, so a relabelled code is an update.
 */
export const ACTIVITY_KEY = [
  'Identification nationale PP', 'Identifiant technique de la structure', 'Code profession', 'Code type savoir-faire',
  'Code savoir-faire', 'Code mode exercice', 'Code rôle', 'Code genre activité',
] as const;

export const MSSANTE_COLUMNS: ColumnMap = [
  ['bal_type', 'Type de BAL'],
  ['address', 'Adresse BAL'],
  ['id_type', 'Type Identifiant PP'],
  ['id_pp', 'Identifiant PP'],
  ['idnps', 'Identification nationale PP'],
  ['structure_id_type', 'Type identifiant structure'],
  ['structure_id', 'Identification Structure'],
  ['service', 'Service de rattachement'],
  ['civilite_exercice', "Civilité d'exercice"],
  ['nom', "Nom d'exercice"],
  ['prenom', "Prénom d'exercice"],
  ['categorie_code', 'Catégorie profession'],
  ['categorie', 'Libellé de catégorie profession'],
  ['profession_code', 'Code Profession'],
  ['profession', 'Libellé Profession'],
  ['savoir_faire_code', 'Code savoir-faire'],
  ['savoir_faire', 'Libellé savoir-faire'],
  ['dematerialisation', 'Dématérialisation'],
  ['raison_sociale', 'Raison Sociale structure BAL'],
  ['enseigne', 'Enseigne commerciale structure BAL'],
  ['complement_localisation', 'L2COMPLEMENTLOCALISATION structure BAL'],
  ['complement_distribution', 'L3COMPLEMENTDISTRIBUTION structure BAL'],
  ['numero_voie', 'L4NUMEROVOIE structure BAL'],
  ['complement_numero_voie', 'L4COMPLEMENTNUMEROVOIE structure BAL'],
  ['type_voie', 'NL4TYPEVOIE structure BAL'],
  ['libelle_voie', 'L4LIBELLEVOIE structure BAL'],
  ['lieu_dit_mention', 'L5LIEUDITMENTION structure BAL'],
  ['ligne_acheminement', 'L6LIGNEACHEMINEMENT structure BAL'],
  ['code_postal', 'Code postal structure BAL'],
  ['departement', 'Département structure BAL'],
  ['pays', 'Pays structure BAL'],
];

/** Only the activity's own columns, the link columns (idnps, structure_id) come with the person and structure. */
const ACTIVITY_OWN = ACTIVITY_COLUMNS.filter(([c]) => !PERSON_COLUMNS.some(([p]) => p === c) && c !== 'structure_id');

/** Staging table columns, in COPY order, per file kind. */
export const STAGING_COLUMNS: Record<FileKind, string[]> = {
  activity: ['line', 'p_hash', 's_hash', 'a_hash', 'a_key', ...PERSON_COLUMNS.map(([c]) => c), ...STRUCTURE_COLUMNS.map(([c]) => c), ...ACTIVITY_OWN.map(([c]) => c)],
  mssante: ['line', 'hash', 'addr_key', ...MSSANTE_COLUMNS.map(([c]) => c)],
};

/**
 * 64-bit content hash (two 32-bit multiply-xorshift lanes, the cyrb53 construction),
 * hex. Not cryptographic on purpose: it only tells "same content as last month" for
 * the same key, where an accidental collision is a 2^-64 event; node:crypto costs
 * ~1.8 µs a call here, three calls per line, which alone would exceed the import budget.
 * Changing this function makes every entry look updated once: keep it stable.
 */
export function contentHash(s: string): string {
  return hashFields([s], [0]);
}

/**
 * contentHash of the fields at `idx` joined with U+0001 (a missing column, index -1, is
 * an empty field), computed without building the joined string: this runs three times
 * per line of a file of millions.
 */
export function hashFields(f: readonly string[], idx: readonly number[]): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let j = 0; j < idx.length; j++) {
    if (j > 0) {
      h1 = Math.imul(h1 ^ 1, 2654435761);
      h2 = Math.imul(h2 ^ 1, 1597334677);
    }
    if (idx[j] < 0) continue;
    const s = f[idx[j]];
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 >>> 0).toString(16).padStart(8, '0') + (h1 >>> 0).toString(16).padStart(8, '0');
}

/** One field in COPY text format: empty → NULL, backslash and tab escaped. */
const copyValue = (v: string, escape: boolean) => (v === '' ? '\\N' : escape ? v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t') : v);

export type Mapped = { ok: true; copyLine: string } | { ok: false; reason: string };

/** Keys a rejected line names: the entries it may have carried are not deactivated. */
export interface ProtectedKeys {
  persons?: string;
  structures?: string;
  addresses?: string;
}

/**
 * Maps split lines of one file to staging lines. Built once per file from its header,
 * so each line costs only array lookups.
 */
export class LineMapper {
  readonly kind: FileKind;
  /** Field count of a line, without the optional trailing empty field. */
  private readonly named: number;
  private readonly at: (col: string) => number;

  constructor(private readonly header: HeaderInfo) {
    this.kind = header.kind;
    let named = header.fieldCount;
    // The header's trailing `|` adds an empty name that is not a column.
    while (named > 0 && !Array.from(header.index.values()).includes(named - 1)) named--;
    this.named = named;
    this.at = (col) => header.index.get(col) ?? -1;
    this.idx = {
      person: PERSON_COLUMNS.map(([, f]) => this.at(f)),
      structure: STRUCTURE_COLUMNS.map(([, f]) => this.at(f)),
      activityOwn: ACTIVITY_OWN.map(([, f]) => this.at(f)),
      activity: ACTIVITY_COLUMNS.map(([, f]) => this.at(f)),
      key: ACTIVITY_KEY.map((f) => this.at(f)),
      mssante: MSSANTE_COLUMNS.map(([, f]) => this.at(f)),
    };
  }

  private readonly idx: Record<'person' | 'structure' | 'activityOwn' | 'activity' | 'key' | 'mssante', number[]>;

  /** `line` is the decoded text without its end of line; `lineNo` 1-based in the file (header = 1). */
  map(line: string, lineNo: number): Mapped {
    if (line.indexOf('\0') >= 0) return { ok: false, reason: 'contains a NUL character' };
    if (line.indexOf('\uFFFD') >= 0) return { ok: false, reason: 'bad encoding: contains bytes that are not valid in the file encoding' };
    const f = line.split('|');
    if (f.length === this.named + 1 && f[this.named] === '') f.pop();
    if (f.length !== this.named) return { ok: false, reason: `has ${f.length} fields, expected ${this.named}` };
    // The published files are not padded; trim only when some field might be.
    if (line.indexOf(' |') >= 0 || line.indexOf('| ') >= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(line.length - 1) === 32) {
      for (let i = 0; i < f.length; i++) f[i] = f[i].trim();
    }
    const escape = line.indexOf('\\') >= 0 || line.indexOf('\t') >= 0;
    return this.kind === 'activity' ? this.mapActivity(f, lineNo, escape) : this.mapMssante(f, lineNo, escape);
  }

  /** Appends the fields at `idx` to a COPY line. */
  private static append(out: string, f: readonly string[], idx: readonly number[], escape: boolean): string {
    for (let j = 0; j < idx.length; j++) out += '\t' + (idx[j] < 0 ? '\\N' : copyValue(f[idx[j]], escape));
    return out;
  }

  private mapActivity(f: string[], lineNo: number, escape: boolean): Mapped {
    const [iType, iId, iNps] = this.idx.person;
    const bad = checkPersonIds(f[iType], f[iId], f[iNps]);
    if (bad) return { ok: false, reason: bad };
    const hasStructure = this.idx.structure[0] >= 0 && f[this.idx.structure[0]] !== '';
    let key = f[this.idx.key[0]];
    for (let j = 1; j < this.idx.key.length; j++) key += '|' + (this.idx.key[j] < 0 ? '' : f[this.idx.key[j]]);
    let out = `${lineNo}\t${hashFields(f, this.idx.person)}\t${hasStructure ? hashFields(f, this.idx.structure) : '\\N'}\t${hashFields(f, this.idx.activity)}\t${copyValue(key, escape)}`;
    out = LineMapper.append(out, f, this.idx.person, escape);
    out = LineMapper.append(out, f, this.idx.structure, escape);
    out = LineMapper.append(out, f, this.idx.activityOwn, escape);
    return { ok: true, copyLine: out };
  }

  private mapMssante(f: string[], lineNo: number, escape: boolean): Mapped {
    const get = (i: number) => (i < 0 ? '' : f[i]);
    const v = this.idx.mssante.map(get);
    const [balType, address, idType, idPp, idnps, , structureId] = v;
    if (!BAL_TYPES.has(balType)) return { ok: false, reason: `unknown BAL type "${balType}" (expected PER, ORG, APP or CAB)` };
    const badAddress = checkAddress(address);
    if (badAddress) return { ok: false, reason: badAddress };
    if (balType === 'PER' || balType === 'CAB' || idnps !== '') {
      if (idnps === '') return { ok: false, reason: `${balType} box without Identification nationale PP` };
      const bad = checkPersonIds(idType, idPp, idnps);
      if (bad) return { ok: false, reason: bad };
    }
    if ((balType === 'ORG' || balType === 'APP') && structureId === '') return { ok: false, reason: `${balType} box without Identification Structure` };
    const out = `${lineNo}\t${hashFields(f, this.idx.mssante)}\t${copyValue(address.toLowerCase(), escape)}`;
    return { ok: true, copyLine: LineMapper.append(out, f, this.idx.mssante, escape) };
  }

  /** The keys a rejected raw line still names, read as leniently as possible. */
  protectedKeys(line: string): ProtectedKeys {
    const f = line.split('|').map((x) => x.trim());
    const pick = (col: string) => {
      const i = this.at(col);
      const v = i >= 0 && i < f.length ? f[i] : '';
      return v !== '' && v.length <= 254 ? v : undefined;
    };
    if (this.kind === 'activity') return { persons: pick('Identification nationale PP'), structures: pick('Identifiant technique de la structure') };
    return { addresses: pick('Adresse BAL')?.toLowerCase() };
  }
}
