// Logging in and out, the boxes a person may open, and recipient search.
import type { FastifyInstance } from 'fastify';
import { MssError } from '../core/errors.js';
import { principalActor } from '../core/policy/index.js';
import { MAX_RESULTS, searchRecipients } from './annuaire.js';
import { access, PREFIX, sessionOf, webCookies, type ApiContext } from './api.js';
import type { WebSession } from './imap-pool.js';
import * as S from './schemas.js';

const tag = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

/** Unseen messages in a box's INBOX (IMAP STATUS, as the person), or null when the box cannot be read right now: the list of boxes still answers. */
const inboxUnseen = (ctx: ApiContext, s: WebSession, bal: string): Promise<number | null> =>
  ctx.pool.with(s, bal, (c) => c.status('INBOX', { unseen: true })).then(
    (r) => (r ? (r.unseen ?? null) : null),
    () => null,
  );

export function sessionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { deps } = ctx;

  app.post(
    `${PREFIX}/login`,
    {
      config: { access: access.public },
      schema: {
        tags: ['session'],
        summary: 'Log in with the same credential as IMAP: a session token for "Authorization: Bearer"',
        description: 'The token is short-lived (each use extends it, up to a maximum age) and is what the API presents to the platform\'s IMAP and submission servers on the person\'s behalf; the password is never kept.',
        body: S.loginBody,
        response: { 200: { type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' }, person: { $ref: 'Person#' } } }, ...S.errors(400, 401, 429) },
      },
    },
    async (req) => {
      const { login, password, otp } = req.body as { login: string; password: string; otp?: string };
      const { token, expiresAt, principal: p } = await ctx.login(login, otp ? password + otp : password, req.ip);
      return { token, expiresAt: new Date(expiresAt).toISOString(), person: { login: p.login, idnps: p.idnps ?? null, auth: p.auth } };
    },
  );

  app.post(`${PREFIX}/logout`, { config: { access: access.self }, schema: { ...tag('session'), summary: 'End this session: the token stops working, its IMAP connections close', response: { 204: { type: 'null' }, ...S.errors(401) } } }, async (req, reply) => {
    const s = sessionOf(req);
    await deps.closeSession(s.token);
    ctx.sessions.drop(s.token);
    ctx.pool.closeToken(s.token);
    await deps.journal.append({ type: 'webmail.logout', actor: principalActor(s.principal), subject: s.principal.login, details: { remote: req.ip } });
    if (req.viaCookie) void reply.header('set-cookie', webCookies.close);
    return reply.code(204).send();
  });

  app.get(`${PREFIX}/me`, { config: { access: access.self }, schema: { ...tag('session'), summary: 'The person this token stands for', response: { 200: { $ref: 'Person#' }, ...S.errors(401) } } }, async (req) => {
    const p = sessionOf(req).principal;
    return { login: p.login, idnps: p.idnps ?? null, auth: p.auth, acr: p.acr ?? null };
  });

  app.get(
    `${PREFIX}/bals`,
    {
      config: { access: access.self },
      schema: {
        ...tag('mailboxes'),
        summary: 'The boxes this person may open: their personal box, the organisational boxes they are a member of',
        querystring: S.balsQuery,
        response: { 200: { type: 'array', items: { $ref: 'Bal#' } }, ...S.errors(400, 401) },
      },
    },
    async (req) => {
      const s = sessionOf(req);
      const { unseen } = req.query as { unseen: boolean };
      const bals = await deps.balsFor(s.principal);
      return Promise.all(bals.map(async (b) => ({ address: b.address, type: b.type, description: b.description ?? null, ...(unseen ? { unseen: await inboxUnseen(ctx, s, b.address) } : {}) })));
    },
  );

  app.get(
    `${PREFIX}/annuaire`,
    {
      config: { access: access.self },
      schema: {
        ...tag('annuaire'),
        summary: `Search recipients in the annuaire (public LDAP tree); at most ${MAX_RESULTS}`,
        querystring: S.annuaireQuery,
        response: { 200: { type: 'object', properties: { results: { type: 'array', items: { $ref: 'Recipient#' } }, truncated: { type: 'boolean' } } }, ...S.errors(400, 401, 503) },
      },
    },
    async (req) => {
      if (!deps.ldap) throw new MssError('WEBMAIL_FEATURE_UNAVAILABLE', { feature: 'the annuaire search (no LDAP directory)' });
      return searchRecipients(deps.ldap, (req.query as { q: string }).q);
    },
  );
}
