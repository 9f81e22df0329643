// A sync on PGlite applied in steps (annuaire/import/runs.ts) lets the platform's own
// statements in between: one asked for while a step holds the database is answered before
// the next step starts — staging steps and apply batches alike. Order, not time.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { importFiles } from '../../annuaire/import/importer.js';
import { RejectReport } from '../../annuaire/import/report.js';
import { migrate, openPglite, type Db, type Queryable } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { activityLines, encodeFile } from '../helpers/rpps-generator.js';

let db: Db;
let dir: string;
let report: RejectReport;
beforeEach(async () => {
  db = await openPglite();
  await migrate(db);
  dir = mkdtempSync(join(tmpdir(), 'mss-import-steps-'));
  report = new RejectReport(join(dir, 'report.tsv'));
});
afterEach(async () => {
  report.close();
  await db.close();
});

const file = (month: 0 | 1) => {
  const p = join(dir, `PS_LibreAcces_Personne_activite_2024${month ? '02' : '01'}010000.txt`);
  writeFileSync(p, encodeFile(activityLines({ lines: 400, seed: 3, month, changed: 0.1, vanished: 0.05, added: 0.05 })));
  return p;
};

it('a login-like statement asked for during a sync is answered before the sync runs its next statement', async () => {
  const journal = new Journal(db);
  expect((await importFiles([file(0)], { db: db.background(), journal, actor: 'test', report })).failures).toEqual([]);

  // The sync's statements, as they run: inside its transactions when they are sent (the
  // transaction holds PGlite), outside when they are answered (they wait for their turn).
  const events: string[] = [];
  const bg = db.background();
  const inTx = (tx: Queryable): Queryable => ({
    query: <R,>(sql: string, params?: unknown[]) => (events.push('sql'), tx.query<R>(sql, params)),
    exec: (sql) => (events.push('sql'), tx.exec(sql)),
    copyFrom: (sql, data) => (events.push('sql'), tx.copyFrom!(sql, data)),
  });
  const traced: Db = {
    ...bg,
    query: <R,>(sql: string, params?: unknown[]) => bg.query<R>(sql, params).finally(() => events.push('sql')),
    exec: (sql) => bg.exec(sql).finally(() => events.push('sql')),
    copyFrom: (sql, data) => bg.copyFrom!(sql, data).finally(() => events.push('sql')),
    transaction: (fn) => bg.transaction((tx) => fn(inTx(tx))),
    background: () => traced,
  };
  // At each step of the sync — inside a batch's transaction, or between two of its
  // transactions while it stages — an interactive statement is asked for, not awaited.
  const asked: Array<Promise<unknown>> = [];
  const out = await importFiles([file(1)], {
    db: traced,
    journal,
    actor: 'test',
    report,
    batch: 8,
    onStep: (step) => {
      if (step.startsWith('committed:')) return;
      events.push(`ask ${step}`);
      asked.push(db.query('SELECT count(*) FROM annuaire_import_files').then(() => events.push(`answer ${step}`)));
    },
  });
  expect(out.failures).toEqual([]);
  await Promise.all(asked);

  const steps = events.filter((e) => e.startsWith('ask ')).map((e) => e.slice(4));
  expect(steps.filter((s) => s.startsWith('batch:')).length).toBeGreaterThan(10);
  expect(steps).toEqual(expect.arrayContaining(['staged', 'table:persons', 'table:structures', 'table:activities', 'applied', 'journalled']));
  // Each was answered before the sync's next statement ran.
  const late = steps.filter((step) => {
    const at = events.indexOf(`ask ${step}`);
    const next = events.indexOf('sql', at);
    return next >= 0 && events.indexOf(`answer ${step}`) > next;
  });
  expect(late).toEqual([]);
});
