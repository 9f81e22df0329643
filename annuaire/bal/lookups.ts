// Reads of the operator's mailboxes and accounts: what SMTP, IMAP, the policy facts, the
// admin API and the CLI call. One query shape per question, all on indexed columns.
import type { Queryable } from '../../core/db/index.js';
import type { AdminScope } from '../../core/policy/index.js';
import type { AppCertificate, Bal, BalType, Member, Person } from './model.js';

interface BalRow {
  id: number;
  address: string;
  domain: string;
  type: BalType;
  owner_id: string;
  structure_id: string | null;
  display_name: string | null;
  description: string | null;
  service: string | null;
  responsible: string | null;
  liste_rouge: boolean;
  rank: number | null;
  status: 'active' | 'closed';
  created_at: Date;
  closed_at: Date | null;
  reopened_at: Date | null;
  updated_at: Date;
  version: number;
}

interface PersonRow {
  id: number;
  login: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  active: boolean;
  password_hash: string | null;
  totp_secret: string | null;
  created_at: Date;
}

const d = (v: Date | string | null) => (v === null ? null : new Date(v));

export function toPerson(r: PersonRow): Person {
  return { id: String(r.id), login: r.login, idnps: r.idnps, nom: r.nom, prenom: r.prenom, active: r.active, hasPassword: !!r.password_hash, hasTotp: !!r.totp_secret, createdAt: new Date(r.created_at) };
}

async function withDetails(q: Queryable, rows: BalRow[]): Promise<Bal[]> {
  if (!rows.length) return [];
  const ids = rows.map((r) => r.id);
  const members = await q.query<{ bal_id: number; person_id: number; login: string; idnps: string | null; nom: string | null; prenom: string | null; added_at: Date; added_by: string }>(
    `SELECT m.bal_id, m.person_id, p.login, p.idnps, p.nom, p.prenom, m.added_at, m.added_by
       FROM bal_members m JOIN bal_persons p ON p.id = m.person_id WHERE m.bal_id = ANY($1::bigint[]) ORDER BY lower(p.login)`,
    [ids],
  );
  const certs = await q.query<{ id: number; bal_id: number; fingerprint: string; subject: string; serial: string; issuer: string; not_before: Date; not_after: Date; registered_at: Date; registered_by: string; revoked_at: Date | null; revoked_by: string | null }>(
    'SELECT id, bal_id, fingerprint, subject, serial, issuer, not_before, not_after, registered_at, registered_by, revoked_at, revoked_by FROM bal_app_certificates WHERE bal_id = ANY($1::bigint[]) ORDER BY id',
    [ids],
  );
  return rows.map((r) => ({
    id: r.id,
    address: r.address,
    domain: r.domain,
    type: r.type,
    ownerId: r.owner_id,
    structureId: r.structure_id,
    displayName: r.display_name,
    description: r.description,
    service: r.service,
    responsible: r.responsible,
    listeRouge: r.liste_rouge,
    rank: r.rank,
    status: r.status,
    createdAt: new Date(r.created_at),
    closedAt: d(r.closed_at),
    reopenedAt: d(r.reopened_at),
    updatedAt: new Date(r.updated_at),
    version: r.version,
    members: members.rows
      .filter((m) => m.bal_id === r.id)
      .map((m): Member => ({ personId: String(m.person_id), login: m.login, idnps: m.idnps, nom: m.nom, prenom: m.prenom, addedAt: new Date(m.added_at), addedBy: m.added_by })),
    certificates: certs.rows
      .filter((c) => c.bal_id === r.id)
      .map(
        (c): AppCertificate => ({
          id: c.id,
          fingerprint: c.fingerprint,
          subject: c.subject,
          serial: c.serial,
          issuer: c.issuer,
          notBefore: new Date(c.not_before),
          notAfter: new Date(c.not_after),
          registeredAt: new Date(c.registered_at),
          registeredBy: c.registered_by,
          revokedAt: d(c.revoked_at),
          revokedBy: c.revoked_by,
        }),
      ),
  }));
}

/** The mailbox at this address (any case), active or closed; null when there is none. */
export async function findBal(q: Queryable, address: string): Promise<Bal | null> {
  const { rows } = await q.query<BalRow>('SELECT * FROM bal_mailboxes WHERE lower(address) = lower($1)', [address.trim()]);
  return (await withDetails(q, rows))[0] ?? null;
}

