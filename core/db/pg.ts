import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import { from as copyFromStdin } from 'pg-copy-streams';
import { MssError } from '../errors.js';
import { maskUrl } from '../config/index.js';
import type { Db, Queryable, QueryResult } from './types.js';

// int8 (count(*), bigserial) as numbers: every id we store fits in 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export interface PgOptions {
  url: string;
  poolSize?: number;
  connectTimeoutMs?: number;
}

const wrap = (c: pg.Pool | pg.PoolClient): Queryable => ({
  async query<R>(sql: string, params?: unknown[]): Promise<QueryResult<R>> {
    const r = await c.query(sql, params as any[]);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? 0 };
  },
  async exec(sql: string) {
    await c.query(sql);
  },
  async copyFrom(sql: string, data: AsyncIterable<string | Buffer>) {
    // A COPY holds its connection until done: on the pool, borrow one for the duration.
    const client = c instanceof pg.Pool ? await c.connect() : c;
    try {
      const sink = client.query(copyFromStdin(sql));
      await pipeline(Readable.from(data, { objectMode: false }), sink);
      return sink.rowCount ?? 0;
    } finally {
      if (client !== c) client.release();
    }
  },
});

export async function openPg(o: PgOptions): Promise<Db> {
  const target = maskUrl(o.url);
  const pool = new pg.Pool({ connectionString: o.url, max: o.poolSize ?? 10, connectionTimeoutMillis: o.connectTimeoutMs ?? 10_000 });
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  try {
    const c = await pool.connect();
    c.release();
  } catch (e) {
    await pool.end().catch(() => {});
    throw new MssError('DB_UNREACHABLE', { target, reason: describePgError(e) }, { cause: e });
  }
  const base = wrap(pool);
  const db: Db = {
    kind: 'pg',
    target,
    ...base,
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const out = await fn(wrap(client));
        await client.query('COMMIT');
        return out;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        client.release();
      }
    },
    background: () => db,
    close: () => pool.end(),
  };
  return db;
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
