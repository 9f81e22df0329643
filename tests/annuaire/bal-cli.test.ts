import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv } from '../helpers/pki.js';
import { seedPglite } from '../helpers/templates.js';
import { makeWhitelistXml } from '../helpers/whitelist.js';

// The CLI as users run it (compiled `mss`), on the embedded database of a fresh data dir.
// Each command opens PGlite in a new process, hence the generous timeout; the data dir starts
// with the run's migrated template (creating a database is not what is tested here).
describe('mss bal / whitelist / admin', { timeout: 600_000 }, () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-cli-'));
  seedPglite(dataDir);
  let env: Record<string, string>;
  // Commands seal what they journal before exiting: the test PKI's TSA.
  beforeAll(async () => void (env = { MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(await testPki()) }));
  const mss = (...args: string[]) => runMss([...args, '--data-dir', dataDir], env);

  it('creates, lists, shows, closes mailboxes and manages members, certificates, passwords', async () => {
    const pki = await testPki();
    const per = mss('bal', 'create', 'Jeanne.Martin@mssante.localhost', '--type', 'PER', '--owner', '99999999901', '--person-login', 'jeanne');
    expect(per.code).toBe(0);
    expect(per.stdout).toMatch(/^created PER mailbox jeanne\.martin@mssante\.localhost\ncreated account jeanne; password \(shown once\): [A-Za-z0-9]{20}\n$/);
    expect(mss('bal', 'create', 'secretariat@mssante.localhost', '-t', 'org', '-o', '750000001', '--service', 'Cardiologie').code).toBe(0);
    expect(mss('bal', 'create', 'labo@mssante.localhost', '-t', 'APP', '-o', '399999999900001').code).toBe(0);
    expect(mss('bal', 'member', 'add', 'secretariat@mssante.localhost', 'jeanne')).toMatchObject({ code: 0, stdout: 'jeanne is a member of secretariat@mssante.localhost (1 member)\n' });
    // Checked against the configured trust bundle and CRLs (here the test PKI's).
    const trust = { MSS_TLS_CA_FILE: pki.file('chain.pem'), MSS_TLS_CRL_FILE: pki.file('crl.pem') };
    const cert = runMss(['bal', 'cert', 'add', 'labo@mssante.localhost', pki.file('application.pem'), '--data-dir', dataDir], { ...env, ...trust });
    expect(cert.stdout).toMatch(/^registered [0-9a-f]{64} \(.*CN=labo-resultats/);
    const fp = /registered ([0-9a-f]{64})/.exec(cert.stdout)![1];
    expect(mss('bal', 'cert', 'revoke', 'labo@mssante.localhost', fp).code).toBe(0);
    expect(mss('bal', 'close', 'labo@mssante.localhost', '--reason', 'test')).toMatchObject({ code: 0, stdout: 'labo@mssante.localhost is now closed\n' });
    const list = mss('bal', 'list');
    expect(list.stdout.split('\n').filter(Boolean).map((l) => l.split(/\s+/).slice(0, 3).join(' '))).toEqual([
      'jeanne.martin@mssante.localhost PER active',
      'labo@mssante.localhost APP closed',
      'secretariat@mssante.localhost ORG active',
    ]);
    const show = JSON.parse(mss('bal', 'show', 'secretariat@mssante.localhost', '--json').stdout);
    expect(show).toMatchObject({ service: 'Cardiologie', members: [{ login: 'jeanne' }] });
    expect(mss('bal', 'password', 'jeanne').stdout).toMatch(/^new password of jeanne \(shown once\): [A-Za-z0-9]{20}\n$/);
  });

  it('cert add checks the certificate and binds one already bound elsewhere only with --allow-shared', async () => {
    const pki = await testPki();
    const trust = { ...env, MSS_TLS_CA_FILE: pki.file('chain.pem'), MSS_TLS_CRL_FILE: pki.file('crl.pem') };
    const add = (...args: string[]) => runMss(['bal', 'cert', 'add', ...args, '--data-dir', dataDir], trust);
    for (const b of ['labo2', 'labo3']) expect(mss('bal', 'create', `${b}@mssante.localhost`, '-t', 'APP', '-o', '399999999900001').code).toBe(0);
    expect(add('labo2@mssante.localhost', pki.file('application.pem')).code).toBe(0);
    const shared = add('labo3@mssante.localhost', pki.file('application.pem'));
    expect(shared).toMatchObject({ code: 1, stderr: expect.stringMatching(/^mss: the certificate [0-9a-f]{64} is already bound to labo2@mssante\.localhost; to bind it to labo3@mssante\.localhost as well, register it again with allowShared \(CLI: --allow-shared\): the sharing is journalled\n$/) });
    expect(add('labo3@mssante.localhost', pki.file('application.pem'), '--allow-shared').code).toBe(0);
    expect(add('labo3@mssante.localhost', pki.file('revoked.pem'))).toMatchObject({ code: 1, stderr: expect.stringMatching(/^mss: the certificate .*CN=revoked\.mssante\.localhost is revoked \(since /) });
    expect(add('--help').stdout).toContain('--allow-shared');
  });

  it('says clearly what is wrong', () => {
    expect(mss('bal', 'create', 'x@mssante.localhost', '-t', 'XYZ', '-o', '1')).toMatchObject({ code: 1, stderr: expect.stringContaining("argument 'XYZ' is invalid. expected one of PER, ORG, APP, CAB") });
    expect(mss('bal', 'create', 'jeanne.martin@mssante.localhost', '-t', 'PER', '-o', '99999999901')).toMatchObject({ code: 1, stderr: 'mss: the address jeanne.martin@mssante.localhost is already taken (addresses are never reused)\n' });
    expect(mss('bal', 'member', 'add', 'jeanne.martin@mssante.localhost', 'jeanne')).toMatchObject({ code: 1, stderr: 'mss: adding a member applies to ORG mailboxes; jeanne.martin@mssante.localhost is of type PER\n' });
    expect(mss('bal', 'show', 'nobody@mssante.localhost')).toMatchObject({ code: 1, stderr: 'mss: there is no mailbox nobody@mssante.localhost\n' });
    expect(mss('bal', 'create', '--help')).toMatchObject({ code: 0, stdout: expect.stringContaining('--owner <id>') });
  });

  it('imports and checks the liste blanche; refuses an older one; manages admin accounts', () => {
    const f = join(dataDir, 'lb.xml');
    writeFileSync(f, makeWhitelistXml({ count: 50, generatedAt: '2026-03-01T00:00:00' }));
    expect(mss('whitelist', 'import', f)).toMatchObject({ code: 0, stdout: expect.stringContaining('50 domains (50 added, 0 removed, 0 changed)') });
    expect(mss('whitelist', 'check', 'etab-3.op3.mssante.fr')).toMatchObject({ code: 0, stdout: expect.stringContaining('is on the liste blanche') });
    expect(mss('whitelist', 'check', 'gmail.com')).toMatchObject({ code: 1, stdout: 'gmail.com is NOT on the liste blanche\n' });
    writeFileSync(f, makeWhitelistXml({ count: 50, generatedAt: '2026-01-01T00:00:00' }));
    expect(mss('whitelist', 'import', f)).toMatchObject({ code: 1, stderr: expect.stringContaining('before the one in place (2026-03-01T00:00:00); nothing changed') });
    expect(mss('admin', 'add', 'ars', '--role', 'regional', '--domain', 'bzh.mssante.fr')).toMatchObject({ code: 0, stdout: expect.stringMatching(/^created regional admin ars \(domains: bzh\.mssante\.fr; structures: -\)\npassword \(shown once\): \S{20}\n$/) });
    expect(mss('admin', 'add', 'ars-vide', '--role', 'regional')).toMatchObject({ code: 1, stderr: 'mss: a regional account needs at least one domain or structure in its scope\n' });
    expect(mss('admin', 'list').stdout).toMatch(/^ars\s+regional\s+active\s+bzh\.mssante\.fr\n$/);
  });
});
