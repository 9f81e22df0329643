import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBal, registerAppCertificate, type BalContext } from '../../annuaire/bal/index.js';
import { loadTrustStore } from '../../certs/client-cert.js';
import { devIssuer, DEV_STRUCTURE_ID, issueCertificate, revokeDevCertificate } from '../../certs/pki.js';
import type { Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';

// Registering an application certificate on an APP box checks what its TLS logins will face
// (chain to a root of the trust bundle, validity, CRL, usage) and that it names the box's
// structure; a certificate bound elsewhere needs an explicit flag. Each refusal has its own
// code and sentence and is journalled.
const DOMAIN = 'mssante.localhost';
const OTHER_STRUCTURE = '312345678901234';
const DAY = 86_400_000;
const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256.replace(/:/g, '').toLowerCase();

describe.each(dbTargets())('application certificate registration on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let journal: Journal;
  let ctx: BalContext;
  let pki: TestPki;
  let work: string;
  const box = (local: string) => `${local}@${DOMAIN}`;
  const app = (o: { organisationId?: string; notBefore?: Date; notAfter?: Date } = {}) =>
    issueCertificate(devIssuer(pki.dir), { type: 'application', name: 'logiciel-labo', organisation: 'Laboratoire', organisationId: o.organisationId ?? DEV_STRUCTURE_ID }, { keyBits: 2048, validityDays: 30, ...o });
  const register = (local: string, pem: string, opts: { allowShared?: boolean } = {}) => registerAppCertificate(ctx, box(local), pem, 'admin:test', opts);
  /** The refusal, as the catalogue words it: [code, sentence]. */
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => ['accepted', ''],
      (e: { code: string; message: string }) => [e.code, e.message],
    );

  beforeAll(async () => {
    ({ db, dispose } = await target.open());
    journal = new Journal(db);
    pki = await testPki();
    work = mkdtempSync(join(tmpdir(), 'mss-appcert-'));
    // Read at each registration, like the platform: a CRL refreshed on disk counts at once.
    ctx = { db, journal, domains: [DOMAIN], trust: () => loadTrustStore({ caFile: pki.paths.chain, crlFile: pki.paths.crl }) };
    for (const local of ['labo', 'labo-bis', 'labo-ter', 'refus']) await createBal(ctx, { address: box(local), type: 'APP', owner: DEV_STRUCTURE_ID }, 'test');
    await createBal(ctx, { address: box('autre-labo'), type: 'APP', owner: OTHER_STRUCTURE }, 'test');
  });
  afterAll(async () => dispose?.());

  it('accepts a valid application certificate sent alone: its chain is completed from the trust bundle', async () => {
    const b = await register('labo', pki.read('application.pem'));
    expect(b.certificates).toHaveLength(1);
    const ev = (await journal.list({ subject: box('labo'), type: 'bal.cert.registered' }))[0];
    expect(ev.details).toMatchObject({ fingerprint: b.certificates[0].fingerprint, chain: [expect.stringContaining('ELEMENTAIRE'), expect.stringContaining('RACINE')] });
    expect(ev.details).not.toHaveProperty('sharedWith');
  });

  it('with a trust bundle holding the root only, needs the intermediate in the upload', async () => {
    const rootOnly: BalContext = { ...ctx, trust: () => loadTrustStore({ caFile: pki.paths.ca, crlFile: pki.paths.crl }) };
    const fresh = await app();
    const [code, text] = await refusal(registerAppCertificate(rootOnly, box('labo-ter'), fresh.certPem, 'admin:test'));
    expect(code).toBe('CERT_UNTRUSTED');
    expect(text).toMatch(/^the certificate C=FR, O=Laboratoire, .*CN=logiciel-labo is not issued by a certification authority of the MSSanté trust space: no chain leads from its issuer \(.*ELEMENTAIRE\) to a root of the trust bundle$/);
    const b = await registerAppCertificate(rootOnly, box('labo-ter'), fresh.certPem + pki.read('intermediate.pem'), 'admin:test');
    expect(b.certificates).toHaveLength(1);
  });

  it('refuses a certificate of a root outside the trust space, even with its own chain', async () => {
    const foreign = await issueCertificate({ certPem: pki.read('foreign-ca.pem'), keyPem: pki.read('foreign-ca.key') }, { type: 'application', name: 'intrus', organisation: 'Hors espace', organisationId: DEV_STRUCTURE_ID }, { keyBits: 2048 });
    const [code, text] = await refusal(register('refus', foreign.certPem + pki.read('foreign-ca.pem')));
    expect(code).toBe('CERT_UNTRUSTED');
    expect(text).toMatch(/CN=intrus is not issued by a certification authority of the MSSanté trust space: no chain leads from its issuer \(.*ETRANGERE.*\)/);
  });

  it('refuses a revoked certificate, sent alone or with its chain', async () => {
    const revoked = await app();
    await revokeDevCertificate(pki.dir, revoked.certPem, 30);
    for (const pem of [revoked.certPem, revoked.certPem + pki.read('intermediate.pem')]) {
      const [code, text] = await refusal(register('refus', pem));
      expect(code).toBe('CERT_REVOKED');
      expect(text).toMatch(/^the certificate .*CN=logiciel-labo is revoked \(since \d{4}-\d\d-\d\dT.*Z, by the CRL of its authority\)$/);
    }
  });

  it('refuses an expired certificate and one not valid yet, each with its date', async () => {
    const expired = await app({ notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    const early = await app({ notBefore: new Date(Date.now() + DAY), notAfter: new Date(Date.now() + 30 * DAY) });
    expect(await refusal(register('refus', expired.certPem))).toEqual(['CERT_EXPIRED', expect.stringMatching(/^the certificate .*CN=logiciel-labo expired on \d{4}-/)]);
    expect(await refusal(register('refus', early.certPem))).toEqual(['CERT_NOT_YET_VALID', expect.stringMatching(/^the certificate .*CN=logiciel-labo is not valid before \d{4}-.*: register it once it is$/)]);
  });

  it("refuses certificates that cannot authenticate an application: a CA, a TSA, a server's (an operator's MX), a key without digitalSignature", async () => {
    expect(await refusal(register('refus', pki.read('intermediate.pem')))).toEqual(['CERT_WRONG_USAGE', expect.stringContaining('it is a certification authority (basicConstraints CA:TRUE)')]);
    // serverAuth + clientAuth, same organisation id: the operator's own MX certificate and a peer's.
    for (const server of ['server.pem', 'peer-operator.pem']) {
      expect(await refusal(register('refus', pki.read(server)))).toEqual(['CERT_WRONG_USAGE', expect.stringContaining('its extendedKeyUsage includes TLS server authentication (serverAuth): it is the certificate of a server')]);
    }
    expect(await refusal(register('refus', pki.read('tsa.pem')))).toEqual(['CERT_WRONG_USAGE', expect.stringContaining('its extendedKeyUsage (timeStamping) does not include TLS client authentication (clientAuth)')]);
    // Signed by the dev intermediate with openssl: keyUsage keyEncipherment only.
    const ext = join(work, 'ku.ext');
    writeFileSync(ext, 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=clientAuth\n');
    execFileSync('openssl', ['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(work, 'ku.key'), '-subj', `/C=FR/O=Laboratoire/OU=${DEV_STRUCTURE_ID}/CN=sans-signature`, '-out', join(work, 'ku.csr')], { stdio: 'ignore' });
    execFileSync('openssl', ['x509', '-req', '-in', join(work, 'ku.csr'), '-CA', pki.paths.intermediate, '-CAkey', pki.paths.intermediateKey, '-CAcreateserial', '-days', '30', '-extfile', ext, '-out', join(work, 'ku.pem')], { stdio: 'ignore' });
    expect(await refusal(register('refus', readFileSync(join(work, 'ku.pem'), 'utf8')))).toEqual(['CERT_WRONG_USAGE', expect.stringContaining('its keyUsage lacks digitalSignature')]);
  });

  it("refuses a certificate of another organisation, or of none, naming both sides", async () => {
    const other = await app({ organisationId: OTHER_STRUCTURE });
    expect(await refusal(register('refus', other.certPem))).toEqual([
      'CERT_WRONG_ORGANISATION',
      `the certificate C=FR, O=Laboratoire, OU=${OTHER_STRUCTURE}, CN=logiciel-labo is issued to organisation ${OTHER_STRUCTURE}, not to ${DEV_STRUCTURE_ID}, the structure of ${box('refus')}`,
    ]);
    expect(await refusal(register('refus', pki.read('personal.pem')))).toEqual(['CERT_WRONG_ORGANISATION', expect.stringContaining('is issued to organisation none (no OU), not to')]);
    expect(await refusal(register('refus', 'pas un certificat'))).toEqual(['CERT_UNUSABLE', 'the application certificate cannot be registered: no PEM certificate block (-----BEGIN CERTIFICATE-----) in the upload']);
  });

  it('binds a certificate already bound elsewhere only with allowShared, and journals the sharing', async () => {
    const pem = pki.read('application.pem');
    const fp = fingerprint(pem);
    expect(await refusal(register('labo-bis', pem))).toEqual(['CERT_BOUND_ELSEWHERE', `the certificate ${fp} is already bound to ${box('labo')}; to bind it to ${box('labo-bis')} as well, register it again with allowShared (CLI: --allow-shared): the sharing is journalled`]);
    const b = await register('labo-bis', pem, { allowShared: true });
    expect(b.certificates.map((c) => c.fingerprint)).toEqual([fp]);
    const ev = (await journal.list({ subject: box('labo-bis'), type: 'bal.cert.registered' }))[0];
    expect(ev.details).toMatchObject({ fingerprint: fp, sharedWith: [{ address: box('labo'), structure: DEV_STRUCTURE_ID }] });
  });

  it('a certificate bound to a box of another organisation: refused naming that box, and the flag does not lift the organisation rule', async () => {
    // A binding made before these checks existed (or by hand): the certificate of one
    // organisation sits on the other's box.
    const legacy = await app({ organisationId: OTHER_STRUCTURE });
    const { rows } = await db.query<{ id: number }>('SELECT id FROM bal_mailboxes WHERE address = $1', [box('autre-labo')]);
    const bindByHand = (pem: string) =>
      db.query("INSERT INTO bal_app_certificates (bal_id, fingerprint, subject, serial, issuer, not_before, not_after, pem, registered_by) VALUES ($1, $2, 'x', 'x', 'x', now(), now(), $3, 'legacy')", [rows[0].id, fingerprint(pem), pem]);
    await bindByHand(legacy.certPem);
    const mine = await app();
    const mineFp = fingerprint(mine.certPem);
    await bindByHand(mine.certPem);
    expect(await refusal(register('labo-ter', mine.certPem))).toEqual(['CERT_BOUND_ELSEWHERE', expect.stringContaining(`is already bound to ${box('autre-labo')} (structure ${OTHER_STRUCTURE}, another organisation)`)]);
    // Allowed to share, it still names the box's own organisation: accepted here…
    expect((await register('labo-ter', mine.certPem, { allowShared: true })).certificates.map((c) => c.fingerprint)).toContain(mineFp);
    // …while the other organisation's certificate stays refused on this box, flag or not.
    expect((await refusal(register('labo-ter', legacy.certPem, { allowShared: true })))[0]).toBe('CERT_WRONG_ORGANISATION');
  });

  it('journals every refusal with its code', async () => {
    const refused = await journal.list({ subject: box('refus'), type: 'bal.cert.refused' });
    expect(new Set(refused.map((e) => e.details.code))).toEqual(new Set(['CERT_UNTRUSTED', 'CERT_REVOKED', 'CERT_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_WRONG_USAGE', 'CERT_WRONG_ORGANISATION', 'CERT_UNUSABLE']));
    expect(refused.every((e) => e.actor === 'admin:test' && typeof e.details.reason === 'string')).toBe(true);
    expect((await journal.list({ subject: box('labo-bis'), type: 'bal.cert.refused' })).map((e) => e.details.code)).toEqual(['CERT_BOUND_ELSEWHERE']);
  });

  it('refuses everything when no trust bundle is configured', async () => {
    const blind: BalContext = { db, journal, domains: [DOMAIN] };
    expect(await refusal(registerAppCertificate(blind, box('refus'), pki.read('application.pem'), 'admin:test'))).toEqual(['CERT_UNUSABLE', 'the application certificate cannot be registered: no trust bundle is configured to check it against (tls.caFile, tls.crlFile)']);
  });
});
