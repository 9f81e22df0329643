import { join } from 'node:path';
import type { Config } from '../config/index.js';
import type { Logger } from '../logger.js';
import { openPg } from './pg.js';
import { openPglite } from './pglite.js';
import type { Db } from './types.js';

export type { Db, Queryable, QueryResult } from './types.js';
export { migrate } from './migrate.js';
export { openPg } from './pg.js';
export { openPglite } from './pglite.js';

/** The database the configuration names: PostgreSQL when database.url is set, else PGlite. */
export function openDb(c: Pick<Config, 'database' | 'dataDir'>, o: { log?: Logger } = {}): Promise<Db> {
  if (c.database.url) return openPg({ url: c.database.url, poolSize: c.database.poolSize, connectTimeoutMs: c.database.connectTimeout });
  return openPglite(join(c.dataDir, 'db'), { vacuumIntervalMs: c.database.vacuumInterval, log: o.log });
}
