// The admin HTTP API (fastify plugin): regional and national operators manage BALs,
// members, application certificates, credentials, imports, and read the audit trail. Every
// route is schema-validated; every decision of scope goes through core/policy (a refusal is
// a 403 problem+json and a policy.refused journal event); every write is journalled with
// the admin as actor by the module that performs it.
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import { verdictError, type AdminTarget, type Policy } from '../../core/policy/index.js';
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
  registerAppCertificate,
  removeMember,
  reopenBal,
  resetCredentials,
  revokeAppCertificate,
  updateBal,
  type Bal,
  type BalContext,
  type PersonRef,
} from '../bal/index.js';
import { generatePassword } from '../bal/credentials.js';
import { importFiles } from '../import/importer.js';
import { RejectReport, defaultReportName } from '../import/report.js';
import { importWhitelist, readWhitelistSource } from '../whitelist/index.js';
import { accountForToken, adminLogin, createAdmin, listAdmins, principalOf, revokeToken, type AdminAccount } from './accounts.js';
import * as S from './schemas.js';
import { searchNational } from './search.js';

declare module 'fastify' {
  interface FastifyRequest {
    admin?: AdminAccount;
  }
}

export interface AdminApiDeps {
  db: Db;
  journal: Journal;
  policy: Policy;
  bal: BalContext;
  tokenTtlMs: number;
  /** Where uploaded extraction files wait while they are imported. */
  uploadDir: string;
  /** Where extraction reject reports are written. */
  reportDir: string;
  log?: Logger;
}

const PREFIX = '/api/v1';
const PUBLIC = new Set([`${PREFIX}/login`]);

