// From the lines of an extraction file to rows of the national tables, or the reason a line
// is rejected. Pure: no I/O, no database — rows go to OutBufs the importer drains.
//
// One line of the activity file carries a person, a structure and an activity; each becomes
// a row of its own table's COPY stream (CSV, `|` between fields, U+0001 as the quote
// character so that no published character is special, empty = NULL). The usual line is
// handled on its bytes: find the `|`s, check the identifiers, copy byte ranges — no JS
// string per field, which is what made parsing cost more than PostgreSQL's own COPY. A line
// with anything unusual (padding to trim, control characters, U+FFFD, an invalid field)
// takes the string path, which gives the same rows or the reason for rejecting it.
//
// Lines repeating a key are merged to one row per key, deterministically whatever the line
// order (the rule: see DEDUPE_ORDER in apply.ts). The splitter merges what is cheap to merge
// here — a person's consecutive lines (the file lists a professional's activities together),
// a structure repeated with the same content — and lets anything else through: the
// database merges the remaining repeats with the same rule (apply.ts, dedupe).
import type { FileKind, HeaderInfo } from './formats.js';
import { SITE_COLUMNS, SITE_PRESENCE, siteKey, type SiteFields } from './site-key.js';
import { BAL_TYPES, checkAddress, checkPersonIds } from './validate.js';

export type TableName = 'persons' | 'structures' | 'activities' | 'addresses';

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

/** Tables fed by each kind of file, in the order they are applied. */
export const TABLES: Record<FileKind, TableName[]> = {
  activity: ['persons', 'structures', 'activities'],
  mssante: ['addresses'],
};

const PIPE = 0x7c;
const LF = 0x0a;
/** The CSV quote character of our COPY streams: no published field holds it. */
const QUOTE = 0x01;
export const COPY_OPTIONS = `(FORMAT csv, DELIMITER '|', QUOTE E'\\x01', ESCAPE E'\\x01')`;

/** A field as a CSV value: empty → NULL; quoted only when it holds the quote, a line break or `|`. */
export const csvValue = (v: string) => (v === '' ? '' : /[\x01\r\n|]/.test(v) ? '\x01' + v.replaceAll('\x01', '\x01\x01') + '\x01' : v);

/** Bytes a row's digest adds: `|`, `\x` and 16 hex digits (the LF is counted by the callers). */
export const DIGEST_ROOM = 19;

/**
 * Output of one table: whole rows in ~1 MB chunks handed to `emit`. A row is begun at
 * `mark` (after reserve), its fields written, and ended by endRow. With `digests` on (the
 * importer), endRow appends the row's digest as one more column (see digest64 and
 * migration 0110), which a sync reads back to drop the rows the table holds (gateRows).
 */
export class OutBuf {
  private buf: Buffer;
  private pos = 0;
  rows = 0;
  /**
   * A sync, once the table's digests are in: a row the table holds as it is is taken back
   * as soon as it is ended — no hex digest written, nothing queued for COPY, no second pass
   * (gateRows still filters the chunks made before the gate came).
   */
  gate: DigestGate | undefined;

  constructor(
    private readonly emit: (chunk: Buffer) => void,
    private readonly size = 1 << 20,
    private readonly digests = false,
  ) {
    this.buf = Buffer.allocUnsafe(size);
  }

  /** Room for a row of up to n bytes (and its digest): a row never straddles two chunks. */
  reserve(n: number) {
    n += DIGEST_ROOM;
    if (this.pos + n <= this.buf.length) return;
    this.flush();
    if (n > this.buf.length) this.buf = Buffer.allocUnsafe(n);
  }

  copy(src: Buffer, start: number, end: number) {
    // Most fields are a few bytes: a loop beats any call's overhead there. Longer ranges
    // (runs of fields) go through a plain Uint8Array view of the source, made once per
    // source: its subarray + set costs about half of Buffer#copy, which builds a view of
    // its own and checks its arguments on every call.
    if (end - start <= 24) {
      const buf = this.buf;
      let p = this.pos;
      for (let i = start; i < end; i++) buf[p++] = src[i];
      this.pos = p;
    } else {
      if (src !== this.src) {
        this.src = src;
        this.view = new Uint8Array(src.buffer, src.byteOffset, src.length);
      }
      this.buf.set(this.view.subarray(start, end), this.pos);
      this.pos += end - start;
    }
  }
  private src: Buffer | undefined;
  private view: Uint8Array = new Uint8Array(0);

