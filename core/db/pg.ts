import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFromStdin, to as copyToStdout } from 'pg-copy-streams';
import { MssError } from '../errors.js';
import { maskUrl } from '../config/index.js';
import type { Logger } from '../logger.js';
import { isConnectionError, isReadOnlyStatement, serverUrls } from './pg-failover.js';
import type { Db, Queryable, QueryResult, TransactionOptions } from './types.js';

// int8 (count(*), bigserial) as numbers: every id we store fits in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgOptions {
  url: string;
  /** Further servers of the cluster (host:port), tried after url's host: see database.hosts. */
  hosts?: string[];
  poolSize?: number;
  connectTimeoutMs?: number;
  /** How long to keep looking for a writable primary after a lost connection (database.failoverTimeout). */
  failoverTimeoutMs?: number;
  log?: Logger;
}

/** One connection of the pool (withClient's, or a transaction's) as a Queryable. */
const wrap = (c: pg.PoolClient): Queryable => ({
  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    const r = await c.query(sql, params as any[]);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  },
  async exec(sql: string) {
    await c.query(sql);
  },
  async copyFrom(sql: string, data: AsyncIterable<string | Buffer>) {
    const sink = c.query(copyFromStdin(sql));
    await pipeline(Readable.from(data, { objectMode: false }), sink);
    return sink.rowCount ?? 0;
  },
  async copyTo(sql: string) {
    const chunks: Buffer[] = [];
    for await (const chunk of c.query(copyToStdout(sql))) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  },
});

/**
 * PostgreSQL through a pool on the cluster's primary. The primary is whichever of
 * database.url's host and database.hosts accepts writes (read-write, as libpq's
 * target_session_attrs): when a connection is lost (the server stopped, a failover), the
 * pool is dropped and the servers are tried again, in order, until one is a primary or
 * failoverTimeout passes. What runs meanwhile:
 *   - a connection that cannot be had waits for the new primary (nothing was sent);
 *   - a read (SELECT, SHOW) that lost its connection is asked again;
 *   - a transaction that lost its connection before COMMIT was sent was rolled back by the
 *     server: it is run again from the start when its caller said it may be
 *     ({ retry: true }: fn only touches the database), else it fails;
 *   - a transaction that lost its connection during COMMIT may or may not have been saved:
 *     it fails with DB_COMMIT_UNKNOWN (nobody is told "done" on a guess), unless its
 *     caller said running it twice is harmless ({ idempotent: true }).
 * A lost write is never confirmed: COMMIT returns only once the primary has it (and, with
 * synchronous_commit and a synchronous standby, the standby too — see the README).
 */
