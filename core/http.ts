import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Db } from './db/index.js';
import { MssError, problem } from './errors.js';
import type { Logger } from './logger.js';
import { httpRequests, registry } from './metrics.js';

export interface HealthCheck {
  name: string;
  /** Resolves with a short status when healthy; throws when not. */
  check(): Promise<unknown>;
}

/**
 * The platform's HTTP listener: health and metrics here; modules register their own
 * routes (TSA, admin API, autoconfig) as encapsulated plugins. Every error leaves as
 * application/problem+json; an unexpected error never shows its message to the client.
 */
export function createHttpServer(log: Logger, checks: HealthCheck[]): FastifyInstance {
  const app = Fastify({ loggerInstance: log.child({ mod: 'http' }) as FastifyBaseLogger, logController: quietRequests(), bodyLimit: 64 * 1024 * 1024 });

  requestLog(app);
  problemHandlers(app);

  app.get('/health', async (_req, reply) => {
    const results: Record<string, unknown> = {};
    let ok = true;
    for (const c of checks) {
      try {
        results[c.name] = await c.check();
      } catch (e) {
        ok = false;
        results[c.name] = { error: (e as Error).message };
      }
    }
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', checks: results });
  });

  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  return app;
}

/** The JSON schema of a problem+json body, for the APIs' OpenAPI documents ($ref 'Problem#'). */
export const problemSchema = {
  $id: 'Problem',
  type: 'object',
  description: 'RFC 9457 problem details; title is the stable code of the error catalogue',
  properties: { type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' }, instance: { type: 'string' } },
} as const;

/** Fastify's own two lines per request off: requestLog() writes one, with the status and time. */
export const quietRequests = () => new LogController({ disableRequestLogging: true });

/** One pino line and one duration observation (mss_http_request_duration_seconds) per request. */
export function requestLog(app: FastifyInstance): void {
  app.addHook('onResponse', async (req, reply) => {
    httpRequests.labels(req.method, req.routeOptions.url ?? 'unmatched', String(reply.statusCode)).observe(reply.elapsedTime / 1000);
    req.log.info({ method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'http');
  });
}

/**
 * The headers every HTTPS API answer carries (admin, webmail): HSTS, so a browser that met
 * the API over TLS never tries it in clear; no MIME sniffing, no framing, no Referer leaving
 * with a box address in the URL (testssl: HSTS, security_headers).
 */
export function httpsHeaders(app: FastifyInstance): void {
  app.addHook('onRequest', async (_req, reply) => {
    reply.headers({
      'strict-transport-security': 'max-age=31536000',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'content-security-policy': "frame-ancestors 'none'",
      'referrer-policy': 'no-referrer',
    });
  });
}

/**
 * Every error and every unknown route leaves as application/problem+json: an MssError with
 * its catalogue code, a client error (validation, bad body) as BAD_REQUEST with fastify's
 * sentence and status, anything else as INTERNAL without its message (logged here).
 */
export function problemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const e = err as Error & { statusCode?: number; validation?: unknown };
    let body;
    if (err instanceof MssError) body = problem(err, req.url);
    else if (e.validation || (e.statusCode && e.statusCode < 500)) {
      body = problem(new MssError('BAD_REQUEST', { reason: e.message }), req.url);
      body.status = e.statusCode ?? 400;
    } else {
      req.log.error({ err }, 'unexpected error');
      body = problem(err, req.url);
    }
    void reply.code(body.status).type('application/problem+json').send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    const body = problem(new MssError('NOT_FOUND', { what: `${req.method} ${req.url.split('?')[0]}` }), req.url);
    void reply.code(404).type('application/problem+json').send(body);
  });
}

/**
 * The OpenAPI document of an API listener, built from its routes' JSON schemas: served at
 * /openapi.json, browsable at /docs. Register before the routes (swagger collects them).
 */
export async function openApiDocs(app: FastifyInstance, info: { title: string; description: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { ...info, version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}

export const dbHealth = (db: Db): HealthCheck => ({
  name: 'database',
  async check() {
    await db.query('SELECT 1');
    return { ok: true, kind: db.kind };
  },
});