  byte(c: number) {
    this.buf[this.pos++] = c;
  }

  /** Where the next row starts: after reserve(), so that it stays in this chunk until the next reserve(). */
  get mark(): number {
    return this.pos;
  }

  /** The row begun at `start` (the last one, not ended yet). */
  since(start: number): Buffer {
    return this.buf.subarray(start, this.pos);
  }

  /** True when the row begun at `start` (the last one, not ended yet) has the bytes src[s, e). */
  sameRow(start: number, src: Buffer, s: number, e: number): boolean {
    return this.pos - start === e - s && src.compare(this.buf, start, this.pos, s, e) === 0;
  }

  /** Takes back the row begun at `start` (the last one, not ended yet). */
  takeBack(start: number) {
    this.pos = start;
  }

  /** Ends the row begun at `start`: its digest (when on) and LF. */
  endRow(start: number) {
    if (this.digests) {
      const buf = this.buf;
      digest64(buf, start, this.pos);
      if (this.gate?.has(D[0], D[1])) {
        this.pos = start;
        return;
      }
      let p = this.pos;
      buf[p++] = PIPE;
      buf[p++] = 0x5c; // \x: bytea's hex input
      buf[p++] = 0x78;
      for (const h of D) for (let sh = 28; sh >= 0; sh -= 4) buf[p++] = HEX[(h >>> sh) & 15];
      this.pos = p;
    }
    this.buf[this.pos++] = LF;
    this.rows++;
  }

  /** A whole row given as text (the string path), without its LF. */
  text(row: string) {
    const b = Buffer.from(row, 'utf8');
    this.reserve(b.length + 1);
    const start = this.pos;
    this.copy(b, 0, b.length);
    this.endRow(start);
  }

  flush() {
    if (!this.pos) return;
    this.emit(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(this.size);
    this.pos = 0;
  }
}

const HEX = Buffer.from('0123456789abcdef');
/** The last digest64, as two 32-bit halves (high, low): no allocation per row. */
const D = new Uint32Array(2);

/**
 * 64-bit digest of a row's bytes [s, e) into D: two multiply-xorshift lanes fed four bytes
 * at a time, crossed at the end. Not cryptographic — it tells apart the rows of one table
 * (a million rows: a chance of about 3·10⁻⁸ that two share a digest), which is all a sync
 * needs of it. The input is our own COPY row, whose bytes are the same for the same fields.
 */
export function digest64(b: Buffer, s: number, e: number): void {
  let h1 = 0x9e3779b9 ^ (e - s);
  let h2 = 0x85ebca6b;
  let i = s;
  for (; i + 4 <= e; i += 4) {
    const w = b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
    h1 = Math.imul(h1 ^ w, 0xcc9e2d51);
    h1 = (h1 << 15) | (h1 >>> 17);
    h2 = Math.imul(h2 ^ w, 0x1b873593);
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = (h2 + h1) | 0;
  }
  for (; i < e; i++) {
    h1 = Math.imul(h1 ^ b[i], 0xcc9e2d51);
    h2 = Math.imul(h2 ^ b[i], 0x1b873593);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b) ^ Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b) ^ Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35);
  h1 = Math.imul(h1 ^ (h1 >>> 15), 0x2c1b3c6d) ^ h2;
  D[0] = h1;
  D[1] = h2;
}

const UNHEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) UNHEX[HEX[i]] = i;

/**
 * A chunk of rows ended by endRow with digests on, without those whose digest the gate
 * holds (marking them matched): the rows of a sync that the table does not hold as they
 * are. Each row ends with `|\x` and 16 hex digits.
 */
