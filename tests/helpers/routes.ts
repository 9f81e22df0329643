// Tests generated from a listener's route table (core/http routeTable): who may call each
// route, and what each of its parameters does with hostile values. The route's own options
// (its access rule, its JSON schemas) say what to expect, so a new route is covered the day
// it is added, and a route the tests cannot place fails them.
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { routeTable, type AccessRule } from '../../core/http.js';

export interface Route {
  method: string;
  /** As registered: /api/v1/bals/:address */
  url: string;
  key: string;
  access: AccessRule | undefined;
  schema: RouteSchema;
}

export interface PropSchema {
  type?: string | string[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  minLength?: number;
  maxProperties?: number;
  enum?: unknown[];
  pattern?: string;
  format?: string;
  properties?: Record<string, PropSchema>;
}

export interface RouteSchema {
  querystring?: PropSchema;
  params?: PropSchema;
  body?: PropSchema & { content?: Record<string, { schema: PropSchema }> };
  consumes?: string[];
  response?: Record<string, unknown>;
}

/** Every route of the listener, one entry per method (HEAD twins included). */
export function routesOf(app: FastifyInstance): Route[] {
  return routeTable(app).flatMap((r) =>
    [r.method]
      .flat()
      .map((method) => ({ method, url: r.url, key: `${method} ${r.url}`, access: r.config?.access, schema: (r.schema ?? {}) as RouteSchema })),
  );
}

/** The status a successful call answers: the route's documented 2xx, else 200. */
export function successStatus(r: Route): number {
  const codes = Object.keys(r.schema.response ?? {})
    .map(Number)
    .filter((c) => c >= 200 && c < 300);
  return codes.length ? Math.min(...codes) : 200;
}

/** What a call consists of, before it is written as an HTTP request. */
export interface CallSpec {
  params?: Record<string, string>;
  query?: Record<string, string>;
  /** A JSON body. */
  body?: unknown;
  /** A raw body and its content type (XML, bytes, multipart). */
  raw?: { type: string; data: Buffer | string };
}

export interface InjectRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: Buffer | string;
}

const enc = (s: string) => encodeURIComponent(s);

/** /api/v1/bals/:address + {address: 'a@b'} → /api/v1/bals/a%40b; a `*` wildcard takes params['*']. */
export function pathOf(url: string, params: Record<string, string> = {}): string {
  return url.replace(/:(\w+)|\*/g, (m, name: string | undefined) => {
    const v = params[name ?? '*'];
    if (v === undefined) throw new Error(`no value for path parameter ${m} of ${url}`);
    return name ? enc(v) : v;
  });
}

export function toRequest(method: string, url: string, spec: CallSpec, token?: string): InjectRequest {
  const query = Object.entries(spec.query ?? {})
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .join('&');
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  let payload: Buffer | string | undefined;
  if (spec.raw) {
    headers['content-type'] = spec.raw.type;
    payload = spec.raw.data;
  } else if (spec.body !== undefined) {
    headers['content-type'] = 'application/json';
    payload = JSON.stringify(spec.body);
  }
  return { method, url: pathOf(url, spec.params) + (query ? `?${query}` : ''), headers, payload };
}

