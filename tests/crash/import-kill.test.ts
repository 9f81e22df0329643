// kill -9 a process applying a monthly sync on PGlite in steps (annuaire/import/runs.ts) —
// between two batches, inside one, or while it is still staging — then open the data
// directory again and finish: the annuaire, the file's record, the directory's queue and
// the journal are exactly those of the same sync left to run to its end, and the journal
// records the file once.
import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { importFiles, resumeImports } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { migrate, openPglite, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { fromRoot } from '../../core/paths.js';
import { activityLines, encodeFile } from '../helpers/rpps-generator.js';

const BATCH = 16;
const child = fromRoot('tests', 'crash', 'import-child.ts');
const TABLES = { annuaire_persons: 'idnps', annuaire_structures: 'structure_id', annuaire_activities: 'activity_key' };

/** Everything an import decides, in a comparable form (no ids, seqs or wall-clock times). */
async function state(db: Db) {
  const plain = (r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString('hex') : v instanceof Date ? v.toISOString() : v]));
  const tables: Record<string, unknown[]> = {};
  for (const [t, key] of Object.entries(TABLES)) tables[t] = (await db.query(`SELECT * FROM ${t} ORDER BY ${key}`)).rows.map(plain);
  const files = (await db.query('SELECT kind, file_name, sha256, extraction_date, encoding, forced, lines, rejected, counts, actor FROM annuaire_import_files ORDER BY id')).rows.map(plain);
  const ldap = (await db.query('SELECT kind, key FROM annuaire_ldap_pending ORDER BY kind, key')).rows;
  const journal = (await db.query<{ type: string; subject: string; details: Record<string, unknown> }>("SELECT type, subject, details FROM journal_events WHERE type LIKE 'annuaire.%' ORDER BY seq")).rows.map((e) => {
    const d = typeof e.details === 'string' ? JSON.parse(e.details) : e.details;
    delete d.changeEvents;
    return { type: e.type, subject: e.subject, details: d };
  });
  const runs = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_import_changes')).rows[0].n + (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM annuaire_import_runs')).rows[0].n;
  return { tables, files, ldap, journal, runs };
}

describe('a sync applied in steps on PGlite, killed with -9', () => {
  let dir: string;
  let files: string[];
  let reference: Awaited<ReturnType<typeof state>>;
  let oneTransaction: Awaited<ReturnType<typeof state>>;

  /** Imports the files in this process, in an in-memory database (batch 0: one transaction each). */
  const uninterrupted = async (batch: number) => {
    const db = await openPglite();
    await migrate(db);
    const report = new RejectReport(join(dir, `report-${batch}.tsv`));
    for (const f of files) {
      const out = await importFiles([f], { db: db.background(), journal: new Journal(db), actor: 'test', report, batch });
      if (out.failures.length) throw out.failures[0].error;
    }
    report.close();
    const s = await state(db);
    await db.close();
    return s;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mss-import-kill-'));
    files = [0, 1].map((month) => {
      const p = join(dir, `PS_LibreAcces_Personne_activite_2024${month ? '02' : '01'}010000.txt`);
      writeFileSync(p, encodeFile(activityLines({ lines: 600, seed: 7, month: month as 0 | 1, changed: 0.1, vanished: 0.05, added: 0.05 })));
      return p;
    });
    reference = await uninterrupted(BATCH);
    oneTransaction = await uninterrupted(0);
  });

  it('the stepped sync, uninterrupted, leaves the tables and the directory queue as the one-transaction sync does', () => {
    expect(reference.runs).toBe(0);
    expect(reference.tables).toEqual(oneTransaction.tables);
    expect(reference.files).toEqual(oneTransaction.files);
    expect(reference.ldap).toEqual(oneTransaction.ldap);
  });

  it.each([
    ['between two batches', 'committed:3', 'partly applied'],
    ['inside a batch, before it commits', 'batch:5', 'partly applied'],
    ['while the difference is being staged', 'table:activities', 'not frozen'],
  ])('%s: finishing after the restart gives the uninterrupted result', async (_what, stopAt, expected) => {
    const data = mkdtempSync(join(dir, 'data-'));
    const p = fork(child, [data, String(BATCH), ...files], { execArgv: ['--import', 'tsx'], env: { ...process.env, MSS_TEST_STOP_AT: stopAt }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise<NodeJS.Signals | number | null>((r) => p.on('exit', (code, signal) => r(signal ?? code)));
    const said = await new Promise<{ at?: string; done?: boolean }>((resolve, reject) => {
      p.on('message', (m) => resolve(m as { at?: string }));
      p.on('exit', (code) => reject(new Error(`the importing process exited (${code}) before reaching ${stopAt}`)));
    });
    expect(said).toEqual({ at: stopAt });
    p.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const db = await openPglite(join(data, 'db'));
    try {
      const { rows } = await db.query<{ next_seq: number; changes: number | null }>('SELECT next_seq::int, changes::int FROM annuaire_import_runs');
      if (expected === 'partly applied') {
        // The kill came in the middle of applying: some changes applied, not all.
        expect(rows).toHaveLength(1);
        expect(rows[0].next_seq).toBeGreaterThan(0);
        expect(rows[0].changes).toBeGreaterThan(rows[0].next_seq);
        expect((await state(db)).tables).not.toEqual(reference.tables);
      } else {
        // Nothing frozen, nothing applied: the first month as it was.
        expect(rows.every((r) => r.changes === null)).toBe(true);
      }
      const journal = new Journal(db);
      const resumed = await resumeImports(db.background(), journal);
      if (expected === 'not frozen') {
        expect(resumed).toEqual([]);
        const out = await importFiles([files[1]], { db: db.background(), journal, actor: 'test', report: new RejectReport(join(data, 'again.tsv')), batch: BATCH });
        expect(out.failures).toEqual([]);
      } else expect(resumed.map((r) => r.file)).toEqual([files[1]]);
      const after = await state(db);
      for (const k of Object.keys(reference) as Array<keyof typeof reference>) expect([k, after[k]]).toEqual([k, reference[k]]);
      expect((await journal.verify()).ok).toBe(true);
    } finally {
      await db.close();
    }
  });
});