export function gateRows(chunk: Buffer, gate: DigestGate): Buffer {
  const keep: Buffer[] = [];
  let from = 0; // start of the run of rows kept so far
  let s = 0;
  while (s < chunk.length) {
    const nl = chunk.indexOf(LF, s);
    let h = 0;
    let l = 0;
    for (let i = nl - 16; i < nl - 8; i++) h = (h << 4) | UNHEX[chunk[i]];
    for (let i = nl - 8; i < nl; i++) l = (l << 4) | UNHEX[chunk[i]];
    if (gate.has(h >>> 0, l >>> 0)) {
      if (s > from) keep.push(chunk.subarray(from, s));
      from = nl + 1;
    }
    s = nl + 1;
  }
  if (from === 0) return chunk;
  if (chunk.length > from) keep.push(chunk.subarray(from));
  return Buffer.concat(keep);
}

/**
 * The digests of a table's active rows, each with where the row lies (its ctid), in an
 * open-addressing set; `has` marks what it finds. Read as the database gives them: 14
 * bytes a row (the 8 of the digest, then tidsend's 4-byte block and 2-byte offset, all
 * big-endian), and 6 bytes a row for active rows without a digest. After the file,
 * `matched` rows were in it as they are; `unmatched()` lists where the others lie — the
 * rows that vanished or changed, and those without a digest.
 */
export class DigestGate {
  private readonly hi: Uint32Array;
  private readonly lo: Uint32Array;
  private readonly block: Uint32Array;
  private readonly offset: Uint16Array;
  /** 0 empty, 1 present, 2 present and matched. */
  private readonly state: Uint8Array;
  private readonly mask: number;
  matched = 0;
  /** Active rows in the table. */
  readonly rows: number;
  /** Rows that no line can match: they have no digest. */
  private readonly undigested: Uint8Array;

  constructor(digests: Uint8Array, undigested: Uint8Array = new Uint8Array(0)) {
    const n = Math.floor(digests.length / 14);
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.hi = new Uint32Array(cap);
    this.lo = new Uint32Array(cap);
    this.block = new Uint32Array(cap);
    this.offset = new Uint16Array(cap);
    this.state = new Uint8Array(cap);
    this.mask = cap - 1;
    const v = new DataView(digests.buffer, digests.byteOffset, digests.byteLength);
    for (let k = 0; k < n; k++) {
      const h = v.getUint32(14 * k);
      const l = v.getUint32(14 * k + 4);
      let i = (h ^ l) & this.mask;
      // A digest shared by two rows (another key, same 64 bits: vanishingly rare) cannot
      // tell them apart: the second goes with the undigested, compared in full.
      while (this.state[i] && !(this.hi[i] === h && this.lo[i] === l)) i = (i + 1) & this.mask;
      if (this.state[i]) {
        undigested = Buffer.concat([undigested, digests.subarray(14 * k + 8, 14 * k + 14)]);
        continue;
      }
      this.hi[i] = h;
      this.lo[i] = l;
      this.block[i] = v.getUint32(14 * k + 8);
      this.offset[i] = v.getUint16(14 * k + 12);
      this.state[i] = 1;
    }
    this.undigested = undigested;
    this.rows = n + undigested.length / 6;
  }

  has(h: number, l: number): boolean {
    for (let i = (h ^ l) & this.mask; this.state[i]; i = (i + 1) & this.mask) {
      if (this.hi[i] === h && this.lo[i] === l) {
        if (this.state[i] === 1) {
          this.state[i] = 2;
          this.matched++;
        }
        return true;
      }
    }
    return false;
  }

  /** Where the rows not matched lie, as CSV rows of one tid column. */
  async *unmatched(): AsyncGenerator<Buffer> {
    let rows: string[] = [];
    const take = () => Buffer.from(rows.splice(0).join(''));
    for (let i = 0; i < this.state.length; i++) {
      if (this.state[i] !== 1) continue;
      rows.push(`"(${this.block[i]},${this.offset[i]})"\n`);
      if (rows.length === 65536) yield take();
    }
    const u = new DataView(this.undigested.buffer, this.undigested.byteOffset, this.undigested.byteLength);
    for (let k = 0; k + 6 <= u.byteLength; k += 6) {
      rows.push(`"(${u.getUint32(k)},${u.getUint16(k + 4)})"\n`);
      if (rows.length === 65536) yield take();
    }
    if (rows.length) yield take();
  }
}