/** Every mailbox this person may open: the PER/CAB boxes they hold and the ORG boxes they belong to. */
export async function balsFor(q: Queryable, person: { id: string; idnps?: string | null }, opts: { includeClosed?: boolean } = {}): Promise<Bal[]> {
  const { rows } = await q.query<BalRow>(
    `SELECT * FROM bal_mailboxes b
      WHERE ((b.type IN ('PER', 'CAB') AND b.owner_id = $2)
         OR (b.type = 'ORG' AND EXISTS (SELECT 1 FROM bal_members m WHERE m.bal_id = b.id AND m.person_id = $1)))
        AND ($3 OR b.status = 'active')
      ORDER BY b.rank NULLS LAST, b.address`,
    [Number(person.id), person.idnps ?? null, !!opts.includeClosed],
  );
  return withDetails(q, rows);
}

/** APP mailboxes that registered this certificate (fingerprint), revoked registrations excluded. */
export async function balsForApplication(q: Queryable, fingerprint: string): Promise<Bal[]> {
  const { rows } = await q.query<BalRow>(
    `SELECT b.* FROM bal_mailboxes b JOIN bal_app_certificates c ON c.bal_id = b.id
      WHERE c.fingerprint = $1 AND c.revoked_at IS NULL AND b.type = 'APP' ORDER BY b.address`,
    [fingerprint.replace(/:/g, '').toLowerCase()],
  );
  return withDetails(q, rows);
}

export interface BalFilter {
  type?: BalType;
  status?: 'active' | 'closed';
  domain?: string;
  /** Substring of the address, display name or description (case-insensitive). */
  text?: string;
  ownerId?: string;
  limit?: number;
  offset?: number;
}

/**
 * The SQL condition "mailbox b is in this scope" (core/policy's inAdminScope, in SQL), its
 * values appended to p. The scope is a mandatory argument of every list below: a read that
 * forgets it does not compile, and `EVERYWHERE` has to be written out.
 */
function scopeCondition(scope: AdminScope, p: unknown[], b = 'b'): string {
  if (scope.kind === 'everywhere') return 'TRUE';
  p.push([...scope.domains], [...scope.structures]);
  return `(${b}.domain = ANY($${p.length - 1}::text[]) OR ${b}.structure_id = ANY($${p.length}::text[]))`;
}

/** The operator's mailboxes in this scope, filtered, by address. */
export async function listBals(q: Queryable, scope: AdminScope, f: BalFilter = {}): Promise<Bal[]> {
  const where: string[] = [];
  const p: unknown[] = [];
  const add = (sql: string, ...v: unknown[]) => {
    let s = sql;
    for (const x of v) {
      p.push(x);
      s = s.replace('?', `$${p.length}`);
    }
    where.push(s);
  };
  where.push(scopeCondition(scope, p));
  if (f.type) add('type = ?', f.type);
  if (f.status) add('status = ?', f.status);
  if (f.domain) add('domain = lower(?)', f.domain);
  if (f.ownerId) add('owner_id = ?', f.ownerId);
  if (f.text) add(`(address ILIKE '%' || ? || '%' OR display_name ILIKE '%' || ? || '%' OR description ILIKE '%' || ? || '%')`, escapeLike(f.text), escapeLike(f.text), escapeLike(f.text));
  p.push(Math.min(f.limit ?? 100, 1000), f.offset ?? 0);
  const { rows } = await q.query<BalRow>(`SELECT * FROM bal_mailboxes b WHERE ${where.join(' AND ')} ORDER BY address LIMIT $${p.length - 1} OFFSET $${p.length}`, p);
  return withDetails(q, rows);
}

/** LIKE treats % and _ as wildcards: a search for "a_b" means those characters. */
export const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => '\\' + c);

export type PersonRef = { id: string } | { login: string } | { idnps: string };

/** A person by id, login (any case) or national id; with the secret columns, for this module only. */
export async function personRow(q: Queryable, ref: PersonRef): Promise<PersonRow | null> {
  const [sql, v] =
    'id' in ref
      ? ['id = $1', /^\d+$/.test(ref.id) ? Number(ref.id) : -1]
      : 'login' in ref
        ? ['lower(login) = lower($1)', ref.login.trim()]
        : ['idnps = $1', ref.idnps.trim().toUpperCase()];
  const { rows } = await q.query<PersonRow>(`SELECT * FROM bal_persons WHERE ${sql}`, [v]);
  return rows[0] ?? null;
}

export async function findPerson(q: Queryable, ref: PersonRef): Promise<Person | null> {
  const r = await personRow(q, ref);
  return r && toPerson(r);
}

