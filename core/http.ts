import type { TlsOptions } from 'node:tls';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type RouteOptions } from 'fastify';
import type { Db } from './db/index.js';
import type { HealthProber } from './health.js';
import { isMssError, MssError, problem } from './errors.js';
import type { Logger } from './logger.js';
import { httpRequests, registry } from './metrics.js';

export interface HealthCheck {
  name: string;
  /** Resolves with a short status when healthy; throws when not. */
  check(): Promise<unknown>;
}

/**
 * Who may call a route, declared in the route's own options (`config: { access }`) and
 * enforced by its API's one hook (annuaire/admin, webmail-api each define their kinds:
 * public, self, national, mailbox…). A listener created with `access` refuses to start when
 * a route declares none, so a route cannot exist without its rule.
 */
export interface AccessRule {
  readonly kind: string;
}

/** No credential needed: logins, the API documents. */
export const PUBLIC: AccessRule = Object.freeze({ kind: 'public' });

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: AccessRule;
  }
}

/** Path parameters longer than this are refused (414) before routing goes further. */
const MAX_PARAM_LENGTH = 2048;

export interface ListenerOptions {
  log: Logger;
  /** The logger's `mod` field. */
  mod: string;
  https?: TlsOptions;
  bodyLimit: number;
  /** The access kinds this listener's routes may declare; when given, a route without one stops the start. */
  access?: readonly string[];
}

/**
 * A fastify instance for one of the platform's listeners, with the input rules every one of
 * them keeps: bodies are validated as sent (no coercion: "7" is not 7, "true" is not true,
 * a string is not a one-element array), unknown properties refused; query and path values
 * are turned into numbers or booleans only when the schema says so and they are written
 * exactly so; no NUL character anywhere; every refusal — validation, bad JSON, body too
 * large, wrong content type, malformed URL, unknown route — is a 4xx problem+json naming
 * what was wrong.
 */
export function createFastify(o: ListenerOptions): FastifyInstance {
  const app = Fastify({
    ...(o.https ? { https: o.https } : {}),
    loggerInstance: o.log.child({ mod: o.mod }) as FastifyBaseLogger,
    logController: quietRequests(),
    bodyLimit: o.bodyLimit,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: true, allErrors: false, allowUnionTypes: true, verbose: true } },
    schemaErrorFormatter: validationError,
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
      sendProblem(req, reply, err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? new MssError('HTTP_URL_TOO_LONG', { limit: MAX_PARAM_LENGTH }) : new MssError('HTTP_URL_INVALID', { reason: 'it is not validly percent-encoded' }));
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  }) as unknown as FastifyInstance;
  trackRoutes(app);
  requestLog(app);
  problemHandlers(app);
  strictValues(app);
  if (o.https) httpsHeaders(app);
  if (o.access) requireAccessRules(app, o.access);
  return app;
}

/**
 * The platform's HTTP listener: health and metrics here; modules register their own
 * routes (TSA, admin API, autoconfig) as encapsulated plugins. Every error leaves as
 * application/problem+json; an unexpected error never shows its message to the client.
 * /health answers from the prober's latest results (core/health.ts), never by running the
 * checks inline; the platform serves its port from the health thread (core/health-thread.ts),
 * which answers /health itself and relays the rest here.
 */