export async function openPg(o: PgOptions): Promise<Db> {
  const urls = serverUrls(o.url, o.hosts ?? []);
  const target = urls.map(maskUrl).join(', ');
  const log = o.log;
  const connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
  const failoverTimeoutMs = o.failoverTimeoutMs ?? 60_000;
  const newPool = (url: string) => {
    const p = new pg.Pool({ connectionString: url, max: o.poolSize ?? 10, connectionTimeoutMillis: connectTimeoutMs });
    // An idle client losing its server must not crash the process; the next query reconnects.
    p.on('error', () => {});
    return p;
  };

  const why = (url: string, reason: string) => (urls.length > 1 ? `${maskUrl(url)}: ${reason}` : reason);
  /** The first server (in order) that accepts writes, or why none does. */
  const findPrimary = async (): Promise<{ url: string } | { reason: string }> => {
    const reasons: string[] = [];
    for (const url of urls) {
      const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: connectTimeoutMs });
      c.on('error', () => {});
      try {
        await c.connect();
        const { rows } = await c.query<{ ro: string }>("SELECT current_setting('transaction_read_only') AS ro");
        if (rows[0].ro === 'off') return { url };
        reasons.push(why(url, 'read-only (a standby)'));
      } catch (e) {
        reasons.push(why(url, describePgError(e)));
      } finally {
        await c.end().catch(() => {});
      }
    }
    return { reason: reasons.join('; ') };
  };

  const first = await findPrimary();
  if (!('url' in first)) throw new MssError('DB_UNREACHABLE', { target, reason: first.reason });
  if (urls.length > 1) await warnWithoutSyncStandby(first.url, log);
  let pool = newPool(first.url);
  let primaryUrl = first.url;
  let generation = 0;
  let closed = false;
  let relocating: Promise<void> | null = null;

  /**
   * The pool of generation `gen` lost its server: one search for the primary at a time,
   * shared by everyone who noticed; a caller that saw an older generation just retries.
   */
  const relocate = (gen: number): Promise<void> => {
    if (gen !== generation) return Promise.resolve();
    relocating ??= (async () => {
      const lost = pool;
      const deadline = Date.now() + failoverTimeoutMs;
      log?.warn({ primary: maskUrl(primaryUrl) }, 'lost the connection to the PostgreSQL primary; looking for the primary among the configured servers');
      let wait = 50;
      for (;;) {
        if (closed) throw new MssError('DB_UNREACHABLE', { target, reason: 'the database was closed' });
        const r = await findPrimary();
        if ('url' in r) {
          pool = newPool(r.url);
          generation++;
          if (r.url !== primaryUrl) log?.warn({ from: maskUrl(primaryUrl), to: maskUrl(r.url) }, 'PostgreSQL primary changed (failover)');
          primaryUrl = r.url;
          void lost.end().catch(() => {});
          return;
        }
        if (Date.now() > deadline) throw new MssError('DB_UNREACHABLE', { target, reason: `no server accepts writes after ${failoverTimeoutMs} ms: ${r.reason}` });
        await sleep(wait);
        wait = Math.min(wait * 2, 1000);
      }
    })().finally(() => (relocating = null));
    return relocating;
  };

  /** A connection of the current primary's pool, waiting for a new primary when there is none. */
  const connection = async (): Promise<{ client: pg.PoolClient; gen: number }> => {
    for (;;) {
      if (relocating) await relocating;
      const gen = generation;
      try {
        const client = await pool.connect();
        // A checked-out client whose server goes away between two statements emits 'error';
        // unheard, that would end the process. The statement under way (or the next one) fails instead.
        if (!client.listenerCount('error')) client.on('error', ignore);
        return { client, gen };
      } catch (e) {
        if (!isConnectionError(e) || closed) throw e;
        await relocate(gen);
      }
    }
  };

  const withClient = async <T>(fn: (c: pg.PoolClient) => Promise<T>, retryable: boolean): Promise<T> => {
    for (;;) {
      const { client, gen } = await connection();
      try {
        const out = await fn(client);
        client.release();
        return out;
      } catch (e) {
        const lost = await connectionLost(e, client);
        // A client whose connection broke is destroyed, not returned to the pool.
        client.release(lost ? (e as Error) : undefined);
        if (!lost || closed) throw e;
        await relocate(gen);
        if (!retryable) throw e;
      }
    }
  };

  const db: Db = {
    kind: 'pg',
    target,
    query: <R>(sql: string, params?: unknown[]) => withClient((c) => wrap(c).query<R>(sql, params), isReadOnlyStatement(sql)),
    exec: (sql: string) => withClient((c) => wrap(c).exec(sql), false),
    copyFrom: (sql: string, data: AsyncIterable<string | Buffer>) => withClient((c) => wrap(c).copyFrom!(sql, data), false),
    copyTo: (sql: string) => withClient((c) => wrap(c).copyTo!(sql), true),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
      for (;;) {
        const { client, gen } = await connection();
        let phase: 'begin' | 'body' | 'commit' = 'begin';
        try {
          await client.query('BEGIN');
          phase = 'body';
          const out = await fn(wrap(client));
          phase = 'commit';
          await client.query('COMMIT');
          client.release();
          return out;
        } catch (e) {
          const lost = await connectionLost(e, client);
          if (!lost) await client.query('ROLLBACK').catch(() => {});
          client.release(lost ? (e as Error) : undefined);
          if (!lost || closed) throw e;
          await relocate(gen);
          // Nothing was done (BEGIN), or the server rolled it back (lost before COMMIT).
          if (phase === 'begin' || (phase === 'body' && (opts.retry || opts.idempotent))) {
            log?.info({ phase }, 'transaction lost its connection before COMMIT; running it again on the primary');
            continue;
          }
          if (phase === 'commit' && opts.idempotent) continue;
          if (phase === 'commit') throw new MssError('DB_COMMIT_UNKNOWN', { target: maskUrl(primaryUrl) }, { cause: e });
          throw e;
        }
      }
    },
    background: () => db,
    async close() {
      closed = true;
      await relocating?.catch(() => {});
      await pool.end();
    },
  };
  return db;
}

const ignore = () => {};

/**
 * The error says the connection is gone, and it is: fn may have failed on another socket
 * (an LDAP server's ECONNRESET inside a transaction) while this client is fine.
 */
async function connectionLost(e: unknown, client: pg.PoolClient): Promise<boolean> {
  if (!isConnectionError(e)) return false;
  // A former primary, now read-only: this server is no place for writes, alive or not.
  if ((e as { code?: string }).code === '25006') return true;
  try {
    await client.query('SELECT 1');
    return false;
  } catch (probe) {
    // Refused in an aborted transaction is an answer: the connection is alive.
    return isConnectionError(probe);
  }
}

/**
 * With asynchronous replication a COMMIT the primary confirmed may not have reached the
 * standby when the primary dies: promoting it would lose mail already answered 250. Say so.
 */
async function warnWithoutSyncStandby(url: string, log: Logger | undefined): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', ignore);
  try {
    await c.connect();
    const { rows } = await c.query<{ names: string; commit: string }>("SELECT current_setting('synchronous_standby_names') AS names, current_setting('synchronous_commit') AS commit");
    const { names, commit } = rows[0];
    if (!names.trim() || commit === 'off' || commit === 'local') {
      log?.warn({ synchronous_standby_names: names, synchronous_commit: commit }, 'database.hosts lists a standby, but commits do not wait for it: a failover may lose messages already acknowledged. Set synchronous_standby_names (and synchronous_commit = on or remote_apply) on the primary');
    }
  } catch {
    /* the check is advice only */
  } finally {
    await c.end().catch(() => {});
  }
}

function describePgError(e: unknown): string {
  const err = e as { code?: string; message?: string; errors?: Array<{ code?: string }> };
  const code = err.code ?? err.errors?.[0]?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is PostgreSQL running and listening there?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    case '28P01':
      return 'password authentication failed';
    case '3D000':
      return 'the database does not exist';
    case 'ETIMEDOUT':
      return 'connection timed out';
    default:
      return err.message || String(e);
  }
}
