// JSON schemas of the admin API: they validate every input (400 problem+json otherwise),
// shape every output, and are the OpenAPI document.

const str = { type: 'string' } as const;
const nstr = { type: ['string', 'null'] } as const;
const date = { type: 'string', format: 'date-time' } as const;
const ndate = { type: ['string', 'null'], format: 'date-time' } as const;

export { problemSchema as problem } from '../../core/http.js';

export const balType = { type: 'string', enum: ['PER', 'ORG', 'APP', 'CAB'] } as const;

export const bal = {
  $id: 'Bal',
  type: 'object',
  properties: {
    address: str,
    domain: str,
    type: balType,
    ownerId: { ...str, description: 'PER/CAB: IDNPS of the holder; ORG/APP: national structure id' },
    structureId: nstr,
    displayName: nstr,
    description: nstr,
    service: nstr,
    responsible: nstr,
    listeRouge: { type: 'boolean' },
    rank: { type: ['integer', 'null'] },
    status: { type: 'string', enum: ['active', 'closed'] },
    createdAt: date,
    closedAt: ndate,
    reopenedAt: ndate,
    updatedAt: date,
    version: { type: 'integer' },
    members: {
      type: 'array',
      items: { type: 'object', properties: { personId: str, login: str, idnps: nstr, nom: nstr, prenom: nstr, addedAt: date, addedBy: str } },
    },
    certificates: {
      type: 'array',
      items: {
        type: 'object',
        properties: { fingerprint: str, subject: str, serial: str, issuer: str, notBefore: date, notAfter: date, registeredAt: date, registeredBy: str, revokedAt: ndate, revokedBy: nstr },
      },
    },
  },
} as const;

export const person = {
  $id: 'Person',
  type: 'object',
  properties: { id: str, login: str, idnps: nstr, nom: nstr, prenom: nstr, active: { type: 'boolean' }, hasPassword: { type: 'boolean' }, hasTotp: { type: 'boolean' }, createdAt: date },
} as const;

export const adminAccount = {
  $id: 'AdminAccount',
  type: 'object',
  properties: {
    id: str,
    login: str,
    role: { type: 'string', enum: ['national', 'regional'] },
    domains: { type: 'array', items: str },
    structures: { type: 'array', items: str },
    active: { type: 'boolean' },
    createdAt: date,
    createdBy: str,
    lastLoginAt: ndate,
    totp: { type: 'boolean', description: 'a second factor (TOTP) is enrolled: logins need its code' },
  },
} as const;

export const journalEvent = {
  $id: 'JournalEvent',
  type: 'object',
  properties: { seq: { type: 'integer' }, at: date, type: str, actor: str, subject: nstr, details: { type: 'object', additionalProperties: true }, hash: str },
} as const;

const address = { type: 'string', minLength: 3, maxLength: 254 } as const;
export const login = { type: 'string', minLength: 1, maxLength: 128 } as const;
/** Paging beyond this is not a listing any more: bounded, so no value reaches the database as an out-of-range bigint. */
export const MAX_OFFSET = 10_000_000;
/** Preferred-BAL rank (1 highest). */
export const rank = { type: 'integer', minimum: 1, maximum: 1000 } as const;

export const addressParam = { type: 'object', required: ['address'], additionalProperties: false, properties: { address } } as const;
/** The mailbox address and more path parameters, all required. */
export const params = <P extends Record<string, object>>(more: P) =>
  ({ type: 'object', required: ['address', ...Object.keys(more)], additionalProperties: false, properties: { address, ...more } }) as const;
/** A body whose fields are all optional: it may be left out. */
export const optionalBody = <P extends Record<string, object>>(properties: P) => ({ type: ['object', 'null'], additionalProperties: false, properties }) as const;
export const reasonBody = optionalBody({ reason: { type: 'string', maxLength: 500 } });
/** Bytes taken as they come (a Buffer or a stream): no JSON schema applies, the handler reads them. */
export const rawBody = (description: string) => ({ description }) as const;

/** A box's OpenPGP public key (annuaire/bal/openpgp.ts): its mail is stored encrypted to it. */
export const openpgpKey = {
  type: 'object',
  required: ['address', 'fingerprint', 'algorithm', 'userIds', 'createdAt', 'expiresAt', 'armored', 'registeredAt', 'registeredBy'],
  properties: {
    address: { type: 'string' },
    fingerprint: { type: 'string', description: 'of the primary key, upper-case hex' },
    algorithm: { type: 'string' },
    userIds: { type: 'array', items: { type: 'string' } },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: ['string', 'null'], format: 'date-time', description: 'null: the key does not expire' },
    armored: { type: 'string', description: 'the public key as stored, re-armored' },
    registeredAt: { type: 'string', format: 'date-time' },
    registeredBy: { type: 'string' },
  },
} as const;

export const errors = { 400: { $ref: 'Problem#' }, 401: { $ref: 'Problem#' }, 403: { $ref: 'Problem#' }, 404: { $ref: 'Problem#' }, 409: { $ref: 'Problem#' } } as const;

const count = { type: 'integer' } as const;
const counts = { type: 'object', additionalProperties: count } as const;
/** GET /indicators (annuaire/indicators): the month's figures, one row per domain (`*`: the whole operator). */
export const indicators = {
  type: 'object',
  properties: {
    month: { type: 'string' },
    from: { type: 'string', format: 'date-time' },
    to: { type: 'string', format: 'date-time' },
    scope: { type: 'string', enum: ['national', 'regional'] },
    patientDomain: { type: 'string' },
    rows: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          domain: { type: 'string', description: 'a mail domain of the operator, or * for the whole operator (national scope)' },
          boxes: { ...counts, description: 'boxes open at some time in the month, by type (PER, ORG, APP, CAB)' },
          messages: { ...counts, description: 'messages accepted: sentInside, receivedInside, toOperators, fromOperators, toPatients, fromPatients' },
          refused: { ...counts, description: 'SMTP refusals by catalogue code' },
          dmp: { ...counts, description: 'DMP hand-offs by outcome (success, failure)' },
          logins: { ...counts, description: 'distinct people logged in, by method (password, certificate, psc, others as journalled) and any' },
        },
      },
    },
  },
} as const;
/** GET /dashboard (annuaire/admin/dashboard.ts). */
export const dashboard = {
  type: 'object',
  properties: {
    since: date,
    scope: { type: 'string', enum: ['national', 'regional'] },
    boxes: { type: 'array', items: { type: 'object', properties: { type: balType, active: count, closed: count } } },
    traffic: {
      type: ['object', 'null'],
      description: 'null when the platform runs without SMTP',
      properties: { received: count, sent: count, queued: count, oldest: ndate, deferred: count, oldestDeferred: ndate },
    },
    imports: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          kind: { type: 'string', enum: ['activity', 'mssante'] },
          file: str,
          extractionDate: date,
          importedAt: date,
          lines: count,
          rejected: count,
          counts: { type: 'object', additionalProperties: true },
          actor: str,
          forced: { type: 'boolean' },
          journalSeq: { type: ['integer', 'null'] },
        },
      },
    },
    alerts: {
      type: 'object',
      properties: {
        certificates: { type: 'array', items: { type: 'object', properties: { address: str, fingerprint: str, subject: str, notAfter: date } } },
        serverCertificate: { type: ['object', 'null'], properties: { subject: str, notAfter: date } },
        deferred: { type: ['object', 'null'], properties: { count, oldest: ndate } },
        dmp: {
          type: ['object', 'null'],
          properties: { count, since: date, latest: { type: ['object', 'null'], properties: { bal: str, at: date, error: nstr } } },
        },
      },
    },
  },
} as const;
