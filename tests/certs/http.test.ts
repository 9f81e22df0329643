import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsaRoutes } from '../../certs/http.js';
import { createTsa } from '../../certs/tsa.js';
import { testPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let app: FastifyInstance;
let url: string;
let work: string;

beforeAll(async () => {
  pki = await testPki();
  work = mkdtempSync(join(tmpdir(), 'mss-tsa-http-'));
  const tsa = await createTsa({ certPem: pki.read('tsa.pem'), keyPem: pki.read('tsa.key'), chainPems: [pki.read('intermediate.pem')], policyOid: '1.2.250.1.999.1.1' });
  app = Fastify();
  // A JSON route next to the plugin: the plugin's raw-body parser must not leak out of it.
  app.post('/json', async (req) => ({ got: req.body }));
  await app.register(tsaRoutes, { tsa });
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
});

// Asynchronous: the listener lives in this process, a synchronous child would block it.
const curl = (args: string[]) => promisify(execFile)('curl', ['-s', '-S', '--max-time', '20', ...args], { encoding: 'utf8' });

describe('POST /tsa over a real listener', () => {
  it('serves openssl ts -query → curl → openssl ts -verify', async () => {
    const f = join(work, 'f.txt');
    writeFileSync(f, 'compte rendu opératoire, version signée\n');
    execFileSync('openssl', ['ts', '-query', '-data', f, '-sha256', '-cert', '-out', join(work, 'q.tsq')], { stdio: 'ignore' });
    await curl(['--data-binary', `@${join(work, 'q.tsq')}`, '-H', 'Content-Type: application/timestamp-query', '-D', join(work, 'headers.txt'), `${url}/tsa`, '-o', join(work, 'r.tsr')]);
    const headers = readFileSync(join(work, 'headers.txt'), 'utf8');
    expect(headers).toMatch(/^HTTP\/1\.1 200/);
    expect(headers).toMatch(/content-type: application\/timestamp-reply/i);
    writeFileSync(join(work, 'tsa-chain.pem'), pki.read('tsa.pem') + pki.read('intermediate.pem'));
    const out = execFileSync('openssl', ['ts', '-verify', '-data', f, '-in', join(work, 'r.tsr'), '-CAfile', pki.file('ca.pem'), '-untrusted', join(work, 'tsa-chain.pem')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).toContain('Verification: OK');
  });

  it('answers a wrong content type with 415 problem+json', async () => {
    const res = await fetch(`${url}/tsa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 415, title: 'UNSUPPORTED_MEDIA_TYPE', detail: 'expected a body of type application/timestamp-query, got application/json' });
    const none = await fetch(`${url}/tsa`, { method: 'POST' });
    expect(none.status).toBe(415);
  });

  it('answers garbage of the right type with a TimeStampResp whose status is rejection', async () => {
    writeFileSync(join(work, 'garbage.bin'), 'definitely not DER');
    const r = await curl(['--data-binary', `@${join(work, 'garbage.bin')}`, '-H', 'Content-Type: application/timestamp-query', `${url}/tsa`, '-o', join(work, 'rej.tsr'), '-w', '%{http_code}']);
    expect(r.stdout).toBe('200');
    const text = execFileSync('openssl', ['ts', '-reply', '-in', join(work, 'rej.tsr'), '-text'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(text).toContain('Status: Rejected.');
    expect(text).toContain('the data submitted has the wrong format');
  });

  it('leaves JSON parsing intact outside the plugin', async () => {
    const res = await fetch(`${url}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(await res.json()).toEqual({ got: { a: 1 } });
  });
});
