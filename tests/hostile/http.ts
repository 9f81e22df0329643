// HTTPS for the admin and webmail corpora: requests through the real listeners (any method,
// headers, raw bodies), exact bytes over TLS for what an HTTP client will not send, and
// problem+json answers turned into Outcomes.
import { request } from 'node:https';
import { connect } from 'node:tls';
import type { Outcome } from './harness.js';

export interface HttpReply {
  status: number;
  type: string;
  body: Buffer;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json(): any;
}

export interface HttpOptions {
  token?: string;
  json?: unknown;
  body?: Buffer | string;
  /** Content-Type of `body` (application/json by default). */
  type?: string;
  headers?: Record<string, string>;
  /** Loopback address to connect from (another client, for per-address limits). */
  from?: string;
}

export function https(base: string, ca: string, method: string, path: string, o: HttpOptions = {}): Promise<HttpReply> {
  const u = new URL(base);
  const payload = o.json !== undefined ? Buffer.from(JSON.stringify(o.json)) : o.body !== undefined ? Buffer.from(o.body) : undefined;
  const headers: Record<string, string> = {
    ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
    ...(payload ? { 'content-type': o.type ?? 'application/json', 'content-length': String(payload.length) } : {}),
    ...o.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers, ca, servername: 'localhost', minVersion: 'TLSv1.2', agent: false, ...(o.from ? { localAddress: o.from } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? '').split(';')[0], body, json: () => JSON.parse(body.toString('utf8')) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Exact bytes over TLS to the listener; everything it answers until it closes (or `until` matches). */
export function rawHttps(base: string, ca: string, bytes: string | Buffer, until = /\r\n\r\n[\s\S]*\}$/): Promise<string> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    let got = '';
    const s = connect({ host: u.hostname, port: Number(u.port), ca, servername: 'localhost' }, () => s.write(bytes));
    const done = () => {
      s.destroy();
      resolve(got);
    };
    s.on('data', (d) => {
      got += d.toString('utf8');
      if (until.test(got)) done();
    });
    s.on('close', done);
    s.on('error', (e) => (got ? done() : reject(e)));
  });
}

/** A reply as an Outcome: the status, the problem's title (its catalogue code) and detail; any other body as text. */
export function httpOutcome(r: HttpReply): Outcome {
  if (r.type === 'application/problem+json') {
    const p = r.json() as { title?: string; detail?: string; status?: number };
    if (p.status !== r.status) return { code: String(r.status), text: `problem status ${p.status} differs from the HTTP status` };
    return { code: String(r.status), enhanced: p.title, text: p.detail ?? '' };
  }
  return { code: String(r.status), enhanced: r.type, text: r.body.toString('utf8').slice(0, 300) };
}

/**
 * `api(method, path, o)` on an API under /api/v1, as one of the callers whose bearer tokens
 * are given (`as`, by default `fallback`), or as nobody (`as: 'none'`); the reply as an Outcome.
 */
export function apiCaller<A extends string>(base: string, ca: string, tokens: Record<A, string>, fallback: A) {
  return async (method: string, path: string, o: HttpOptions & { as?: A | 'none' } = {}): Promise<Outcome> => {
    const as = o.as ?? fallback;
    return httpOutcome(await https(base, ca, method, `/api/v1${path}`, { ...o, ...(as === 'none' ? {} : { token: o.token ?? tokens[as] }) }));
  };
}

/** The status line and problem of a raw HTTP/1.1 answer. */
export function rawOutcome(text: string): Outcome {
  const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
  if (!status) return { code: 'closed', text: text.slice(0, 200) };
  const body = text.slice(text.indexOf('\r\n\r\n') + 4);
  try {
    const p = JSON.parse(body) as { title?: string; detail?: string };
    return { code: status, enhanced: p.title, text: p.detail ?? '' };
  } catch {
    return { code: status, text: body.slice(0, 200) };
  }
}
