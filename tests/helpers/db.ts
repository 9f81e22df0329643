import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate, openPg, openPglite, type Db } from '../../core/db/index.js';

/**
 * The real PostgreSQL the suite also runs on, when one is given (CI starts one and sets
 * MSS_DATABASE_URL). Each test gets a database of its own, created and dropped here.
 */
export const realPgUrl = process.env.MSS_TEST_DATABASE_URL || process.env.MSS_DATABASE_URL || undefined;

export interface DbTarget {
  name: 'pglite' | 'pg';
  /** A fresh, migrated database and a function that disposes of it. */
  open(opts?: { migrate?: boolean }): Promise<{ db: Db; url?: string; dispose(): Promise<void> }>;
}

export async function createScratchDatabase(baseUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `mss_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export const pgliteTarget: DbTarget = {
  name: 'pglite',
  async open(opts = {}) {
    const db = await openPglite();
    if (opts.migrate !== false) await migrate(db);
    return { db, dispose: () => db.close() };
  },
};

export const pgTarget = (url: string): DbTarget => ({
  name: 'pg',
  async open(opts = {}) {
    const scratch = await createScratchDatabase(url);
    const db = await openPg({ url: scratch.url, poolSize: 5 });
    if (opts.migrate !== false) await migrate(db);
    return {
      db,
      url: scratch.url,
      async dispose() {
        await db.close();
        await scratch.drop();
      },
    };
  },
});

/** PGlite always; real PostgreSQL too when the environment names one. */
export function dbTargets(): DbTarget[] {
  return realPgUrl ? [pgliteTarget, pgTarget(realPgUrl)] : [pgliteTarget];
}
