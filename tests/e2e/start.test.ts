import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createScratchDatabase, realPgUrl } from '../helpers/db.js';
import { runMss, startMss } from '../helpers/mss.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mss-e2e-'));
// Every listener on a free port, so this file can run beside others that start platforms; no
// demo data (tests/e2e/demo.test.ts covers it), so a start here is only the platform's own.
const ANY_PORT = { MSS_SMTP_MX_PORT: '0', MSS_SMTP_SUBMISSION_PORT: '0', MSS_SMTP_SUBMISSIONS_PORT: '0', MSS_LDAP_PORT: '0', MSS_LDAP_LDAPS_PORT: '0', MSS_ADMIN_PORT: '0', MSS_IMAP_PORT: '0', MSS_IMAP_STARTTLS_PORT: '0', MSS_WEBMAIL_PORT: '0', MSS_FHIR_PORT: '0', MSS_DEMO_ENABLED: 'false' };

describe('mss start (embedded database)', () => {
  const dataDir = tmp();

  it('comes up, answers health and metrics, timestamps, and stops cleanly on SIGTERM', async () => {
    const p = await startMss(['--data-dir', dataDir, '--http-port', '0'], { ...ANY_PORT, MSS_PKI_KEY_BITS: '2048' });
    const health = /health\s+(http:\S+)/.exec(p.stdout())![1];
    const base = health.replace(/\/health$/, '');
    expect(p.stdout()).toContain(`data directory   ${dataDir}`);
    const h = await fetch(health);
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', checks: { database: { ok: true, kind: 'pglite' } } });
    const m = await (await fetch(`${base}/metrics`)).text();
    expect(m).toMatch(/^mss_journal_events_total \d+/m);
    // What ends while it runs, for the operator's alerting: the dates openssl reads in the files it loaded.
    const openssl = (args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });
    const endOf = (file: string) => Date.parse(openssl(['x509', '-noout', '-enddate', '-in', join(dataDir, 'pki', file)]).replace(/^notAfter=/, '').trim()) / 1000;
    const gauge = (name: string, label: string) => Number(new RegExp(`^${name}\\{${label}\\} (\\S+)$`, 'm').exec(m)?.[1]);
    expect(gauge('mss_certificate_not_after_timestamp_seconds', 'certificate="tls"')).toBe(endOf('server.pem'));
    expect(gauge('mss_certificate_not_after_timestamp_seconds', 'certificate="tsa"')).toBe(endOf('tsa.pem'));
    const nextUpdate = Date.parse(openssl(['crl', '-noout', '-nextupdate', '-in', join(dataDir, 'pki', 'crl.pem')]).replace(/^nextUpdate=/, '').trim()) / 1000;
    expect([...m.matchAll(/^mss_crl_next_update_timestamp_seconds\{issuer="([^"]+)"\} (\S+)$/gm)].map((x) => Number(x[2]))).toContain(nextUpdate);
    expect(m).toMatch(/^mss_openpgp_keys\{state="expired"\} 0$/m);
    // The development PKI was created on first start, and the TSA answers openssl + curl.
    for (const f of ['ca.pem', 'intermediate.pem', 'crl.pem', 'server.pem', 'server.key', 'tsa.pem']) expect(existsSync(join(dataDir, 'pki', f))).toBe(true);
    const work = tmp();
    writeFileSync(join(work, 'doc.txt'), 'compte rendu');
    execFileSync('openssl', ['ts', '-query', '-data', join(work, 'doc.txt'), '-sha256', '-cert', '-out', join(work, 'q.tsq')]);
    execFileSync('curl', ['-sf', '--data-binary', `@${join(work, 'q.tsq')}`, '-H', 'Content-Type: application/timestamp-query', `${base}/tsa`, '-o', join(work, 'r.tsr')]);
    const v = execFileSync('openssl', ['ts', '-verify', '-data', join(work, 'doc.txt'), '-in', join(work, 'r.tsr'), '-CAfile', join(dataDir, 'pki', 'ca.pem'), '-untrusted', join(dataDir, 'pki', 'intermediate.pem')], { encoding: 'utf8' });
    expect(v).toContain('Verification: OK');
    expect((await fetch(`${base}/nowhere`)).headers.get('content-type')).toContain('application/problem+json');
    // The FHIR annuaire (annuaire/fhir) answers curl presenting a certificate of the trust space, and refuses it without one.
    const fhir = /FHIR annuaire\s+(https:\S+)/.exec(p.stdout())![1];
    const pki = (f: string) => join(dataDir, 'pki', f);
    const curlFhir = (...args: string[]) => execFileSync('curl', ['-s', '--cacert', pki('chain.pem'), '-w', '\n%{http_code}', ...args, fhir], { encoding: 'utf8' }).split('\n');
    const [cs, ok] = curlFhir('--cert', pki('application.pem'), '--key', pki('application.key'));
    expect([ok, JSON.parse(cs).resourceType]).toEqual(['200', 'CapabilityStatement']);
    const [oo, no] = curlFhir();
    expect([no, JSON.parse(oo).issue[0].details.coding[0].code]).toEqual(['403', 'DIRECTORY_READ_FORBIDDEN']);

    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain('stopped.');
  });

  it('a second start reuses the data; the journal verifies and exports a proof openssl accepts', async () => {
    const p = await startMss(['--data-dir', dataDir, '--http-port', '0'], ANY_PORT);
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(0);
    const verify = runMss(['journal', 'verify', '--data-dir', dataDir]);
    expect(verify.stderr).toBe('');
    // Two starts and two stops at least (the first start also journals the bootstrap admin account).
    const n = Number(/^journal OK: (\d+) events, \d+ seals \(timestamp tokens checked\), 0 not yet sealed/.exec(verify.stdout)?.[1]);
    expect(n).toBeGreaterThanOrEqual(4);
    const out = tmp();
    const exp = runMss(['journal', 'export', '--event', '3', '--dir', out, '--data-dir', dataDir]);
    expect(exp.code).toBe(0);
    const cmd = /check the timestamp with:\n\s+(openssl .*)\n/.exec(exp.stdout)![1];
    expect(execFileSync('sh', ['-c', cmd], { encoding: 'utf8' })).toContain('Verification: OK');
    expect(runMss(['journal', 'export', '--event', '99', '--dir', out, '--data-dir', dataDir])).toMatchObject({ code: 1, stderr: 'mss: journal event 99 does not exist\n' });
  });

  it('refuses to open the embedded database twice', async () => {
    const p = await startMss(['--data-dir', dataDir, '--http-port', '0'], ANY_PORT);
    try {
      const r = runMss(['journal', 'verify', '--data-dir', dataDir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`mss: the embedded database ${join(dataDir, 'db')} is in use by process ${p.child.pid}; stop it first, or set MSS_DATABASE_URL to use PostgreSQL\n`);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
    }
  });
});

describe('mss start refuses bad input with one clear line', () => {
  it('a broken configuration', () => {
    const r = runMss(['start', '--data-dir', tmp()], { MSS_HTTP_PORT: 'abc', MSS_LOG_LEVEL: 'chatty' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('mss: MSS_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "chatty"\nmss: MSS_HTTP_PORT must be a port number (1-65535), got "abc"\n');
  });

  it('a missing certificate file', () => {
    const r = runMss(['start', '--data-dir', tmp()], { MSS_TLS_CERT_FILE: '/nonexistent/server.pem', MSS_TLS_KEY_FILE: '/nonexistent/server.key' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mss: cannot read TLS certificate (tls.certFile) /nonexistent/server.pem: no such file\n');
  });

  it('a certificate file that is not a certificate', () => {
    const dir = tmp();
    writeFileSync(join(dir, 'bad.pem'), 'hello\n');
    const r = runMss(['start', '--data-dir', dir], { MSS_TLS_CERT_FILE: join(dir, 'bad.pem'), MSS_TLS_KEY_FILE: join(dir, 'bad.pem') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^mss: .*bad\.pem is not a usable certificate: .+\n$/);
  });

  it('an unreachable PostgreSQL', () => {
    const r = runMss(['start', '--data-dir', tmp()], { MSS_DATABASE_URL: 'postgres://mss:pw@127.0.0.1:1/mss', MSS_PKI_KEY_BITS: '2048' });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('mss: cannot reach the database postgres://mss:***@127.0.0.1:1/mss: connection refused (is PostgreSQL running and listening there?)\n');
  });
});

describe.runIf(realPgUrl)('mss start on a real PostgreSQL', () => {
  const drops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const d of drops) await d();
  });

  it('migrates, serves health, and keeps one journal chain across restarts', async () => {
    const scratch = await createScratchDatabase(realPgUrl!);
    drops.push(scratch.drop);
    const dataDir = tmp();
    for (let i = 0; i < 2; i++) {
      const p = await startMss(['--data-dir', dataDir, '--http-port', '0'], { ...ANY_PORT, MSS_DATABASE_URL: scratch.url, MSS_PKI_KEY_BITS: '2048' });
      const health = /health\s+(http:\S+)/.exec(p.stdout())![1];
      expect(await (await fetch(health)).json()).toMatchObject({ status: 'ok', checks: { database: { kind: 'pg' } } });
      p.child.kill('SIGTERM');
      expect(await p.exited).toBe(0);
    }
    const v = runMss(['journal', 'verify', '--data-dir', dataDir], { MSS_DATABASE_URL: scratch.url });
    expect(v.stdout).toMatch(/^journal OK: \d+ events/);
  });
});
