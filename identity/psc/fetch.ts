// fetch() over node:https with a given trust bundle. openid-client and jose take a custom
// fetch; Node's own fetch cannot be told to trust a CA other than the system's without
// undici's Agent (not a dependency) or NODE_EXTRA_CA_CERTS (process-wide, read at start). The
// stand-in PSC speaks HTTPS with the platform's certificate, so its clients must trust the
// platform's CA; the real PSC's certificate chains to a public root (the system's store).
import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import { nodeTlsPolicy } from '../../certs/tls-policy.js';

export type Fetch = (url: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Responses larger than this are cut off (a discovery document or JWKS is a few kB). */
const MAX_BODY = 1024 * 1024;

export function httpsFetch(extraCa: readonly string[] = [], timeoutMs = 15_000): Fetch {
  const ca = [...rootCertificates, ...extraCa];
  return async (input, init = {}) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'https:') throw new Error(`refusing ${url.protocol} for ${url.origin}: Pro Santé Connect is reached over HTTPS only`);
    const headers = new Headers(input instanceof Request ? input.headers : undefined);
    new Headers(init.headers).forEach((v, k) => headers.set(k, v));
    const body = init.body === undefined || init.body === null ? undefined : Buffer.from(typeof init.body === 'string' ? init.body : init.body instanceof URLSearchParams ? init.body.toString() : new Uint8Array(await new Response(init.body as ConstructorParameters<typeof Response>[0]).arrayBuffer()));
    if (body && !headers.has('content-type') && init.body instanceof URLSearchParams) headers.set('content-type', 'application/x-www-form-urlencoded');
    return new Promise<Response>((resolve, reject) => {
      const req = request(url, { method: init.method ?? 'GET', headers: Object.fromEntries(headers), ca, ...nodeTlsPolicy(), timeout: timeoutMs, signal: init.signal ?? undefined }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY) return void req.destroy(new Error(`the answer of ${url.origin} is larger than ${MAX_BODY} bytes`));
          chunks.push(c);
        });
        res.on('end', () => {
          const h = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) for (const one of Array.isArray(v) ? v : [v]) h.append(k, one);
          const status = res.statusCode ?? 500;
          resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers: h }));
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${url.origin} did not answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  };
}
