// The file readers' corpora (national extractions, liste blanche, IHE_XDM / CDA) call the
// platform's own readers directly with hostile files: no listener in between, the same
// code the CLI, the admin API and the webmail run. What they share: a database of their
// own (PGlite with the migrations) and its journal, and a refusal thrown by a reader turned
// into an Outcome.
import { isMssError } from '../../core/errors.js';
import { migrate, openPglite, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import type { Outcome } from './harness.js';

export async function scratchDb(): Promise<{ db: Db; journal: Journal; close(): Promise<void> }> {
  const db = await openPglite();
  await migrate(db);
  const journal = new Journal(db);
  return {
    db,
    journal,
    async close() {
      await journal.flush();
      await db.close();
    },
  };
}

/** A refusal thrown by a reader: its catalogue code, its HTTP status, its sentence. Anything else is not a refusal. */
export function thrownOutcome(e: unknown): Outcome {
  if (isMssError(e)) return { code: e.code, enhanced: String(e.status), text: e.message };
  return { code: 'unexpected', enhanced: (e as Error)?.name, text: String((e as Error)?.stack ?? e) };
}

/** Runs a reader: what it returned is `accepted` (described by `describe`), what it threw is the refusal. */
export async function outcomeOf<T>(fn: () => Promise<T> | T, describe: (v: T) => string = () => ''): Promise<Outcome> {
  try {
    const v = await fn();
    return { code: 'accepted', text: describe(v) };
  } catch (e) {
    return thrownOutcome(e);
  }
}
