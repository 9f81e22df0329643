import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateSerial, signCrl } from '../../certs/crl.js';
import { createAuthority, issueCertificate } from '../../certs/issue.js';
import { clientTlsOptions, loadTlsMaterial, MSSANTE_TLS12_CIPHERS, peerIdentity, serverTlsOptions, type TlsMaterial } from '../../certs/tls.js';
import { negotiated, sClient as sClientAt } from '../helpers/openssl.js';
import { testPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let server: TlsMaterial;
let work: string;
const servers: tls.Server[] = [];

const files = (leaf: string) => ({ certFile: pki.file(`${leaf}.pem`), keyFile: pki.file(`${leaf}.key`), chainFile: pki.file('intermediate.pem'), caFile: pki.file('ca.pem'), crlFile: pki.file('crl.pem') });

beforeAll(async () => {
  pki = await testPki();
  work = mkdtempSync(join(tmpdir(), 'mss-tls-'));
  server = loadTlsMaterial({ tls: files('server') });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** A real TLS listener on 127.0.0.1:0 that greets and closes. */
async function listen(options: tls.TlsOptions, onSecure?: (s: tls.TLSSocket) => void) {
  const s = tls.createServer(options, (sock) => {
    onSecure?.(sock);
    sock.end('220 ok\n');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  servers.push(s);
  return { port: (s.address() as AddressInfo).port };
}

/** openssl s_client (tests/helpers/openssl.ts) against a server of this process, trusting the test PKI. */
const sClient = (port: number, args: string[]) => sClientAt({ port }, args, pki.file('ca.pem'));

describe('serverTlsOptions against openssl s_client', () => {
  // A control server that accepts old protocols and static RSA: proves the client side of
  // each refusal below really offers what we refuse.
  let permissive: number;
  let strict: number;
  beforeAll(async () => {
    permissive = (await listen({ key: server.keyPem, cert: server.certChainPem, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' })).port;
    strict = (await listen(serverTlsOptions(server))).port;
  });

  it('refuses TLS 1.1', async () => {
    const args = ['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0'];
    expect(negotiated((await sClient(permissive, args)).out)?.[0]).toBe('TLSv1.1');
    const r = await sClient(strict, args);
    expect(negotiated(r.out)).toBeNull();
    expect(r.out).toMatch(/alert protocol version/);
  });

  it.each(MSSANTE_TLS12_CIPHERS)('accepts TLS 1.2 with %s, sending the chain', async (cipher) => {
    const r = await sClient(strict, ['-tls1_2', '-cipher', cipher]);
    expect(negotiated(r.out)).toEqual(['TLSv1.2', cipher]);
    expect(r.out).toContain('Verify return code: 0 (ok)');
  });

  it('refuses static-RSA key exchange (AES256-GCM-SHA384)', async () => {
    const args = ['-tls1_2', '-cipher', 'AES256-GCM-SHA384'];
    expect(negotiated((await sClient(permissive, args)).out)).toEqual(['TLSv1.2', 'AES256-GCM-SHA384']);
    const r = await sClient(strict, args);
    expect(negotiated(r.out)).toBeNull();
    expect(r.out).toMatch(/handshake failure/);
  });

  it('offers TLS 1.3', async () => {
    expect(negotiated((await sClient(strict, ['-tls1_3'])).out)?.[0]).toBe('TLSv1.3');
  });
});

describe('mutual TLS between operators', () => {
  let strict: number;
  let lenient: number;
  /** What the lenient server saw: Node's verdict and peerIdentity's, per connection. */
  const seen: Array<{ authorized: boolean; error?: string; id: ReturnType<typeof peerIdentity> }> = [];
  const record = (s: tls.TLSSocket) => seen.push({ authorized: s.authorized, error: s.authorizationError?.toString(), id: peerIdentity(s.getPeerCertificate(true), server) });
  beforeAll(async () => {
    strict = (await listen(serverTlsOptions(server, { requestCert: true }))).port;
    // rejectUnauthorized: false is what an SMTP front uses to answer a refusal in SMTP;
    // the verdict is then in socket.authorized / authorizationError.
    lenient = (await listen(serverTlsOptions(server, { requestCert: true, rejectUnauthorized: false }), record)).port;
  });

  /** Connect; resolve 'ok' once the server's greeting arrives, else the error or 'closed'. */
  const connect = (port: number, options: tls.ConnectionOptions) =>
    new Promise<string>((resolve) => {
      const s = tls.connect({ ...options, host: '127.0.0.1', port, servername: 'mssante.localhost' });
      s.once('data', () => {
        s.end();
        resolve('ok');
      });
      s.on('error', (e) => resolve(e.message));
      s.on('end', () => resolve('closed'));
    });
  const peer = () => loadTlsMaterial({ tls: files('peer-operator') });
  const as = (leaf: string, chain = pki.read('intermediate.pem')) => ({ ...clientTlsOptions(peer()), key: pki.read(`${leaf}.key`), cert: pki.read(`${leaf}.pem`) + chain });

  it('accepts the peer operator, whose identity the front can read', async () => {
    expect(await connect(strict, clientTlsOptions(peer()))).toBe('ok');
    expect(await connect(lenient, clientTlsOptions(peer()))).toBe('ok');
    const { authorized, id } = seen.at(-1)!;
    expect(authorized).toBe(true);
    expect(id.domains).toEqual(['peer.mssante.localhost', 'localhost']);
    expect(id).toMatchObject({ revocation: 'good', subject: { CN: 'peer.mssante.localhost', C: 'FR' }, structureId: expect.stringMatching(/^3\d{14}$/) });
  });

  it.each([
    ['revoked', 'CERT_REVOKED'],
    ['expired', 'CERT_HAS_EXPIRED'],
    ['foreign', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  ])('refuses the %s client certificate (%s): the strict server in the handshake, the lenient one says why', async (leaf, code) => {
    const options = as(leaf, leaf === 'foreign' ? '' : undefined);
    expect(await connect(strict, options)).not.toBe('ok');
    expect(await connect(lenient, options)).toBe('ok');
    expect(seen.at(-1)).toMatchObject({ authorized: false, error: code });
    if (leaf === 'revoked') expect(seen.at(-1)!.id.revocation).toBe('revoked');
  });

  it('needs a CRL from every CA of the chain (why crl.pem also holds the root\'s CRL)', async () => {
    const onlyIntermediate = { ...server, crlPems: server.crlPems.slice(0, 1) };
    const seenHere: Array<string | undefined> = [];
    const { port } = await listen(serverTlsOptions(onlyIntermediate, { requestCert: true, rejectUnauthorized: false }), (s) => seenHere.push(s.authorizationError?.toString()));
    expect(server.crlPems).toHaveLength(2);
    expect(await connect(port, clientTlsOptions(peer()))).toBe('ok');
    expect(seenHere).toEqual(['UNABLE_TO_GET_CRL']);
  });

  it('refuses a client without a certificate', async () => {
    expect(await connect(strict, clientTlsOptions(peer(), { presentCertificate: false }))).not.toBe('ok');
  });

  it('clientTlsOptions refuses a server whose name does not match', async () => {
    const r = await new Promise<string>((resolve) => {
      const s = tls.connect({ ...clientTlsOptions(peer()), host: '127.0.0.1', port: strict, servername: 'other.example' }, () => resolve('ok'));
      s.on('error', (e) => resolve(e.message));
    });
    expect(r).toMatch(/does not match certificate's altnames/);
  });
});

describe('trust bundle: peers that send their leaf alone, intermediates never anchors', () => {
  /** What a server saw of each connection: Node's verdict, and peerIdentity's revocation. */
  type Seen = { authorized: boolean; error?: string; revocation?: string };
  const lenient = async (m: TlsMaterial) => {
    const seen: Seen[] = [];
    const { port } = await listen(serverTlsOptions(m, { requestCert: true, rejectUnauthorized: false }), (s) =>
      seen.push({ authorized: s.authorized, error: s.authorizationError?.toString(), revocation: peerIdentity(s.getPeerCertificate(true), m).revocation }),
    );
    return { port, seen };
  };
  /** A TLS client presenting `cert` (PEM, leaf only unless a chain is appended); resolves with what the server saw. */
  const present = (t: { port: number; seen: Seen[] }, cert: string, key: string) =>
    new Promise<Seen>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port: t.port, ca: pki.read('ca.pem'), servername: 'mssante.localhost', cert, key, minVersion: 'TLSv1.2' });
      s.once('data', () => {
        s.end();
        resolve(t.seen.at(-1)!);
      });
      s.on('error', reject);
    });
  const bundle = () => loadTlsMaterial({ tls: { ...files('server'), caFile: pki.file('chain.pem') } });

  it('refuses a leaf-only peer when the store holds the root only (the defect), accepts it with the trust bundle', async () => {
    const rootOnly = await lenient(server);
    expect(await present(rootOnly, pki.read('peer-operator.pem'), pki.read('peer-operator.key'))).toMatchObject({ authorized: false, error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const withBundle = await lenient(bundle());
    expect(bundle().intermediates.map((x) => x.subject)).toEqual([expect.stringContaining('ELEMENTAIRE')]);
    expect(await present(withBundle, pki.read('peer-operator.pem'), pki.read('peer-operator.key'))).toEqual({ authorized: true, error: undefined, revocation: 'good' });
    expect(await present(withBundle, pki.read('peer-operator.pem') + pki.read('intermediate.pem'), pki.read('peer-operator.key'))).toMatchObject({ authorized: true, revocation: 'good' });
  });

  it('still refuses a revoked leaf sent alone (CRL checked on the chain built from the bundle)', async () => {
    const t = await lenient(bundle());
    expect(await present(t, pki.read('revoked.pem'), pki.read('revoked.key'))).toEqual({ authorized: false, error: 'CERT_REVOKED', revocation: 'revoked' });
  });

  it('an intermediate without its root is no trust anchor: OpenSSL and loadTlsMaterial both refuse to end a chain there', async () => {
    // The store given to OpenSSL directly, bypassing our loader: partial chains stay off.
    const t = await lenient({ ...bundle(), caPem: pki.read('intermediate.pem') });
    expect((await present(t, pki.read('peer-operator.pem'), pki.read('peer-operator.key'))).authorized).toBe(false);
    expect((await present(t, pki.read('peer-operator.pem') + pki.read('intermediate.pem'), pki.read('peer-operator.key'))).authorized).toBe(false);
    expect(() => loadTlsMaterial({ tls: { ...files('server'), caFile: pki.file('intermediate.pem') } })).toThrow(/trust bundle \(tls\.caFile\) .*intermediate\.pem is not a usable certificate: it holds no root \(self-signed\) certification authority/);
    // An intermediate next to a root that did not sign it completes nothing.
    const mixed = join(work, 'mixed.pem');
    writeFileSync(mixed, pki.read('foreign-ca.pem') + pki.read('intermediate.pem'));
    const m = loadTlsMaterial({ tls: { ...files('server'), caFile: mixed } });
    expect(m.warnings.join('\n')).toMatch(/the intermediate authority .*ELEMENTAIRE in .*mixed\.pem does not chain to a root of that file/);
    expect(peerIdentity(pki.read('peer-operator.pem'), m).revocation).toBe('good'); // names only: the handshake decides trust
    const t2 = await lenient(m);
    expect((await present(t2, pki.read('peer-operator.pem'), pki.read('peer-operator.key'))).authorized).toBe(false);
  });

  it('a revoked intermediate revokes the leaves under it, even when they are sent alone', async () => {
    // A second intermediate under the dev root, revoked by the root's CRL.
    const root = { certPem: pki.read('ca.pem'), keyPem: pki.read('ca.key') };
    const now = Date.now();
    const inter2 = await createAuthority({ commonName: 'AC DEV REVOQUEE', organisation: 'Dev', issuer: root, pathLen: 0, keyBits: 2048, notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 30 * 86_400_000) });
    const leaf = await issueCertificate(inter2, { type: 'server', domain: 'sous-ac.mssante.localhost', organisation: 'Test' }, { keyBits: 2048, validityDays: 10 });
    const nextUpdate = new Date(now + 10 * 86_400_000);
    const crls = join(work, 'crls-inter2.pem');
    writeFileSync(crls, pki.read('crl.pem').split(/(?=-----BEGIN X509 CRL-----)/)[0] + (await signCrl(root, [{ serial: certificateSerial(inter2.certPem), date: new Date(now - 1000) }], { nextUpdate })) + (await signCrl(inter2, [], { nextUpdate })));
    const ca = join(work, 'bundle-inter2.pem');
    writeFileSync(ca, pki.read('ca.pem') + pki.read('intermediate.pem') + inter2.certPem);
    const m = loadTlsMaterial({ tls: { ...files('server'), caFile: ca, crlFile: crls } });
    const t = await lenient(m);
    expect(await present(t, leaf.certPem, leaf.keyPem)).toEqual({ authorized: false, error: 'CERT_REVOKED', revocation: 'revoked' });
    // The peer operator under the good intermediate still passes with the same material.
    expect(await present(t, pki.read('peer-operator.pem'), pki.read('peer-operator.key'))).toMatchObject({ authorized: true, revocation: 'good' });
  });
});

describe('peerIdentity', () => {
  it('reads the RPPS of a personal certificate and the structure of an application', () => {
    expect(peerIdentity(pki.read('personal.pem'), server)).toMatchObject({ nationalId: '899999999901', rpps: '99999999901', emails: ['jeanne.martin@mssante.localhost'], domains: [], subject: { title: 'Médecin', SN: 'MARTIN', GN: 'JEANNE' } });
    expect(peerIdentity(pki.read('application.pem'), server)).toMatchObject({ structureId: '399999999900001', subject: { CN: 'labo-resultats' }, emails: ['labo-resultats@mssante.localhost'] });
  });

  it('says revoked for the revoked fixture, unknown when no CRL of its issuer is loaded', () => {
    expect(peerIdentity(pki.read('revoked.pem'), server)).toMatchObject({ revocation: 'revoked', revokedAt: expect.any(Date) });
    expect(peerIdentity(pki.read('server.pem'), server).revocation).toBe('good');
    expect(peerIdentity(pki.read('foreign.pem'), server).revocation).toBe('unknown');
  });
});

describe('loadTlsMaterial errors', () => {
  const load = (over: Partial<ReturnType<typeof files>>) => () => loadTlsMaterial({ tls: { ...files('server'), ...over } });

  it('names a missing file', () => {
    const missing = join(work, 'nope.pem');
    expect(load({ certFile: missing })).toThrow(`cannot read TLS certificate (tls.certFile) ${missing}: no such file`);
    expect(load({ crlFile: missing })).toThrow(`cannot read certificate revocation list (tls.crlFile) ${missing}: no such file`);
  });

  it('refuses garbage, a key of another certificate, an expired certificate, a forged CRL', () => {
    const garbage = join(work, 'garbage.pem');
    writeFileSync(garbage, 'hello\n');
    expect(load({ certFile: garbage })).toThrow(/TLS certificate \(tls\.certFile\) .*garbage\.pem is not a usable certificate: no PEM "CERTIFICATE" block found/);
    expect(load({ certFile: pki.file('server.key') })).toThrow(/holds PRIVATE KEY instead of CERTIFICATE/);
    expect(load({ keyFile: pki.file('peer-operator.key') })).toThrow(/does not belong to the certificate/);
    expect(() => loadTlsMaterial({ tls: files('expired') })).toThrow(/expired on .*; peers and clients will refuse it/);

    // Same CRL, one bit of its signature flipped.
    const crl = pki.read('crl.pem');
    const blocks = crl.split(/(?=-----BEGIN X509 CRL-----)/);
    const der = Buffer.from(blocks[0].replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 1] ^= 1;
    const forged = join(work, 'forged-crl.pem');
    writeFileSync(forged, `-----BEGIN X509 CRL-----\n${der.toString('base64')}\n-----END X509 CRL-----\n${blocks[1]}`);
    expect(load({ crlFile: forged })).toThrow(/CRL #1 does not carry a valid signature of its issuer/);
  });

  it('warns, without failing, about a CRL from an unknown CA and a certificate outside caFile', () => {
    const m = loadTlsMaterial({ tls: { ...files('server'), caFile: pki.file('foreign-ca.pem') } });
    expect(m.warnings.join('\n')).toMatch(/the chain sent with it do not lead to a root of .*foreign-ca\.pem/);
    expect(m.warnings.join('\n')).toMatch(/CRL #2 .* is issued by a CA that is neither in/);
  });
});