/**
 * A person attached to a mailbox b: the holder of a PER/CAB box, or a member of an ORG box.
 * What ties a person to a scope (a person attached to no box is in no regional scope).
 */
const ATTACHED = `((b.type IN ('PER', 'CAB') AND b.owner_id = p.idnps) OR (b.type = 'ORG' AND EXISTS (SELECT 1 FROM bal_members m WHERE m.bal_id = b.id AND m.person_id = p.id)))`;

/** Local accounts in this scope (attached to one of its mailboxes, open or closed), by login. */
export async function listPersons(q: Queryable, scope: AdminScope, f: { text?: string; limit?: number; offset?: number } = {}): Promise<Person[]> {
  const p: unknown[] = [f.text ? escapeLike(f.text) : null, Math.min(f.limit ?? 100, 1000), f.offset ?? 0];
  const inScope = scope.kind === 'everywhere' ? 'TRUE' : `EXISTS (SELECT 1 FROM bal_mailboxes b WHERE ${scopeCondition(scope, p)} AND ${ATTACHED})`;
  const { rows } = await q.query<PersonRow>(
    `SELECT * FROM bal_persons p
      WHERE ($1::text IS NULL OR login ILIKE '%' || $1 || '%' OR nom ILIKE '%' || $1 || '%' OR prenom ILIKE '%' || $1 || '%' OR idnps = $1)
        AND ${inScope}
      ORDER BY lower(login) LIMIT $2 OFFSET $3`,
    p,
  );
  return rows.map(toPerson);
}

/**
 * The journal subjects that are about this scope: the addresses of its mailboxes and the
 * logins of the persons attached to them. null for `everywhere` (no restriction).
 */
export async function subjectsInScope(q: Queryable, scope: AdminScope): Promise<string[] | null> {
  if (scope.kind === 'everywhere') return null;
  const p: unknown[] = [];
  const cond = scopeCondition(scope, p);
  const { rows } = await q.query<{ subject: string }>(
    `SELECT b.address AS subject FROM bal_mailboxes b WHERE ${cond}
     UNION SELECT p.login FROM bal_persons p JOIN bal_mailboxes b ON ${ATTACHED} WHERE ${cond}`,
    p,
  );
  return rows.map((r) => r.subject);
}

export type { BalRow, PersonRow };

/** The operator's mailboxes in this scope counted by type and status (the console's dashboard). */
export async function countBals(q: Queryable, scope: AdminScope): Promise<Array<{ type: Bal['type']; active: number; closed: number }>> {
  const p: unknown[] = [];
  const { rows } = await q.query<{ type: Bal['type']; active: number; closed: number }>(
    `SELECT type, count(*) FILTER (WHERE status = 'active')::int AS active, count(*) FILTER (WHERE status = 'closed')::int AS closed
       FROM bal_mailboxes b WHERE ${scopeCondition(scope, p)} GROUP BY type ORDER BY type`,
    p,
  );
  return rows;
}

/** The addresses of the mailboxes in this scope, open or closed; null for `everywhere` (no restriction). */
export async function balAddressesInScope(q: Queryable, scope: AdminScope): Promise<string[] | null> {
  if (scope.kind === 'everywhere') return null;
  const p: unknown[] = [];
  return (await q.query<{ address: string }>(`SELECT address FROM bal_mailboxes b WHERE ${scopeCondition(scope, p)}`, p)).rows.map((r) => r.address);
}

/** Application certificates in force on open mailboxes of this scope that expire before `before` (expired ones included), soonest first. */
export async function expiringAppCertificates(q: Queryable, scope: AdminScope, before: Date, limit = 50): Promise<Array<{ address: string; fingerprint: string; subject: string; notAfter: Date }>> {
  const p: unknown[] = [before];
  const cond = scopeCondition(scope, p);
  p.push(limit);
  const { rows } = await q.query<{ address: string; fingerprint: string; subject: string; not_after: Date }>(
    `SELECT b.address, c.fingerprint, c.subject, c.not_after FROM bal_app_certificates c JOIN bal_mailboxes b ON b.id = c.bal_id
      WHERE c.revoked_at IS NULL AND b.status = 'active' AND c.not_after < $1 AND ${cond}
      ORDER BY c.not_after, b.address LIMIT $${p.length}`,
    p,
  );
  return rows.map((r) => ({ address: r.address, fingerprint: r.fingerprint, subject: r.subject, notAfter: new Date(r.not_after) }));
}
