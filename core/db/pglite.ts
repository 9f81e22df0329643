import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite, types } from '@electric-sql/pglite';
import type { Logger } from '../logger.js';
import { schema } from '../config/schema.js';
import { MssError } from '../errors.js';
import { PreparedStatements } from './pglite-statements.js';
import { normaliseRows } from './pglite-rows.js';
import { Turns, type TurnClass } from './pglite-turns.js';
import type { Db, Queryable, QueryResult } from './types.js';

// PGlite is one PostgreSQL backend inside this process: two processes opening the same
// directory would corrupt it, so a lock file with our pid guards it.
function lockDir(dir: string): () => void {
  const file = join(dir, 'mss.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (pid && pid !== process.pid && alive(pid)) throw new MssError('DATA_DIR_LOCKED', { dir, pid });
      unlinkSync(file); // stale: its process is gone
    }
  }
  throw new MssError('DATA_DIR_LOCKED', { dir, pid: 'unknown' });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// bytea parameters go out in PostgreSQL's binary format: a serializer that returns the bytes
// (not a string) makes PGlite's Bind send them as they are (format 1, bytearecv) — no hex
// string twice the size, no UTF-8 measuring and copying of it. PGlite's own bytea converters
// go byte by byte through JS strings (a 10 KB mail body: ~1 ms each way); results still come
// back as text (\x + hex), decoded by Buffer's native codec.
const parsers = { [types.INT8]: (v: string) => Number(v), [types.BYTEA]: (v: string) => Buffer.from(v.slice(2), 'hex') };
const serializers = {
  [types.BYTEA]: (v: unknown) => {
    if (!(v instanceof Uint8Array)) throw new Error('Invalid input for bytea type');
    return v as unknown as string;
  },
};

type Runner = Pick<PGlite, 'query' | 'exec'>;

const MAYBE_DDL = /\b(CREATE|ALTER|DROP|TRUNCATE|DISCARD|DEALLOCATE|RESET|COMMENT|REINDEX|CLUSTER|IMPORT)\b/i;

/** Runs fn in its turn on the connection (pglite-turns.ts); null inside a transaction, which holds it. */
type Turn = (<T>(fn: () => Promise<T>) => Promise<T>) | null;

/**
 * `turn` null: c is a transaction, whose lock (and turn) is held; otherwise each query waits
 * for its turn and takes PGlite's transaction lock (no statement lands inside someone else's
 * transaction).
 */
const wrap = (pg: PGlite, c: Runner, statements: PreparedStatements, turn: Turn): Queryable => ({
  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    const run = () =>
      pg._runExclusiveQuery(async () => {
        try {
          return statements.run(sql, params);
        } finally {
          // DDL may have changed what prepared statements read (a false alarm costs a re-parse).
          if (MAYBE_DDL.test(sql)) statements.invalidate();
        }
      });
    const r = await (turn ? turn(() => pg._runExclusiveTransaction(run)) : run());
    return { rows: normaliseRows<R>(r.rows), rowCount: r.rows.length || r.affectedRows || 0 };
  },
  async exec(sql: string) {
    try {
      await (turn ? turn(() => c.exec(sql)) : c.exec(sql));
    } finally {
      if (MAYBE_DDL.test(sql)) statements.invalidate();
    }
  },
  async copyFrom(sql: string, data: AsyncIterable<string | Buffer>) {
    // PGlite reads COPY input from a Blob: load it in ~16 MB slices of whole lines.
    const fromBlob = sql.replace(/\bFROM\s+STDIN\b/i, "FROM '/dev/blob'");
    let parts: Array<string | Buffer> = [];
    let size = 0;
    let rows = 0;
    const flush = async () => {
      if (!size) return;
      const load = () => c.query(fromBlob, [], { blob: new Blob(parts) });
      const r = await (turn ? turn(load) : load());
      rows += r.affectedRows ?? 0;
      parts = [];
      size = 0;
    };
    for await (const chunk of data) {
      parts.push(chunk);
      size += chunk.length;
      if (size >= 16 << 20) await flush();
    }
    await flush();
    return rows;
  },
});

export interface PgliteOptions {
  /**
   * Runs VACUUM this often (0 or unset: never). PGlite is one backend with no autovacuum
   * worker: without it, every row version a write leaves behind stays — a delivered
   * message's spooled body (~12 KB) for ever.
   */
  vacuumIntervalMs?: number;
  /** PostgreSQL shared_buffers, bytes (default: database.pgliteSharedBuffers' default). */
  sharedBuffers?: number;
  /** Further PostgreSQL settings, name=value, given at start after the others. */
  settings?: readonly string[];
  log?: Logger;
}

