import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { devIssuer, initDevPki, issueCertificate, revokeDevCertificate, DEV_RPPS } from '../../certs/pki.js';
import { testPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
beforeAll(async () => {
  pki = await testPki();
});

/** `openssl verify` against the dev root, with the intermediate as untrusted; exit status and output. */
function verify(certFile: string, extra: string[] = []) {
  const r = spawnSync('openssl', ['verify', ...extra, '-CAfile', pki.file('ca.pem'), '-untrusted', pki.file('intermediate.pem'), certFile], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}
const text = (file: string) => execFileSync('openssl', ['x509', '-in', file, '-noout', '-text', '-nameopt', 'RFC2253,-esc_msb'], { encoding: 'utf8' });
const subject = (file: string) => execFileSync('openssl', ['x509', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb'], { encoding: 'utf8' }).trim();

describe('development PKI', () => {
  it.each(['server', 'peer-operator', 'personal', 'application', 'tsa'])('%s.pem verifies with openssl, also with CRL checks on the whole chain', (name) => {
    expect(verify(pki.file(`${name}.pem`))).toMatchObject({ ok: true });
    expect(verify(pki.file(`${name}.pem`), ['-crl_check_all', '-CRLfile', pki.file('crl.pem')])).toMatchObject({ ok: true });
  });

  it('revoked.pem chains but fails with -crl_check', () => {
    expect(verify(pki.file('revoked.pem')).ok).toBe(true);
    const r = verify(pki.file('revoked.pem'), ['-crl_check', '-CRLfile', pki.file('crl.pem')]);
    expect(r.ok).toBe(false);
    expect(r.out).toContain('certificate revoked');
  });

  it('expired.pem fails as expired, foreign.pem as untrusted', () => {
    const expired = verify(pki.file('expired.pem'));
    expect(expired.ok).toBe(false);
    expect(expired.out).toContain('certificate has expired');
    const foreign = verify(pki.file('foreign.pem'));
    expect(foreign.ok).toBe(false);
    expect(foreign.out).toContain('unable to get local issuer certificate');
    // …but it is a well-formed certificate of its own root.
    expect(spawnSync('openssl', ['verify', '-CAfile', pki.file('foreign-ca.pem'), pki.file('foreign.pem')]).status).toBe(0);
  });

  it('CAs: root CA:TRUE, intermediate pathlen 0, both keyCertSign/cRLSign critical; chain.pem = intermediate + root', () => {
    const root = text(pki.file('ca.pem'));
    expect(root).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(root).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    expect(text(pki.file('intermediate.pem'))).toMatch(/Basic Constraints: critical\s+CA:TRUE, pathlen:0/);
    expect(pki.read('chain.pem')).toBe(pki.read('intermediate.pem') + pki.read('ca.pem'));
    const crl = execFileSync('openssl', ['crl', '-in', pki.file('crl.pem'), '-noout', '-nextupdate'], { encoding: 'utf8' });
    expect(new Date(crl.replace('nextUpdate=', '').trim()).getTime()).toBeGreaterThan(Date.now());
  });

  it('server and peer certificates: CN = the domain, SAN with localhost and loopback IPs, serverAuth + clientAuth', () => {
    expect(subject(pki.file('server.pem'))).toMatch(/^subject=CN=mssante\.localhost,OU=\d+,O=Opérateur MSSanté de développement,C=FR$/);
    const server = text(pki.file('server.pem'));
    expect(server).toContain('DNS:mssante.localhost, DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(server).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(subject(pki.file('peer-operator.pem'))).toContain('CN=peer.mssante.localhost');
  });

  it('personal certificate: CN = 8 + RPPS, title, SN, GN, like a CPS; clientAuth + emailProtection', () => {
    expect(subject(pki.file('personal.pem'))).toBe(`subject=CN=8${DEV_RPPS},GN=JEANNE,SN=MARTIN,title=Médecin,C=FR`);
    const t = text(pki.file('personal.pem'));
    expect(t).toContain('TLS Web Client Authentication, E-mail Protection');
    expect(t).toContain('email:jeanne.martin@mssante.localhost');
  });

  it('application certificate: structure id in OU; clientAuth only', () => {
    expect(subject(pki.file('application.pem'))).toMatch(/^subject=CN=labo-resultats,OU=3\d{14},O=.+,C=FR$/);
    expect(text(pki.file('application.pem'))).toMatch(/Extended Key Usage:\s+TLS Web Client Authentication\n/);
  });

  it('TSA certificate: critical extendedKeyUsage timeStamping only, digitalSignature + nonRepudiation', () => {
    const t = text(pki.file('tsa.pem'));
    expect(t).toMatch(/Extended Key Usage: critical\s+Time Stamping\n/);
    expect(t).toMatch(/Key Usage: critical\s+Digital Signature, Non Repudiation/);
  });

  it('private keys are 0600, certificates readable', () => {
    for (const name of ['ca.key', 'intermediate.key', 'server.key', 'tsa.key', 'foreign-ca.key']) expect(statSync(pki.file(name)).mode & 0o777).toBe(0o600);
    expect(statSync(pki.file('server.pem')).mode & 0o777).toBe(0o644);
  });
});

describe('initDevPki on an existing directory', () => {
  it('keeps what exists, remakes what is missing, and re-issues the leaves when the intermediate is new', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-pki-rerun-'));
    try {
      const first = await initDevPki({ dir, domain: 'rerun.localhost', keyBits: 2048 });
      expect(first.created).toContain('ca.pem');
      expect(first.created).toHaveLength(24);
      const server = readFileSync(join(dir, 'server.pem'), 'utf8');
      expect((await initDevPki({ dir, domain: 'rerun.localhost', keyBits: 2048 })).created).toEqual([]);
      expect(readFileSync(join(dir, 'server.pem'), 'utf8')).toBe(server);

      rmSync(join(dir, 'personal.key'));
      expect((await initDevPki({ dir, domain: 'rerun.localhost', keyBits: 2048 })).created).toEqual(['personal.pem', 'personal.key']);

      rmSync(join(dir, 'intermediate.pem'));
      const again = await initDevPki({ dir, domain: 'rerun.localhost', keyBits: 2048 });
      expect(again.created).toEqual(expect.arrayContaining(['intermediate.pem', 'server.pem', 'revoked.pem', 'crl.pem', 'chain.pem']));
      expect(again.created).not.toContain('ca.pem');
      const ok = spawnSync('openssl', ['verify', '-crl_check', '-CRLfile', join(dir, 'crl.pem'), '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'intermediate.pem'), join(dir, 'server.pem')]);
      expect(ok.status).toBe(0);
      const revoked = spawnSync('openssl', ['verify', '-crl_check', '-CRLfile', join(dir, 'crl.pem'), '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'intermediate.pem'), join(dir, 'revoked.pem')]);
      expect(revoked.status).not.toBe(0);

      const forced = await initDevPki({ dir, domain: 'rerun.localhost', keyBits: 2048, force: true });
      expect(forced.created).toHaveLength(24);
      expect(readFileSync(join(dir, 'server.pem'), 'utf8')).not.toBe(server);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('issueCertificate and revokeDevCertificate', () => {
  it('mints an extra personal certificate that verifies, then revokes it in the dev CRL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-pki-issue-'));
    try {
      await initDevPki({ dir, domain: 'issue.localhost', keyBits: 2048 });
      const issued = await issueCertificate(devIssuer(dir), { type: 'personal', rpps: '10101201234', surname: 'LECLERC', givenName: 'SOPHIE', profession: 'Sage-Femme' }, { keyBits: 2048 });
      const file = join(dir, 'sophie.pem');
      writeFileSync(file, issued.certPem);
      const check = () => spawnSync('openssl', ['verify', '-crl_check', '-CRLfile', join(dir, 'crl.pem'), '-CAfile', join(dir, 'ca.pem'), '-untrusted', join(dir, 'intermediate.pem'), file], { encoding: 'utf8' });
      expect(check().status).toBe(0);
      expect(execFileSync('openssl', ['x509', '-in', file, '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb'], { encoding: 'utf8' })).toContain('CN=810101201234');
      await revokeDevCertificate(dir, issued.certPem);
      expect(check().stdout + check().stderr).toContain('certificate revoked');
      // The fixture stays revoked too, and a later start keeps both entries.
      await initDevPki({ dir, domain: 'issue.localhost', keyBits: 2048 });
      const crl = execFileSync('openssl', ['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text'], { encoding: 'utf8' });
      expect(crl.match(/Serial Number:/g)).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an RPPS or structure id of the wrong shape', async () => {
    const issuer = devIssuer(pki.dir);
    await expect(issueCertificate(issuer, { type: 'personal', rpps: '123', surname: 'X', givenName: 'Y' }, { keyBits: 2048 })).rejects.toThrow(/not an RPPS number/);
    await expect(issueCertificate(issuer, { type: 'application', name: 'x', organisation: 'O', organisationId: 'abc' }, { keyBits: 2048 })).rejects.toThrow(/not a structure id/);
  });
});
