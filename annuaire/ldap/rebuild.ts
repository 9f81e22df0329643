// Full rebuild: the views are streamed out of the database as LDIF straight into
// `slapadd -q`, which loads a fresh database directory; only when it is complete is the
// `db` symlink swapped to it (one rename) and slapd restarted on it. Until then the old
// database keeps serving, and a failed build leaves it untouched. Memory stays flat: one
// cursor batch of rows at a time, with slapadd's stdin pushing back.

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../core/config/index.js';
import type { Db, Queryable } from '../../core/db/index.js';
import { isMssError, MssError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { chownTree, type ChildUser } from '../../core/supervisor.js';
import { toLdif } from './entries.js';
import { ldapPaths, liveDbDir, newDbDir, rootSecret, slapdConf, sshaHash, swapDb } from './files.js';
import { slapadd } from './slapd.js';
import { LDAP_FEED_LOCK } from './sync.js';
import { allEntries } from './source.js';

export interface RebuildReport {
  entries: number;
  /** The database's generation the new directory was built from (see generation below). */
  generation: number;
  /** Queued changes the new database already contains (dropped from the queue). */
  pendingCleared: number;
  ms: number;
  dir: string;
}

export interface RebuildOptions {
  user: ChildUser;
  /** Called after the swap when slapd is running, to make it serve the new database. */
  restart?: () => Promise<void>;
  log?: Logger;
  /** Rows per cursor fetch. */
  batch?: number;
}

/** LDIF text of every entry, in chunks of one cursor batch; counts into `counter`. */
export async function* ldifStream(tx: Parameters<typeof allEntries>[0], base: string, counter: { entries: number }, batch?: number): AsyncGenerator<string> {
  // Small batches joined once: what a batch allocates dies young (cheap scavenges), instead
  // of megabyte strings surviving into the old generation (measured: GC was half the work).
  for await (const entries of allEntries(tx, base, batch ?? 500)) {
    const parts = new Array<string>(entries.length);
    for (let i = 0; i < entries.length; i++) parts[i] = toLdif(entries[i].entry);
    counter.entries += entries.length;
    yield parts.join('');
  }
}

export async function rebuildDirectory(c: Config, db: Db, opts: RebuildOptions): Promise<RebuildReport> {
  const p = ldapPaths(c);
  const started = Date.now();
  const dir = newDbDir(p);
  chownTree(dir, opts.user);
  const conf = `${dir}.conf`;
  writeFileSync(conf, slapdConf(c, p, { directory: dir, rootPwHash: sshaHash(rootSecret(p)), tls: false }), { mode: 0o640 });
  chownTree(conf, opts.user);
  const counter = { entries: 0 };
  let swapped = false;
  let generation = 0;
  try {
    const pendingCleared = await exclusively(db, () => db.transaction(async (tx) => {
      // One snapshot for the whole read, so the queue rows it covers are known exactly.
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      generation = await wantedGeneration(tx);
      await slapadd(c, conf, opts.user, ldifStream(tx, c.ldap.baseDn, counter, opts.batch));
      // Moves with the database it describes (swapped in below, or removed with it).
      writeFileSync(join(dir, GENERATION_FILE), `${generation}\n`);
      const previous = swapDb(p, dir);
      swapped = true;
      if (opts.restart) await opts.restart();
      if (previous && previous !== dir) rmSync(previous, { recursive: true, force: true });
      // Rows visible in our snapshot are in the new database; later ones stay queued. A
      // failure here costs nothing but re-applying them.
      await tx.query('SAVEPOINT clear_pending');
      try {
        return (await tx.query('DELETE FROM annuaire_ldap_pending')).rowCount;
      } catch {
        await tx.query('ROLLBACK TO SAVEPOINT clear_pending');
        return 0;
      }
    }));
    opts.log?.info({ entries: counter.entries, ms: Date.now() - started, dir }, 'LDAP directory rebuilt');
    return { entries: counter.entries, generation, pendingCleared, ms: Date.now() - started, dir };
  } catch (e) {
    if (!swapped) rmSync(dir, { recursive: true, force: true });
    throw isMssError(e) ? e : new MssError('LDAP_REBUILD_FAILED', { reason: (e as Error).message }, { cause: e });
  } finally {
    rmSync(conf, { force: true });
  }
}

/**
 * Runs a rebuild with no drain in flight anywhere. A drain that applied, to the old
 * database, a change committed after the rebuild's snapshot — and then deleted its queue
 * row — would lose that change at the swap. On PostgreSQL, drains (any process) hold a
 * shared advisory lock and skip their turn when they cannot get it; the rebuild takes it
 * exclusively, in its own transaction, *before* its snapshot. PGlite has one process,
 * where the Directory's own mutex does the same.
 */
async function exclusively<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  if (db.kind !== 'pg') return fn();
  return db.transaction(async (lock) => {
    await lock.query('SELECT pg_advisory_xact_lock($1)', [LDAP_FEED_LOCK]);
    return fn();
  });
}

// ---- Generations: is the directory behind the database? (migration 0104) ----

const GENERATION_FILE = 'mss-generation';

/** How many rebuild-requiring changes the database has seen. */
export async function wantedGeneration(q: Queryable): Promise<number> {
  const { rows } = await q.query<{ generation: string | number }>('SELECT generation FROM annuaire_ldap_state WHERE id = 1');
  return Number(rows[0]?.generation ?? 0);
}

/**
 * Records, in the caller's transaction, a change the directory cannot follow entry by
 * entry (a bulk load): the platform rebuilds the directory when it sees it — at once if it
 * runs and shares the database, else at its next start.
 */
export async function requireLdapRebuild(tx: Queryable): Promise<number> {
  const { rows } = await tx.query<{ generation: string | number }>('UPDATE annuaire_ldap_state SET generation = generation + 1 WHERE id = 1 RETURNING generation');
  return Number(rows[0].generation);
}

/** The generation the live directory was built from; undefined when unknown (no database, or built before generations). */
export function builtGeneration(c: Pick<Config, 'dataDir'>): number | undefined {
  const live = liveDbDir(ldapPaths(c));
  if (!live) return undefined;
  try {
    const n = Number(readFileSync(join(live, GENERATION_FILE), 'utf8').trim());
    return Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** True when there is no usable database yet (first start, or a rebuild never completed). */
export function needsInitialBuild(c: Pick<Config, 'dataDir'>): boolean {
  const live = liveDbDir(ldapPaths(c));
  return !live || !existsSync(`${live}/data.mdb`);
}