export function createHttpServer(log: Logger, health: Pick<HealthProber, 'report'>): FastifyInstance {
  const app = createFastify({ log, mod: 'http', bodyLimit: 64 * 1024 * 1024 });

  app.get('/health', async (_req, reply) => {
    const r = health.report();
    return reply.code(r.code).header('cache-control', 'no-store').send(r.body);
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

// --- the route table -------------------------------------------------------------------

const tables = new WeakMap<FastifyInstance, RouteOptions[]>();

function trackRoutes(app: FastifyInstance): void {
  const routes: RouteOptions[] = [];
  tables.set(app, routes);
  // The options object itself is kept: hooks of inner plugins may still set its config.
  app.addHook('onRoute', (r) => void routes.push(r));
}

/** Every route of a listener made by createFastify (HEAD twins included), with its options: what the generated tests walk. */
export function routeTable(app: FastifyInstance): readonly RouteOptions[] {
  const t = tables.get(app);
  if (!t) throw new Error('routeTable: this fastify instance was not made by createFastify');
  return t;
}

function requireAccessRules(app: FastifyInstance, kinds: readonly string[]): void {
  app.addHook('onReady', async () => {
    const bad = routeTable(app).filter((r) => !r.config?.access || !kinds.includes(r.config.access.kind));
    if (bad.length) {
      throw new Error(`every route must say who may call it (config.access, one of ${kinds.join(', ')}); missing or unknown on ${bad.map((r) => `${r.method} ${r.url}`).join(', ')}`);
    }
  });
}

// --- errors ----------------------------------------------------------------------------

function sendProblem(req: FastifyRequest, reply: FastifyReply, e: unknown, status?: number): void {
  const body = problem(e, req.url);
  if (status) body.status = status;
  void reply.code(body.status).type('application/problem+json').send(body);
}

/** The catalogue error for what the client got wrong, or null for a fault of ours. */
function clientError(err: unknown, req: FastifyRequest): { e: MssError; status?: number } | null {
  if (isMssError(err)) return { e: err };
  const e = err as FastifyError & { validation?: unknown };
  if (e.validation) return { e: new MssError('BAD_REQUEST', { reason: e.message }) };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { e: new MssError('HTTP_BODY_TOO_LARGE', { limit: req.routeOptions.bodyLimit }) };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_TYPE':
      return { e: unsupportedMediaType(req) };
  }
  // fastify's and its plugins' client errors (bad JSON, forbidden __proto__, content length…) say what is wrong without internals.
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { e: new MssError('BAD_REQUEST', { reason: e.message }), status: e.statusCode };
  return null;
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
 * its catalogue code, a client error (validation, bad body) with its own sentence and
 * status, anything else as INTERNAL without its message (logged here).
 */
export function problemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const c = clientError(err, req);
    if (!c) req.log.error({ err }, 'unexpected error');
    sendProblem(req, reply, c ? c.e : err, c?.status);
  });
  app.setNotFoundHandler((req, reply) => sendProblem(req, reply, new MssError('NOT_FOUND', { what: `${req.method} ${req.url.split('?')[0]}` })));
}

// --- validation ------------------------------------------------------------------------

const PARTS: Record<string, { whole: string; item: string; named: string }> = {
  body: { whole: 'the body', item: 'field', named: 'the field' },
  querystring: { whole: 'the query string', item: 'parameter', named: 'the query parameter' },
  params: { whole: 'the path', item: 'parameter', named: 'the path parameter' },
  headers: { whole: 'the headers', item: 'header', named: 'the header' },
};

interface AjvError {
  keyword: string;
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
  /** The value refused, and the schema that refused it (Ajv's verbose option). */
  data?: unknown;
  parentSchema?: { format?: unknown };
}

const kindOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 40))}` : `${typeof v} ${String(v)}`);

/** Ajv's error as a sentence naming the parameter or field: fastify's schemaErrorFormatter. */
function validationError(errors: AjvError[], dataVar: string): Error {
  const part = PARTS[dataVar] ?? { whole: 'the request', item: 'value', named: 'the value' };
  const e = errors[0];
  const at = e.instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');
  const owner = at ? `${part.named} ${at}` : part.whole;
  const quote = (s: unknown) => JSON.stringify(String(s).slice(0, 100));
  let sentence: string;
  if (e.keyword === 'required') sentence = `${owner} lacks the required ${part.item} ${String(e.params.missingProperty)}`;
  else if (e.keyword === 'additionalProperties') sentence = `${owner} has an unknown ${part.item} ${quote(e.params.additionalProperty)}`;
  else if (e.keyword === 'type') sentence = `${owner} must be ${[e.params.type].flat().map((t) => TYPE_WORDS[String(t)] ?? String(t)).join(' or ')}, not ${kindOf(e.data)}`;
  else if (e.keyword === 'enum') sentence = `${owner} must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
  // A value that is not of the format at all is told so in words, not by the pattern that
  // narrows the format (since: a date-time from 1900 on); one of the format but outside the
  // pattern gets the pattern.
  else if ((e.keyword === 'format' || e.keyword === 'pattern') && notOfFormat(e.parentSchema?.format, e.data)) sentence = `${owner} must be ${FORMAT_WORDS[String(e.parentSchema!.format)]}, not ${kindOf(e.data)}`;
  else sentence = `${owner} ${e.message ?? 'is not valid'}`;
  return new Error(sentence);
}

const FORMAT_WORDS: Record<string, string> = {
  'date-time': 'a date and time with its time zone (RFC 3339, e.g. 2026-03-01T08:00:00Z)',
  date: 'a date (e.g. 2026-03-01)',
};
const notOfFormat = (format: unknown, v: unknown) => typeof v === 'string' && Object.hasOwn(FORMAT_WORDS, String(format)) && Number.isNaN(Date.parse(v));

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'an array',
  object: 'an object',
  null: 'null',
};