const SETTING = /^[a-z_][a-z0-9_.]*=\S/i;

/**
 * PGlite's own start parameters, then ours as -c name=value (the last one given wins, so
 * `settings` may override shared_buffers too). PGlite's defaults keep its single-process
 * mode (no workers, synchronous I/O); see PGlite.defaultStartParams.
 */
export function pgliteStartParams(o: Pick<PgliteOptions, 'sharedBuffers' | 'settings'> = {}): string[] {
  const sharedBuffers = o.sharedBuffers ?? schema.database.pgliteSharedBuffers.default;
  const settings = [`shared_buffers=${Math.floor(sharedBuffers / 1024)}kB`, ...(o.settings ?? [])];
  for (const s of settings) if (!SETTING.test(s)) throw new MssError('DB_SETTING_INVALID', { setting: s });
  return [...PGlite.defaultStartParams, ...settings.flatMap((s) => ['-c', s])];
}

/** dir undefined → in memory (tests). */
export async function openPglite(dir?: string, o: PgliteOptions = {}): Promise<Db> {
  let unlock = () => {};
  if (dir) {
    mkdirSync(dir, { recursive: true });
    unlock = lockDir(dir);
  }
  let pg: PGlite;
  // What PostgreSQL says when it refuses to start (a bad setting) is on its stderr; PGlite's
  // own error only says that it failed.
  const said: string[] = [];
  try {
    const startParams = pgliteStartParams(o);
    const onStderr = (line: string) => {
      const m = /\b(?:FATAL|ERROR|PANIC):\s*(.*)$/.exec(line);
      if (m) said.push(m[1].trim());
      return false;
    };
    pg = await PGlite.create({ ...(dir ? { dataDir: dir } : {}), parsers, serializers, startParams, onStderr });
  } catch (e) {
    unlock();
    if (e instanceof MssError) throw e;
    throw new MssError('DB_UNREACHABLE', { target: dir ?? 'memory', reason: [(e as Error).message, ...said].join(': ') }, { cause: e });
  }
  const statements = new PreparedStatements(pg);
  // Prepared statements save parsing; plans stay chosen for each execution's own values.
  await pg.exec('SET plan_cache_mode = force_custom_plan');
  const turns = new Turns();
  const target = dir ? `embedded PGlite at ${dir}` : 'embedded PGlite in memory';
  const close = async () => {
    if (vacuuming) clearInterval(vacuuming);
    await vacuumed;
    await pg.close();
    unlock();
  };
  // The same database twice: as interactive work (the default) and as background work.
  const dbFor = (cls: TurnClass): Db => {
    const turn: Turn = (fn) => turns.run(cls, fn);
    return {
      kind: 'pglite',
      target,
      ...wrap(pg, pg, statements, turn),
      transaction: (fn) => turn(() => pg.transaction((tx) => fn(wrap(pg, tx, statements, null)))),
      background: () => backgroundDb,
      // Between transactions (their lock) and statements (PGlite's own lock in dumpDataDir):
      // the files are one committed state; uncompressed, to hold the lock no longer than the copy.
      dumpDataDir: (sql) =>
        turn(() =>
          pg._runExclusiveTransaction(async () => {
            const rows = normaliseRows<Record<string, unknown>>((await pg._runExclusiveQuery(async () => statements.run(sql))).rows);
            return { tar: new Uint8Array(await (await pg.dumpDataDir('none')).arrayBuffer()), rows };
          }),
        ),
      close,
    };
  };
  const backgroundDb = dbFor('background');
  const db = dbFor('interactive');
  // The whole database: pages untouched since the last pass (the annuaire, mostly) are
  // skipped through the visibility map, so a pass costs what was written since.
  let vacuumed: Promise<void> = Promise.resolve();
  let busy = false;
  const vacuuming = o.vacuumIntervalMs
    ? setInterval(() => {
        if (busy) return;
        busy = true;
        const t0 = performance.now();
        vacuumed = backgroundDb
          .exec('VACUUM')
          .then(() => o.log?.debug({ ms: Math.round(performance.now() - t0) }, 'embedded database vacuumed'))
          .catch((e) => o.log?.warn({ err: e }, 'could not vacuum the embedded database; will retry'))
          .finally(() => (busy = false));
      }, o.vacuumIntervalMs)
    : undefined;
  vacuuming?.unref();
  return db;
}
