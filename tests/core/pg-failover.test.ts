import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPg, type Db } from '../../core/db/index.js';
import { isConnectionError, isReadOnlyStatement, serverUrls } from '../../core/db/pg-failover.js';
import { MssError } from '../../core/errors.js';
import { startPgPair, type PgPair } from '../helpers/pg-cluster.js';

// What core/db/pg.ts does when the connection is lost at each point of a transaction, on a
// real PostgreSQL 15, through a TCP relay that cuts the connection when the client sends a
// chosen statement (the cut a failover makes, at a moment the test chooses).

describe('pg-failover helpers', () => {
  it('lists database.url then each of database.hosts on the same URL', () => {
    expect(serverUrls('postgres://u:p@db1:5432/mss?sslmode=disable', ['db2:5433', 'db3', '[::1]:6000'])).toEqual([
      'postgres://u:p@db1:5432/mss?sslmode=disable',
      'postgres://u:p@db2:5433/mss?sslmode=disable',
      'postgres://u:p@db3:5432/mss?sslmode=disable',
      'postgres://u:p@[::1]:6000/mss?sslmode=disable',
    ]);
    expect(() => serverUrls('postgres://db1/mss', ['db2:x'])).toThrow(/not host or host:port/);
  });

  it('tells a lost connection from a refused statement', () => {
    expect(isConnectionError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }))).toBe(true);
    expect(isConnectionError(new MssError('INTERNAL', {}, { cause: Object.assign(new Error('y'), { code: '08006' }) }))).toBe(true);
    expect(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBe(false);
    expect(isReadOnlyStatement('  SELECT 1')).toBe(true);
    expect(isReadOnlyStatement('SELECT nextval($1)')).toBe(false);
    expect(isReadOnlyStatement('SELECT id FROM t FOR UPDATE')).toBe(false);
    expect(isReadOnlyStatement('INSERT INTO t VALUES (1)')).toBe(false);
  });
});

describe('a transaction whose connection is cut', () => {
  let server: PgPair;
  let relay: Server;
  let relayPort: number;
  /** The next client message containing this text closes both sides instead of reaching the server. */
  let cutOn: string | undefined;
  const sockets = new Set<Socket>();
  let db: Db;

  beforeAll(async () => {
    server = await startPgPair({ replica: false });
    relay = createServer((client) => {
      const upstream = connect(server.primary.port, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.on('data', (d) => {
        if (cutOn && d.includes(cutOn)) {
          cutOn = undefined;
          client.destroy();
          upstream.destroy();
          return;
        }
        upstream.write(d);
      });
      upstream.on('data', (d) => client.write(d));
      for (const s of [client, upstream]) s.on('error', () => {}).on('close', () => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    relayPort = (relay.address() as { port: number }).port;
    const admin = new pg.Client({ connectionString: server.url(server.primary.port) });
    await admin.connect();
    await admin.query('CREATE TABLE t (v text)');
    await admin.end();
    db = await openPg({ url: server.url(relayPort), poolSize: 2, failoverTimeoutMs: 60_000 });
  });

  afterAll(async () => {
    await db?.close();
    for (const s of sockets) s.destroy();
    relay?.close();
    await server?.stop();
  });

  const rows = async (v: string) => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t WHERE v = $1', [v])).rows[0].n;
  const insert = (v: string) => async (tx: { query: Db['query'] }) => {
    await tx.query('INSERT INTO t VALUES ($1)', [v]);
    return v;
  };

  it('lost before COMMIT, with { retry: true }: run again on a new connection, saved once', async () => {
    cutOn = 'INSERT INTO t';
    await expect(db.transaction(insert('retried'), { retry: true })).resolves.toBe('retried');
    expect(cutOn).toBeUndefined(); // the cut did happen
    expect(await rows('retried')).toBe(1);
  });

  it('lost before COMMIT, without retry: the caller hears it, nothing saved', async () => {
    cutOn = 'INSERT INTO t';
    const e = await db.transaction(insert('plain')).catch((x) => x);
    expect(isConnectionError(e)).toBe(true);
    expect(await rows('plain')).toBe(0);
  });

  it('lost during COMMIT: DB_COMMIT_UNKNOWN (never a success on a guess), even with { retry: true }', async () => {
    cutOn = 'COMMIT';
    const e = await db.transaction(insert('unknown'), { retry: true }).catch((x) => x);
    expect(e).toBeInstanceOf(MssError);
    expect(e.code).toBe('DB_COMMIT_UNKNOWN');
    expect(e.entry.smtp).toMatchObject({ code: 451 });
    // The server never received the COMMIT here: rolled back. (Had it, the row would be there once.)
    expect(await rows('unknown')).toBe(0);
  });

  it('lost during COMMIT of an { idempotent: true } transaction: run again', async () => {
    cutOn = 'COMMIT';
    await expect(db.transaction(insert('idem'), { idempotent: true })).resolves.toBe('idem');
    expect(await rows('idem')).toBe(1);
  });

  it('a connection error of another socket inside fn (an LDAP server reset) is not taken for the database\'s: rolled back, heard once', async () => {
    let runs = 0;
    const e = await db
      .transaction(
        async (tx) => {
          runs++;
          await tx.query("INSERT INTO t VALUES ('other')");
          throw Object.assign(new Error('ldap reset'), { code: 'ECONNRESET' });
        },
        { retry: true },
      )
      .catch((x) => x);
    expect(e.message).toBe('ldap reset');
    expect(runs).toBe(1);
    expect(await rows('other')).toBe(0);
  });

  it('a read that lost its connection is asked again', async () => {
    cutOn = 'SELECT 42';
    await expect(db.query<{ x: number }>('SELECT 42 AS x')).resolves.toMatchObject({ rows: [{ x: 42 }] });
  });
});
