// The database part of a backup set. PostgreSQL: pg_dump (custom format) inside a snapshot
// exported by a REPEATABLE READ transaction, in which the journal head is read too — the
// dump and the head are the same instant. The embedded PGlite: an image of its data
// directory taken by the process that holds it (control.ts), or by this one when no
// platform runs; restored with PGlite's own loadDataDir.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { gunzipSync, createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import pg from 'pg';
import { maskUrl, type Config } from '../config/index.js';
import { openPglite } from '../db/index.js';
import { isMssError, MssError } from '../errors.js';
import { dumpThroughPlatform, headOf, JOURNAL_HEAD_SQL, type JournalHead } from './control.js';

export type DbKind = 'pglite' | 'pg';
export const DB_FILES: Record<DbKind, string> = { pglite: 'database/pglite.tar.gz', pg: 'database/postgres.dump' };

export interface DbDump {
  kind: DbKind;
  file: string;
  journal: JournalHead;
  how: string;
}

/** Runs a program to its end; rejects with what it said on stderr. */
export function run(cmd: string, args: string[], o: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: o.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], ...(o.uid !== undefined ? { uid: o.uid, gid: o.gid } : {}) });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${signal ? `was killed (${signal})` : `exited with ${code}`}: ${err.trim().split('\n').slice(-3).join(' / ') || '(nothing on stderr)'}`))));
  });
}

/** libpq's environment for a URL: the password stays out of the command line (ps). */
function libpq(url: string): { env: NodeJS.ProcessEnv; dbname: string } {
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  return { env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}) }, dbname: u.toString() };
}

export async function dumpDatabase(config: Config, setDir: string): Promise<DbDump> {
  mkdirSync(join(setDir, 'database'), { recursive: true, mode: 0o700 });
  if (config.database.url) return dumpPostgres(config.database.url, join(setDir, DB_FILES.pg));
  const out = join(setDir, DB_FILES.pglite);
  const viaPlatform = await dumpThroughPlatform(config.dataDir, out);
  if (viaPlatform) return { kind: 'pglite', file: DB_FILES.pglite, journal: viaPlatform.journal, how: `image of the embedded database taken by the running platform between two transactions (${viaPlatform.bytes} bytes before gzip)` };
  // No platform answers: this process opens the database (its lock refuses a platform
  // that runs without the control socket: an older version).
  let db;
  try {
    db = await openPglite(join(config.dataDir, 'db'), { sharedBuffers: config.database.pgliteSharedBuffers, settings: config.database.pgliteSettings });
  } catch (e) {
    if (isMssError(e) && e.code === 'DATA_DIR_LOCKED') throw new MssError('BACKUP_STEP_FAILED', { step: 'take an image of the embedded database', reason: `${e.message}, and it does not answer on its backup socket (a platform from before mss backup existed?)` });
    throw e;
  }
  try {
    const { tar, rows } = await db.dumpDataDir!(JOURNAL_HEAD_SQL);
    await pipeline(Readable.from([Buffer.from(tar.buffer, tar.byteOffset, tar.byteLength)]), createGzip({ level: 6 }), createWriteStream(out, { mode: 0o600 }));
    return { kind: 'pglite', file: DB_FILES.pglite, journal: headOf(rows[0]), how: `image of the embedded database (no platform running) (${tar.length} bytes before gzip)` };
  } finally {
    await db.close();
  }
}

async function dumpPostgres(url: string, out: string): Promise<DbDump> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshot = (await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s')).rows[0].s;
    const journal = headOf((await client.query(JOURNAL_HEAD_SQL)).rows[0]);
    const { env, dbname } = libpq(url);
    // The snapshot lives as long as this transaction: pg_dump sees exactly what we read above.
    await run('pg_dump', ['--format=custom', '--no-owner', '--no-privileges', `--snapshot=${snapshot}`, `--file=${out}`, `--dbname=${dbname}`], { env });
    await client.query('COMMIT');
    return { kind: 'pg', file: DB_FILES.pg, journal, how: `pg_dump --format=custom in snapshot ${snapshot}` };
  } finally {
    await client.end();
  }
}

/** Refuses a target that cannot take the set's database, before anything is written. */
export async function checkDatabaseTarget(config: Config, kind: DbKind): Promise<void> {
  if (kind === 'pg') {
    if (!config.database.url) throw new MssError('BACKUP_TARGET_MISMATCH', { target: config.dataDir, why: 'the set holds a PostgreSQL dump and this configuration has no PostgreSQL: set database.url (MSS_DATABASE_URL) to an empty database' });
    const client = new pg.Client({ connectionString: config.database.url });
    await client.connect();
    try {
      const n = (await client.query<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")).rows[0].n;
      if (Number(n) > 0) throw new MssError('BACKUP_TARGET_NOT_EMPTY', { dir: `the database ${new URL(config.database.url).pathname.slice(1)}`, what: `${n} tables (restore into an empty PostgreSQL database)` });
    } finally {
      await client.end();
    }
    return;
  }
  if (config.database.url) throw new MssError('BACKUP_TARGET_MISMATCH', { target: maskUrl(config.database.url), why: 'the set holds the embedded database (PGlite): restore it without database.url (MSS_DATABASE_URL)' });
}

/** Loads the set's database into the target (checked by checkDatabaseTarget): a new PGlite directory, or an empty PostgreSQL database. */
export async function restoreDatabase(config: Config, setDir: string, kind: DbKind): Promise<void> {
  const file = join(setDir, DB_FILES[kind]);
  if (kind === 'pg') {
    const { env, dbname } = libpq(config.database.url!);
    await run('pg_restore', ['--no-owner', '--no-privileges', '--exit-on-error', `--dbname=${dbname}`, file], { env });
    return;
  }
  const dir = join(config.dataDir, 'db');
  const image = gunzipSync(readFileSync(file));
  // Loaded here, not with the module: the running platform imports this one (its backup
  // socket) and, its database on a thread of its own, needs no PGlite in its own thread.
  const [{ PGlite }, { pgliteStartParams }] = await Promise.all([import('@electric-sql/pglite'), import('../db/pglite.js')]);
  const pgl = await PGlite.create({ dataDir: dir, loadDataDir: new Blob([image]), startParams: pgliteStartParams({ sharedBuffers: config.database.pgliteSharedBuffers, settings: config.database.pgliteSettings }) });
  await pgl.close();
  // The image carries the lock file of the process that held it.
  rmSync(join(dir, 'mss.lock'), { force: true });
}
