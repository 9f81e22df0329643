// The web pages' login (webui/): the same login as POST /api/v1/login, but the session token
// goes into an HttpOnly cookie instead of the answer, so no script of the page — an injected
// one included — ever holds it (core/browser-session.ts). Every other route takes the cookie
// in place of "Authorization: Bearer", with the CSRF header on requests that change anything
// (api.ts); logout (routes-session.ts) clears the cookies.
import type { FastifyInstance } from 'fastify';
import { access, forgeryRefused, PREFIX, webCookies, type ApiContext } from './api.js';
import * as S from './schemas.js';
import { pscWebRoutes } from '../identity/psc/web-routes.js';
import { UI_PREFIX } from '../core/web-ui.js';

export function webRoutes(app: FastifyInstance, ctx: ApiContext): void {
  // Pro Santé Connect (identity/psc/web-routes.ts): GET …/web/psc/start and …/web/psc/callback.
  pscWebRoutes(app, { ui: `${UI_PREFIX}webmail/`, cookies: webCookies, name: 'mss-webmail', config: { access: access.public }, ...(ctx.psc ? { start: ctx.psc.start, finish: ctx.psc.finish } : {}) });

  app.post(
    `${PREFIX}/web/login`,
    {
      config: { access: access.public },
      schema: {
        tags: ['session'],
        summary: 'Log in from the web pages: the session token is set in an HttpOnly cookie, never given to the page',
        description: `Same credential and refusals as POST ${PREFIX}/login. The answer sets ${webCookies.sessionCookie} (HttpOnly, Secure, SameSite=Strict) and ${webCookies.csrfCookie}, whose value the page sends back in the X-CSRF-Token header of every request that changes something.`,
        body: S.loginBody,
        response: { 200: { type: 'object', properties: { expiresAt: { type: 'string', format: 'date-time' }, person: { $ref: 'Person#' } } }, ...S.errors(400, 401, 429) },
      },
    },
    async (req, reply) => {
      const { login, password, otp } = req.body as { login: string; password: string; otp?: string };
      const { expiresAt, principal: p } = await webCookies.signIn(req, reply, (why) => forgeryRefused(ctx, req, why), () => ctx.login(login, otp ? password + otp : password, req.ip));
      return { expiresAt: new Date(expiresAt).toISOString(), person: { login: p.login, idnps: p.idnps ?? null, auth: p.auth } };
    },
  );
}
