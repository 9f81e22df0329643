import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MssError } from '../errors.js';
import { fromRoot } from '../paths.js';
import type { Db } from './types.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

// Any constant will do, as long as every process uses the same: it serialises migrators.
const LOCK_KEY = 0x4d53_5301;

/**
 * core/migrations/NNNN_module_what.sql, applied in order, each in its own transaction,
 * recorded with a checksum. The numbering leaves room per module (0001-0099 core,
 * 0100 annuaire, 0200 smtp, 0300 imap-proxy, 0400 webmail-api/dmp).
 */
export function loadMigrations(dir = fromRoot('core', 'migrations')): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((f) => {
      const sql = readFileSync(join(dir, f), 'utf8');
      return { version: Number(f.slice(0, 4)), name: f.replace(/\.sql$/, ''), sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/** Applies what is missing; safe when several processes start at once. Returns the names applied. */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<string[]> {
  await db.transaction(async (tx) => {
    // Two processes creating the same table at once would collide in the catalogue.
    await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
    await tx.exec(`CREATE TABLE IF NOT EXISTS mss_migrations (
      version int PRIMARY KEY, name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
  });
  const applied: string[] = [];
  for (const m of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [LOCK_KEY]);
      const { rows } = await tx.query<{ checksum: string }>('SELECT checksum FROM mss_migrations WHERE version = $1', [m.version]);
      if (rows.length) {
        if (rows[0].checksum !== m.checksum) throw new MssError('DB_MIGRATION_CHANGED', { name: m.name });
        return false;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO mss_migrations (version, name, checksum) VALUES ($1, $2, $3)', [m.version, m.name, m.checksum]);
      return true;
    });
    if (done) applied.push(m.name);
  }
  return applied;
}