export interface Answer {
  status: number;
  type: string;
  text: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export async function inject(app: FastifyInstance, req: InjectRequest): Promise<Answer> {
  const r = await app.inject({ method: req.method as 'GET', url: req.url, headers: req.headers, payload: req.payload });
  return { status: r.statusCode, type: String(r.headers['content-type'] ?? '').split(';')[0], text: r.body, json: () => JSON.parse(r.body) };
}

/** A refusal as the APIs give it: problem+json with a catalogue title and a sentence; never a stack trace. */
export function expectProblem(a: Answer, what: string, status?: number): { title: string; detail: string } {
  if (status !== undefined) expect(a.status, `${what}: ${a.text.slice(0, 300)}`).toBe(status);
  expect(a.status, `${what}: ${a.text.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${what}: ${a.text.slice(0, 300)}`).toBeLessThan(500);
  expect(a.type, what).toBe('application/problem+json');
  const p = a.json();
  expect(p, what).toMatchObject({ status: a.status, title: expect.stringMatching(/^[A-Z_]+$/), detail: expect.any(String) });
  expect(p.detail, what).not.toMatch(/\n\s+at |node_modules|Error:/);
  return p;
}

// --- hostile values ----------------------------------------------------------------------

/** Values written in a query string or a path segment (encoded by toRequest). */
export const TEXT_NASTIES: readonly string[] = [
  '9223372036854775808',
  '99999999999999999999',
  '-9223372036854775809',
  '1e30',
  '-1',
  '0',
  'NaN',
  'Infinity',
  '',
  ' 1',
  '0x10',
  '1.5',
  'true',
  'null',
  '[]',
  '{}',
  '\u0000',
  'a\u0000b',
  'é🙂\u202e\ufeff',
  'x'.repeat(5000),
  '%',
  '../../etc/passwd',
  "' OR 1=1 --",
  '*',
  'a\r\nX-Injected: 1',
  '0000-01-01T00:00:00Z',
  '0001-01-01T00:00:00+14:00',
];

/** Raw JSON texts put in place of one field of a valid body. */
export const JSON_NASTIES: readonly string[] = [
  '1e30',
  '1e400',
  '9223372036854775808',
  '-1',
  '0',
  '-0',
  '1.5',
  'NaN',
  'null',
  'true',
  '"true"',
  '"7"',
  '""',
  '[]',
  '["a"]',
  '{}',
  '{"a":1}',
  '"\\u0000"',
  '"a\\u0000b"',
  '"é🙂\\u202e\\ud800"',
  JSON.stringify('x'.repeat(100_000)),
  '['.repeat(5000) + ']'.repeat(5000),
];

/** Whole bodies sent to a route that takes a JSON body (content type, raw text). */
export const BODY_NASTIES: ReadonlyArray<[string | undefined, string | Buffer]> = [
  ['application/json', 'not json'],
  ['application/json', ''],
  ['application/json', '[]'],
  ['application/json', '"a string"'],
  ['application/json', '{"__proto__":{"admin":true}}'],
  ['application/json', '{"constructor":{"prototype":{"admin":true}}}'],
  ['application/json', Buffer.from([0xff, 0xfe, 0x00, 0x7b])],
  ['application/json; charset=utf-16', '{}'],
  ['text/plain', '{}'],
  ['application/xml', '<x/>'],
  ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--x--\r\n'],
  ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="subject"\r\n\r\nno end'],
  ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="attachments"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nabc\r\n--x--\r\n'],
  ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="__proto__"\r\n\r\n{}\r\n--x--\r\n'],
  ['multipart/form-data', 'no boundary'],
  ['application/x-www-form-urlencoded', 'a=b'],
  [undefined, '{}'],
  ['application/json', `{"a":"${'x'.repeat(3 * 1024 * 1024)}"}`],
];

const typesOf = (s: PropSchema | undefined) => [s?.type].flat().filter(Boolean) as string[];

/** Is this text what the strict listeners accept for a query/path value of this schema? (Only for numbers and booleans.) */
function textAccepted(s: PropSchema, v: string): boolean | undefined {
  const t = typesOf(s);
  if (t.includes('integer') || t.includes('number')) return /^-?[0-9]+$/.test(v) && Number(v) >= (s.minimum ?? -Infinity) && Number(v) <= (s.maximum ?? Infinity);
  if (t.includes('boolean')) return v === 'true' || v === 'false';
  if (t.includes('string')) {
    if (v.includes('\u0000')) return false;
    if (s.maxLength !== undefined && [...v].length > s.maxLength) return false;
  }
  return undefined;
}

/** Is this JSON value of the type the schema declares? undefined: cannot tell simply. */
function jsonAccepted(s: PropSchema, text: string): boolean | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined; // not JSON at all: the parser refuses it, whatever the field
  }
  const t = typesOf(s);
  if (!t.length) return undefined;
  const kind = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
  const typeOk = t.includes(kind) || (kind === 'integer' && t.includes('number'));
  if (!typeOk) return false;
  if (typeof v === 'number' && ((s.minimum !== undefined && v < s.minimum) || (s.maximum !== undefined && v > s.maximum))) return false;
  if (typeof v === 'string' && v.includes('\u0000')) return false;
  if (typeof v === 'string' && s.maxLength !== undefined && [...v].length > s.maxLength) return false;
  return undefined;
}

export interface HostileCase {
  what: string;
  spec: CallSpec;
  /** Extra headers / a raw payload overriding the spec's. */
  override?: { type?: string; payload: string | Buffer };
  /** The parameter the answer must name when it is refused as invalid. */
  names?: string;
  /** A query parameter written twice (p=1&p=2). */
  twice?: string;
  /** A status the answer must have (when it is not the 400 of mustRefuse). */
  status?: number;
  /** Known to be invalid: the answer must be a 400 naming the parameter. */
  mustRefuse: boolean;
}

/**
 * Every hostile variant of a valid call: each query parameter, path parameter and top-level
 * body field in turn gets each nasty value, the rest staying valid; repeated and bracketed
 * query parameters; whole hostile bodies. Generated from the route's schemas.
 */