/**
 * Query and path values arrive as text: the ones the schema types as numbers or booleans
 * are converted here, and only from their exact written forms (decimal digits; true or
 * false) — never "1e30", "0x10", " 7" or "yes". A value given twice, or holding a NUL or a
 * lone surrogate, is refused; so is a body string holding one (unfitText). Ajv then checks
 * the bounds.
 */
function strictValues(app: FastifyInstance): void {
  app.addHook('preValidation', async (req) => {
    const s = req.routeOptions.schema as { querystring?: unknown; params?: unknown } | undefined;
    convert(req.query as Record<string, unknown>, s?.querystring, PARTS.querystring);
    convert(req.params as Record<string, unknown>, s?.params, PARTS.params);
  });
  app.addHook('preHandler', async (req) => {
    const bad = unfitIn(req.body, '');
    if (bad) throw new MssError('BAD_REQUEST', { reason: bad.at ? `the field ${bad.at} ${bad.why}` : `the body ${bad.why}` });
  });
}

/**
 * Why a text cannot be taken, or null: a NUL (no column, header or protocol takes one), or
 * a lone surrogate (not Unicode: JSON.stringify writes it as \ud800, which PostgreSQL's
 * json refuses, and UTF-8 cannot carry it).
 */
function unfitText(s: string): string | null {
  if (s.includes('\0')) return 'contains a NUL character';
  if (/\p{Cs}/u.test(s)) return 'is not valid Unicode (it contains a lone surrogate)';
  return null;
}

function convert(values: Record<string, unknown> | undefined, schema: unknown, part: (typeof PARTS)[string]): void {
  if (!values || typeof values !== 'object') return;
  const props = ((schema as { properties?: Record<string, { type?: string | string[] }> } | undefined)?.properties ?? {}) as Record<string, { type?: string | string[] }>;
  for (const [name, v] of Object.entries(values)) {
    const types = [Object.hasOwn(props, name) ? props[name].type : undefined].flat();
    const label = Object.hasOwn(props, name) ? name : JSON.stringify(name.slice(0, 100));
    const bad = (why: string) => new MssError('BAD_REQUEST', { reason: `${part.named} ${label} ${why}` });
    if (Array.isArray(v) && !types.includes('array')) throw bad('is given more than once');
    for (const x of [v].flat()) {
      const why = typeof x === 'string' ? unfitText(x) : null;
      if (why) throw bad(why);
    }
    if (typeof v !== 'string') continue;
    if (types.includes('integer') || types.includes('number')) {
      if (!(types.includes('integer') ? /^-?[0-9]+$/ : /^-?[0-9]+(\.[0-9]+)?$/).test(v)) throw bad(`must be a number written in decimal digits, got ${JSON.stringify(v.slice(0, 40))}`);
      // Beyond any bound either way: Ajv's minimum / maximum then names the limit.
      const n = Number(v);
      values[name] = Number.isFinite(n) ? n : Math.sign(n) * Number.MAX_VALUE;
    } else if (types.includes('boolean')) {
      if (v !== 'true' && v !== 'false') throw bad(`must be true or false, got ${JSON.stringify(v.slice(0, 40))}`);
      values[name] = v === 'true';
    }
  }
}

/** The first unfit text in a parsed JSON body (its keys included) and where ("" = the body itself). Buffers and streams are not looked into. */
function unfitIn(v: unknown, path: string, depth = 0): { at: string; why: string } | null {
  if (typeof v === 'string') {
    const why = unfitText(v);
    return why ? { at: path, why } : null;
  }
  if (!v || typeof v !== 'object' || depth > 64) return null;
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) return null;
  for (const [k, x] of Object.entries(v)) {
    const at = path ? `${path}.${k}` : k;
    const why = unfitText(k);
    if (why) return { at: JSON.stringify(at.slice(0, 100)), why: `has a name that ${why}` };
    const found = unfitIn(x, at, depth + 1);
    if (found) return found;
  }
  return null;
}

// --- strict route schemas (the JSON APIs) ----------------------------------------------

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** The body of an operation that takes none: nothing, or an empty JSON object. */
export const NO_BODY = { type: ['object', 'null'], additionalProperties: false, properties: {} } as const;
const NO_QUERY = { type: 'object', additionalProperties: false, properties: {} } as const;

const mediaType = (h: string | undefined) => (h ?? '').split(';')[0].trim().toLowerCase();

