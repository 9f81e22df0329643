import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { HealthProber } from '../../core/health.js';
import { createHttpServer } from '../../core/http.js';
import { silentLogger } from '../../core/logger.js';
import { autoconfigRoutes } from '../../imap-proxy/index.js';

// Mozilla autoconfig through the platform's own HTTP server (core/http), by inject.
describe('Thunderbird autoconfig', () => {
  let http: FastifyInstance;
  beforeAll(async () => {
    http = createHttpServer(silentLogger, new HealthProber([], { intervalMs: 60_000, timeoutMs: 60_000, staleMs: 60_000 }));
    await http.register(autoconfigRoutes, {
      hostname: 'mail.mssante.example.fr',
      domains: ['mssante.example.fr', 'hopital.mssante.fr'],
      displayName: 'Opérateur MSSanté <test> & co',
      imap: { port: 993, starttlsPort: 143 },
      smtp: { submissionsPort: 465, submissionPort: 587 },
    });
  });
  afterAll(async () => http?.close());

  for (const url of ['/.well-known/autoconfig/mail/config-v1.1.xml', '/mail/config-v1.1.xml?emailaddress=jeanne.martin%40mssante.example.fr']) {
    it(`serves IMAP 993 SSL and SMTP 465 SSL first, STARTTLS second: ${url}`, async () => {
      const r = await http.inject({ url });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('application/xml; charset=utf-8');
      const doc = new XMLParser({ ignoreAttributes: false }).parse(r.body);
      const p = doc.clientConfig.emailProvider;
      expect(doc.clientConfig['@_version']).toBe('1.1');
      expect(p.domain).toEqual(['mssante.example.fr', 'hopital.mssante.fr']);
      expect(p.displayName).toBe('Opérateur MSSanté <test> & co');
      const [imaps, imap] = p.incomingServer;
      expect(imaps).toMatchObject({ '@_type': 'imap', hostname: 'mail.mssante.example.fr', port: 993, socketType: 'SSL', authentication: 'password-cleartext', username: '%EMAILADDRESS%' });
      expect(imap).toMatchObject({ port: 143, socketType: 'STARTTLS' });
      const [smtps, submission] = p.outgoingServer;
      expect(smtps).toMatchObject({ '@_type': 'smtp', port: 465, socketType: 'SSL', username: '%EMAILADDRESS%' });
      expect(submission).toMatchObject({ port: 587, socketType: 'STARTTLS' });
    });
  }

  it('answers 404 (problem+json) for an address of another provider', async () => {
    const r = await http.inject({ url: '/mail/config-v1.1.xml?emailaddress=someone%40gmail.com' });
    expect(r.statusCode).toBe(404);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.json().detail).toBe('mail settings for someone@gmail.com (not a domain of this operator) not found');
  });

  it('refuses an absurd query with 400', async () => {
    const r = await http.inject({ url: `/mail/config-v1.1.xml?emailaddress=${'a'.repeat(400)}` });
    expect(r.statusCode).toBe(400);
  });
});