export function hostileCases(r: Route, valid: CallSpec): HostileCase[] {
  const out: HostileCase[] = [];
  const q = r.schema.querystring?.properties ?? {};
  for (const [name, s] of Object.entries(q)) {
    for (const v of TEXT_NASTIES) {
      const ok = textAccepted(s, v);
      out.push({ what: `query ${name}=${JSON.stringify(v.slice(0, 30))}`, spec: { ...valid, query: { ...valid.query, [name]: v } }, names: name, mustRefuse: ok === false });
    }
    out.push({ what: `query ${name} given twice`, spec: valid, twice: name, names: name, mustRefuse: true });
  }
  const strictQuery = (r.schema.querystring as { additionalProperties?: unknown } | undefined)?.additionalProperties === false;
  out.push({ what: 'unknown query parameter', spec: { ...valid, query: { ...valid.query, 'zz[a]': '1' } }, names: 'zz[a]', mustRefuse: strictQuery });
  for (const [name, s] of Object.entries(r.schema.params?.properties ?? {})) {
    if (name === '*') continue;
    // '' leads to another route or none (404); a segment longer than the router takes is a 414 of its own.
    for (const v of TEXT_NASTIES.map((x) => (x.length > 1000 ? x.slice(0, 1000) : x)).filter(Boolean)) {
      const ok = textAccepted(s, v);
      out.push({ what: `path ${name}=${JSON.stringify(v.slice(0, 30))}`, spec: { ...valid, params: { ...valid.params, [name]: v } }, names: name, mustRefuse: ok === false });
    }
    out.push({ what: `path ${name} of 5000 characters`, spec: { ...valid, params: { ...valid.params, [name]: 'x'.repeat(5000) } }, mustRefuse: false, status: 414 });
  }
  const body = jsonBodySchema(r);
  if (body) {
    const base = valid.body && typeof valid.body === 'object' && !Array.isArray(valid.body) ? (valid.body as Record<string, unknown>) : {};
    for (const [name, s] of Object.entries(body.properties ?? {})) {
      for (const text of JSON_NASTIES) {
        let shape: Record<string, unknown> = { ...base, [name]: '\u0001NASTY\u0001' };
        // A body of at most n fields (one of several ways to name something) gets this one alone.
        if (body.maxProperties !== undefined && Object.keys(shape).length > body.maxProperties) shape = { [name]: shape[name] };
        const payload = JSON.stringify(shape).replace('"\\u0001NASTY\\u0001"', text);
        const ok = jsonAccepted(s, text);
        out.push({ what: `body ${name}=${text.slice(0, 30)}`, spec: { ...valid, raw: undefined, body: undefined }, override: { type: 'application/json', payload }, names: name, mustRefuse: ok === false });
      }
    }
  }
  // Whole hostile bodies, for every method that carries one (raw-body routes included).
  if (body || ['POST', 'PUT', 'PATCH', 'DELETE'].includes(r.method)) {
    for (const [type, payload] of BODY_NASTIES) {
      out.push({ what: `body ${type ?? 'without content type'}: ${String(payload).slice(0, 30)}`, spec: { ...valid, raw: undefined, body: undefined }, override: { type, payload }, mustRefuse: false });
    }
  }
  return out;
}

/** The JSON body schema of a route, if it takes JSON. */
function jsonBodySchema(r: Route): PropSchema | undefined {
  const b = r.schema.body;
  if (!b) return undefined;
  if (b.content) return b.content['application/json']?.schema;
  return b;
}

/** The request of a hostile case. */
export function hostileRequest(r: Route, c: HostileCase, token?: string): InjectRequest {
  const req = toRequest(r.method, r.url, c.spec, token);
  if (c.twice) req.url += `${req.url.includes('?') ? '&' : '?'}${encodeURIComponent(c.twice)}=1&${encodeURIComponent(c.twice)}=2`;
  if (c.override) {
    delete req.headers['content-type'];
    if (c.override.type) req.headers['content-type'] = c.override.type;
    req.payload = c.override.payload;
  }
  return req;
}

/**
 * Sends every hostile case of every route and checks the answers: never a 5xx, never a
 * stack trace, every refusal a problem+json; a value known to be invalid is a 400 whose
 * sentence names the parameter. Returns how many requests were sent.
 */
export async function sendHostile(app: FastifyInstance, routes: Array<{ route: Route; valid: () => Promise<CallSpec>; token?: () => Promise<string | undefined> }>): Promise<number> {
  let n = 0;
  for (const { route, valid, token } of routes) {
    for (const c of hostileCases(route, await valid())) {
      const req = hostileRequest(route, c, await token?.());
      const a = await inject(app, req);
      n++;
      const what = `${route.key} with ${c.what}`;
      expect(a.status, `${what}: ${a.text.slice(0, 300)}`).toBeLessThan(500);
      expect(a.text, what).not.toMatch(/\n\s+at [^\n]+:\d+:\d+/);
      if (a.status >= 400) expectProblem(a, what);
      if (c.status) expectProblem(a, what, c.status);
      if (c.mustRefuse) {
        const p = expectProblem(a, what, 400);
        expect(p.detail, what).toContain(c.names);
      }
    }
  }
  return n;
}