/** The media types a route's body may have: schema.consumes, else its per-type body schemas, else JSON when it has a body schema. */
function acceptedTypes(schema: unknown): string[] {
  const s = schema as { consumes?: string[]; body?: { content?: Record<string, unknown> } } | undefined;
  if (s?.consumes) return s.consumes;
  if (s?.body?.content) return Object.keys(s.body.content);
  return s?.body ? ['application/json'] : [];
}

function unsupportedMediaType(req: FastifyRequest): MssError {
  const accepted = acceptedTypes(req.routeOptions.schema);
  return new MssError('UNSUPPORTED_MEDIA_TYPE', { expected: accepted.length ? accepted.join(' or ') : 'no', got: mediaType(req.headers['content-type']) || 'a body without a content type' });
}

/**
 * For the routes of a JSON API (call inside its plugin): every route gets a query schema
 * (none declared: no parameter at all) and, if its method carries a body, a body schema
 * (none declared: no body); path parameters must have a schema; numbers must have both
 * bounds, query and path strings a maximum length, objects `additionalProperties: false`.
 * A route that breaks a rule stops the start with a sentence naming it. A body whose content
 * type the route does not declare is refused (415) before it is read.
 */
export function strictRoutes(app: FastifyInstance): void {
  app.addHook('onRoute', (r) => {
    const where = `${[r.method].flat().join(',')} ${r.url}`;
    const schema = (r.schema ??= {}) as Record<string, unknown>;
    schema.querystring ??= NO_QUERY;
    if ([r.method].flat().some((m) => BODY_METHODS.has(m))) schema.body ??= NO_BODY;
    const problems: string[] = [];
    const names = [...r.url.matchAll(/:(\w+)/g)].map((m) => m[1]);
    if (names.length && !schema.params) problems.push(`its path parameters (${names.join(', ')}) have no schema`);
    checkSchema(schema.querystring, 'querystring', true, problems);
    checkSchema(schema.params, 'params', true, problems);
    const body = schema.body as { content?: Record<string, { schema?: unknown }> } | undefined;
    if (body?.content) for (const [t, c] of Object.entries(body.content)) checkSchema(c.schema, `body (${t})`, false, problems);
    else checkSchema(body, 'body', false, problems);
    if (problems.length) throw new Error(`route ${where}: ${problems.join('; ')}`);
  });
  app.addHook('preParsing', async (req, _reply, payload) => {
    const carries = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (carries && !acceptedTypes(req.routeOptions.schema).includes(mediaType(req.headers['content-type']))) throw unsupportedMediaType(req);
    return payload;
  });
}

interface SchemaNode {
  type?: string | string[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  enum?: unknown[];
  const?: unknown;
  format?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: unknown;
  items?: SchemaNode;
  oneOf?: SchemaNode[];
  anyOf?: SchemaNode[];
}

function checkSchema(node: unknown, path: string, boundStrings: boolean, problems: string[]): void {
  const s = node as SchemaNode | undefined;
  if (!s || typeof s !== 'object') return;
  const types = [s.type].flat();
  const fixed = s.enum !== undefined || s.const !== undefined;
  if ((types.includes('integer') || types.includes('number')) && !fixed && (s.minimum === undefined || s.maximum === undefined)) problems.push(`${path} is a number without minimum and maximum`);
  if (boundStrings && types.includes('string') && !fixed && s.maxLength === undefined && !s.format) problems.push(`${path} is a string without maxLength`);
  if (s.properties && s.additionalProperties !== false) problems.push(`${path} does not refuse unknown properties (additionalProperties: false)`);
  for (const [k, v] of Object.entries(s.properties ?? {})) checkSchema(v, `${path}.${k}`, boundStrings, problems);
  if (s.items) checkSchema(s.items, `${path}[]`, boundStrings, problems);
  for (const alt of [...(s.oneOf ?? []), ...(s.anyOf ?? [])]) checkSchema(alt, path, boundStrings, problems);
}

// --- documents -------------------------------------------------------------------------

/**
 * The OpenAPI document of an API listener, built from its routes' JSON schemas: served at
 * /openapi.json, browsable at /docs (both public). Register before the routes (swagger
 * collects them).
 */
export async function openApiDocs(app: FastifyInstance, info: { title: string; description: string }): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { ...info, version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(async (docs) => {
    docs.addHook('onRoute', (r) => {
      r.config = { ...r.config, access: PUBLIC };
    });
    await docs.register(swaggerUi, { routePrefix: '/docs' });
    docs.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  });
}

export const dbHealth = (db: Db): HealthCheck => ({
  name: 'database',
  async check() {
    await db.query('SELECT 1');
    return { ok: true, kind: db.kind };
  },
});
