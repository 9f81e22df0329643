// The browser's Pro Santé Connect login on an API's listener (webmail, operator console): GET
// start sends the browser to PSC with the authorisation code + PKCE request and keeps state,
// nonce and verifier in an HttpOnly cookie of its own (SameSite=Lax: it must come back on
// PSC's top-level redirect, which SameSite=Strict cookies do not); GET callback checks PSC's
// answer against that cookie, opens the API's session in its usual cookies
// (core/browser-session.ts) and sends the browser to the page. A failure goes back to the
// page as #psc-erreur=<failure>, which the page says in French; the refusal is journalled by
// `finish`. Neither route takes a body or a CSRF token: they are top-level navigations.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { readCookie, type BrowserSession } from '../../core/browser-session.js';
import { isMssError, MssError } from '../../core/errors.js';
import { PSC_CALLBACK_PATH, PSC_START_PATH } from './login.js';

export interface PscWebRoutes {
  /** The page to go back to, e.g. /ui/webmail/. */
  ui: string;
  /** The API's browser session (its cookie names). */
  cookies: BrowserSession;
  /** Name of the cookie holding the login in progress: __Host-<name>-psc. */
  name: string;
  /** The route config marking a route public (no session), as the API's access check reads it. */
  config: Record<string, unknown>;
  start?(redirectUri: string): Promise<{ url: string; pending: string }>;
  finish?(query: string, pending: string | null, remote: string): Promise<{ token: string }>;
}

const str = { type: 'string', maxLength: 4096 } as const;
/** What PSC (Keycloak) puts on the callback: RFC 6749's code/state/error, RFC 9207's iss, Keycloak's session_state. */
const callbackQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { code: str, state: str, iss: str, session_state: str, error: str, error_description: str, error_uri: str },
} as const;

/** Host header → the callback URL PSC must send the browser back to (PSC itself accepts only the registered ones). */
function callbackOf(host: string | undefined): string {
  if (!host || !/^([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?$/.test(host)) throw new MssError('BAD_REQUEST', { reason: 'the Host header is not a host name' });
  return `https://${host}${PSC_CALLBACK_PATH}`;
}

export function pscWebRoutes(app: FastifyInstance, o: PscWebRoutes): void {
  const cookie = `__Host-${o.name}-psc`;
  const attrs = 'Path=/; Secure; HttpOnly; SameSite=Lax';
  const back = (reply: FastifyReply, failure: string, extra: string[] = []) => reply.header('set-cookie', [`${cookie}=; ${attrs}; Max-Age=0`, ...extra]).header('cache-control', 'no-store').redirect(`${o.ui}#psc-erreur=${encodeURIComponent(failure)}`, 303);

  app.get(
    PSC_START_PATH,
    { config: o.config, schema: { tags: ['session'], summary: 'Log in with Pro Santé Connect: redirects the browser to PSC (authorization code + PKCE)', response: { 303: { type: 'null', description: 'to PSC, or back to the page with #psc-erreur' } } } },
    async (req, reply) => {
      if (!o.start) return back(reply, 'not-configured');
      let started: { url: string; pending: string };
      try {
        started = await o.start(callbackOf(req.headers.host));
      } catch (e) {
        if (isMssError(e) && e.code === 'PSC_UNAVAILABLE') return back(reply, 'unavailable');
        throw e;
      }
      return reply.header('set-cookie', `${cookie}=${started.pending}; ${attrs}; Max-Age=600`).header('cache-control', 'no-store').redirect(started.url, 303);
    },
  );

  app.get(
    PSC_CALLBACK_PATH,
    { config: o.config, schema: { tags: ['session'], summary: "Pro Santé Connect's answer: opens the session (cookies) and goes back to the page", querystring: callbackQuery, response: { 303: { type: 'null', description: 'to the page, logged in or with #psc-erreur' } } } },
    async (req, reply) => {
      if (!o.finish) return back(reply, 'not-configured');
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
      try {
        const { token } = await o.finish(query, readCookie(req.headers.cookie, cookie), req.ip);
        return reply.header('set-cookie', [`${cookie}=; ${attrs}; Max-Age=0`, ...o.cookies.open(token)]).header('cache-control', 'no-store').redirect(o.ui, 303);
      } catch (e) {
        if (isMssError(e) && e.code === 'PSC_LOGIN_FAILED') return back(reply, String(e.details.failure ?? 'failed'));
        if (isMssError(e) && e.code === 'PSC_UNAVAILABLE') return back(reply, 'unavailable');
        throw e;
      }
    },
  );
}