/** The columns of one table's rows, in the order of the file's fields (so that neighbours copy as one range). */
interface Layout {
  columns: string[];
  /** Field index of each column; -1 (an older layout lacks it) only at the end. */
  fields: number[];
  /** Runs of consecutive field indices. */
  runs: Array<[number, number]>;
  /** Columns the file lacks: empty fields at the end of the row. */
  missing: number;
}

function layout(map: ColumnMap, at: (col: string) => number): Layout {
  const order = (i: number) => (i < 0 ? Number.MAX_SAFE_INTEGER : i);
  const pairs = map.map(([c, f]) => [c, at(f)] as const).sort((a, b) => order(a[1]) - order(b[1]));
  const runs: Array<[number, number]> = [];
  for (const [, i] of pairs) {
    if (i < 0) continue;
    const last = runs[runs.length - 1];
    if (last && last[1] === i - 1) last[1] = i;
    else runs.push([i, i]);
  }
  return { columns: pairs.map((p) => p[0]), fields: pairs.map((p) => p[1]), runs, missing: pairs.filter((p) => p[1] < 0).length };
}

/** 53-bit hash of a byte range (two multiply-xorshift lanes): "same content as the first line of this structure". */
function hashBytes(b: Buffer, s: number, e: number): number {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = s; i < e; i++) {
    const c = b[i];
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h2 & 0x1fffff) * 0x1_0000_0000 + (h1 >>> 0);
}

/**
 * Structure (by a 53-bit hash of its id) → hash of the content of its first line: open
 * addressing on one typed array (key and value side by side). A Map keyed by a string made
 * from each line's id bytes cost a third of the splitter's time. Two ids sharing a hash
 * only cost rows that the database merges: the second id's lines do not match the first
 * id's content, so they all go on.
 */
class FirstSeen {
  private slots = new Float64Array(2 << 16).fill(-1);
  private used = 0;

  /** The value stored under k (≥ 0), or -1 after storing v there. */
  putIfAbsent(k: number, v: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    for (let i = (k >>> 0) & mask; ; i = (i + 1) & mask) {
      const at = slots[2 * i];
      if (at === k) return slots[2 * i + 1];
      if (at !== -1) continue;
      slots[2 * i] = k;
      slots[2 * i + 1] = v;
      if (++this.used * 4 > slots.length) this.grow();
      return -1;
    }
  }