export async function adminApi(app: FastifyInstance, deps: AdminApiDeps): Promise<void> {
  for (const s of [S.problem, S.bal, S.person, S.adminAccount, S.journalEvent]) app.addSchema(s);

  // Authentication: a bearer token from POST /login on everything but login and the docs.
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0];
    if (!path.startsWith(PREFIX) || PUBLIC.has(path)) return;
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const account = m ? await accountForToken(deps.db, m[1]) : null;
    if (!account) {
      void reply.header('www-authenticate', 'Bearer realm="mss-admin"');
      throw new MssError('AUTH_FAILED');
    }
    req.admin = account;
  });

  const actor = (req: FastifyRequest) => `admin:${req.admin!.login}`;
  /** Scope check through core/policy: a refusal is journalled there and answered 403 here. */
  const allow = async (req: FastifyRequest, targets: AdminTarget[]) => {
    const v = await deps.policy.mayAdminister(principalOf(req.admin!), targets, { front: 'admin-api', remote: req.ip });
    if (!v.ok) throw verdictError(v);
  };
  const mailboxTarget = (b: Pick<Bal, 'address' | 'domain' | 'structureId'>): AdminTarget => ({ kind: 'mailbox', address: b.address, domain: b.domain, structureId: b.structureId });
  const existing = async (address: string) => {
    const b = await findBal(deps.db, address);
    if (!b) throw new MssError('BAL_UNKNOWN', { address });
    return b;
  };
  const scopeOf = (a: AdminAccount) => (a.role === 'national' ? undefined : { domains: a.domains, structures: a.structures });
  const tag = (t: string) => ({ tags: [t], security: [{ bearer: [] }] });

  app.post(
    `${PREFIX}/login`,
    {
      schema: {
        tags: ['session'],
        summary: 'Log in: a bearer token for the Authorization header',
        body: { type: 'object', required: ['login', 'password'], additionalProperties: false, properties: { login: { type: 'string', minLength: 1, maxLength: 128 }, password: { type: 'string', minLength: 1, maxLength: 1024 } } },
        response: { 200: { type: 'object', properties: { token: { type: 'string' }, expiresAt: { type: 'string', format: 'date-time' }, account: { $ref: 'AdminAccount#' } } }, 401: { $ref: 'Problem#' } },
      },
    },
    async (req) => {
      const { login, password } = req.body as { login: string; password: string };
      const r = await adminLogin(deps.db, deps.journal, login, password, deps.tokenTtlMs, req.ip);
      if (!r) throw new MssError('AUTH_FAILED');
      return r;
    },
  );

  app.post(`${PREFIX}/logout`, { schema: { ...tag('session'), summary: 'End this session (the token stops working)', response: { 204: { type: 'null' } } } }, async (req, reply) => {
    await revokeToken(deps.db, (req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''));
    return reply.code(204).send();
  });

  app.get(`${PREFIX}/me`, { schema: { ...tag('session'), summary: 'The logged-in account and its scope', response: { 200: { $ref: 'AdminAccount#' } } } }, async (req) => req.admin);

  // --- mailboxes -------------------------------------------------------------------------
  app.get(
    `${PREFIX}/bals`,
    {
      schema: {
        ...tag('mailboxes'),
        summary: "List the operator's mailboxes (a regional account sees its scope only)",
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: S.balType,
            status: { type: 'string', enum: ['active', 'closed'] },
            domain: { type: 'string' },
            q: { type: 'string', maxLength: 200 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            offset: { type: 'integer', minimum: 0, default: 0 },
          },
        },
        response: { 200: { type: 'array', items: { $ref: 'Bal#' } } },
      },
    },
    async (req) => {
      const q = req.query as { type?: Bal['type']; status?: Bal['status']; domain?: string; q?: string; limit: number; offset: number };
      return listBals(deps.db, { type: q.type, status: q.status, domain: q.domain, text: q.q, limit: q.limit, offset: q.offset, scope: scopeOf(req.admin!) });
    },
  );

  app.post(
    `${PREFIX}/bals`,
    {
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
            rank: { type: 'integer', minimum: 1 },
          },
        },
        response: { 201: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req, reply) => {
      const body = req.body as Parameters<typeof createBal>[1];
      const { address, domain } = normaliseBalAddress(body.address);
      const personal = body.type === 'PER' || body.type === 'CAB';
      const structureId = personal ? (body.structure ? normaliseStructureId(body.structure) : null) : normaliseStructureId(body.owner);
      await allow(req, [{ kind: 'mailbox', address, domain, structureId }]);
      return reply.code(201).send(await createBal(deps.bal, body, actor(req)));
    },
  );

  app.get(`${PREFIX}/bals/:address`, { schema: { ...tag('mailboxes'), summary: 'One mailbox, with members and certificates', params: S.addressParam, response: { 200: { $ref: 'Bal#' }, ...S.errors } } }, async (req) => {
    const b = await existing((req.params as { address: string }).address);
    await allow(req, [mailboxTarget(b)]);
    return b;
  });

  app.patch(
    `${PREFIX}/bals/:address`,
    {
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
            rank: { type: ['integer', 'null'], minimum: 1 },
          },
        },
        response: { 200: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req) => {
      const b = await existing((req.params as { address: string }).address);
      await allow(req, [mailboxTarget(b)]);
      return updateBal(deps.bal, b.address, req.body as Parameters<typeof updateBal>[2], actor(req));
    },
  );

  for (const [verb, fn, summary] of [
    ['close', closeBal, 'Close a mailbox: nobody opens it, mail to it is refused; the address is never reused'],
    ['reopen', reopenBal, 'Reopen a closed mailbox'],
  ] as const) {
    app.post(
      `${PREFIX}/bals/:address/${verb}`,
      { schema: { ...tag('mailboxes'), summary, params: S.addressParam, body: S.reasonBody, response: { 200: { $ref: 'Bal#' }, ...S.errors } } },
      async (req) => {
        const b = await existing((req.params as { address: string }).address);
        await allow(req, [mailboxTarget(b)]);
        return fn(deps.bal, b.address, actor(req), (req.body as { reason?: string } | undefined)?.reason);
      },
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
    { schema: { ...tag('members'), summary: 'Add a person to an organisational mailbox', params: S.addressParam, body: personRefBody, response: { 200: { $ref: 'Bal#' }, ...S.errors } } },
    async (req) => {
      const b = await existing((req.params as { address: string }).address);
      await allow(req, [mailboxTarget(b)]);
      return addMember(deps.bal, b.address, req.body as PersonRef, actor(req));
    },
  );

  app.delete(
    `${PREFIX}/bals/:address/members/:login`,
    {
      schema: {
        ...tag('members'),
        summary: 'Remove a person from an organisational mailbox',
        params: { type: 'object', required: ['address', 'login'], properties: { address: { type: 'string' }, login: { type: 'string', minLength: 1 } } },
        response: { 200: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req) => {
      const { address, login } = req.params as { address: string; login: string };
      const b = await existing(address);
      await allow(req, [mailboxTarget(b)]);
      return removeMember(deps.bal, b.address, { login }, actor(req));
    },
  );

  app.post(
    `${PREFIX}/bals/:address/certificates`,
    {
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
      const b = await existing((req.params as { address: string }).address);
      await allow(req, [mailboxTarget(b)]);
      const body = req.body as { pem: string; allowShared?: boolean };
      return registerAppCertificate(deps.bal, b.address, body.pem, actor(req), { allowShared: body.allowShared === true });
    },
  );

  app.delete(
    `${PREFIX}/bals/:address/certificates/:fingerprint`,
    {
      schema: {
        ...tag('certificates'),
        summary: "Revoke a technical mailbox's application certificate (SHA-256 fingerprint)",
        params: { type: 'object', required: ['address', 'fingerprint'], properties: { address: { type: 'string' }, fingerprint: { type: 'string', pattern: '^[0-9A-Fa-f:]{64,95}$' } } },
        response: { 200: { $ref: 'Bal#' }, ...S.errors },
      },
    },
    async (req) => {
      const { address, fingerprint } = req.params as { address: string; fingerprint: string };
      const b = await existing(address);
      await allow(req, [mailboxTarget(b)]);
      return revokeAppCertificate(deps.bal, b.address, fingerprint, actor(req));
    },
  );

  // --- persons and credentials -----------------------------------------------------------
  app.get(
    `${PREFIX}/persons`,
    {
      schema: {
        ...tag('persons'),
        summary: 'Local accounts (login, name, national id)',
        querystring: { type: 'object', additionalProperties: false, properties: { q: { type: 'string', maxLength: 200 }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
        response: { 200: { type: 'array', items: { $ref: 'Person#' } } },
      },
    },
    async (req) => {
      const q = req.query as { q?: string; limit: number };
      return listPersons(deps.db, { text: q.q, limit: q.limit });
    },
  );

  app.post(
    `${PREFIX}/persons`,
    {
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
            memberOf: { type: 'string', maxLength: 254 },
          },
        },
        response: { 201: { type: 'object', properties: { person: { $ref: 'Person#' }, password: { type: 'string' }, memberOf: { $ref: 'Bal#' } } }, ...S.errors },
      },
    },
    async (req, reply) => {
      const body = req.body as { login: string; idnps?: string; nom?: string; prenom?: string; memberOf?: string };
      const box = body.memberOf ? await existing(body.memberOf) : undefined;
      await allow(req, box ? [mailboxTarget(box)] : []);
      const password = generatePassword();
      const person = await createPerson(deps.bal, { login: body.login, idnps: body.idnps, nom: body.nom, prenom: body.prenom, password }, actor(req));
      const memberOf = box ? await addMember(deps.bal, box.address, { id: person.id }, actor(req)) : undefined;
      return reply.code(201).send({ person, password, ...(memberOf ? { memberOf } : {}) });
    },
  );

  app.post(
    `${PREFIX}/persons/:login/reset-credentials`,
    {
      schema: {
        ...tag('persons'),
        summary: "Reset a person's password (generated, returned once); resetTotp also clears the second factor",
        params: { type: 'object', required: ['login'], properties: { login: { type: 'string', minLength: 1 } } },
        body: { type: 'object', additionalProperties: false, properties: { resetTotp: { type: 'boolean', default: false } } },
        response: { 200: { type: 'object', properties: { person: { $ref: 'Person#' }, password: { type: 'string' } } }, ...S.errors },
      },
    },
    async (req) => {
      const { login } = req.params as { login: string };
      const person = await findPerson(deps.db, { login });
      if (!person) throw new MssError('PERSON_UNKNOWN', { person: login });
      // In scope only when every mailbox the person may open is: a regional admin cannot take over someone's other boxes.
      const boxes = await balsFor(deps.db, person, { includeClosed: true });
      await allow(req, boxes.map(mailboxTarget));
      return resetCredentials(deps.bal, { id: person.id }, actor(req), { resetTotp: (req.body as { resetTotp?: boolean } | undefined)?.resetTotp });
    },
  );

  // --- imports (national operations) -----------------------------------------------------
  await app.register(async (imports) => {
    // Raw bodies here: the liste blanche as XML, extractions as bytes streamed to disk.
    imports.addContentTypeParser(['application/xml', 'text/xml'], { parseAs: 'buffer', bodyLimit: 64 << 20 }, (_req, body, done) => done(null, body));
    imports.addContentTypeParser(['application/octet-stream', 'application/zip', 'text/plain'], { bodyLimit: 16 * 1024 ** 3 }, (_req, payload, done) => done(null, payload));

    imports.post(
      `${PREFIX}/imports/whitelist`,
      {
        schema: {
          ...tag('imports'),
          summary: 'Import the liste blanche: the XML as body (application/xml), or {"url": …} to download it',
          description: 'Refused (409) when older than the list in place; applied as a diff in one transaction; journalled domain by domain.',
          body: { oneOf: [{ type: 'object', required: ['url'], additionalProperties: false, properties: { url: { type: 'string', pattern: '^https?://' } } }, { type: 'object', description: 'raw XML' }] },
          response: {
            200: {
              type: 'object',
              properties: {
                generatedAt: { type: 'string', format: 'date-time' },
                source: { type: 'string' },
                domains: { type: 'integer' },
                added: { type: 'array', items: { type: 'string' } },
                removed: { type: 'array', items: { type: 'string' } },
                changed: { type: 'array', items: { type: 'string' } },
                rejected: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' }, reason: { type: 'string' } } } },
                unchanged: { type: 'boolean' },
              },
            },
            422: { $ref: 'Problem#' },
            ...S.errors,
          },
        },
        // The oneOf above documents both forms; a Buffer is not JSON, so validation is by hand.
        validatorCompiler: () => () => true,
      },
      async (req) => {
        await allow(req, [{ kind: 'global', what: 'the liste blanche' }]);
        const b = req.body as Buffer | { url?: unknown };
        let body: Buffer;
        let source: string;
        if (Buffer.isBuffer(b)) {
          body = b;
          source = 'upload via admin API';
        } else if (b && typeof b === 'object' && typeof b.url === 'string' && /^https?:\/\//.test(b.url) && Object.keys(b).length === 1) {
          source = b.url;
          body = await readWhitelistSource(b.url);
        } else throw new MssError('BAD_REQUEST', { reason: 'send the liste blanche as an application/xml body, or {"url": "https://…"} as JSON' });
        return importWhitelist(deps.db, deps.journal, body, source, actor(req));
      },
    );

    imports.post(
      `${PREFIX}/imports/extractions`,
      {
        schema: {
          ...tag('imports'),
          summary: 'Import a national extraction (PS_LibreAcces_Personne_activite_*.txt, Extraction_Correspondance_MSSante_*.txt, or a .zip of them) sent as the body',
          querystring: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: {
              name: { type: 'string', pattern: '^[\\w.-]{1,200}\\.(txt|zip)$', description: 'the file name as published: it carries the extraction date' },
              dryRun: { type: 'boolean', default: false },
              force: { type: 'boolean', default: false },
            },
          },
          response: { 200: { type: 'object', additionalProperties: true }, ...S.errors },
        },
      },
      async (req) => {
        await allow(req, [{ kind: 'global', what: 'the national extractions' }]);
        const q = req.query as { name: string; dryRun: boolean; force: boolean };
        if (!req.body || typeof (req.body as Readable).pipe !== 'function') throw new MssError('UNSUPPORTED_MEDIA_TYPE', { expected: 'application/octet-stream or application/zip', got: req.headers['content-type'] ?? 'nothing' });
        await mkdir(deps.uploadDir, { recursive: true, mode: 0o700 });
        const dir = join(deps.uploadDir, randomBytes(8).toString('hex'));
        await mkdir(dir, { mode: 0o700 });
        const file = join(dir, basename(q.name));
        const reportPath = join(deps.reportDir, defaultReportName());
        try {
          await pipeline(req.body as Readable, createWriteStream(file, { mode: 0o600 }));
          const report = new RejectReport(reportPath);
          try {
            const out = await importFiles([file], { db: deps.db, journal: deps.journal, actor: actor(req), report, dryRun: q.dryRun, force: q.force });
            return {
              report: reportPath,
              results: out.results.map((r) => ({ ...r, file: q.name })),
              failures: out.failures.map((f) => ({ file: q.name, code: f.error.code, detail: f.error.message.replaceAll(file, q.name) })),
              skipped: out.skipped,
            };
          } finally {
            report.close();
          }
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    );
  });

  // --- search and audit trail ------------------------------------------------------------
  app.get(
    `${PREFIX}/search`,
    {
      schema: {
        ...tag('annuaire'),
        summary: "Search the operator's mailboxes (within scope) and the national MSSanté addresses by name, mail or RPPS",
        querystring: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { q: { type: 'string', minLength: 2, maxLength: 200 }, mail: { type: 'string', maxLength: 254 }, rpps: { type: 'string', pattern: '^[0-9]{11,12}$' }, limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
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
      const scope = scopeOf(req.admin!);
      let local: Bal[] = [];
      if (q.mail) local = (await listBals(deps.db, { text: q.mail, scope, limit: q.limit })).filter((b) => b.address === q.mail!.trim().toLowerCase());
      else if (q.rpps) local = await listBals(deps.db, { ownerId: q.rpps.length === 11 ? '8' + q.rpps : q.rpps, scope, limit: q.limit });
      else if (q.q) local = await listBals(deps.db, { text: q.q, scope, limit: q.limit });
      return { local, national: await searchNational(deps.db, { text: q.q, mail: q.mail, rpps: q.rpps, limit: q.limit }) };
    },
  );

  app.get(
    `${PREFIX}/journal`,
    {
      schema: {
        ...tag('audit'),
        summary: 'The audit trail, newest first. A regional account reads it one mailbox of its scope at a time (subject=address)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            type: { type: 'string', maxLength: 100 },
            typePrefix: { type: 'string', maxLength: 100 },
            actor: { type: 'string', maxLength: 200 },
            subject: { type: 'string', maxLength: 254 },
            since: { type: 'string', format: 'date-time' },
            beforeSeq: { type: 'integer', minimum: 1 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
        },
        response: { 200: { type: 'array', items: { $ref: 'JournalEvent#' } }, ...S.errors },
      },
    },
    async (req) => {
      const q = req.query as { type?: string; typePrefix?: string; actor?: string; subject?: string; since?: string; beforeSeq?: number; limit: number };
      const box = q.subject ? await findBal(deps.db, q.subject) : null;
      await allow(req, box ? [mailboxTarget(box)] : [{ kind: 'global', what: q.subject ? `the audit trail of ${q.subject}` : 'the whole audit trail' }]);
      return deps.journal.list({ ...q, subject: box ? box.address : q.subject, since: q.since ? new Date(q.since) : undefined });
    },
  );

  // --- admin accounts (national) ---------------------------------------------------------
  app.get(`${PREFIX}/admins`, { schema: { ...tag('accounts'), summary: 'Admin accounts (national accounts only)', response: { 200: { type: 'array', items: { $ref: 'AdminAccount#' } }, ...S.errors } } }, async (req) => {
    await allow(req, [{ kind: 'global', what: 'admin accounts' }]);
    return listAdmins(deps.db);
  });

  app.post(
    `${PREFIX}/admins`,
    {
      schema: {
        ...tag('accounts'),
        summary: 'Create an admin account; its generated password is returned once (national accounts only)',
        body: {
          type: 'object',
          required: ['login', 'role'],
          additionalProperties: false,
          properties: {
            login: { type: 'string', minLength: 2, maxLength: 64 },
            role: { type: 'string', enum: ['national', 'regional'] },
            domains: { type: 'array', items: { type: 'string', maxLength: 253 }, maxItems: 1000 },
            structures: { type: 'array', items: { type: 'string', maxLength: 20 }, maxItems: 10000 },
          },
        },
        response: { 201: { type: 'object', properties: { account: { $ref: 'AdminAccount#' }, password: { type: 'string' } } }, ...S.errors },
      },
    },
    async (req, reply: FastifyReply) => {
      await allow(req, [{ kind: 'global', what: 'admin accounts' }]);
      return reply.code(201).send(await createAdmin(deps.db, deps.journal, req.body as Parameters<typeof createAdmin>[2], actor(req)));
    },
  );
}
