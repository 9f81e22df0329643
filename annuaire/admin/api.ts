// The admin HTTP API (fastify plugin): regional and national operators manage BALs,
// members, application certificates, credentials, imports, and read the audit trail. Every
// route is schema-validated (strictly: core/http strictRoutes) and declares who may call it
// (`config.access`, enforced in access.ts through core/policy: a refusal is a 403
// problem+json and a policy.refused journal event); lists read through the admin's scope.
// Every write is journalled with the admin as actor by the module that performs it.
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../core/db/index.js';
import { foreignOrigin } from '../../core/browser-session.js';
import { MssError, TOKEN_FAILURE, type ErrorCode } from '../../core/errors.js';
import { strictRoutes } from '../../core/http.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import { adminAccountInScope, adminScope, inAdminScope, verdictError, type AdminScope, type AdminTarget, type LoginThrottle, type Policy } from '../../core/policy/index.js';
import { proofFiles, proofZip } from '../../core/journal/proof-files.js';
import {
  addMember,
  balsFor,
  closeBal,
  createBal,
  createPerson,
  findBal,
  findPerson,
  listBals,
  listPersons,
  normaliseBalAddress,
  normaliseStructureId,
  openPgpKeyOf,
  registerAppCertificate,
  registerOpenPgpKey,
  removeOpenPgpKey,
  removeMember,
  reopenBal,
  resetCredentials,
  revokeAppCertificate,
  subjectsInScope,
  updateBal,
  type Bal,
  type BalContext,
  type PersonRef,
} from '../bal/index.js';
import { generatePassword } from '../bal/credentials.js';
import { importWhitelist, readWhitelistSource } from '../whitelist/index.js';
import { access, adminCookies, adminOf, boxOf, enforceAccess, forgeryRefused, mailboxAt, mailboxTarget, scopeOf } from './access.js';
import type { PscCheck } from '../../identity/psc/client.js';
import { pscWebRoutes } from '../../identity/psc/web-routes.js';
import { UI_PREFIX } from '../../core/web-ui.js';
import { adminPscLogin } from './psc.js';
import { adminLogin, changeAdminScope, confirmTotp, createAdmin, findAdmin, listAdmins, principalOf, resetAdminCredentials, revokeToken, scopeOfNew, setAdminActive, startTotpEnrolment, type AdminAccount, type AdminLoginFailure } from './accounts.js';
import { dashboard, type DashboardSources } from './dashboard.js';
import { computeIndicators } from '../indicators/index.js';
import { ExtractionJobs, importUpload, jobView, type ExtractionDeps } from './extraction-jobs.js';
import { MoveJobs, moveJobView } from './move-jobs.js';
import { boxPlacement, listBackends } from '../../mailstore/placement.js';
import type { RelocateDeps } from '../../mailstore/relocate.js';
import * as S from './schemas.js';
import { searchNational } from './search.js';

export interface AdminApiDeps {
  db: Db;
  journal: Journal;
  policy: Policy;
  bal: BalContext;
  tokenTtlMs: number;
  /** core/policy's login throttle, the same for every front that checks a password. */
  throttle: Pick<LoginThrottle, 'guard'>;
  /** Where uploaded extraction files wait while they are imported. */
  uploadDir: string;
  /** Where extraction reject reports are written. */
  reportDir: string;
  /** The largest extraction accepted as an upload (annuaire.import.maxUploadSize; default 4 GiB). */
  uploadMaxBytes?: number;
  /** Tests only: hold an extraction's import at a step (importFiles' onStep). */
  importOnStep?: ExtractionDeps['onStep'];
  /** The dashboard's figures from the other modules (wired by the platform); absent: those figures are null. */
  dashboardSources?: DashboardSources;
  /** admin.certificateWarning: certificates expiring within this are on the dashboard. */
  certificateWarningMs?: number;
  /** smtp.patientDomain: the monthly indicators count mail to and from patients apart. */
  patientDomain?: string;
  /** admin.requireTotp: a national account without a second factor may only enrol one (absent: false). */
  requireTotp?: boolean;
  /** What a journal event's proof needs besides the journal: the TSA's certificate chain and root (tsa.*). Absent: no proof export. */
  proofMaterial?: () => { tsaChainPem: string; caPem: string } | null;
  /** Pro Santé Connect (identity/psc, wired by the platform): the console's login by OIDC code + PKCE; absent: not offered. */
  psc?: { startLogin(redirectUri: string): Promise<{ url: string; pending: string }>; finishLogin(query: URLSearchParams, pending: string | null): Promise<PscCheck> };
  /** What a move to another pair of back ends needs (mailstore/relocate.ts mailstoreDoveadm); absent: such a move is refused. */
  mailstoreDoveadm?: RelocateDeps['doveadm'];
  log?: Logger;
}

const PREFIX = '/api/v1';
/** An extraction's name as published (it carries the extraction date). */
const FILE_NAME = /^[\w.-]{1,200}\.(txt|zip)$/;

