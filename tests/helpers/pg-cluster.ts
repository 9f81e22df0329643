import { execFile } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { createScratchDatabase, realPgUrl } from './db.js';
import { freePorts } from './operator.js';

const run = promisify(execFile);
const PGBIN = process.env.MSS_TEST_PGBIN ?? '/usr/lib/postgresql/15/bin';

/**
 * A private PostgreSQL 15 cluster under /tmp: a primary and a streaming replica made with
 * pg_basebackup -R, on free loopback ports. The replica is a *synchronous* standby
 * (synchronous_standby_names = '*'): a COMMIT returns once the standby has the WAL, which is
 * what lets a failover lose no acknowledged write. PostgreSQL refuses to run as root: as
 * root, the programs run as the postgres user.
 */
export interface PgPair {
  dir: string;
  password: string;
  primary: { port: number; data: string };
  replica: { port: number; data: string };
  url(port: number, database?: string): string;
  /** CREATE DATABASE on the primary; its URL there. */
  createDatabase(name: string): Promise<string>;
  /** pg_ctl stop -m immediate of the primary (a crash: no shutdown checkpoint, walsenders killed). */
  crashPrimary(): Promise<void>;
  /** pg_ctl promote of the replica, waiting until it accepts writes. */
  promoteReplica(): Promise<void>;
  stop(): Promise<void>;
}

const asPostgres = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  userInfo().uid === 0 ? run('runuser', ['-u', 'postgres', '--', cmd, ...args], { env: { ...process.env, ...env } }) : run(cmd, args, { env: { ...process.env, ...env } });

/** replica: false — the primary alone (no standby to wait for). maxConnections: the primary's (default 100). */
export async function startPgPair(opts: { replica?: boolean; maxConnections?: number } = {}): Promise<PgPair> {
  const withReplica = opts.replica !== false;
  const dir = mkdtempSync(join(tmpdir(), 'mss-pgpair-'));
  chmodSync(dir, 0o755);
  const password = 'pair-secret';
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, password + '\n');
  // The ports are picked right before each server starts (initdb and pg_basebackup take long
  // on a loaded machine) and below the ephemeral range (freePorts): a port-0 bind or an
  // outgoing connection meanwhile took a port picked early in that range (FATAL: could not bind).
  const primary = { port: 0, data: join(dir, 'primary') };
  const replica = { port: 0, data: join(dir, 'replica') };
  if (userInfo().uid === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: g } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout), Number(g));
    chownSync(pwfile, Number(stdout), Number(g));
  }
  await asPostgres(join(PGBIN, 'initdb'), ['-D', primary.data, '-A', 'scram-sha-256', '-U', 'postgres', `--pwfile=${pwfile}`, '--no-sync']);
  appendFileSync(
    join(primary.data, 'postgresql.conf'),
    `\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nmax_connections = ${opts.maxConnections ?? 100}\nwal_level = replica\nmax_wal_senders = 4\n${withReplica ? "synchronous_standby_names = '*'\n" : ''}synchronous_commit = on\n`,
  );
  const start = (data: string, port: number, extra = '') => asPostgres(join(PGBIN, 'pg_ctl'), ['-D', data, '-o', `-p ${port} ${extra}`, '-l', `${data}.log`, '-w', '-t', '120', 'start']);
  primary.port = (await freePorts()).mx;
  await start(primary.data, primary.port);
  const url = (port: number, database = 'postgres') => `postgres://postgres:${password}@127.0.0.1:${port}/${database}`;
  const stopOne = (data: string, mode: string) => asPostgres(join(PGBIN, 'pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop']).catch(() => undefined);
  if (withReplica) await startReplica();
  async function startReplica() {
    await asPostgres(join(PGBIN, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', replica.data, '-R', '-X', 'stream', '--no-sync'], { PGPASSWORD: password });
    do replica.port = (await freePorts()).mx;
    while (replica.port === primary.port);
    // Once promoted, the replica has no standby of its own to wait for.
    await start(replica.data, replica.port, "-c synchronous_standby_names=''");
    // The primary's commits wait for the replica from now on: wait until it streams, synchronously.
    const c = new pg.Client({ connectionString: url(primary.port) });
    await c.connect();
    try {
      for (;;) {
        const { rows } = await c.query<{ sync_state: string; state: string }>('SELECT sync_state, state FROM pg_stat_replication');
        if (rows.some((r) => r.sync_state === 'sync' && r.state === 'streaming')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await c.end();
    }
  }
  return {
    dir,
    password,
    primary,
    replica,
    url,
    async crashPrimary() {
      await stopOne(primary.data, 'immediate');
    },
    async promoteReplica() {
      await asPostgres(join(PGBIN, 'pg_ctl'), ['-D', replica.data, '-w', '-t', '120', 'promote']);
    },
    async createDatabase(name: string) {
      const admin = new pg.Client({ connectionString: url(primary.port) });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return url(primary.port, name);
    },
    async stop() {
      await stopOne(replica.data, 'fast');
      await stopOne(primary.data, 'fast');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A database of its own for a test: on the PostgreSQL CI runs (MSS_DATABASE_URL), a scratch
 * database; else a private cluster under /tmp with a database `mss`. drop() removes either.
 */
export async function testPostgres(opts: { maxConnections?: number } = {}): Promise<{ url: string; drop(): Promise<void> }> {
  if (realPgUrl) return createScratchDatabase(realPgUrl);
  const server = await startPgPair({ replica: false, ...opts });
  return { url: await server.createDatabase('mss'), drop: server.stop };
}
