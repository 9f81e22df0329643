import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import { openPg } from './pg.js';
import { openPglite } from './pglite.js';
import { openPgliteThread } from './pglite-thread.js';
import { createPgliteInChild, needsCreating } from './pglite-create.js';
import type { Db } from './types.js';

export type { Db, Queryable, QueryResult, TransactionOptions } from './types.js';
export { migrate } from './migrate.js';
export { openPg } from './pg.js';
export { openPglite } from './pglite.js';
export { openPgliteThread } from './pglite-thread.js';

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