  private grow() {
    const old = this.slots;
    this.slots = new Float64Array(old.length * 2).fill(-1);
    this.used = 0;
    for (let i = 0; i < old.length; i += 2) if (old[i] !== -1) this.putIfAbsent(old[i], old[i + 1]);
  }
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/**
 * checkPersonIds on bytes, true when valid (the type's digit, then 11 RPPS digits or 9 ADELI
 * characters, and the national id = type + id). A false sends the line to the string path,
 * which says why.
 */
function personIdsOk(b: Buffer, ts: number, te: number, is: number, ie: number, ns: number, ne: number): boolean {
  if (te - ts !== 1 || ne - ns !== ie - is + 1 || b[ns] !== b[ts]) return false;
  const type = b[ts];
  if (type === 0x38) {
    if (ie - is !== 11) return false;
    for (let i = is; i < ie; i++) if (!isDigit(b[i])) return false;
  } else if (type === 0x30) {
    if (ie - is !== 9) return false;
    const corse = b[is] === 0x32 && (b[is + 1] === 0x41 || b[is + 1] === 0x42);
    if (!corse && !(isDigit(b[is]) && isDigit(b[is + 1]))) return false;
    for (let i = is + 2; i < ie; i++) if (!isDigit(b[i])) return false;
  } else return false;
  for (let i = 0; i < ie - is; i++) if (b[ns + 1 + i] !== b[is + i]) return false;
  return true;
}

/**
 * True when a block of lines holds nothing the byte path must not copy as is: NUL (a
 * rejection), our quote character, a carriage return inside a line (CSV would read a line
 * break), U+FFFD (a decoding failure upstream: a rejection). Native searches, once per block.
 */
export function cleanBlock(b: Buffer): boolean {
  if (b.indexOf(0) >= 0 || b.indexOf(QUOTE) >= 0 || b.indexOf(FFFD) >= 0) return false;
  for (let i = b.indexOf(0x0d); i >= 0; i = b.indexOf(0x0d, i + 1)) if (b[i + 1] !== LF) return false;
  return true;
}
const FFFD = Buffer.from('\uFFFD', 'utf8');

export type Mapped = { ok: true; rows: Partial<Record<TableName, string>> } | { ok: false; reason: string };

/** Keys a rejected line names: the entries it may have carried are not deactivated. */
export interface ProtectedKeys {
  persons?: string;
  structures?: string;
  addresses?: string;
}

/**
 * Splits the lines of one file into table rows. Built once per file from its header, so
 * each line costs only index lookups.
 */
export class LineSplitter {
  readonly kind: FileKind;
  /** COPY column list of each table's rows. */
  readonly columns: Partial<Record<TableName, string[]>> = {};
  /** Lines turned into rows. */
  good = 0;
  /** Field count of a line, without the optional trailing empty field. */
  private readonly named: number;
  /**
   * The header ends with `|` (the activity file): a line may too. Only then: where the
   * header has none (the MSSanté file), a 32nd empty field is a `|` inside a value, and
   * taking it for a trailing one would shift every column after it.
   */
  private readonly trailing: boolean;
  private readonly at: (col: string) => number;
  private readonly L: Partial<Record<TableName, Layout>> = {};
  private readonly keyFields: number[];
  private readonly f: { type: number; id: number; nps: number; structure: number; balType: number; address: number; balIdType: number; sid: number };
  /** Field boundaries of the current line: the byte offset of each `|`. */
  private pipes = new Int32Array(1024);
  /**
   * The person of the current run of lines (their idnps bytes) and where the row chosen
   * for them so far starts in the persons output: written at their first line, replaced
   * in place by a later line that the merge rule puts first.
   */
  private personOpen = false;
  private pid = Buffer.alloc(32);
  private pidLen = 0;
  private personAt = 0;
  private readonly personOrder: number[];
  private readonly structures = new FirstSeen();
  /** Fields that tell a site is described (see site-key.ts), for lines without a technical id. */
  private readonly sitePresence: number[];

  constructor(
    header: HeaderInfo,
    private readonly out: Partial<Record<TableName, OutBuf>> = {},
  ) {
    this.kind = header.kind;
    let named = header.fieldCount;
    // The header's trailing `|` adds an empty name that is not a column.
    while (named > 0 && !Array.from(header.index.values()).includes(named - 1)) named--;
    this.named = named;
    this.trailing = header.fieldCount > named;
    this.at = (col) => header.index.get(col) ?? -1;
    const at = this.at;
    if (this.kind === 'activity') {
      this.L.persons = layout(PERSON_COLUMNS, at);
      this.L.structures = layout(STRUCTURE_COLUMNS, at);
      this.L.activities = layout(ACTIVITY_COLUMNS, at);
      this.columns.persons = this.L.persons.columns;
      this.columns.structures = this.L.structures.columns;
      this.columns.activities = ['activity_key', ...this.L.activities.columns];
    } else {
      this.L.addresses = layout(MSSANTE_COLUMNS, at);
      this.columns.addresses = this.L.addresses.columns;
    }
    this.keyFields = ACTIVITY_KEY.map(at);
    this.f = {
      type: at("Type d'identifiant PP"),
      id: at('Identifiant PP'),
      nps: at('Identification nationale PP'),
      structure: at('Identifiant technique de la structure'),
      balType: at('Type de BAL'),
      address: at('Adresse BAL'),
      balIdType: at('Type Identifiant PP'),
      sid: at('Identification Structure'),
    };
    this.sitePresence = SITE_PRESENCE.map((k) => at(SITE_COLUMNS[k])).filter((i) => i >= 0);
    const pc = this.columns.persons ?? [];
    this.personOrder = [pc.indexOf('profession_code'), pc.indexOf('savoir_faire_code'), ...pc.map((_, i) => i)];
  }

