import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as pkijs from 'pkijs';
import { beforeAll, describe, expect, it } from 'vitest';
import { toArrayBuffer } from '../../certs/pem.js';
import { createTsa, createUncheckedTsa, loadTsa, verifyTimestampResponse, type Tsa } from '../../certs/tsa.js';
import { testPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let tsa: Tsa;
let work: string;
const POLICY = '1.2.250.1.999.1.1';

beforeAll(async () => {
  pki = await testPki();
  tsa = await createTsa({ certPem: pki.read('tsa.pem'), keyPem: pki.read('tsa.key'), chainPems: [pki.read('intermediate.pem')], policyOid: POLICY });
  work = mkdtempSync(join(tmpdir(), 'mss-tsa-'));
});

const trust = () => ({ caPems: [pki.read('ca.pem')], untrustedPems: [pki.read('intermediate.pem')] });

function opensslVerify(dataFile: string, tsrFile: string) {
  const r = spawnSync('openssl', ['ts', '-verify', '-data', dataFile, '-in', tsrFile, '-CAfile', pki.file('ca.pem'), '-untrusted', pki.file('intermediate.pem')], { encoding: 'utf8' });
  return { ok: r.status === 0, out: r.stdout + r.stderr };
}

/** Status and failure text of a TimeStampResp, as openssl prints them. */
const replyText = (tsr: Buffer) => {
  const f = join(work, `reply-${Math.random()}.tsr`);
  writeFileSync(f, tsr);
  return execFileSync('openssl', ['ts', '-reply', '-in', f, '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
};

describe('built-in TSA', () => {
  it('stamp() gives a token that openssl ts -verify accepts, and refuses over other data', async () => {
    const data = Buffer.from('journal batch 42: Merkle root …');
    writeFileSync(join(work, 'data.bin'), data);
    writeFileSync(join(work, 'other.bin'), 'journal batch 43');
    writeFileSync(join(work, 'token.tsr'), await tsa.stamp(data));
    const good = opensslVerify(join(work, 'data.bin'), join(work, 'token.tsr'));
    expect(good.out).toContain('Verification: OK');
    const other = opensslVerify(join(work, 'other.bin'), join(work, 'token.tsr'));
    expect(other.ok).toBe(false);
    expect(other.out).toContain('message imprint mismatch');
  });

  it('answers an openssl-made request: nonce echoed, policy, accuracy, unique serials', async () => {
    writeFileSync(join(work, 'q-data.bin'), 'some document');
    execFileSync('openssl', ['ts', '-query', '-data', join(work, 'q-data.bin'), '-sha256', '-cert', '-out', join(work, 'q.tsq')], { stdio: 'ignore' });
    const req = execFileSync('openssl', ['ts', '-query', '-in', join(work, 'q.tsq'), '-text'], { encoding: 'utf8' });
    const nonce = /Nonce: (0x[0-9A-F]+)/.exec(req)![1];
    const replies = await Promise.all([1, 2, 3].map(() => tsa.respond(readFileSync(join(work, 'q.tsq')))));
    const texts = replies.map(replyText);
    expect(texts[0]).toContain('Status: Granted.');
    expect(texts[0]).toContain(`Nonce: ${nonce}`);
    expect(texts[0]).toContain(`Policy OID: ${POLICY}`);
    expect(texts[0]).toMatch(/Accuracy: 0x01 seconds/);
    const serials = texts.map((t) => /Serial number: (0x[0-9A-F]+)/.exec(t)![1]);
    expect(new Set(serials).size).toBe(3);
    writeFileSync(join(work, 'q.tsr'), replies[0]);
    expect(opensslVerify(join(work, 'q-data.bin'), join(work, 'q.tsr')).out).toContain('Verification: OK');
  });

  it('rejects bad input with a status, never a throw: garbage, SHA-1, a foreign policy', async () => {
    expect(replyText(await tsa.respond(Buffer.from('not asn.1 at all')))).toMatch(/Status: Rejected\.[\s\S]*wrong format/);
    expect(replyText(await tsa.respond(Buffer.alloc(0)))).toContain('Status: Rejected.');
    writeFileSync(join(work, 'd.bin'), 'x');
    execFileSync('openssl', ['ts', '-query', '-data', join(work, 'd.bin'), '-sha1', '-out', join(work, 'sha1.tsq')], { stdio: 'ignore' });
    expect(replyText(await tsa.respond(readFileSync(join(work, 'sha1.tsq'))))).toMatch(/Status: Rejected\.[\s\S]*unrecognized or unsupported algorithm identifier/i);
    execFileSync('openssl', ['ts', '-query', '-data', join(work, 'd.bin'), '-sha256', '-tspolicy', '1.2.3.4', '-out', join(work, 'pol.tsq')], { stdio: 'ignore' });
    expect(replyText(await tsa.respond(readFileSync(join(work, 'pol.tsq'))))).toMatch(/Status: Rejected\.[\s\S]*the requested TSA policy is not supported/);
  });

  it('refuses to start with a certificate that is not a TSA certificate, or a key that is not its own', async () => {
    await expect(createTsa({ certPem: pki.read('server.pem'), keyPem: pki.read('server.key'), policyOid: POLICY })).rejects.toThrow(/extendedKeyUsage does not include timeStamping/);
    await expect(createTsa({ certPem: pki.read('tsa.pem'), keyPem: pki.read('server.key'), policyOid: POLICY })).rejects.toThrow(/private key does not belong/);
  });

  it('loadTsa names the missing file', async () => {
    const tsaConfig = { certFile: join(work, 'missing.pem'), keyFile: pki.file('tsa.key'), chainFile: '', policyOid: POLICY, url: undefined };
    await expect(loadTsa({ tsa: tsaConfig })).rejects.toThrow(`cannot read TSA certificate (tsa.certFile) ${join(work, 'missing.pem')}: no such file`);
    const loaded = await loadTsa({ tsa: { ...tsaConfig, certFile: pki.file('tsa.pem'), chainFile: pki.file('intermediate.pem') } });
    const data = Buffer.from('loaded');
    await expect(verifyTimestampResponse(await loaded.stamp(data), data, trust())).resolves.toMatchObject({ genTime: expect.any(Date) });
  });
});

describe('verifyTimestampResponse', () => {
  it('accepts a good token and returns its time and serial', async () => {
    const data = Buffer.from('event 1');
    const before = Date.now();
    const r = await verifyTimestampResponse(await tsa.stamp(data), data, trust());
    expect(r.genTime.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(r.serialNumber).toMatch(/^[0-9a-f]{32}$/);
  });

  it('rejects other data, a tampered token, and an untrusted root', async () => {
    const data = Buffer.from('event 2');
    const tsr = await tsa.stamp(data);
    await expect(verifyTimestampResponse(tsr, Buffer.from('event 3'), trust())).rejects.toThrow(/message imprint differs/);

    // The signature value is the last field of the response: flip its last byte.
    const badSig = Buffer.from(tsr);
    badSig[badSig.length - 1] ^= 0x01;
    await expect(verifyTimestampResponse(badSig, data, trust())).rejects.toThrow(/signature is invalid/);

    // Change the TSTInfo's serial number inside the signed content.
    const serial = Buffer.from((await verifyTimestampResponse(tsr, data, trust())).serialNumber, 'hex');
    const at = tsr.indexOf(serial);
    expect(at).toBeGreaterThan(0);
    const badContent = Buffer.from(tsr);
    badContent[at + 5] ^= 0xff;
    await expect(verifyTimestampResponse(badContent, data, trust())).rejects.toThrow(/signature is invalid/);

    await expect(verifyTimestampResponse(tsr, data, { caPems: [pki.read('foreign-ca.pem')] })).rejects.toThrow(/does not chain to a trusted root/);
    await expect(verifyTimestampResponse(Buffer.from('garbage'), data, trust())).rejects.toThrow(/not a DER TimeStampResp/);
  });

  it('rejects a token signed by a certificate without timeStamping, although it chains to the root', async () => {
    const forger = await createUncheckedTsa({ certPem: pki.read('server.pem'), keyPem: pki.read('server.key'), chainPems: [pki.read('intermediate.pem')], policyOid: POLICY });
    const data = Buffer.from('forged');
    const tsr = await forger.stamp(data);
    // Well-formed and correctly signed: only the signer's certificate is wrong.
    const resp = pkijs.TimeStampResp.fromBER(toArrayBuffer(tsr));
    expect(resp.status.status).toBe(0);
    await expect(verifyTimestampResponse(tsr, data, trust())).rejects.toThrow(/not a TSA certificate: its extendedKeyUsage does not include timeStamping/);
    writeFileSync(join(work, 'forged.bin'), data);
    writeFileSync(join(work, 'forged.tsr'), tsr);
    expect(opensslVerify(join(work, 'forged.bin'), join(work, 'forged.tsr')).ok).toBe(false);
  });
});
