// A sync applied in bounded steps, on the embedded database (0120).
//
// PGlite is one PostgreSQL backend for the whole platform: while a transaction runs, nothing
// else does — pglite-turns.ts gives logins and the MX's statements the next turn, but cannot
// cut into a transaction. A sync in one transaction held PGlite for 0.2–1.4 s under load. So
// on PGlite a sync is:
//   1. staged: the file's changed rows loaded into temporary tables of PGlite's one session
//      and compared with the tables (apply.ts, diffPlan), in short transactions;
//   2. frozen: the run and every change it will make are recorded, a table per transaction
//      (freezeRun); until the last one commits, a crash loses only the staging;
//   3. applied in batches (applyRun): each a transaction of at most `batch` changes of one
//      table and kind that also moves the run's next_seq, so a crash between or inside
//      batches leaves exactly the changes before next_seq applied;
//   4. finished (importer.ts, finishRun): one transaction queues the directory's keys,
//      journals the file and its changes, records the file and marks the run done; its
//      changes are then deleted a slice per statement (purgeRuns).
// A run left by a crash is rolled forward (3 and 4) by the platform's next start or by the
// next import, before anything else: the result is the one the uninterrupted sync gives.
// Between batches the tables hold some of the month's changes and not yet the others —
// each row either as it was or as the file has it; the directory's queue and the journal
// come with the last step, so the directory moves from one month to the next in one go.
//
// Imports on PGlite take turns (serialImports): a staging lives in the one session's
// temporary tables, which two imports would share. Nothing else writes the national tables.
import type { Db, Queryable } from '../../core/db/index.js';
import { applyChanges, persistDiff, type Plan, type RunContext, type Step, type TableName } from './apply.js';
import type { FileKind } from './formats.js';

/** Changes per transaction when a sync is applied in steps (≈ a few ms each on PGlite). */
export const DEFAULT_BATCH = 256;

let importing: Promise<unknown> = Promise.resolve();
/** Runs fn once every import started before it in this process has ended. */
export function serialImports<T>(fn: () => Promise<T>): Promise<T> {
  const run = importing.then(fn, fn);
  importing = run.catch(() => {});
  return run;
}

/** What a run's last step needs, kept with it as JSON (dates as ISO strings). */
export interface RunRecord<R = unknown> {
  id: number;
  kind: FileKind;
  nextSeq: number;
  changes: number;
  context: { apply: { at: string; sourceFile: string; previous: string | null }; columns: Partial<Record<TableName, string[]>>; finish: R };
}

/**
 * Records the run and its changes (diffPlan's, for every plan): the run first, then a
 * table's changes per transaction, then their number — until that last commit the run is
 * not frozen, and a crash leaves it to be deleted (dropUnfrozen): nothing was applied.
 */
export async function freezeRun<R>(step: Step, kind: FileKind, plans: Plan[], apply: RunContext, finish: R): Promise<RunRecord<R>> {
  const context: RunRecord<R>['context'] = {
    apply: { at: apply.at.toISOString(), sourceFile: apply.sourceFile, previous: apply.previous?.toISOString() ?? null },
    columns: Object.fromEntries(plans.map((p) => [p.entity.name, p.columns])),
    finish,
  };
  const id = await step(async (tx) => Number((await tx.query<{ id: number }>('INSERT INTO annuaire_import_runs (kind, context) VALUES ($1, $2::jsonb) RETURNING id', [kind, JSON.stringify(context)])).rows[0].id));
  let seq = 0;
  for (const p of plans) seq = await step((tx) => persistDiff(tx, p, id, seq));
  await step((tx) => tx.query('UPDATE annuaire_import_runs SET changes = $2 WHERE id = $1', [id, seq]));
  return { id, kind, nextSeq: 0, changes: seq, context };
}

/** Changes deleted per statement once their run is done. */
const PURGE_SLICE = 2048;

/** Deletes the runs that are done, their changes a slice per statement, then the run. */
export async function purgeRuns(db: Db): Promise<void> {
  const { rows } = await db.query<{ id: number; changes: number }>('SELECT id, changes FROM annuaire_import_runs WHERE done ORDER BY id');
  for (const r of rows) {
    for (let seq = 0; seq < Number(r.changes); seq += PURGE_SLICE) {
      await db.query('DELETE FROM annuaire_import_changes WHERE run_id = $1 AND seq < $2', [r.id, seq + PURGE_SLICE]);
    }
    await db.query('DELETE FROM annuaire_import_runs WHERE id = $1', [r.id]);
  }
}

/** Deletes the runs a crash left before they were frozen (their changes go with them). */
export async function dropUnfrozen(q: Queryable): Promise<void> {
  await q.query('DELETE FROM annuaire_import_runs WHERE changes IS NULL');
}

/** Runs left unfinished (by a crash), oldest first. */
export async function pendingRuns<R>(q: Queryable): Promise<Array<RunRecord<R>>> {
  const { rows } = await q.query<{ id: number; kind: FileKind; next_seq: number; changes: number; context: RunRecord<R>['context'] }>(
    'SELECT id, kind, next_seq, changes, context FROM annuaire_import_runs WHERE changes IS NOT NULL AND NOT done ORDER BY id',
  );
  return rows.map((r) => ({ id: Number(r.id), kind: r.kind, nextSeq: Number(r.next_seq), changes: Number(r.changes), context: typeof r.context === 'string' ? JSON.parse(r.context) : r.context }));
}

/**
 * Applies a run's remaining changes, `batch` at a time, each batch in a transaction of its
 * own that also records how far the run got. `onBatch` is called inside each batch's
 * transaction (`batch:<n>`) and after its commit (`committed:<n>`): tests hook there.
 */
export async function applyRun(db: Db, run: RunRecord, batch: number, onStep?: (step: string) => Promise<void> | void): Promise<void> {
  const a = run.context.apply;
  const ctx: RunContext = { at: new Date(a.at), sourceFile: a.sourceFile, previous: a.previous ? new Date(a.previous) : undefined };
  let next = run.nextSeq;
  // PGlite has no autovacuum to gather statistics: without them the batches' key lookups
  // could be planned as scans of the whole table.
  if (next < run.changes) await db.exec('ANALYZE annuaire_import_changes');
  for (let n = 0; next < run.changes; n++) {
    const last = await db.transaction(async (tx) => {
      const done = await applyChanges(tx, run.id, run.context.columns, next, Math.max(1, batch), ctx);
      if (done === undefined) throw new Error(`import run ${run.id}: change ${next} of ${run.changes} is missing`);
      await tx.query('UPDATE annuaire_import_runs SET next_seq = $2 WHERE id = $1', [run.id, done + 1]);
      await onStep?.(`batch:${n}`);
      return done;
    });
    next = last + 1;
    await onStep?.(`committed:${n}`);
  }
}
