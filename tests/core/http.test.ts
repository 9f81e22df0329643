import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsaRoutes } from '../../certs/http.js';
import { createTsa } from '../../certs/tsa.js';
import { HealthProber } from '../../core/health.js';
import { createHttpServer } from '../../core/http.js';
import { silentLogger } from '../../core/logger.js';
import { autoconfigRoutes } from '../../imap-proxy/index.js';
import { testPki } from '../helpers/pki.js';
import { expectProblem, inject, routesOf, sendHostile, type CallSpec, type Route } from '../helpers/routes.js';

// The platform's plain HTTP listener (health, metrics, the TSA, autoconfig) under the same
// generated hostile sweep as the APIs: strict values, problem+json for every refusal, no 500.

let app: FastifyInstance;

const samples: Record<string, CallSpec> = {
  'GET /health': {},
  'GET /metrics': {},
  'POST /tsa': { raw: { type: 'application/timestamp-query', data: Buffer.from('3000', 'hex') } },
  'GET /.well-known/autoconfig/mail/config-v1.1.xml': { query: { emailaddress: 'jeanne.martin@mssante.localhost' } },
  'GET /mail/config-v1.1.xml': { query: { emailaddress: 'jeanne.martin@mssante.localhost' } },
};
const sampleOf = (r: Route) => samples[r.key.replace(/^HEAD /, 'GET ')];

beforeAll(async () => {
  const pki = await testPki();
  const tsa = await createTsa({ certPem: pki.read('tsa.pem'), keyPem: pki.read('tsa.key'), chainPems: [pki.read('intermediate.pem')], policyOid: '1.2.250.1.999.1.1' });
  const prober = new HealthProber([{ name: 'test', check: async () => ({ ok: true }) }], { intervalMs: 60_000, timeoutMs: 60_000, staleMs: 3_600_000 });
  await prober.probeNow();
  app = createHttpServer(silentLogger, prober);
  await app.register(tsaRoutes, { tsa });
  await app.register(autoconfigRoutes, { hostname: 'mssante.localhost', domains: ['mssante.localhost'], displayName: 'Test', imap: { port: 993, starttlsPort: 143 }, smtp: { submissionsPort: 465, submissionPort: 587 } });
  await app.ready();
});
afterAll(async () => app?.close());

describe('the platform HTTP listener', () => {
  it('answers hostile values on every route with a 4xx problem+json, never a 500', async () => {
    const routes = routesOf(app).filter((r) => r.method !== 'HEAD');
    for (const r of routes) expect(sampleOf(r), `no sample call for ${r.key}`).toBeDefined();
    const sent = await sendHostile(app, routes.map((route) => ({ route, valid: async () => sampleOf(route) })));
    expect(sent).toBeGreaterThan(50);
    expect((await inject(app, { method: 'GET', url: '/health', headers: {} })).status).toBe(200);
  });

  it('a URL that cannot be decoded, a path segment too long, an unknown route: problem+json', async () => {
    expect(expectProblem(await inject(app, { method: 'GET', url: '/mail/%E0%A4%A', headers: {} }), 'bad URL', 400).title).toBe('HTTP_URL_INVALID');
    expect(expectProblem(await inject(app, { method: 'GET', url: `/nothing/${'x'.repeat(3000)}`, headers: {} }), 'unknown', 404).title).toBe('NOT_FOUND');
    expect(expectProblem(await inject(app, { method: 'GET', url: '/mail/config-v1.1.xml?emailaddress=a&emailaddress=b', headers: {} }), 'twice', 400).detail).toBe(
      'the query parameter emailaddress is given more than once',
    );
  });
});
