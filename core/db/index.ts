import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import { openPg } from './pg.js';
import type { PgliteOptions } from './pglite.js';
import { openPgliteThread } from './pglite-thread.js';
import { createPgliteInChild, needsCreating } from './pglite-create.js';
import type { Db } from './types.js';

export type { Db, Queryable, QueryResult, TransactionOptions } from './types.js';
export { migrate } from './migrate.js';
export { openPg } from './pg.js';
export { openPgliteThread } from './pglite-thread.js';

/**
 * PGlite in this thread (database.pgliteThread off, CLI commands, tests). Its module is loaded
 * with the first call: with the database on its own thread (the platform's default), the
 * platform's thread never needs PGlite's JavaScript (~1.2 MB of heap and its compiled code).
 */
export async function openPglite(dir?: string, o: PgliteOptions = {}): Promise<Db> {
  return (await import('./pglite.js')).openPglite(dir, o);
}

/**
 * The database the configuration names: PostgreSQL when database.url is set, else PGlite —
 * created and migrated first in a child process when it does not exist yet (pglite-create.ts).
 */
export async function openDb(c: Pick<Config, 'database' | 'dataDir'>, o: { log?: Logger } = {}): Promise<Db> {
  if (c.database.url) return openPg({ url: c.database.url, hosts: c.database.hosts, poolSize: c.database.poolSize, connectTimeoutMs: c.database.connectTimeout, failoverTimeoutMs: c.database.failoverTimeout, log: o.log });
  const dir = join(c.dataDir, 'db');
  const settings = { sharedBuffers: c.database.pgliteSharedBuffers, settings: c.database.pgliteSettings };
  if (needsCreating(dir)) {
    const { pid, applied } = await createPgliteInChild(dir, settings);
    o.log?.info({ dir, pid, applied: applied.length }, 'embedded database created and migrated by a child process');
  }
  return (c.database.pgliteThread ? openPgliteThread : openPglite)(dir, { ...settings, vacuumIntervalMs: c.database.vacuumInterval, log: o.log });
}
