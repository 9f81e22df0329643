// A browser's session on one of the platform's HTTPS APIs (the webmail's and the admin API's,
// for the operator console): the API's own session token, held in a cookie the page's scripts cannot
// read, and a double-submit token against cross-site request forgery.
//
// Why this shape. A token kept by the page (localStorage, a variable) is readable by any
// script that gets into it — an injected one included — and could be carried off and used
// from anywhere; an HttpOnly cookie can only be *used*, by this browser, on this site. A
// cookie is sent by the browser on its own, so a state-changing request also needs proof
// that the page made it: the header CSRF_HEADER must carry the value of the (readable) CSRF
// cookie, which is derived from the session token (SHA-256), so it cannot be set or guessed
// by another site and a stale one dies with its session. SameSite=Strict already keeps the
// cookies off cross-site requests; an Origin that is not this listener's is refused too.
// Requests with "Authorization: Bearer" (API clients: DPI software, scripts) are untouched:
// a browser never adds that header by itself, so they need no CSRF token.
//
// The cookies are named per API: cookies ignore ports, so the webmail's and the console's
// listeners on one host would otherwise overwrite each other's session.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface BrowserSession {
  /** __Host-<name>-session: the API's token (HttpOnly). */
  sessionCookie: string;
  /** __Host-<name>-csrf: what the page copies into CSRF_HEADER (readable by the page). */
  csrfCookie: string;
  /** Set-Cookie values that open the browser session (no Max-Age: gone when the browser closes; the token's own expiry still applies). */
  open(token: string): string[];
  /** Set-Cookie values that end it. */
  readonly close: string[];
  /** The token of the request's cookie, or null. */
  tokenOf(req: FastifyRequest): string | null;
  /** Why a cookie-authenticated request may not change anything, or null when it may. */
  forgeryOf(req: FastifyRequest, token: string): string | null;
  /**
   * The request's credential, as every API taking both reads it: an "Authorization: Bearer"
   * token wins (only a browser sends the cookie, and only its requests need the CSRF check),
   * else the cookie's token with `forgery` saying why it may not be used (null: it may).
   */
  credential(req: FastifyRequest): { token: string | null; viaCookie: boolean; forgery: string | null };
  /**
   * Every web login route's shape: no CSRF token exists yet, so a JSON body (no form can send
   * one; strictRoutes refuses other types) and SameSite keep other sites out, and an Origin of
   * another site is refused as well (login CSRF: `refused` journals it and gives the error);
   * then the API's own login runs and its token goes into the cookies, not into the answer.
   */
  signIn<T extends { token: string }>(req: FastifyRequest, reply: FastifyReply, refused: (why: string) => Promise<Error>, logIn: () => Promise<T>): Promise<T>;
}

/** The token of an "Authorization: Bearer <token>" header, or null. */
export const bearerOf = (req: FastifyRequest): string | null => /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

/** A browser's request sent by a page of another origin (its Origin header says so), or null. */
export function foreignOrigin(req: FastifyRequest): string | null {
  const origin = req.headers.origin;
  return origin !== undefined && origin !== `https://${req.headers.host ?? ''}` ? `it comes from another site (${String(origin).slice(0, 100)})` : null;
}

/** The CSRF value of a session: not the token, and not usable to find it. */
export const csrfOf = (token: string) => createHash('sha256').update(`mss-csrf\0${token}`).digest('base64url');

/** The value of cookie `name` in a Cookie header, or null (the first one: __Host- cookies cannot be shadowed by a Domain cookie). */
export function readCookie(header: string | undefined, name: string): string | null {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export function browserSession(name: string): BrowserSession {
  const sessionCookie = `__Host-${name}-session`;
  const csrfCookie = `__Host-${name}-csrf`;
  // __Host-: Secure, Path=/ and no Domain, enforced by the browser (no subdomain can plant one).
  const attrs = 'Path=/; Secure; SameSite=Strict';
  const tokenOf = (req: FastifyRequest) => readCookie(req.headers.cookie, sessionCookie);
  const open = (token: string) => [`${sessionCookie}=${token}; ${attrs}; HttpOnly`, `${csrfCookie}=${csrfOf(token)}; ${attrs}`];
  function forgeryOf(req: FastifyRequest, token: string): string | null {
    if (SAFE_METHODS.has(req.method)) return null;
    const foreign = foreignOrigin(req);
    if (foreign) return foreign;
    const sent = req.headers[CSRF_HEADER];
    if (typeof sent !== 'string' || !sent) return `the ${CSRF_HEADER} header is missing`;
    if (!same(sent, csrfOf(token))) return `the ${CSRF_HEADER} header does not match the session`;
    return null;
  }
  return {
    sessionCookie,
    csrfCookie,
    open,
    close: [`${sessionCookie}=; ${attrs}; HttpOnly; Max-Age=0`, `${csrfCookie}=; ${attrs}; Max-Age=0`],
    tokenOf,
    forgeryOf,
    async signIn(req, reply, refused, logIn) {
      const foreign = foreignOrigin(req);
      if (foreign) throw await refused(foreign);
      const r = await logIn();
      void reply.header('set-cookie', open(r.token)).header('cache-control', 'no-store');
      return r;
    },
    credential(req) {
      const cookie = req.headers.authorization ? null : tokenOf(req);
      if (cookie === null) return { token: bearerOf(req), viaCookie: false, forgery: null };
      return { token: cookie, viaCookie: true, forgery: forgeryOf(req, cookie) };
    },
  };
}