  /**
   * One line: bytes [s, e) of `b`, end of line excluded. Writes its rows and returns
   * undefined, or returns the reason it is rejected (nothing written).
   */
  line(b: Buffer, s: number, e: number, clean = false): string | undefined {
    const pipes = this.pipes;
    let n = 0;
    let special = b[s] === 0x20 || b[e - 1] === 0x20;
    if (clean) {
      for (let i = s; i < e; i++) {
        if (b[i] === PIPE) {
          if (n < pipes.length) pipes[n] = i;
          n++;
        }
      }
    } else {
      for (let i = s; i < e; i++) {
        const c = b[i];
        if (c === PIPE) {
          if (n < pipes.length) pipes[n] = i;
          n++;
        } else if ((c < 0x20 && c !== 0x09) || (c === 0xef && b[i + 1] === 0xbf && b[i + 2] === 0xbd)) special = true;
      }
    }
    let fields = n + 1;
    if (this.trailing && fields === this.named + 1 && pipes[n - 1] === e - 1) fields--;
    if (special || fields !== this.named || n > pipes.length) return this.slow(b.toString('utf8', s, e));
    for (let j = 0; j < n; j++) {
      const p = pipes[j];
      if (b[p - 1] === 0x20 || b[p + 1] === 0x20) return this.slow(b.toString('utf8', s, e)); // padded fields: trimmed there
    }
    this.ls = s;
    this.le = e;
    this.np = n;
    const f = this.f;
    if (this.kind === 'activity') {
      if (!personIdsOk(b, this.fs(f.type), this.fe(f.type), this.fs(f.id), this.fe(f.id), this.fs(f.nps), this.fe(f.nps))) return this.slow(b.toString('utf8', s, e));
      // A site without a technical id gets its key on the string path (rare lines).
      if (this.siteWithoutId()) return this.slow(b.toString('utf8', s, e));
      this.good++;
      this.personRow(b);
      const sf = f.structure;
      if (sf >= 0 && this.fe(sf) > this.fs(sf)) {
        const L = this.L.structures!;
        // The content's hash: digest64 takes four bytes a step (hashBytes one: the id is short).
        digest64(b, this.fs(L.runs[0][0]), this.fe(L.runs[L.runs.length - 1][1]));
        const h = (D[0] & 0x1fffff) * 0x1_0000_0000 + D[1];
        if (this.structures.putIfAbsent(hashBytes(b, this.fs(sf), this.fe(sf)), h) !== h) {
          const so = this.out.structures!;
          so.reserve(e - s + L.missing + 2);
          this.rowOf(so, L, b, so.mark);
        }
      }
      const o = this.out.activities!;
      o.reserve(2 * (e - s) + 64 + this.L.activities!.missing);
      const start = o.mark;
      o.byte(QUOTE);
      const kf = this.keyFields;
      for (let j = 0; j < kf.length; j++) {
        if (j) o.byte(PIPE);
        if (kf[j] >= 0) o.copy(b, this.fs(kf[j]), this.fe(kf[j]));
      }
      o.byte(QUOTE);
      o.byte(PIPE);
      this.rowOf(o, this.L.activities!, b, start);
      return undefined;
    }
    const str = (i: number) => (i < 0 ? '' : b.toString('latin1', this.fs(i), this.fe(i)));
    const balType = str(f.balType);
    const address = str(f.address);
    const idnps = str(f.nps);
    if (!BAL_TYPES.has(balType) || checkAddress(address)) return this.slow(b.toString('utf8', s, e));
    if (balType === 'PER' || balType === 'CAB' || idnps !== '') {
      if (idnps === '' || checkPersonIds(str(f.balIdType), str(f.id), idnps)) return this.slow(b.toString('utf8', s, e));
    }
    if ((balType === 'ORG' || balType === 'APP') && str(f.sid) === '') return this.slow(b.toString('utf8', s, e));
    this.good++;
    const o = this.out.addresses!;
    o.reserve(e - s + this.L.addresses!.missing + 2);
    this.rowOf(o, this.L.addresses!, b, o.mark);
    return undefined;
  }

