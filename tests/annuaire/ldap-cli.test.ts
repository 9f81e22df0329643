import { chmodSync, mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedAnnuaire } from '../../bench/ldap-fixtures.js';
import { migrate, openPglite } from '../../core/db/index.js';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv, type TestPki } from '../helpers/pki.js';
import { seedPglite } from '../helpers/templates.js';

// `mss annuaire rebuild-ldap` and `check-ldap` as an operator runs them, on the embedded
// database with the platform stopped (check-ldap then starts its own slapd for the check).

describe('mss annuaire rebuild-ldap / check-ldap (embedded database)', () => {
  let dataDir: string;
  let pki: TestPki;
  let env: Record<string, string>;

  const withDb = async <T>(fn: (db: Awaited<ReturnType<typeof openPglite>>) => Promise<T>): Promise<T> => {
    const db = await openPglite(join(dataDir, 'db'));
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };

  beforeAll(async () => {
    pki = await testPki();
    dataDir = mkdtempSync(join(tmpdir(), 'mss-ldap-cli-'));
    chmodSync(dataDir, 0o711);
    seedPglite(dataDir);
    env = { MSS_TLS_CERT_FILE: pki.paths.leaves.server.cert, MSS_TLS_KEY_FILE: pki.paths.leaves.server.key, MSS_TLS_CHAIN_FILE: pki.paths.intermediate, MSS_TLS_CA_FILE: pki.paths.ca, ...tsaEnv(pki) };
    await withDb(async (db) => {
      await migrate(db);
      await seedAnnuaire(db, { count: 400 });
    });
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('--help explains both commands', () => {
    expect(runMss(['annuaire', 'rebuild-ldap', '--help']).stdout).toMatch(/slapadd.*swap it in atomically/s);
    expect(runMss(['annuaire', 'check-ldap', '--help']).stdout).toMatch(/exit code 1 when there is any/);
  });

  it('rebuilds, then finds no difference', () => {
    const r = runMss(['annuaire', 'rebuild-ldap', '--data-dir', dataDir], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^directory rebuilt from embedded PGlite .*: [\d,]+ entries in [\d.]+ s\nslapd is not running/);
    expect(readlinkSync(join(dataDir, 'ldap', 'db'))).toMatch(/^db-/);
    const c = runMss(['annuaire', 'check-ldap', '--data-dir', dataDir], env);
    expect(c.stderr).toBe('');
    expect(c.stdout).toMatch(/^database ([\d,]+) entries, directory \1 entries\nno difference\n$/);
    expect(c.code).toBe(0);
  });

  it('reports a change that never reached the directory, exit code 1, and rebuild-ldap repairs it', async () => {
    const key = await withDb(async (db) => {
      // Changed behind the feeder's back: no queueLdapChanges, as if the queue row were lost.
      const { rows } = await db.query<{ key: string }>("UPDATE annuaire_mss_addresses SET nom = 'DURAND-PLANTÉ' WHERE lower(address) = (SELECT key FROM annuaire_ldap_bal WHERE bal_type = 'PER' ORDER BY key LIMIT 1) RETURNING lower(address) AS key");
      return rows[0].key;
    });
    const c = runMss(['annuaire', 'check-ldap', '--data-dir', dataDir], env);
    expect(c.code).toBe(1);
    expect(c.stdout).toContain('1 difference(s): 0 missing from the directory, 0 extra in it, 1 different');
    expect(c.stdout).toContain(`different bal        ${key} (cn, displayname, sn)`);
    const json = JSON.parse(runMss(['annuaire', 'check-ldap', '--json', '--data-dir', dataDir], env).stdout);
    expect(json).toMatchObject({ missing: 0, extra: 0, different: 1, samples: [{ kind: 'bal', key, problem: 'different' }] });
    expect(runMss(['annuaire', 'rebuild-ldap', '--data-dir', dataDir], env).code).toBe(0);
    expect(runMss(['annuaire', 'check-ldap', '--data-dir', dataDir], env)).toMatchObject({ code: 0, stderr: '' });
  });

  it('a taken LDAP port stops the start with one clear line', async () => {
    const { createServer } = await import('node:net');
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as { port: number }).port;
    try {
      const r = runMss(['annuaire', 'check-ldap', '--data-dir', dataDir], { ...env, MSS_LDAP_SLAPD: '/nonexistent/slapd' });
      expect(r).toMatchObject({ code: 1, stderr: 'mss: the LDAP directory (slapd) did not start: slapd could not be started: /nonexistent/slapd: no such program\n' });
      const { startDirectory } = await import('../../annuaire/ldap/index.js');
      const { loadConfig } = await import('../../core/config/index.js');
      const { Journal } = await import('../../core/journal/index.js');
      const { silentLogger } = await import('../../core/logger.js');
      const config = loadConfig({ env: {}, overrides: { dataDir, ldap: { port, ldapsPort: 0 }, tls: { certFile: env.MSS_TLS_CERT_FILE, keyFile: env.MSS_TLS_KEY_FILE, chainFile: env.MSS_TLS_CHAIN_FILE, caFile: env.MSS_TLS_CA_FILE } } });
      await withDb(async (db) => {
        await expect(startDirectory(config, silentLogger, db, new Journal(db))).rejects.toThrow(`the LDAP directory (slapd) did not start: 127.0.0.1:${port} is already in use`);
      });
    } finally {
      srv.close();
    }
  });

  it('one clear line when slapadd is missing, and the old directory stays', () => {
    const before = readlinkSync(join(dataDir, 'ldap', 'db'));
    const r = runMss(['annuaire', 'rebuild-ldap', '--data-dir', dataDir], { ...env, MSS_LDAP_SLAPADD: '/nonexistent/slapadd' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mss: rebuilding the LDAP directory failed, the previous one stays in place: /nonexistent/slapadd not found (install the slapd package)\n');
    expect(readlinkSync(join(dataDir, 'ldap', 'db'))).toBe(before);
  });
});
