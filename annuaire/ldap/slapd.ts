// Running the two OpenLDAP programs we use: slapd (as a supervised service) and slapadd
// (one-shot bulk load of a fresh database). Both run as the daemon user.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client } from 'ldapts';
import type { Config } from '../../core/config/index.js';
import type { ServiceSpec } from '../../core/supervisor.js';
import { MssError } from '../../core/errors.js';
import type { ChildUser } from '../../core/supervisor.js';
import type { LdapPaths } from './files.js';

export interface Listen {
  host: string;
  port: number;
  ldapsPort: number;
}

const urlHost = (h: string) => (h.includes(':') ? `[${h}]` : h);
export const ldapUrl = (l: Listen) => `ldap://${urlHost(l.host)}:${l.port}`;
export const ldapsUrl = (l: Listen) => `ldaps://${urlHost(l.host)}:${l.ldapsPort}`;

/** A port nobody listens on right now (slapd cannot be told "any port" and report it). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Fails with a clear line when a configured port is taken (slapd -d 0 would exit silently). */
function portFree(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (e: NodeJS.ErrnoException) =>
      reject(new MssError('LDAP_START_FAILED', { reason: e.code === 'EADDRINUSE' ? `${host}:${port} is already in use (another slapd? change ldap.port / ldap.ldapsPort)` : `cannot listen on ${host}:${port}: ${e.message}` })),
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

export async function resolveListen(c: Config): Promise<Listen> {
  // As root, slapd binds before dropping privileges, so we can probe any port ourselves.
  for (const p of [c.ldap.port, c.ldap.ldapsPort]) if (p) await portFree(c.ldap.host, p);
  const port = c.ldap.port || (await freePort(c.ldap.host));
  let ldapsPort = c.ldap.ldapsPort || (await freePort(c.ldap.host));
  while (ldapsPort === port) ldapsPort = await freePort(c.ldap.host);
  return { host: c.ldap.host, port, ldapsPort };
}

/** Answers when slapd serves LDAP: an anonymous read of the root DSE. */
export async function ping(url: string, timeoutMs = 2000): Promise<void> {
  const client = new Client({ url, timeout: timeoutMs, connectTimeout: timeoutMs });
  try {
    await client.search('', { scope: 'base', filter: '(objectClass=*)', attributes: ['namingContexts'] });
  } finally {
    await client.unbind().catch(() => {});
  }
}

/** The slapd row of the supervisor's table. */
export function slapdService(c: Config, p: LdapPaths, listen: Listen): ServiceSpec {
  return {
    name: 'slapd',
    command: c.ldap.slapd,
    // -d keeps slapd in the foreground (the supervisor owns it) and sends its log to stderr.
    args: ['-f', p.conf, '-h', `${ldapUrl(listen)}/ ${ldapsUrl(listen)}/`, '-d', c.ldap.debugLevel],
    pidFile: p.pidFile,
    restart: 'always',
    backoff: { initialMs: 100, maxMs: 30_000, resetAfterMs: 30_000 },
    health: () => ping(ldapUrl(listen)),
    healthIntervalMs: 10_000,
    healthFailures: 3,
    readyTimeoutMs: 30_000,
    stopSignal: 'SIGTERM',
    // slapd flushes and closes mdb cleanly on SIGTERM; a huge database may take a moment.
    stopTimeoutMs: 20_000,
    // As root, slapd binds its ports (389/636 are privileged) and then drops to the user.
    dropPrivileges: (u) => ['-u', String(u.uid), '-g', String(u.gid)],
    logLevels: { stderr: 'info' },
  };
}

/**
 * slapadd -q of an LDIF stream into the database named by `conf` (a fresh directory).
 * -q skips consistency checks slapd would do online; the input is ours and complete.
 */
export async function slapadd(c: Config, conf: string, user: ChildUser, input: AsyncIterable<string | Buffer> | string): Promise<void> {
  // -w on a provider: contextCSN is written from the entries' CSNs, so consumers see a
  // rebuilt database as newer than what they hold and refresh from it.
  const args = ['-q', ...(c.ldap.role === 'provider' ? ['-w'] : []), '-f', conf, ...(typeof input === 'string' ? ['-l', input] : [])];
  const ids = user.dropped ? { uid: user.uid, gid: user.gid } : {};
  const child = spawn(c.ldap.slapadd, args, { stdio: [typeof input === 'string' ? 'ignore' : 'pipe', 'ignore', 'pipe'], ...ids });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  // A program that cannot be run reports 'error' (and maybe 'close'): one outcome either way.
  let spawnError: Error | undefined;
  const done = new Promise<number | null>((resolve) => {
    child.once('error', (e) => {
      spawnError = e;
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });
  try {
    if (typeof input !== 'string') {
      // Read-ahead of a few chunks: the database is read and the LDIF made while slapadd
      // indexes the previous chunk, never more than that (memory stays flat).
      await pipeline(Readable.from(input, { objectMode: true, highWaterMark: 4 }), child.stdin!).catch(async (e: NodeJS.ErrnoException) => {
        // slapadd stopping early (or never starting) closes the pipe: its own error says why.
        if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_PREMATURE_CLOSE' && e.code !== 'ERR_STREAM_DESTROYED' && !spawnError) throw e;
      });
    }
    const code = await done;
    if (spawnError) throw spawnError;
    if (code !== 0) throw new Error(err.trim().split('\n').filter(Boolean).slice(-3).join(' / ') || `exit code ${code}`);
  } catch (e) {
    child.kill('SIGKILL');
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? `${c.ldap.slapadd} not found (install the slapd package)` : (e as Error).message;
    throw new MssError('LDAP_REBUILD_FAILED', { reason }, { cause: e });
  }
}

export interface EndpointsFile {
  pid: number;
  ldap: string;
  ldaps: string;
  startedAt: string;
}

/** Written once slapd answers, so the CLI (another process) finds the running directory. */
export function writeEndpoints(p: LdapPaths, listen: Listen): void {
  const pid = Number(readFileSafe(p.pidFile));
  const data: EndpointsFile = { pid, ldap: ldapUrl(listen), ldaps: ldapsUrl(listen), startedAt: new Date().toISOString() };
  writeFileSync(p.endpointsFile, JSON.stringify(data, null, 2) + '\n');
}

/** The running slapd of this data directory, if any (its pid is alive). */
export function runningSlapd(p: LdapPaths): EndpointsFile | undefined {
  if (!existsSync(p.endpointsFile)) return undefined;
  try {
    const e = JSON.parse(readFileSync(p.endpointsFile, 'utf8')) as EndpointsFile;
    const pid = Number(readFileSafe(p.pidFile)) || e.pid;
    process.kill(pid, 0);
    return { ...e, pid };
  } catch {
    return undefined;
  }
}

function readFileSafe(f: string): string {
  try {
    return readFileSync(f, 'utf8').trim();
  } catch {
    return '';
  }
}