  /** The current line and its `|`s (set by line()). */
  private ls = 0;
  private le = 0;
  private np = 0;
  private fs(i: number): number {
    return i === 0 ? this.ls : this.pipes[i - 1] + 1;
  }
  private fe(i: number): number {
    return i < this.np ? this.pipes[i] : this.le;
  }

  /** The current line describes a site but has no technical id for it. */
  private siteWithoutId(): boolean {
    const sf = this.f.structure;
    if (sf < 0 || this.fe(sf) > this.fs(sf)) return false;
    for (const i of this.sitePresence) if (this.fe(i) > this.fs(i)) return true;
    return false;
  }

  /** The key of a site without technical id (site-key.ts), from the fields of a line. */
  private siteKeyOf(get: (i: number) => string): string | undefined {
    const fields = {} as SiteFields;
    for (const k of Object.keys(SITE_COLUMNS) as Array<keyof SiteFields>) fields[k] = get(this.at(SITE_COLUMNS[k]));
    return siteKey(fields);
  }

  /** Copies the fields of a layout and ends the row begun at `start` (room reserved by the caller). */
  private rowOf(o: OutBuf, L: Layout, b: Buffer, start: number) {
    for (let r = 0; r < L.runs.length; r++) {
      if (r) o.byte(PIPE);
      o.copy(b, this.fs(L.runs[r][0]), this.fe(L.runs[r][1]));
    }
    for (let m = 0; m < L.missing; m++) o.byte(PIPE);
    o.endRow(start);
  }

  /**
   * A person's consecutive lines give one row: the first by the merge rule. Compared where
   * it was written, so the usual line (the same person's fields again) costs one memcmp
   * and allocates nothing. The row stays open (not ended: no digest, no LF) until the run
   * of lines ends — the next person, a string-path row, or the end of the file.
   */
  private personRow(b: Buffer) {
    const L = this.L.persons!;
    let src = b;
    let rs: number;
    let re: number;
    if (L.runs.length === 1 && !L.missing) {
      rs = this.fs(L.runs[0][0]);
      re = this.fe(L.runs[0][1]);
    } else {
      const parts: Buffer[] = [];
      for (let r = 0; r < L.runs.length; r++) parts.push(b.subarray(this.fs(L.runs[r][0]), this.fe(L.runs[r][1])));
      src = Buffer.from(parts.map((p) => p.toString('latin1')).join('|') + '|'.repeat(L.missing), 'latin1');
      rs = 0;
      re = src.length;
    }
    const o = this.out.persons!;
    const ns = this.fs(this.f.nps);
    const ne = this.fe(this.f.nps);
    if (this.personOpen && this.pidLen === ne - ns && b.compare(this.pid, 0, this.pidLen, ns, ne) === 0) {
      if (o.sameRow(this.personAt, src, rs, re) || !this.personBefore(src.subarray(rs, re), o.since(this.personAt))) return;
      o.takeBack(this.personAt);
    } else {
      this.endPerson();
      if (ne - ns > this.pid.length) this.pid = Buffer.alloc(2 * (ne - ns));
      for (let i = ns; i < ne; i++) this.pid[i - ns] = b[i];
      this.pidLen = ne - ns;
      this.personOpen = true;
    }
    o.reserve(re - rs + 1);
    this.personAt = o.mark;
    o.copy(src, rs, re);
  }

  /** Ends the open person's row, if any. */
  private endPerson() {
    if (!this.personOpen) return;
    this.personOpen = false;
    this.out.persons!.endRow(this.personAt);
  }

  /** The merge rule of persons (apply.ts DEDUPE_ORDER), on raw rows: latin1 strings compare as bytes, as COLLATE "C" does. */
  private personBefore(a: Buffer, b: Buffer): boolean {
    if (a.equals(b)) return false; // the usual case: the same person on every line
    const x = a.toString('latin1').split('|');
    const y = b.toString('latin1').split('|');
    for (const i of this.personOrder) {
      if (i < 0 || x[i] === y[i]) continue;
      if (x[i] === '') return false; // NULLS LAST
      if (y[i] === '') return true;
      return x[i] < y[i];
    }
    return false;
  }