export async function adminApi(app: FastifyInstance, deps: AdminApiDeps): Promise<void> {
  for (const s of [S.problem, S.bal, S.person, S.adminAccount, S.journalEvent]) app.addSchema(s);
  strictRoutes(app);
  enforceAccess(app, deps);

  const actor = (req: FastifyRequest) => `admin:${adminOf(req).login}`;
  const existing = async (address: string) => {
    const b = await findBal(deps.db, address);
    if (!b) throw new MssError('BAL_UNKNOWN', { address });
    return b;
  };
  const tag = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

  const loginBody = {
    type: 'object',
    required: ['login', 'password'],
    additionalProperties: false,
    properties: {
      login: { type: 'string', minLength: 1, maxLength: 128 },
      password: { type: 'string', minLength: 1, maxLength: 1024 },
      otp: { type: 'string', maxLength: 16, description: 'the 6-digit code of the authenticator app, for an account with a second factor (TOTP)' },
    },
  } as const;
  /** What a client hears of a failed login: a second-factor failure is told only after a right password. */
  const loginRefusal: Record<AdminLoginFailure, ErrorCode> = {
    'unknown-login': 'AUTH_FAILED',
    inactive: 'AUTH_FAILED',
    'bad-password': 'AUTH_FAILED',
    'otp-missing': 'ADMIN_OTP_REQUIRED',
    'bad-otp': 'ADMIN_OTP_INVALID',
    'otp-replayed': 'ADMIN_OTP_REPLAYED',
  };
  /** The one login of both routes below: throttled (core/policy), a second-factor failure counted like a wrong password, every attempt journalled. */
  const logIn = async (req: FastifyRequest) => {
    const { login, password, otp } = req.body as { login: string; password: string; otp?: string };
    const g = await deps.throttle.guard(
      { realm: 'admin', user: login, source: req.ip, front: 'admin-api' },
      () => adminLogin(deps.db, deps.journal, login, password, deps.tokenTtlMs, req.ip, { otp: otp?.trim() || undefined }),
      (r) => !r.ok,
    );
    if (!g.ok) {
      await deps.journal.append({ type: 'admin.login.failed', actor: `admin:${login.trim().slice(0, 64)}`, details: { reason: 'throttled', throttled: g.who, remote: req.ip } });
      throw verdictError(g.refusal);
    }
    if (!g.value.ok) throw new MssError(loginRefusal[g.value.failure]);
    return g.value;
  };

  app.post(
    `${PREFIX}/login`,
    {
      config: { access: access.public },
      schema: {
        tags: ['session'],
        summary: 'Log in: a bearer token for the Authorization header',
        body: loginBody,
        response: { 200: { type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' }, account: { $ref: 'AdminAccount#' } } }, 401: { $ref: 'Problem#' }, 429: { $ref: 'Problem#' }, 503: { $ref: 'Problem#' } },
      },
    },
    async (req) => {
      const { token, expiresAt, account } = await logIn(req);
      return { token, expiresAt, account };
    },
  );

  app.post(
    `${PREFIX}/web/login`,
    {
      config: { access: access.public },
      schema: {
        tags: ['session'],
        summary: 'Log in from the operator console: the session token is set in an HttpOnly cookie, never given to the page',
        description: `Same credential and refusals as POST ${PREFIX}/login. The answer sets ${adminCookies.sessionCookie} (HttpOnly, Secure, SameSite=Strict) and ${adminCookies.csrfCookie}, whose value the page sends back in the X-CSRF-Token header of every request that changes something.`,
        body: loginBody,
        response: { 200: { type: 'object', properties: { expiresAt: { type: 'string', format: 'date-time' }, account: { $ref: 'AdminAccount#' } } }, 401: { $ref: 'Problem#' }, 403: { $ref: 'Problem#' }, 429: { $ref: 'Problem#' }, 503: { $ref: 'Problem#' } },
      },
    },
    async (req, reply) => {
      const { expiresAt, account } = await adminCookies.signIn(req, reply, (why) => forgeryRefused(deps.journal, req, why), () => logIn(req));
      return { expiresAt, account };
    },
  );

  // Pro Santé Connect (identity/psc/web-routes.ts; the account mapping is annuaire/admin/psc.ts).
  const psc = deps.psc;
  pscWebRoutes(app, {
    ui: `${UI_PREFIX}console/`,
    cookies: adminCookies,
    name: 'mss-admin',
    config: { access: access.public },
    ...(psc
      ? {
          start: (uri: string) => psc.startLogin(uri),
          async finish(query: string, pending: string | null, remote: string) {
            const r = await psc.finishLogin(new URLSearchParams(query), pending);
            if (!r.ok) {
              await deps.journal.append({ type: 'admin.login.failed', actor: 'anonymous', details: { auth: 'psc', reason: r.failure, remote } });
              throw new MssError('PSC_LOGIN_FAILED', { why: TOKEN_FAILURE[r.failure], failure: r.failure });
            }
            const s = await adminPscLogin(deps.db, deps.journal, r.idnps, { acr: r.acr, amr: r.amr }, deps.tokenTtlMs, remote);
            if (!s) throw new MssError('PSC_LOGIN_FAILED', { why: TOKEN_FAILURE['no-account'], failure: 'no-account' });
            return s;
          },
        }
      : {}),
  });

  app.post(`${PREFIX}/logout`, { config: { access: access.self }, schema: { ...tag('session'), summary: 'End this session (the token stops working)', response: { 204: { type: 'null' } } } }, async (req, reply) => {
    await revokeToken(deps.db, req.adminToken!);
    if (req.adminViaCookie) void reply.header('set-cookie', adminCookies.close);
    return reply.code(204).send();
  });

  app.get(`${PREFIX}/me`, { config: { access: access.self }, schema: { ...tag('session'), summary: 'The logged-in account and its scope', response: { 200: { $ref: 'AdminAccount#' } } } }, async (req) => adminOf(req));

  app.get(
    `${PREFIX}/dashboard`,
    {
      config: { access: access.scoped },
      schema: {
        ...tag('dashboard'),
        summary: "The console's dashboard, in the admin's scope: boxes by type, mail since `since`, what waits, the last national imports, alerts",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { since: { type: 'string', format: 'date-time', pattern: '^(19|20|21)[0-9]{2}-', description: 'start of "today" as the admin counts it (default: midnight UTC)' } },
        },
        response: { 200: S.dashboard, ...S.errors },
      },
    },
    async (req) => {
      const q = req.query as { since?: string };
      const now = new Date();
      const since = q.since ? new Date(q.since) : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
      return dashboard(deps.db, scopeOf(req), { since, now, certificateWarningMs: deps.certificateWarningMs ?? 30 * 86_400_000, sources: deps.dashboardSources });
    },
  );

  app.get(
    `${PREFIX}/indicators`,
    {
      config: { access: access.scoped },
      schema: {
        ...tag('dashboard'),
        summary: "The operator's monthly indicators, in the admin's scope: boxes by type, messages by direction, refusals by reason, DMP hand-offs, people logged in by method",
        description: 'One row per mail domain of the scope; a national admin also gets `*`, the whole operator. `domain` narrows to one domain: outside a regional admin\'s scope it is refused (403, journalled). Months are counted in UTC. `mss indicators` prints the same as CSV or JSON.',
        querystring: {
          type: 'object',
          required: ['month'],
          additionalProperties: false,
          properties: {
            month: { type: 'string', maxLength: 7, pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$', description: 'YYYY-MM' },
            domain: { type: 'string', minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.-]+$', description: 'only this mail domain (an IDN in its xn-- form)' },
          },
        },
        response: { 200: S.indicators, ...S.errors },
      },
    },
    async (req) => {
      const q = req.query as { month: string; domain?: string };
      if (q.domain) {
        const v = await deps.policy.mayAdminister(principalOf(adminOf(req)), [{ kind: 'domain', domain: q.domain }], { front: 'admin-api', remote: req.ip });
        if (!v.ok) throw verdictError(v);
      }
      return computeIndicators(deps.db, { month: q.month, domain: q.domain, scope: scopeOf(req), localDomains: deps.bal.domains ?? [], patientDomain: deps.patientDomain ?? 'patient.mssante.fr' });
    },
  );

  // --- mailboxes -------------------------------------------------------------------------
  app.get(
    `${PREFIX}/bals`,
    {
      config: { access: access.scoped },
      schema: {
        ...tag('mailboxes'),
        summary: "List the operator's mailboxes (a regional account sees its scope only)",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: S.balType,
            status: { type: 'string', enum: ['active', 'closed'] },
            domain: { type: 'string', maxLength: 253 },
            q: { type: 'string', maxLength: 200 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, maximum: S.MAX_OFFSET, default: 0 },
          },
        },
        response: { 200: { type: 'array', items: { $ref: 'Bal#' } } },
      },
    },
    async (req) => {
      const q = req.query as { type?: Bal['type']; status?: Bal['status']; domain?: string; q?: string; limit: number; offset: number };
      return listBals(deps.db, scopeOf(req), { type: q.type, status: q.status, domain: q.domain, text: q.q, limit: q.limit, offset: q.offset });
    },
  );

  /** Where a new mailbox would be: its domain, and its structure (ORG/APP: the owner; PER/CAB: the optional structure). */
  const newBalTarget = (body: { address: string; type: Bal['type']; owner: string; structure?: string }) => {
    const { address, domain } = normaliseBalAddress(body.address);
    const personal = body.type === 'PER' || body.type === 'CAB';
    const structureId = personal ? (body.structure ? normaliseStructureId(body.structure) : null) : normaliseStructureId(body.owner);
    return mailboxTarget({ address, domain, structureId });
  };

  app.post(
    `${PREFIX}/bals`,
    {
      config: { access: access.targets(async (req) => [newBalTarget(req.body as Parameters<typeof newBalTarget>[0])]) },
      schema: {
        ...tag('mailboxes'),
        summary: 'Create a mailbox (PER, ORG, APP or CAB)',
        body: {
          type: 'object',
          required: ['address', 'type', 'owner'],
          additionalProperties: false,
          properties: {
            address: { type: 'string', minLength: 3, maxLength: 254 },
            type: S.balType,
            owner: { type: 'string', minLength: 9, maxLength: 20, description: 'PER/CAB: RPPS, ADELI or IDNPS; ORG/APP: FINESS or SIRET' },
            structure: { type: 'string', maxLength: 20, description: 'PER: the structure the professional works in (optional)' },
            displayName: { type: 'string', maxLength: 200 },
            description: { type: 'string', maxLength: 500 },
            service: { type: 'string', maxLength: 200 },
            responsible: { type: 'string', maxLength: 200 },
            listeRouge: { type: 'boolean' },
            rank: S.rank,
          },
        },
        response: { 201: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req, reply) => reply.code(201).send(await createBal(deps.bal, req.body as Parameters<typeof createBal>[1], actor(req))),
  );

  app.get(
    `${PREFIX}/bals/:address`,
    { config: { access: access.mailbox() }, schema: { ...tag('mailboxes'), summary: 'One mailbox, with members and certificates', params: S.addressParam, response: { 200: { $ref: 'Bal#' }, ...S.errors } } },
    async (req) => boxOf(req),
  );

  app.patch(
    `${PREFIX}/bals/:address`,
    {
      config: { access: access.mailbox() },
      schema: {
        ...tag('mailboxes'),
        summary: 'Change what may change (the address and type never do)',
        params: S.addressParam,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            displayName: { type: 'string', maxLength: 200 },
            description: { type: 'string', maxLength: 500 },
            service: { type: 'string', maxLength: 200 },
            responsible: { type: 'string', maxLength: 200 },
            listeRouge: { type: 'boolean' },
            rank: { ...S.rank, type: ['integer', 'null'] },
          },
        },
        response: { 200: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req) => updateBal(deps.bal, boxOf(req).address, req.body as Parameters<typeof updateBal>[2], actor(req)),
  );

  for (const [verb, fn, summary] of [
    ['close', closeBal, 'Close a mailbox: nobody opens it, mail to it is refused; the address is never reused'],
    ['reopen', reopenBal, 'Reopen a closed mailbox'],
  ] as const) {
    app.post(
      `${PREFIX}/bals/:address/${verb}`,
      { config: { access: access.mailbox() }, schema: { ...tag('mailboxes'), summary, params: S.addressParam, body: S.reasonBody, response: { 200: { $ref: 'Bal#' }, ...S.errors } } },
      async (req) => fn(deps.bal, boxOf(req).address, actor(req), (req.body as { reason?: string } | null)?.reason),
    );
  }

  const personRefBody = {
    type: 'object',
    additionalProperties: false,
    minProperties: 1,
    maxProperties: 1,
    properties: { login: { type: 'string', minLength: 1, maxLength: 128 }, idnps: { type: 'string', minLength: 9, maxLength: 12 } },
  } as const;

  app.post(
    `${PREFIX}/bals/:address/members`,
    { config: { access: access.mailbox() }, schema: { ...tag('members'), summary: 'Add a person to an organisational mailbox', params: S.addressParam, body: personRefBody, response: { 200: { $ref: 'Bal#' }, ...S.errors } } },
    async (req) => addMember(deps.bal, boxOf(req).address, req.body as PersonRef, actor(req)),
  );

  app.delete(
    `${PREFIX}/bals/:address/members/:login`,
    {
      config: { access: access.mailbox() },
      schema: {
        ...tag('members'),
        summary: 'Remove a person from an organisational mailbox',
        params: S.params({ login: S.login }),
        response: { 200: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req) => removeMember(deps.bal, boxOf(req).address, { login: (req.params as { login: string }).login }, actor(req)),
  );

  app.post(
    `${PREFIX}/bals/:address/certificates`,
    {
      config: { access: access.mailbox() },
      schema: {
        ...tag('certificates'),
        summary: "Register the application certificate (PEM) of a technical mailbox",
        params: S.addressParam,
        description:
          'The certificate must chain to a root of the trust bundle (issuers may follow it in `pem`), be valid now, not be revoked, be fit for TLS client authentication, and carry the structure id of the box in its OU. One already bound to another box needs `allowShared: true` (journalled).',
        body: {
          type: 'object',
          required: ['pem'],
          additionalProperties: false,
          properties: { pem: { type: 'string', minLength: 50, maxLength: 65536 }, allowShared: { type: 'boolean', description: 'Bind it although other boxes already have it.' } },
        },
        response: { 200: { $ref: 'Bal#' }, 422: { $ref: 'Problem#' }, ...S.errors },
      },
    },
    async (req) => {
      const b = boxOf(req);
      const body = req.body as { pem: string; allowShared?: boolean };
      return registerAppCertificate(deps.bal, b.address, body.pem, actor(req), { allowShared: body.allowShared === true });
    },
  );

  app.delete(
    `${PREFIX}/bals/:address/certificates/:fingerprint`,
    {
      config: { access: access.mailbox() },
      schema: {
        ...tag('certificates'),
        summary: "Revoke a technical mailbox's application certificate (SHA-256 fingerprint)",
        params: S.params({ fingerprint: { type: 'string', maxLength: 95, pattern: '^[0-9A-Fa-f:]{64,95}$' } }),
        response: { 200: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req) => revokeAppCertificate(deps.bal, boxOf(req).address, (req.params as { fingerprint: string }).fingerprint, actor(req)),
  );

  // --- OpenPGP (issue 16 §4): a box with a key gets its mail stored encrypted to it -------
  const openpgpTag = { ...tag('openpgp'), params: S.addressParam };
  app.get(
    `${PREFIX}/bals/:address/openpgp-key`,
    { config: { access: access.mailbox() }, schema: { ...openpgpTag, summary: "The box's OpenPGP public key", response: { 200: S.openpgpKey, ...S.errors } } },
    async (req) => {
      const k = await openPgpKeyOf(deps.db, boxOf(req).address);
      if (!k) throw new MssError('OPENPGP_KEY_NONE', { address: boxOf(req).address });
      return k;
    },
  );

  app.put(
    `${PREFIX}/bals/:address/openpgp-key`,
    {
      config: { access: access.mailbox() },
      schema: {
        ...openpgpTag,
        summary: "Register (or replace) the box's OpenPGP public key: from the next delivery on, its mail is stored encrypted to it (PGP/MIME)",
        description:
          'One ASCII-armored public key (gpg --armor --export), not expired nor revoked, with a key usable for encryption. A private key is refused. Mail already stored is left as it is. Refusals are 422 problem+json and journalled (bal.openpgp.refused).',
        body: { type: 'object', required: ['armored'], additionalProperties: false, properties: { armored: { type: 'string', minLength: 1, maxLength: 262144 } } },
        response: { 200: S.openpgpKey, 422: { $ref: 'Problem#' }, ...S.errors },
      },
    },
    async (req) => registerOpenPgpKey(deps.bal, boxOf(req).address, (req.body as { armored: string }).armored, actor(req)),
  );

  app.delete(
    `${PREFIX}/bals/:address/openpgp-key`,
    { config: { access: access.mailbox() }, schema: { ...openpgpTag, summary: "Remove the box's OpenPGP key: mail delivered from then on is stored in clear", response: { 204: { type: 'null' }, ...S.errors } } },
    async (req, reply) => {
      await removeOpenPgpKey(deps.bal, boxOf(req).address, actor(req));
      return reply.code(204).send();
    },
  );

  // --- the shared mail store: its back ends, where a box is, moving it (mailstore/relocate.ts) ---
  const moves = new MoveJobs({ db: deps.db, journal: deps.journal, doveadm: deps.mailstoreDoveadm });
  const storeAccess = access.national("the mail store's back ends");
  const moveJobSchema = {
    type: 'object',
    properties: {
      id: { type: 'string' },
      address: { type: 'string' },
      backend: { type: 'string', description: 'the back end the box is to go to' },
      actor: { type: 'string' },
      state: { type: 'string', enum: ['running', 'done', 'failed'] },
      startedAt: { type: 'string', format: 'date-time' },
      finishedAt: { type: ['string', 'null'], format: 'date-time' },
      steps: { type: 'array', items: { type: 'string' }, description: 'one line per step (copy, freeze, final, replica, switch, cleanup), as `mss mailstore move` prints them' },
      result: {
        type: ['object', 'null'],
        description: 'once done: from, to, across (another pair: the mail copied); across, the messages copied and the back ends emptied',
        properties: { from: { type: 'string' }, to: { type: 'string' }, across: { type: 'boolean' }, messages: { type: 'integer' }, removedFrom: { type: 'array', items: { type: 'string' } } },
      },
      error: { type: ['object', 'null'], description: 'a failed move: the step that failed, the back end that holds the box now (it stays usable there), and why', properties: { step: { type: 'string' }, on: { type: ['string', 'null'] }, detail: { type: 'string' } } },
    },
  } as const;

  app.get(
    `${PREFIX}/mailstore/backends`,
    {
      config: { access: storeAccess },
      schema: {
        ...tag('mailstore'),
        summary: "The shared store's Dovecot back ends (mailstore.cluster): their pair, when each was last seen, how many boxes each holds; empty for the embedded store",
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: { name: { type: 'string' }, host: { type: 'string' }, imapPort: { type: 'integer' }, lmtpPort: { type: 'integer' }, doveadmPort: { type: 'integer' }, partner: { type: ['string', 'null'] }, seenAt: { type: 'string', format: 'date-time' }, boxes: { type: 'integer' } },
            },
          },
          ...S.errors,
        },
      },
    },
    async () =>
      (await listBackends(deps.db)).map((b) => ({ name: b.name, host: b.host, imapPort: b.imap_port, lmtpPort: b.lmtp_port, doveadmPort: b.doveadm_port, partner: b.partner, seenAt: new Date(b.seen_at).toISOString(), boxes: b.boxes })),
  );

  app.get(
    `${PREFIX}/bals/:address/placement`,
    {
      config: { access: access.mailbox() },
      schema: {
        ...tag('mailstore'),
        summary: 'Which back end holds the mailbox, and its pair (the replica); 404 while it is not placed (it is on its first delivery or login)',
        params: S.addressParam,
        response: { 200: { type: 'object', properties: { address: { type: 'string' }, backend: { type: 'string' }, partner: { type: ['string', 'null'] }, placedAt: { type: 'string', format: 'date-time' } } }, ...S.errors },
      },
    },
    async (req) => {
      const p = await boxPlacement(deps.db, boxOf(req).address);
      if (!p) throw new MssError('NOT_FOUND', { what: `a back end holding ${boxOf(req).address} (it is placed on its first delivery or login, and only in a shared store)` });
      return { address: p.address, backend: p.backend, partner: p.partner, placedAt: new Date(p.placed_at).toISOString() };
    },
  );

  app.post(
    `${PREFIX}/bals/:address/move`,
    {
      config: { access: storeAccess },
      schema: {
        ...tag('mailstore'),
        summary: 'Move a mailbox to another back end (as `mss mailstore move`)',
        description:
          'Within its pair (where its replica is) only the map changes: answered 200, done. To a back end of another pair the mail is copied first, online, by the back ends\' doveadm servers, ' +
          'then the box is frozen for the last incremental copy (its deliveries wait, its logins are refused for a moment), the map switched and the old pair emptied: answered 202 with the move, ' +
          'whose progress GET /mailstore/moves/{id} tells. A failure at any step leaves the box where it was, in use, and names the step. A move that cannot be made (unknown back end, box not placed, ' +
          'another move under way) is refused with 409, nothing changed. Journalled: mailstore.box.moved, move_refused, move_failed.',
        params: S.addressParam,
        body: {
          type: 'object',
          required: ['backend'],
          additionalProperties: false,
          properties: {
            backend: { type: 'string', minLength: 1, maxLength: 64, description: 'the back end to hold the box (GET /mailstore/backends lists them)' },
            freezeSeconds: { type: 'integer', minimum: 5, maximum: 3600, default: 300, description: 'longest the box may stay frozen during the last copy (a move that takes longer is not switched)' },
          },
        },
        response: { 200: moveJobSchema, 202: moveJobSchema, ...S.errors },
      },
    },
    async (req, reply) => {
      const { backend, freezeSeconds } = req.body as { backend: string; freezeSeconds: number };
      const job = await moves.start({ address: (req.params as { address: string }).address, backend, freezeSeconds, actor: actor(req) });
      return reply.code(job.state === 'running' ? 202 : 200).send(moveJobView(job));
    },
  );

  app.get(
    `${PREFIX}/mailstore/moves/:id`,
    {
      config: { access: storeAccess },
      schema: {
        ...tag('mailstore'),
        summary: 'A move: its steps while it runs, its result or the step that failed once ended',
        params: { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', maxLength: 32, pattern: '^[0-9a-f]{32}$' } } },
        response: { 200: moveJobSchema, ...S.errors },
      },
    },
    async (req, reply) => reply.header('cache-control', 'no-store').send(moveJobView(moves.get((req.params as { id: string }).id))),
  );

  // --- persons and credentials -----------------------------------------------------------
  app.get(
    `${PREFIX}/persons`,
    {
      config: { access: access.scoped },
      schema: {
        ...tag('persons'),
        summary: 'Local accounts (login, name, national id); a regional account sees the persons attached to a mailbox of its scope (holder or member)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { q: { type: 'string', maxLength: 200 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, offset: { type: 'integer', minimum: 0, maximum: S.MAX_OFFSET, default: 0 } },
        },
        response: { 200: { type: 'array', items: { $ref: 'Person#' } } },
      },
    },
    async (req) => {
      const q = req.query as { q?: string; limit: number; offset: number };
      return listPersons(deps.db, scopeOf(req), { text: q.q, limit: q.limit, offset: q.offset });
    },
  );

  app.post(
    `${PREFIX}/persons`,
    {
      // A regional account must tie the new person to a mailbox of its scope; nothing else places a person in a scope.
      config: {
        access: access.targets(async (req) => {
          const { memberOf } = req.body as { memberOf?: string };
          return memberOf ? [(await mailboxAt(deps.db, memberOf)).target] : [];
        }),
      },
      schema: {
        ...tag('persons'),
        summary: 'Create a local account with a generated password (returned once); memberOf adds it to an ORG box at once',
        description: 'A regional account must give memberOf, an ORG mailbox of its scope: that is what ties the person to its scope.',
        body: {
          type: 'object',
          required: ['login'],
          additionalProperties: false,
          properties: {
            login: { type: 'string', minLength: 2, maxLength: 128 },
            idnps: { type: 'string', minLength: 9, maxLength: 12 },
            nom: { type: 'string', maxLength: 100 },
            prenom: { type: 'string', maxLength: 100 },
            memberOf: { type: 'string', minLength: 3, maxLength: 254 },
          },
        },
        response: { 201: { type: 'object', properties: { person: { $ref: 'Person#' }, password: { type: 'string' }, memberOf: { $ref: 'Bal#' } } }, ...S.errors },
      },
    },
    async (req, reply) => {
      const body = req.body as { login: string; idnps?: string; nom?: string; prenom?: string; memberOf?: string };
      const box = body.memberOf ? await existing(body.memberOf) : undefined;
      const password = generatePassword();
      const person = await createPerson(deps.bal, { login: body.login, idnps: body.idnps, nom: body.nom, prenom: body.prenom, password }, actor(req));
      const memberOf = box ? await addMember(deps.bal, box.address, { id: person.id }, actor(req)) : undefined;
      return reply.code(201).send({ person, password, ...(memberOf ? { memberOf } : {}) });
    },
  );

  app.post(
    `${PREFIX}/persons/:login/reset-credentials`,
    {
      // In scope only when every mailbox the person may open is: a regional admin cannot take over someone's other boxes.
      // An unknown login has no mailbox, so it is national-only: its absence is not told outside a national account.
      config: {
        access: access.targets(async (req) => {
          const person = await findPerson(deps.db, { login: (req.params as { login: string }).login });
          return person ? (await balsFor(deps.db, person, { includeClosed: true })).map(mailboxTarget) : [];
        }),
      },
      schema: {
        ...tag('persons'),
        summary: "Reset a person's password (generated, returned once); resetTotp also clears the second factor",
        params: { type: 'object', required: ['login'], additionalProperties: false, properties: { login: S.login } },
        body: S.optionalBody({ resetTotp: { type: 'boolean', default: false } }),
        response: { 200: { type: 'object', properties: { person: { $ref: 'Person#' }, password: { type: 'string' } } }, ...S.errors },
      },
    },
    async (req) => {
      const { login } = req.params as { login: string };
      const person = await findPerson(deps.db, { login });
      if (!person) throw new MssError('PERSON_UNKNOWN', { person: login });
      return resetCredentials(deps.bal, { id: person.id }, actor(req), { resetTotp: (req.body as { resetTotp?: boolean } | null)?.resetTotp });
    },
  );

  // --- imports (national operations) -----------------------------------------------------
  const extractionDeps: ExtractionDeps = {
    db: deps.db,
    journal: deps.journal,
    uploadDir: deps.uploadDir,
    reportDir: deps.reportDir,
    maxBytes: deps.uploadMaxBytes ?? 4 * 1024 ** 3,
    log: deps.log,
    onStep: deps.importOnStep,
  };
  const jobs = new ExtractionJobs(extractionDeps);
  await app.register(async (imports) => {
    // Raw bodies here: the liste blanche as XML, extractions as bytes streamed to disk (capped in extraction-jobs.ts).
    imports.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'buffer', bodyLimit: 64 << 20 }, (_req, body, done) => done(null, body));
    imports.addContentTypeParser(['application/octet-stream', 'application/zip', 'text/plain'], { bodyLimit: 16 * 1024 ** 3 }, (_req, payload, done) => done(null, payload));

    // Every refusal of an import — a bad or oversized file, a preview that does not match, an
    // older list, bad parameters — is journalled with what the admin was told. (Refusals by
    // core/policy and of the session are journalled where they are decided.)
    imports.addHook('onSend', async (req, reply, payload) => {
      const status = reply.statusCode;
      if (status < 400 || status === 401 || status === 403) return payload;
      let p: { title?: string; detail?: string } = {};
      try {
        p = JSON.parse(String(payload)) as typeof p;
      } catch {
        /* not a problem document: the status says enough */
      }
      // The file's name is the event's subject when it is one (a refused name may hold anything: it stays in the details).
      const name = (req.query as Record<string, unknown> | undefined)?.name;
      await deps.journal.append({
        type: 'admin.import.refused',
        actor: req.admin ? actor(req) : 'anonymous',
        subject: typeof name === 'string' && FILE_NAME.test(name) ? name : undefined,
        details: { route: `${req.method} ${req.routeOptions.url}`, status, code: p.title ?? null, reason: p.detail ?? null, ...(typeof name === 'string' ? { name: name.slice(0, 300) } : {}), remote: req.ip },
      });
      return payload;
    });

    const hex64 = { type: 'string', maxLength: 64, pattern: '^[0-9a-f]{64}$' } as const;
    const domainList = { type: 'array', items: { type: 'string' } } as const;
    imports.post(
      `${PREFIX}/imports/whitelist`,
      {
        config: { access: access.national('the liste blanche') },
        schema: {
          ...tag('imports'),
          summary: 'Import the liste blanche: the XML as body (application/xml), or {"url": …} to download it; or preview what it would change (dryRun)',
          description:
            'Refused (409) when older than the list in place; applied as a diff in one transaction; journalled domain by domain. ' +
            '`dryRun=true` answers the same difference and writes nothing (a preview). To apply exactly what was previewed, send the same file with ' +
            '`sha256` (the preview\'s `sha256`) and `base` (the preview\'s `base`, or `none`): a different file, or a list in place that changed meanwhile, is refused (409 WHITELIST_PREVIEW_MISMATCH).',
          querystring: {
            type: 'object',
            additionalProperties: false,
            dependencies: { sha256: ['base'], base: ['sha256'] },
            properties: {
              dryRun: { type: 'boolean', default: false },
              sha256: { ...hex64, description: 'the previewed file\'s SHA-256: anything else is refused' },
              base: { type: 'string', maxLength: 64, pattern: '^([0-9a-f]{64}|none)$', description: 'the SHA-256 of the list in place when previewed (the preview\'s `base`), or `none`' },
            },
          },
          body: {
            content: {
              'application/json': { schema: { type: 'object', required: ['url'], additionalProperties: false, properties: { url: { type: 'string', maxLength: 2048, pattern: '^https?://[^\\s]+$' } } } },
              'application/xml': { schema: S.rawBody('the liste blanche (listeblanchemssante.xml)') },
              'text/xml': { schema: S.rawBody('the liste blanche (listeblanchemssante.xml)') },
            },
          },
          response: {
            200: {
              type: 'object',
              properties: {
                generatedAt: { type: 'string', format: 'date-time' },
                source: { type: 'string' },
                sha256: { type: 'string' },
                base: { type: ['string', 'null'], description: 'SHA-256 of the list in place it was compared with (null: none)' },
                dryRun: { type: 'boolean' },
                domains: { type: 'integer' },
                added: domainList,
                removed: domainList,
                changed: domainList,
                changes: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { domain: { type: 'string' }, fields: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, before: { type: ['string', 'null'] }, after: { type: ['string', 'null'] } } } } },
                  },
                },
                rejected: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, reason: { type: 'string' } } } },
                duplicates: domainList,
                unchanged: { type: 'boolean' },
              },
            },
            413: { $ref: 'Problem#' },
            422: { $ref: 'Problem#' },
            ...S.errors,
          },
        },
      },
      async (req) => {
        const q = req.query as { dryRun: boolean; sha256?: string; base?: string };
        // Validated per content type: XML bytes, or {"url"} as JSON.
        const b = req.body as Buffer | { url: string };
        const [body, source] = Buffer.isBuffer(b) ? [b, 'upload via admin API'] : [await readWhitelistSource(b.url), b.url];
        const expect = q.sha256 ? { sha256: q.sha256, base: q.base === 'none' ? null : q.base! } : undefined;
        return importWhitelist(deps.db, deps.journal, body, source, actor(req), { dryRun: q.dryRun, expect });
      },
    );

    const extractionQuery = {
      type: 'object',
      required: ['name'],
      additionalProperties: false,
      properties: {
        name: { type: 'string', maxLength: 204, pattern: FILE_NAME.source, description: 'the file name as published: it carries the extraction date' },
        dryRun: { type: 'boolean', default: false },
        force: { type: 'boolean', default: false },
      },
    } as const;
    const extractionBody = { content: Object.fromEntries(['application/octet-stream', 'application/zip', 'text/plain'].map((t) => [t, { schema: S.rawBody('the extraction file, streamed to disk') }])) };
    const extractionOf = (req: FastifyRequest) => {
      const q = req.query as { name: string; dryRun: boolean; force: boolean };
      const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
      return [{ ...q, actor: actor(req) }, req.body, length] as const;
    };

    imports.post(
      `${PREFIX}/imports/extractions`,
      {
        config: { access: access.national('the national extractions') },
        schema: {
          ...tag('imports'),
          summary: 'Import a national extraction (PS_LibreAcces_Personne_activite_*.txt, Extraction_Correspondance_MSSante_*.txt, or a .zip of them) sent as the body; answered when done',
          description: 'Larger than annuaire.import.maxUploadSize: refused (413), nothing kept. To follow a long import, start it as a job instead (POST /imports/extractions/jobs).',
          querystring: extractionQuery,
          body: extractionBody,
          response: { 200: { type: 'object', additionalProperties: true }, 413: { $ref: 'Problem#' }, ...S.errors },
        },
      },
      async (req) => importUpload(extractionDeps, ...extractionOf(req)),
    );

    const jobSchema = {
      type: 'object',
      properties: {
        id: { type: 'string' },
        name: { type: 'string' },
        actor: { type: 'string' },
        dryRun: { type: 'boolean' },
        state: { type: 'string', enum: ['running', 'done', 'failed'] },
        phase: { type: 'string', enum: ['reading', 'applying', 'finished'], description: 'reading the file (bytes of total), then applying the difference' },
        startedAt: { type: 'string', format: 'date-time' },
        finishedAt: { type: ['string', 'null'], format: 'date-time' },
        bytes: { type: 'integer' },
        total: { type: 'integer' },
        percent: { type: 'integer', minimum: 0, maximum: 100, description: 'of the file read' },
        lines: { type: 'integer' },
        rejected: { type: 'integer' },
        rejects: { type: 'array', description: 'the first rejected lines (all of them are in the report)', items: { type: 'object', properties: { file: { type: 'string' }, line: { type: 'integer' }, reason: { type: 'string' }, text: { type: 'string' } } } },
        outcome: { type: ['object', 'null'], additionalProperties: true, description: 'once done: as POST /imports/extractions answers' },
        error: { type: ['object', 'null'], properties: { code: { type: 'string' }, detail: { type: 'string' } } },
      },
    } as const;
    const jobParam = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', maxLength: 32, pattern: '^[0-9a-f]{32}$' } } } as const;
    const jobOf = (req: FastifyRequest) => {
      const j = jobs.get((req.params as { id: string }).id);
      if (!j) throw new MssError('NOT_FOUND', { what: 'this import job (jobs are kept in memory until the platform restarts)' });
      return j;
    };

    imports.post(
      `${PREFIX}/imports/extractions/jobs`,
      {
        config: { access: access.national('the national extractions') },
        schema: {
          ...tag('imports'),
          summary: 'Start importing a national extraction sent as the body: answered once the file is received, with the job to follow',
          description:
            'Answered 202 with the job, whose progress GET /imports/extractions/jobs/{id} tells. With `Accept: application/x-ndjson` the answer (202 too) is instead a stream of the job, one JSON line per step ' +
            '(each further percent of the file read, the start of the apply, the end), closed when the import ends: nothing in it needs the database, so it flows on PGlite while a first import holds it.',
          querystring: extractionQuery,
          body: extractionBody,
          response: { 202: { ...jobSchema, description: 'the job; with Accept: application/x-ndjson, the job once per step (one JSON line each), the last line when it ended' }, 413: { $ref: 'Problem#' }, ...S.errors },
        },
      },
      async (req, reply) => {
        const job = await jobs.start(...extractionOf(req));
        if (!/\bapplication\/x-ndjson\b/.test(req.headers.accept ?? '')) return reply.code(202).send(jobView(job));
        const out = new PassThrough();
        const line = (j: typeof job) => {
          if (!out.destroyed) out.write(JSON.stringify(jobView(j)) + '\n');
          if (j.state !== 'running') out.end();
        };
        // The importer keeps going when the client leaves (its page closed): the job's route still tells it.
        const unwatch = jobs.watch(job.id, line);
        out.on('close', unwatch);
        line(job);
        return reply.code(202).type('application/x-ndjson').header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(out);
      },
    );

    imports.get(
      `${PREFIX}/imports/extractions/jobs/:id`,
      { config: { access: access.national('the national extractions') }, schema: { ...tag('imports'), summary: 'An import job: its progress while it runs, its outcome and first rejected lines once done', params: jobParam, response: { 200: jobSchema, ...S.errors } } },
      async (req, reply) => reply.header('cache-control', 'no-store').send(jobView(jobOf(req))),
    );

    imports.get(
      `${PREFIX}/imports/extractions/jobs/:id/report`,
      {
        config: { access: access.national('the national extractions') },
        schema: {
          ...tag('imports'),
          summary: 'The reject report of a finished import job (tab-separated: file:line, reason, the line)',
          params: jobParam,
          response: { 200: { description: 'text/tab-separated-values', type: 'string', format: 'binary' }, ...S.errors },
        },
      },
      async (req, reply) => {
        const j = jobOf(req);
        if (j.state === 'running') throw new MssError('NOT_FOUND', { what: 'the report of an import still running' });
        return reply
          .header('content-type', 'text/tab-separated-values; charset=utf-8')
          .header('content-disposition', `attachment; filename="rejets-${j.name.replace(/\.(txt|zip)$/, '')}.tsv"`)
          .header('cache-control', 'no-store')
          .send(createReadStream(j.reportPath));
      },
    );
  });

  // --- search and audit trail ------------------------------------------------------------
  app.get(
    `${PREFIX}/search`,
    {
      // local: the operator's mailboxes, read through the scope; national: the published national annuaire, public data.
      config: { access: access.scoped },
      schema: {
        ...tag('annuaire'),
        summary: "Search the operator's mailboxes (within scope) and the national MSSanté addresses by name, mail or RPPS",
        querystring: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { q: { type: 'string', minLength: 2, maxLength: 200 }, mail: { type: 'string', maxLength: 254 }, rpps: { type: 'string', maxLength: 12, pattern: '^[0-9]{11,12}$' }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              local: { type: 'array', items: { $ref: 'Bal#' } },
              national: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    address: { type: 'string' },
                    type: { type: 'string' },
                    idnps: { type: ['string', 'null'] },
                    nom: { type: ['string', 'null'] },
                    prenom: { type: ['string', 'null'] },
                    profession: { type: ['string', 'null'] },
                    structureId: { type: ['string', 'null'] },
                    raisonSociale: { type: ['string', 'null'] },
                    service: { type: ['string', 'null'] },
                    active: { type: 'boolean' },
                  },
                },
              },
            },
          },
        },
      },
    },
    async (req) => {
      const q = req.query as { q?: string; mail?: string; rpps?: string; limit: number };
      const scope = scopeOf(req);
      let local: Bal[] = [];
      if (q.mail) local = (await listBals(deps.db, scope, { text: q.mail, limit: q.limit })).filter((b) => b.address === q.mail!.trim().toLowerCase());
      else if (q.rpps) local = await listBals(deps.db, scope, { ownerId: q.rpps.length === 11 ? '8' + q.rpps : q.rpps, limit: q.limit });
      else if (q.q) local = await listBals(deps.db, scope, { text: q.q, limit: q.limit });
      return { local, national: await searchNational(deps.db, { text: q.q, mail: q.mail, rpps: q.rpps, limit: q.limit }) };
    },
  );

  /** The journal subjects an admin reads: null for a national account; else its scope's boxes and persons, and its own account. */
  const journalSubjects = async (req: FastifyRequest, scope: AdminScope): Promise<string[] | null> => {
    const inScope = await subjectsInScope(deps.db, scope);
    return inScope ? [...inScope, actor(req)] : null;
  };
  const dateParam = { type: 'string', format: 'date-time', pattern: '^(19|20|21)[0-9]{2}-' } as const;

  app.get(
    `${PREFIX}/journal`,
    {
      config: { access: access.scoped },
      schema: {
        ...tag('audit'),
        summary: 'The audit trail, newest first. A regional account reads the events about its scope: its mailboxes, the persons attached to them, and its own account',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', maxLength: 100 },
            typePrefix: { type: 'string', maxLength: 100 },
            actor: { type: 'string', maxLength: 200 },
            subject: { type: 'string', maxLength: 254 },
            // Years 1900–2199: PostgreSQL has no year 0 (0001-01-01T00:00:00+14:00 is one), and nothing was journalled outside them.
            since: dateParam,
            until: { ...dateParam, description: 'events before this instant' },
            beforeSeq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: { 200: { type: 'array', items: { $ref: 'JournalEvent#' } }, ...S.errors },
      },
    },
    async (req) => {
      const q = req.query as { type?: string; typePrefix?: string; actor?: string; subject?: string; since?: string; until?: string; beforeSeq?: number; limit: number };
      const subjects = await journalSubjects(req, scopeOf(req));
      const box = q.subject ? await findBal(deps.db, q.subject) : null;
      return deps.journal.list({
        ...q,
        subject: box ? box.address : q.subject,
        since: q.since ? new Date(q.since) : undefined,
        until: q.until ? new Date(q.until) : undefined,
        ...(subjects ? { subjects } : {}),
      });
    },
  );

  // One event, and its proof: a regional account may open those its list shows, and core/policy
  // decides on what ties the event to the scope — its box, the boxes of the scope its person
  // is attached to, or the account itself. Any other number (another scope's event, an event about no box or
  // person, or none at all) is a national operation, refused the same way (journalled), so the
  // answer does not tell whether it exists.
  const seqParam = { type: 'object', required: ['seq'], additionalProperties: false, properties: { seq: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } } } as const;
  const eventAccess = access.targets(async (req) => {
    const { seq } = req.params as { seq: number };
    const national: AdminTarget[] = [{ kind: 'global', what: `journal event ${seq}` }];
    const scope = adminScope(principalOf(adminOf(req)));
    const subjects = await journalSubjects(req, scope);
    if (!subjects) return national; // a national account: allowed whatever the target
    const ev = await deps.journal.get(seq);
    if (!ev?.subject || !subjects.includes(ev.subject)) return national;
    if (ev.subject === actor(req)) return [{ kind: 'account', login: adminOf(req).login }];
    const box = await findBal(deps.db, ev.subject);
    if (box) return [mailboxTarget(box)];
    const person = await findPerson(deps.db, { login: ev.subject });
    const ties = person ? (await balsFor(deps.db, person, { includeClosed: true })).filter((b) => inAdminScope(scope, b)).map(mailboxTarget) : [];
    return ties.length ? ties : national;
  });
  const eventOf = async (req: FastifyRequest) => {
    const { seq } = req.params as { seq: number };
    const ev = await deps.journal.get(seq);
    if (!ev) throw new MssError('JOURNAL_EVENT_NOT_FOUND', { id: seq });
    return ev;
  };

  app.get(
    `${PREFIX}/journal/:seq`,
    { config: { access: eventAccess }, schema: { ...tag('audit'), summary: 'One journal event', params: seqParam, response: { 200: { $ref: 'JournalEvent#' }, ...S.errors } } },
    async (req) => eventOf(req),
  );

  app.get(
    `${PREFIX}/journal/:seq/proof`,
    {
      config: { access: eventAccess },
      schema: {
        ...tag('audit'),
        summary: 'The proof of one event, as a ZIP: the event, its Merkle path, the sealed text and its RFC 3161 timestamp token, checkable with openssl ts -verify (as `mss journal export`)',
        params: seqParam,
        response: { 200: { description: 'application/zip', type: 'string', format: 'binary' }, ...S.errors, 503: { $ref: 'Problem#' } },
      },
    },
    async (req, reply) => {
      const ev = await eventOf(req);
      const material = deps.proofMaterial?.();
      if (!material) throw new MssError('NOT_FOUND', { what: 'the timestamping authority\'s certificates (tsa.certFile, tsa.chainFile, tsa.caFile)' });
      const proof = await deps.journal.proof(ev.seq);
      const zip = await proofZip(proofFiles(proof, { tsaChainPem: material.tsaChainPem, caFile: 'tsa-ca.pem', caPem: material.caPem }), new Date(proof.seal.genTime));
      return reply
        .header('content-type', 'application/zip')
        .header('content-disposition', `attachment; filename="preuve-evenement-${ev.seq}.zip"`)
        .header('cache-control', 'no-store')
        .send(zip);
    },
  );

  // --- admin accounts -------------------------------------------------------------------
  // A national account manages every account; a regional one, the regional accounts whose
  // scope lies inside its own (core/policy adminAccountInScope): it cannot make a national
  // account nor widen a scope, its own included.
  const adminTarget = (a: Pick<AdminAccount, 'login' | 'role' | 'domains' | 'structures'>): AdminTarget => ({ kind: 'admin', login: a.login, role: a.role, domains: a.domains, structures: a.structures });
  /** The account named in the path as a target; none when unknown (then only a national account may go on, to a 404). */
  const namedAccount = async (req: FastifyRequest): Promise<AdminTarget[]> => {
    const a = await findAdmin(deps.db, (req.params as { login: string }).login);
    return a ? [adminTarget(a)] : [];
  };
  const existingAdmin = async (login: string) => {
    const a = await findAdmin(deps.db, login);
    if (!a) throw new MssError('ADMIN_UNKNOWN', { login });
    return a;
  };
  const loginParam = { type: 'object', required: ['login'], additionalProperties: false, properties: { login: { type: 'string', minLength: 1, maxLength: 128 } } } as const;
  const scopeProps = {
    role: { type: 'string', enum: ['national', 'regional'] },
    domains: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 1000 },
    structures: { type: 'array', items: { type: 'string', maxLength: 20 }, maxItems: 10000 },
  } as const;

  app.get(
    `${PREFIX}/admins`,
    { config: { access: access.scoped }, schema: { ...tag('accounts'), summary: 'Admin accounts: every one for a national account, the regional accounts inside its scope for a regional one', response: { 200: { type: 'array', items: { $ref: 'AdminAccount#' } }, ...S.errors } } },
    async (req) => (await listAdmins(deps.db)).filter((a) => adminAccountInScope(scopeOf(req), a)),
  );

  app.post(
    `${PREFIX}/admins`,
    {
      config: { access: access.targets(async (req) => [{ kind: 'admin', ...scopeOfNew(req.body as Parameters<typeof scopeOfNew>[0]) }]) },
      schema: {
        ...tag('accounts'),
        summary: 'Create an admin account; its generated password is returned once. A regional account creates regional accounts inside its own scope only.',
        body: { type: 'object', required: ['login', 'role'], additionalProperties: false, properties: { login: { type: 'string', minLength: 2, maxLength: 64 }, ...scopeProps } },
        response: { 201: { type: 'object', properties: { account: { $ref: 'AdminAccount#' }, password: { type: 'string' } } }, ...S.errors },
      },
    },
    async (req, reply: FastifyReply) => {
      return reply.code(201).send(await createAdmin(deps.db, deps.journal, req.body as Parameters<typeof createAdmin>[2], actor(req)));
    },
  );

  app.patch(
    `${PREFIX}/admins/:login`,
    {
      // Both the scope it has and the one it would have must be the caller's to manage.
      config: { access: access.targets(async (req) => [...(await namedAccount(req)), { kind: 'admin', ...scopeOfNew({ login: (req.params as { login: string }).login, ...(req.body as Pick<Parameters<typeof scopeOfNew>[0], 'role'>) }) }]) },
      schema: { ...tag('accounts'), summary: 'Change an account\'s role and scope (the whole scope is given)', params: loginParam, body: { type: 'object', required: ['role'], additionalProperties: false, properties: scopeProps }, response: { 200: { $ref: 'AdminAccount#' }, ...S.errors } },
    },
    async (req) => {
      const a = await existingAdmin((req.params as { login: string }).login);
      return changeAdminScope(deps.db, deps.journal, a.login, req.body as Parameters<typeof changeAdminScope>[3], actor(req));
    },
  );

  for (const [verb, active, summary] of [
    ['disable', false, 'Disable an account: its sessions end at once and it cannot log in'],
    ['enable', true, 'Enable a disabled account again'],
  ] as const) {
    app.post(
      `${PREFIX}/admins/:login/${verb}`,
      { config: { access: access.targets(namedAccount) }, schema: { ...tag('accounts'), summary, params: loginParam, response: { 200: { $ref: 'AdminAccount#' }, ...S.errors } } },
      async (req) => setAdminActive(deps.db, deps.journal, (await existingAdmin((req.params as { login: string }).login)).login, active, actor(req)),
    );
  }

  app.post(
    `${PREFIX}/admins/:login/reset`,
    {
      config: { access: access.targets(namedAccount) },
      schema: {
        ...tag('accounts'),
        summary: 'New credentials for another account: a generated password, returned once; its sessions end. resetTotp also removes its second factor (it enrols again).',
        params: loginParam,
        body: { type: ['object', 'null'], additionalProperties: false, properties: { resetTotp: { type: 'boolean' } } },
        response: { 200: { type: 'object', properties: { account: { $ref: 'AdminAccount#' }, password: { type: 'string' } } }, ...S.errors },
      },
    },
    async (req) => {
      const a = await existingAdmin((req.params as { login: string }).login);
      return resetAdminCredentials(deps.db, deps.journal, a.login, actor(req), { resetTotp: !!(req.body as { resetTotp?: boolean } | null)?.resetTotp });
    },
  );

  // --- one's own second factor ------------------------------------------------------------
  app.post(
    `${PREFIX}/me/totp`,
    {
      config: { access: access.self },
      schema: {
        ...tag('session'),
        summary: 'Start enrolling a second factor (TOTP): the secret and its otpauth:// URI for an authenticator app; in force once a first code confirms it',
        response: { 200: { type: 'object', properties: { secret: { type: 'string' }, uri: { type: 'string' } } }, ...S.errors },
      },
    },
    async (req, reply) => {
      void reply.header('cache-control', 'no-store');
      return startTotpEnrolment(deps.db, deps.journal, adminOf(req));
    },
  );

  app.post(
    `${PREFIX}/me/totp/confirm`,
    {
      config: { access: access.self },
      schema: {
        ...tag('session'),
        summary: 'Confirm the enrolment with the code the authenticator app shows: from then on a login needs a code',
        body: { type: 'object', required: ['code'], additionalProperties: false, properties: { code: { type: 'string', maxLength: 16 } } },
        response: { 200: { $ref: 'AdminAccount#' }, ...S.errors },
      },
    },
    async (req) => {
      const me = adminOf(req);
      const code = (req.body as { code: string }).code.trim();
      // Guessing codes through an open session is throttled and counted like guessing them at login.
      const g = await deps.throttle.guard({ realm: 'admin', user: me.login, source: req.ip, front: 'admin-api' }, () => confirmTotp(deps.db, deps.journal, me, code), (a) => a === null);
      if (!g.ok || !g.value) {
        await deps.journal.append({ type: 'admin.totp.enrolment-failed', actor: actor(req), subject: actor(req), details: { reason: g.ok ? 'bad-otp' : 'throttled', remote: req.ip } });
        throw g.ok ? new MssError('ADMIN_TOTP_NOT_CONFIRMED') : verdictError(g.refusal);
      }
      return g.value;
    },
  );
}
