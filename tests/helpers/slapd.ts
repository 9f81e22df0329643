import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDirectory, type Directory } from '../../annuaire/ldap/index.js';
import { loadConfig, type Config } from '../../core/config/index.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger, type Logger } from '../../core/logger.js';
import { testPki, type TestPki } from './pki.js';

const run = promisify(execFile);

export interface TestDirectory {
  config: Config;
  dir: Directory;
  pki: TestPki;
  /** ldap://127.0.0.1:PORT and ldaps://127.0.0.1:PORT2 */
  ldap: string;
  ldaps: string;
  base: string;
  /** Start it again after dir.stop(), on the same data directory (new ports when they were 0). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A data directory in /tmp with the test PKI as TLS files, slapd on free loopback ports. */
export function testLdapConfig(pki: TestPki, dataDir = mkdtempSync(join(tmpdir(), 'mss-ldap-'))): Config {
  // As root the daemon user must be able to traverse it (the platform does this for its own data dir too).
  chmodSync(dataDir, 0o711);
  return loadConfig({
    env: {},
    overrides: {
      dataDir,
      ldap: { port: 0, ldapsPort: 0, syncInterval: 50 },
      tls: { certFile: pki.paths.leaves.server.cert, keyFile: pki.paths.leaves.server.key, chainFile: pki.paths.intermediate, caFile: pki.paths.ca },
    },
  });
}

export async function startTestDirectory(db: Db, opts: { log?: Logger } = {}): Promise<TestDirectory> {
  const pki = await testPki();
  const config = testLdapConfig(pki);
  const journal = new Journal(db);
  const urls = (d: Directory) => ({ ldap: d.endpoints[0].url.replace(/\/[^/]*$/, ''), ldaps: d.endpoints[1].url.replace(/\/[^/]*$/, '') });
  let dir = await startDirectory(config, opts.log ?? silentLogger, db, journal);
  const t: TestDirectory = {
    config,
    dir,
    pki,
    ...urls(dir),
    base: config.ldap.baseDn,
    async start() {
      dir = await startDirectory(config, opts.log ?? silentLogger, db, journal);
      Object.assign(t, { dir }, urls(dir));
    },
    async restart() {
      await dir.stop();
      await t.start();
    },
    async stop() {
      await dir.stop();
      rmSync(config.dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

export interface LdifEntry {
  dn: string;
  attrs: Record<string, string[]>;
}

/** Parses ldapsearch's LDIF (-o ldif-wrap=no): base64 values decoded. */
export function parseLdif(text: string): LdifEntry[] {
  const out: LdifEntry[] = [];
  for (const block of text.split(/\n\n+/)) {
    let cur: LdifEntry | undefined;
    for (const line of block.split('\n')) {
      if (!line || line.startsWith('#')) continue;
      const m = /^([^:]+)(::?) ?(.*)$/.exec(line);
      if (!m) continue;
      const value = m[2] === '::' ? Buffer.from(m[3], 'base64').toString('utf8') : m[3];
      if (m[1] === 'dn') {
        cur = { dn: value, attrs: {} };
        out.push(cur);
      } else if (cur) (cur.attrs[m[1].toLowerCase()] ??= []).push(value);
    }
  }
  return out;
}

export interface LdapSearchResult {
  code: number;
  entries: LdifEntry[];
  stdout: string;
  stderr: string;
}

/** The real `ldapsearch`, trusting the test PKI's root (LDAPTLS_CACERT). */
export async function ldapsearch(t: Pick<TestDirectory, 'pki'>, args: string[]): Promise<LdapSearchResult> {
  try {
    const r = await run('ldapsearch', ['-x', '-LLL', '-o', 'ldif-wrap=no', '-o', 'nettimeout=10', ...args], {
      env: { ...process.env, LDAPTLS_CACERT: t.pki.paths.ca, LDAPTLS_REQCERT: 'demand', LDAPRC: '/dev/null', LDAPCONF: '/dev/null' },
      maxBuffer: 512 * 1024 * 1024,
    });
    return { code: 0, entries: parseLdif(r.stdout), stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, entries: parseLdif(err.stdout ?? ''), stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/**
 * Polls until check() is true. The timeout only turns a hang into a readable failure before
 * the runner's own (600 s): far above any wait on a loaded machine, never a performance assertion.
 */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 300_000, everyMs = 25): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