  /** End of the file: every row is written. */
  finish() {
    this.endPerson();
  }

  /** The string path: the same rows (written), or the reason. */
  private slow(line: string): string | undefined {
    const m = this.map(line);
    if (!m.ok) return m.reason;
    this.good++;
    // The open person's row is ended before this one: a later line of theirs starts a row
    // of its own (the database merges the two by the same rule).
    if (m.rows.persons !== undefined) this.endPerson();
    for (const [t, row] of Object.entries(m.rows) as Array<[TableName, string]>) this.out[t]!.text(row);
    return undefined;
  }

  /** `line` is the decoded text without its end of line: its rows as CSV text, or the reason it is rejected. */
  map(line: string): Mapped {
    if (line.indexOf('\0') >= 0) return { ok: false, reason: 'contains a NUL character' };
    if (line.indexOf('\uFFFD') >= 0) return { ok: false, reason: 'bad encoding: contains bytes that are not valid in the file encoding' };
    const f = line.split('|');
    if (this.trailing && f.length === this.named + 1 && f[this.named] === '') f.pop();
    if (f.length !== this.named) return { ok: false, reason: `has ${f.length} fields, expected ${this.named}` };
    // The published files are not padded; trim only when some field might be.
    if (line.indexOf(' |') >= 0 || line.indexOf('| ') >= 0 || line.charCodeAt(0) === 32 || line.charCodeAt(line.length - 1) === 32) {
      for (let i = 0; i < f.length; i++) f[i] = f[i].trim();
    }
    const get = (i: number) => (i < 0 ? '' : f[i]);
    const row = (L: Layout) => L.fields.map((i) => csvValue(get(i))).join('|');
    if (this.kind === 'activity') {
      const bad = checkPersonIds(get(this.f.type), get(this.f.id), get(this.f.nps));
      if (bad) return { ok: false, reason: bad };
      if (this.f.structure >= 0 && get(this.f.structure) === '') {
        const key = this.siteKeyOf(get);
        if (key) f[this.f.structure] = key; // the structure row, the activity's link and its key
      }
      const rows: Partial<Record<TableName, string>> = { persons: row(this.L.persons!) };
      if (get(this.f.structure) !== '') rows.structures = row(this.L.structures!);
      rows.activities = `${csvValue(this.keyFields.map(get).join('|'))}|${row(this.L.activities!)}`;
      return { ok: true, rows };
    }
    const balType = get(this.f.balType);
    const address = get(this.f.address);
    const idnps = get(this.f.nps);
    if (!BAL_TYPES.has(balType)) return { ok: false, reason: `unknown BAL type ${JSON.stringify(balType.slice(0, 60))} (expected PER, ORG, APP or CAB)` };
    const badAddress = checkAddress(address);
    if (badAddress) return { ok: false, reason: badAddress };
    if (balType === 'PER' || balType === 'CAB' || idnps !== '') {
      if (idnps === '') return { ok: false, reason: `${balType} box without Identification nationale PP` };
      const bad = checkPersonIds(get(this.f.balIdType), get(this.f.id), idnps);
      if (bad) return { ok: false, reason: bad };
    }
    if ((balType === 'ORG' || balType === 'APP') && get(this.f.sid) === '') return { ok: false, reason: `${balType} box without Identification Structure` };
    return { ok: true, rows: { addresses: row(this.L.addresses!) } };
  }

  /** The keys a rejected raw line still names, read as leniently as possible. */
  protectedKeys(line: string): ProtectedKeys {
    const f = line.split('|').map((x) => x.trim());
    const pick = (col: string) => {
      const i = this.at(col);
      const v = i >= 0 && i < f.length ? f[i] : '';
      return v !== '' && v.length <= 254 ? v : undefined;
    };
    if (this.kind === 'activity') {
      const site = pick('Identifiant technique de la structure') ?? this.siteKeyOf((i) => (i >= 0 && i < f.length ? f[i] : ''));
      return { persons: pick('Identification nationale PP'), structures: site };
    }
    return { addresses: pick('Adresse BAL')?.toLowerCase() };
  }
}
