// The monthly sync by per-row digests (annuaire/import, migration 0110), on PGlite and on
// PostgreSQL when one is given: an identical file writes nothing; a file with a few rows
// changed, added and removed writes exactly those rows, queues exactly those keys for the
// directory, and leaves the annuaire equal to a fresh import of the new file — repeated
// keys and rows without a digest included. Writes are counted by row version (ctid, xmin),
// never by time.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importFiles } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { dbTargets } from '../helpers/db.js';
import { activityLines, encodeFile, mssanteLines, type GenOptions } from '../helpers/rpps-generator.js';

const ACT = (d: string) => `PS_LibreAcces_Personne_activite_${d}0000.txt`;
const MSS = (d: string) => `Extraction_Correspondance_MSSante_${d}0000.txt`;
const TABLES = { persons: 'annuaire_persons', structures: 'annuaire_structures', activities: 'annuaire_activities', addresses: 'annuaire_mss_addresses' } as const;
const KEY = { persons: 'idnps', structures: 'structure_id', activities: 'activity_key', addresses: 'lower(address)' } as const;
/** What an import decides about a row; the dates and the file name say when, not what. */
const BOOKKEEPING = new Set(['first_seen', 'last_seen', 'deactivated_at', 'source_file', 'hash']);

describe.each(dbTargets())('annuaire sync by digests on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let dir: string;
  let report: RejectReport;
  beforeEach(async () => {
    ({ db, dispose } = await target.open());
    dir = mkdtempSync(join(tmpdir(), 'mss-annuaire-sync-'));
    report = new RejectReport(join(dir, 'report.tsv'));
  });
  afterEach(async () => {
    report.close();
    await dispose?.();
  });

  const write = (name: string, lines: string[]) => {
    const p = join(dir, name);
    writeFileSync(p, encodeFile(lines, 'utf8'));
    return p;
  };
  const one = async (on: Db, path: string) => {
    const r = await importFiles([path], { db: on, journal: new Journal(on), actor: 'test', report });
    if (r.failures.length) throw r.failures[0].error;
    return r.results[0];
  };
  /** Each row's version (ctid and xmin change with every write), by key. */
  const versions = async (t: keyof typeof TABLES) => {
    const { rows } = await db.query<{ k: string; v: string }>(`SELECT ${KEY[t]} AS k, ctid::text || '/' || xmin::text AS v FROM ${TABLES[t]}`);
    return new Map(rows.map((r) => [r.k, r.v]));
  };
  const rewritten = (before: Map<string, string>, after: Map<string, string>) => [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k).sort();
  /** The active rows of a table, every column but the bookkeeping ones, by key. */
  const activeRows = async (on: Db, t: keyof typeof TABLES) => {
    const { rows } = await on.query<Record<string, unknown>>(`SELECT ${KEY[t]} AS k, * FROM ${TABLES[t]} WHERE active ORDER BY 1`);
    return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([c]) => !BOOKKEEPING.has(c)).map(([c, v]) => [c, v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v])));
  };
  const pending = async () => (await db.query<{ kind: string; key: string }>('SELECT kind, key FROM annuaire_ldap_pending ORDER BY kind, key')).rows;
  /** A fresh database holding only `path`, imported once. */
  const fresh = async (path: string, kind: 'activity' | 'mssante') => {
    const other = await target.open();
    try {
      await one(other.db, path);
      const out: Record<string, unknown> = {};
      for (const t of kind === 'activity' ? (['persons', 'structures', 'activities'] as const) : (['addresses'] as const)) out[t] = await activeRows(other.db, t);
      return out;
    } finally {
      await other.dispose();
    }
  };

  it('re-importing the same file writes no row and queues nothing for the directory', async () => {
    const act = [...activityLines({ lines: 500, seed: 11 })];
    const mss = [...mssanteLines({ lines: 300, seed: 11 })];
    await one(db, write(ACT('20240101'), act));
    await one(db, write(MSS('20240101'), mss));
    const before = { persons: await versions('persons'), structures: await versions('structures'), activities: await versions('activities'), addresses: await versions('addresses') };
    await db.query('DELETE FROM annuaire_ldap_pending');
    const a = await one(db, write(ACT('20240201'), act));
    const m = await one(db, write(MSS('20240201'), mss));
    for (const r of [a, m]) {
      for (const [t, c] of Object.entries(r.tables)) expect([t, c.inserted, c.updated, c.deactivated], t).toEqual([t, 0, 0, 0]);
      expect(r.ldap).toEqual({ action: 'none', keys: 0 });
    }
    expect(a.tables.activities.unchanged).toBe(500);
    for (const t of Object.keys(before) as Array<keyof typeof before>) expect(rewritten(before[t], await versions(t)), t).toEqual([]);
    expect(await pending()).toEqual([]);
  });

  it('a file with a few rows changed, added and removed writes exactly those, and equals a fresh import of it', async () => {
    const base: GenOptions = { lines: 1000, seed: 5 };
    const v1 = [...activityLines(base)];
    const v2 = [...activityLines({ ...base, month: 1, changed: 0.01, added: 0.01, vanished: 0.01 })];
    // Keys repeated with other content, which the merge rule settles: an activity line
    // twice, once as it was (so skipped by its digest) and once relabelled after it in
    // byte order (so the line as it was must still win); a person's line moved away from
    // their others, with another savoir-faire.
    const header = v2[0].split('|');
    const at = (c: string) => header.indexOf(c);
    expect(v1, 'the line repeated is unchanged since last month').toContain(v2[10]);
    const twice = v2[10].split('|');
    twice[at('Libellé rôle')] = '\x7f relabelled';
    v2.push(twice.join('|'));
    const moved = v2[20].split('|');
    moved[at('Code savoir-faire')] = 'AAA';
    moved[at('Libellé savoir-faire')] = 'moved away';
    v2.push(moved.join('|'));
    await one(db, write(ACT('20240101'), v1));
    // A row written by other means (no digest): compared in full, and given its digest.
    await db.query(`UPDATE annuaire_persons SET digest = NULL WHERE idnps = (SELECT min(idnps) FROM annuaire_persons)`);
    await db.query('DELETE FROM annuaire_ldap_pending');
    const before = { persons: await versions('persons'), structures: await versions('structures'), activities: await versions('activities') };
    const p2 = write(ACT('20240201'), v2);
    const r = await one(db, p2);

    const changed: Record<string, string[]> = {};
    for (const t of ['persons', 'structures', 'activities'] as const) {
      const c = r.tables[t];
      expect(c.inserted + c.updated + c.deactivated, `the file changes ${t}`).toBeGreaterThan(0);
      expect(c.unchanged, `most ${t} are unchanged`).toBeGreaterThan(10 * (c.inserted + c.updated + c.deactivated));
      const { rows } = await db.query<{ k: string }>(`SELECT k FROM (SELECT ${KEY[t]} AS k, source_file FROM ${TABLES[t]}) x WHERE source_file = $1 ORDER BY 1`, [ACT('20240201')]);
      changed[t] = rows.map((x) => x.k);
      expect(changed[t], `${t}: one row per change`).toHaveLength(c.inserted + c.updated + c.deactivated);
      const written = rewritten(before[t], await versions(t));
      // The row without a digest was written (its digest only) though unchanged; no other.
      const quiet = t === 'persons' ? written.filter((k) => !changed.persons.includes(k)) : [];
      expect(quiet.length, `${t}: at most the row without a digest besides the changes`).toBeLessThanOrEqual(1);
      expect(written.filter((k) => !quiet.includes(k)), `${t}: only the changed rows written`).toEqual(changed[t]);
    }
    expect(await db.query('SELECT 1 FROM annuaire_persons WHERE digest IS NULL')).toMatchObject({ rows: [] });
    // The directory is told exactly the changed persons that hold a box (none here) and
    // the boxes naming them: without MSSanté addresses, nothing at all.
    expect(r.ldap).toEqual({ action: 'none', keys: 0 });

    const synced: Record<string, unknown> = {};
    for (const t of ['persons', 'structures', 'activities'] as const) synced[t] = await activeRows(db, t);
    expect(synced).toEqual(await fresh(p2, 'activity'));
    // The merge rule kept the line as it was (the relabelled one sorts after it), though
    // only the relabelled one was staged.
    const key = [at('Identification nationale PP'), at('Identifiant technique de la structure'), at('Code profession'), at('Code type savoir-faire'), at('Code savoir-faire'), at('Code mode exercice'), at('Code rôle'), at('Code genre activité')].map((i) => twice[i]).join('|');
    expect((await db.query<{ role: string }>('SELECT role FROM annuaire_activities WHERE activity_key = $1', [key])).rows).toEqual([{ role: v2[10].split('|')[at('Libellé rôle')] }]);
  });

  it('MSSanté addresses: the changed boxes only are written and queued, and the table equals a fresh import', async () => {
    const base: GenOptions = { lines: 800, seed: 9 };
    const v1 = [...mssanteLines(base)];
    const v2 = [...mssanteLines({ ...base, month: 1, changed: 0.02, added: 0.01, vanished: 0.01 })];
    await one(db, write(MSS('20240101'), v1));
    await db.query('DELETE FROM annuaire_ldap_pending');
    const before = await versions('addresses');
    const p2 = write(MSS('20240201'), v2);
    const r = await one(db, p2);
    const c = r.tables.addresses;
    expect(c.inserted * c.updated * c.deactivated, 'the file inserts, changes and removes boxes').toBeGreaterThan(0);
    const { rows } = await db.query<{ k: string }>('SELECT lower(address) AS k FROM annuaire_mss_addresses WHERE source_file = $1 ORDER BY 1', [MSS('20240201')]);
    const changed = rows.map((x) => x.k);
    expect(changed).toHaveLength(c.inserted + c.updated + c.deactivated);
    expect(rewritten(before, await versions('addresses'))).toEqual(changed);
    const queued = (await pending()).filter((p) => p.kind === 'bal').map((p) => p.key.toLowerCase()).sort();
    expect(queued).toEqual(changed);
    expect({ addresses: await activeRows(db, 'addresses') }).toEqual(await fresh(p2, 'mssante'));
  });
});
