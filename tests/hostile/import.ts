// The national extraction corpus's context: importFiles (what `mss annuaire import` and the
// admin API run) on a database of its own, files written to a temporary directory, and an
// Outcome per file: the refusal of the whole file, or the reason its first bad line was
// rejected (the rest of the file applied), or `applied`.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { importFiles } from '../../annuaire/import/importer.js';
import { MSSANTE_HEADER } from '../../annuaire/import/formats.js';
import type { ZipLimits } from '../../annuaire/import/source.js';
import type { Outcome } from './harness.js';
import { scratchDb } from './files.js';
import type { Db } from '../../core/db/index.js';

export interface ImportCtx {
  db: Db;
  /** A file name dated after every import so far (the extraction dates must go forward). */
  next(prefix?: string, ext?: string): string;
  /**
   * A whole extraction: every box imported so far (an extraction lists them all: a file
   * without them would remove them) and these extra lines.
   */
  full(...lines: string[]): string;
  /** Imports `bytes` saved under `name`; the Outcome of the file. */
  run(name: string, bytes: Buffer | string, o?: { zipLimits?: ZipLimits; force?: boolean }): Promise<Outcome>;
}

export type Row = Partial<Record<(typeof MSSANTE_HEADER)[number], string>>;

/** One line of an Extraction_Correspondance_MSSante file; a valid PER box of `local`@`domain` unless `over` says otherwise. */
export function mssRow(local: string, over: Row = {}, n = 1): string {
  const rpps = String(10_000_000_000 + (hash(local) % 89_999_999_999) + n).slice(0, 11);
  const base: Row = {
    'Type de BAL': 'PER',
    'Adresse BAL': `${local}@medecin.mssante.fr`,
    'Type Identifiant PP': '8',
    'Identifiant PP': rpps,
    'Identification nationale PP': `8${rpps}`,
    "Nom d'exercice": 'DUPONT',
    "Prénom d'exercice": 'Claire',
    'Code Profession': '10',
    'Libellé Profession': 'Médecin',
    'Dématérialisation': 'N',
  };
  const f = { ...base, ...over };
  return MSSANTE_HEADER.map((c) => f[c] ?? '').join('|');
}
export const HEADER = MSSANTE_HEADER.join('|');
/** A whole file: the header and these lines, CRLF. */
export const file = (...lines: string[]) => [HEADER, ...lines].join('\r\n') + '\r\n';

function hash(s: string): number {
  let h = 7;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return h;
}

/** Addresses of the normal imports, all of which must stay in the annuaire. */
const imported: string[] = [];

export async function importCtx(): Promise<ImportCtx & { serves(): Promise<void>; nothingLost(): Promise<void>; close(): Promise<void> }> {
  const { db, journal, close } = await scratchDb();
  const dir = mkdtempSync(join(tmpdir(), 'mss-hostile-import-'));
  // Extraction dates in the past, one minute apart, in the order the files are imported.
  let minute = 0;
  const stamp = () => {
    const d = new Date(Date.UTC(2026, 0, 1, 0, ++minute));
    return d.toISOString().replace(/[-:T]/g, '').slice(0, 12);
  };
  const ctx: ImportCtx = {
    db,
    next: (prefix = 'Extraction_Correspondance_MSSante', ext = 'txt') => `${prefix}_${stamp()}.${ext}`,
    full: (...lines) => file(...imported.map((a, i) => mssRow(a.split('@')[0], {}, i)), ...lines),
    async run(name, bytes, o = {}) {
      const sub = mkdtempSync(join(dir, 'f-'));
      const path = join(sub, name);
      writeFileSync(path, bytes);
      const reasons: string[] = [];
      const report = { reject: (_f: string, _l: number, reason: string) => void reasons.push(reason), note: () => {} };
      const out = await importFiles([path], { db, journal, actor: 'hostile-corpus', report, force: o.force, ...(o.zipLimits ? { zipLimits: o.zipLimits } : {}) });
      const f = out.failures[0];
      if (f) return { code: f.error.code, enhanced: String(f.error.status), text: f.error.message.replaceAll(sub + '/', '') };
      const r = out.results[0];
      if (!r) return { code: 'nothing', text: `nothing imported; skipped: ${out.skipped.map((s) => s.replaceAll(sub + '/', '')).join('; ')}` };
      if (r.rejected) return { code: 'rejected', enhanced: `${r.rejected} line${r.rejected > 1 ? 's' : ''}`, text: reasons[0] ?? '' };
      return { code: 'applied', text: `${r.lines} lines${r.notes.length ? `; ${r.notes.join('; ')}` : ''}` };
    },
  };
  let n = 0;
  return {
    ...ctx,
    /** A good extraction adding one more box: applied, nothing rejected. */
    async serves() {
      const local = `normal.${++n}`;
      imported.push(`${local}@medecin.mssante.fr`);
      const o = await ctx.run(ctx.next(), ctx.full());
      expect(`${o.code} ${o.text}`).toMatch(new RegExp(`^applied ${imported.length} lines($|; )`));
    },
    async nothingLost() {
      const { rows } = await db.query<{ address: string }>('SELECT lower(address) AS address FROM annuaire_mss_addresses WHERE active');
      const have = new Set(rows.map((r) => r.address));
      expect(imported.filter((a) => !have.has(a))).toEqual([]);
      // Nothing from a refused file either: every hostile file names its boxes "pirate…".
      expect([...have].filter((a) => a.startsWith('pirate'))).toEqual([]);
    },
    close,
  };
}
