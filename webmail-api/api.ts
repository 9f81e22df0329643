// The webmail API (fastify plugin, prefix /api/v1): a bearer token from POST /login on every
// other route; the token is checked (and its life extended) by the annuaire, at most once per
// webmail.sessionCacheTtl (session-cache.ts),
// then the request runs over IMAP / SMTP as that person (imap-pool.ts, submit.ts), so every
// decision stays core/policy's, behind the platform's own fronts. Every route declares its
// access rule (`config.access`); the server does not start with a route that declares none.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { browserSession } from '../core/browser-session.js';
import { MssError } from '../core/errors.js';
import { PUBLIC, strictRoutes, type AccessRule } from '../core/http.js';
import type { ApiDeps } from './deps.js';
import type { LoginFn, PscWebLogin } from './login.js';
import type { ImapPool, WebSession } from './imap-pool.js';
import type { SessionCache } from './session-cache.js';
import type { RenderCache } from './render-cache.js';
import type { RenderedMessage } from './render.js';
import { dmpRoutes } from './routes-dmp.js';
import { mailRoutes } from './routes-mail.js';
import { sendRoutes } from './routes-send.js';
import { sessionRoutes } from './routes-session.js';
import { webRoutes } from './routes-web.js';
import * as S from './schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    webSession?: WebSession;
    /** The session came from the browser's cookie (webui/), not from a bearer token. */
    viaCookie?: boolean;
  }
}

export const PREFIX = '/api/v1';

/**
 * public: no token (login, the documents). self: a session, acting on itself (its boxes'
 * list, recipient search, logout). mailbox: a session, on the box named by the path
 * parameter — opened through the platform's IMAP proxy or submission as the person, so
 * core/policy decides and journals there: another person's box is a 403 from the proxy.
 */
export const access = {
  public: PUBLIC,
  self: { kind: 'self' } as AccessRule,
  mailbox: { kind: 'mailbox', param: 'bal' } as AccessRule,
};
export const WEBMAIL_ACCESS_KINDS = ['public', 'self', 'mailbox'] as const;

export interface ApiContext {
  deps: ApiDeps;
  /** The password login (login.ts): here, or in the platform's process when the API runs in workers. */
  login: LoginFn;
  /** The PSC login (login.ts pscWebLogin), here or in the platform's process; absent: PSC not configured. */
  psc?: PscWebLogin;
  pool: ImapPool;
  /** Tokens verified a moment ago (deps.verifySession behind it). */
  sessions: SessionCache;
  /** Operator host name: Message-IDs, the MDN's Reporting-UA. */
  hostname: string;
  maxUpload: number;
  /** webmail.readWhole: a message up to this size is read whole, a bigger one by its sections. */
  readWhole: number;
  /** Messages rendered before (webmail.renderCache); null: none kept. */
  rendered: RenderCache<RenderedRead> | null;
}

/** A read's answer without its flags (which change): what render-cache.ts keeps. */
export type RenderedRead = Omit<RenderedMessage, 'parsed'> & { date: string | null; size: number };

/** The session of an authenticated request (set by the onRequest hook). */
export const sessionOf = (req: FastifyRequest): WebSession => req.webSession!;

/** The web pages' session: the same token in an HttpOnly cookie, CSRF-checked (core/browser-session.ts). */
export const webCookies = browserSession('mss-webmail');

/** A request that may have been forged by another site: journalled, and the refusal to throw. */
export async function forgeryRefused(ctx: ApiContext, req: FastifyRequest, reason: string): Promise<MssError> {
  await ctx.deps.journal.append({ type: 'webmail.csrf.refused', actor: 'anonymous', details: { route: `${req.method} ${req.routeOptions.url}`, reason, remote: req.ip } });
  return new MssError('WEBMAIL_CSRF_INVALID', { reason });
}

export async function webmailApi(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  for (const s of [S.problem, S.address, S.flags, S.person, S.bal, S.folder, S.messageSummary, S.attachment, S.message, S.recipient, S.dmpRule]) app.addSchema(s);

  strictRoutes(app);
  // A bearer token is any scheme's (today the annuaire's session tokens; an OIDC access
  // token such as Pro Santé Connect's would be checked here the same way and map to a person).
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.access?.kind === 'public') return;
    const { token, viaCookie, forgery } = webCookies.credential(req);
    if (forgery) throw await forgeryRefused(ctx, req, forgery);
    const principal = token ? await ctx.sessions.verify(token) : null;
    if (!token || !principal) {
      // A token that died (logout elsewhere, password reset, age) leaves no connection behind.
      if (token) ctx.pool.closeToken(token);
      void reply.header('www-authenticate', 'Bearer realm="mss-webmail"');
      if (viaCookie) void reply.header('set-cookie', webCookies.close);
      throw new MssError('WEBMAIL_SESSION_INVALID');
    }
    req.webSession = { token, principal };
    req.viaCookie = viaCookie;
  });

  sessionRoutes(app, ctx);
  mailRoutes(app, ctx);
  sendRoutes(app, ctx);
  webRoutes(app, ctx);
  dmpRoutes(app, ctx);
}
