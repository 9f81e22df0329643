// Writes to the operator's mailboxes. Each runs in one transaction with its journal event
// (appendIn) and the in-transaction followers (publication outbox), so a change, its record
// and its publication commit together or not at all.
import type { Queryable } from '../../core/db/index.js';
import { isMssError, MssError } from '../../core/errors.js';
import { checkClientCertificate } from '../../certs/client-cert.js';
import { oneLineDn, readCertificate } from './certificates.js';
import { normaliseBalAddress, normaliseIdnps, normaliseStructureId } from './identifiers.js';
import { findBal, personRow, type PersonRef } from './lookups.js';
import type { Bal, BalChange, BalChangeKind, BalContext, BalType } from './model.js';
import { BAL_TYPES } from './model.js';

export interface NewBal {
  address: string;
  type: BalType;
  /** PER/CAB: the holder's RPPS/ADELI id (or IDNPS); ORG/APP: FINESS or SIRET (or the national structure id). */
  owner: string;
  /** PER: the structure the professional practises in, optional. */
  structure?: string;
  displayName?: string;
  description?: string;
  service?: string;
  responsible?: string;
  listeRouge?: boolean;
  rank?: number;
}

export type BalChanges = Partial<Pick<NewBal, 'displayName' | 'description' | 'service' | 'responsible' | 'listeRouge' | 'rank'>>;

/**
 * Runs a write: fn in a transaction, then the BAL re-read in it, the journal event, the
 * in-transaction hooks; after commit, the after-commit hooks.
 */
async function write(ctx: BalContext, kind: BalChangeKind, actor: string, address: string, fn: (tx: Queryable) => Promise<{ event: string; details?: Record<string, unknown> }>): Promise<Bal> {
  const change = await ctx.db.transaction(async (tx) => {
    const { event, details } = await fn(tx);
    const bal = await findBal(tx, address);
    if (!bal) throw new MssError('BAL_UNKNOWN', { address });
    await ctx.journal.appendIn(tx, { type: event, actor, subject: bal.address, details: { type: bal.type, ...details } });
    const c: BalChange = { kind, bal, actor };
    for (const h of ctx.hooks?.inTransaction ?? []) await h(tx, c);
    return c;
  });
  for (const h of ctx.hooks?.afterCommit ?? []) {
    try {
      await h(change);
    } catch (e) {
      ctx.log?.error({ err: e, address: change.bal.address, kind }, 'a follower of BAL changes failed; the change itself is committed');
    }
  }
  return change.bal;
}

/** Locks the mailbox row for the rest of the transaction and returns it; throws when absent. */
async function lockBal(tx: Queryable, address: string): Promise<{ id: number; address: string; type: BalType; status: string; structure_id: string | null }> {
  const { rows } = await tx.query<{ id: number; address: string; type: BalType; status: string; structure_id: string | null }>(
    'SELECT id, address, type, status, structure_id FROM bal_mailboxes WHERE lower(address) = lower($1) FOR UPDATE',
    [address.trim()],
  );
  if (!rows[0]) throw new MssError('BAL_UNKNOWN', { address: address.trim() });
  return rows[0];
}

const expectType = (bal: { address: string; type: BalType }, expected: BalType[], operation: string) => {
  if (!expected.includes(bal.type)) throw new MssError('BAL_WRONG_TYPE', { operation, expected: expected.join('/'), address: bal.address, type: bal.type });
};

const text = (v: string | undefined | null) => (v === undefined || v === null || v.trim() === '' ? null : v.trim());

export async function createBal(ctx: BalContext, input: NewBal, actor: string): Promise<Bal> {
  if (!BAL_TYPES.includes(input.type)) throw new MssError('BAD_REQUEST', { reason: `type must be one of ${BAL_TYPES.join(', ')}` });
  const { address, domain } = normaliseBalAddress(input.address);
  if (ctx.domains?.length && !ctx.domains.map((x) => x.toLowerCase()).includes(domain)) {
    throw new MssError('BAD_REQUEST', { reason: `${domain} is not a domain of this operator (${ctx.domains.join(', ')})` });
  }
  const personal = input.type === 'PER' || input.type === 'CAB';
  const ownerId = personal ? normaliseIdnps(input.owner) : normaliseStructureId(input.owner);
  const structureId = personal ? (input.structure ? normaliseStructureId(input.structure) : null) : ownerId;
  if (input.rank !== undefined && (!Number.isInteger(input.rank) || input.rank < 1)) throw new MssError('BAD_REQUEST', { reason: 'rank must be a whole number from 1 (the preferred mailbox)' });
  return write(ctx, 'created', actor, address, async (tx) => {
    // Addresses are never reused: a closed box keeps its address.
    const taken = await tx.query('SELECT 1 FROM bal_mailboxes WHERE lower(address) = $1', [address]);
    if (taken.rows.length) throw new MssError('BAL_EXISTS', { address });
    await tx.query(
      `INSERT INTO bal_mailboxes (address, domain, type, owner_id, structure_id, display_name, description, service, responsible, liste_rouge, rank)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [address, domain, input.type, ownerId, structureId, text(input.displayName), text(input.description), text(input.service), text(input.responsible), !!input.listeRouge, input.rank ?? null],
    );
    return { event: 'bal.created', details: { owner: ownerId, ...(structureId ? { structure: structureId } : {}), listeRouge: !!input.listeRouge } };
  }).catch((e) => {
    // Two creations racing for one address: the unique index decides, the loser hears why.
    if ((e as { code?: string }).code === '23505') throw new MssError('BAL_EXISTS', { address });
    throw e;
  });
}

export async function updateBal(ctx: BalContext, address: string, changes: BalChanges, actor: string): Promise<Bal> {
  return write(ctx, 'updated', actor, address, async (tx) => {
    const bal = await lockBal(tx, address);
    const sets: string[] = [];
    const p: unknown[] = [bal.id];
    const set = (col: string, v: unknown) => {
      p.push(v);
      sets.push(`${col} = $${p.length}`);
    };
    if (changes.displayName !== undefined) set('display_name', text(changes.displayName));
    if (changes.description !== undefined) set('description', text(changes.description));
    if (changes.service !== undefined) set('service', text(changes.service));
    if (changes.responsible !== undefined) set('responsible', text(changes.responsible));
    if (changes.listeRouge !== undefined) set('liste_rouge', !!changes.listeRouge);
    if (changes.rank !== undefined) {
      if (changes.rank !== null && (!Number.isInteger(changes.rank) || changes.rank < 1)) throw new MssError('BAD_REQUEST', { reason: 'rank must be a whole number from 1' });
      set('rank', changes.rank);
    }
    if (!sets.length) throw new MssError('BAD_REQUEST', { reason: 'nothing to change' });
    await tx.query(`UPDATE bal_mailboxes SET ${sets.join(', ')}, updated_at = now(), version = version + 1 WHERE id = $1`, p);
    return { event: 'bal.updated', details: { changes } };
  });
}

export async function closeBal(ctx: BalContext, address: string, actor: string, reason?: string): Promise<Bal> {
  return write(ctx, 'closed', actor, address, async (tx) => {
    const bal = await lockBal(tx, address);
    if (bal.status === 'closed') throw new MssError('BAL_STATE_CONFLICT', { address: bal.address, status: 'closed' });
    await tx.query("UPDATE bal_mailboxes SET status = 'closed', closed_at = now(), updated_at = now(), version = version + 1 WHERE id = $1", [bal.id]);
    return { event: 'bal.closed', details: reason ? { reason } : {} };
  });
}

export async function reopenBal(ctx: BalContext, address: string, actor: string, reason?: string): Promise<Bal> {
  return write(ctx, 'reopened', actor, address, async (tx) => {
    const bal = await lockBal(tx, address);
    if (bal.status === 'active') throw new MssError('BAL_STATE_CONFLICT', { address: bal.address, status: 'active' });
    await tx.query("UPDATE bal_mailboxes SET status = 'active', reopened_at = now(), updated_at = now(), version = version + 1 WHERE id = $1", [bal.id]);
    return { event: 'bal.reopened', details: reason ? { reason } : {} };
  });
}

export async function addMember(ctx: BalContext, address: string, person: PersonRef, actor: string): Promise<Bal> {
  return write(ctx, 'members', actor, address, async (tx) => {
    const bal = await lockBal(tx, address);
    expectType(bal, ['ORG'], 'adding a member');
    const p = await personRow(tx, person);
    if (!p) throw new MssError('PERSON_UNKNOWN', { person: refLabel(person) });
    const r = await tx.query('INSERT INTO bal_members (bal_id, person_id, added_by) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING person_id', [bal.id, p.id, actor]);
    if (!r.rows.length) throw new MssError('BAD_REQUEST', { reason: `${p.login} is already a member of ${bal.address}` });
    return { event: 'bal.member.added', details: { person: p.login, personId: String(p.id) } };
  });
}

export async function removeMember(ctx: BalContext, address: string, person: PersonRef, actor: string): Promise<Bal> {
  return write(ctx, 'members', actor, address, async (tx) => {
    const bal = await lockBal(tx, address);
    expectType(bal, ['ORG'], 'removing a member');
    const p = await personRow(tx, person);
    if (!p) throw new MssError('PERSON_UNKNOWN', { person: refLabel(person) });
    const r = await tx.query('DELETE FROM bal_members WHERE bal_id = $1 AND person_id = $2 RETURNING person_id', [bal.id, p.id]);
    if (!r.rows.length) throw new MssError('NOT_FOUND', { what: `member ${p.login} of ${bal.address}` });
    return { event: 'bal.member.removed', details: { person: p.login, personId: String(p.id) } };
  });
}

export interface RegisterCertificateOptions {
  /** Bind it although it is already bound to other boxes (journalled with them). */
  allowShared?: boolean;
  now?: Date;
}

/**
 * Registers the application certificate (PEM; issuers may follow the leaf) of an APP box,
 * once it passed every check its TLS logins will face (certs/client-cert.ts: chain to a
 * root of the trust bundle, validity, CRL, usage for TLS client authentication) and it
 * names the box's own structure. A certificate already bound to other boxes needs
 * allowShared. Every refusal is journalled (bal.cert.refused) and thrown.
 */
export async function registerAppCertificate(ctx: BalContext, address: string, pem: string, actor: string, opts: RegisterCertificateOptions = {}): Promise<Bal> {
  const now = opts.now ?? new Date();
  try {
    if (!ctx.trust) throw new MssError('CERT_UNUSABLE', { reason: 'no trust bundle is configured to check it against (tls.caFile, tls.crlFile)' });
    const checked = await checkClientCertificate(pem, ctx.trust(), now);
    const info = readCertificate(checked.leaf);
    return await write(ctx, 'certificates', actor, address, async (tx) => {
      const bal = await lockBal(tx, address);
      expectType(bal, ['APP'], 'registering an application certificate');
      // One registration of a fingerprint at a time, so two boxes racing for it both see the other.
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('bal-cert:' || $1))", [info.fingerprint]);
      const { rows: others } = await tx.query<{ address: string; structure_id: string | null }>(
        `SELECT m.address, m.structure_id FROM bal_app_certificates c JOIN bal_mailboxes m ON m.id = c.bal_id
          WHERE c.fingerprint = $1 AND c.revoked_at IS NULL AND c.bal_id <> $2 ORDER BY m.address`,
        [info.fingerprint, bal.id],
      );
      const sharedWith = others.map((o) => ({ address: o.address, structure: o.structure_id }));
      if (others.length && !opts.allowShared) {
        const label = (o: (typeof sharedWith)[number]) => (o.structure === bal.structure_id ? o.address : `${o.address} (structure ${o.structure ?? 'none'}, another organisation)`);
        throw new MssError('CERT_BOUND_ELSEWHERE', { fingerprint: info.fingerprint, others: sharedWith.map(label).join(', '), address: bal.address });
      }
      // Shared or not, a certificate names one organisation: it opens that organisation's boxes only.
      if (!bal.structure_id || !checked.organisationIds.some((id) => sameStructure(id, bal.structure_id!))) {
        throw new MssError('CERT_WRONG_ORGANISATION', { subject: info.subject, certificate: checked.organisationIds.join(' / ') || 'none (no OU)', structure: bal.structure_id ?? 'none', address: bal.address });
      }
      const r = await tx.query(
        `INSERT INTO bal_app_certificates (bal_id, fingerprint, subject, serial, issuer, not_before, not_after, pem, registered_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (bal_id, fingerprint) DO NOTHING RETURNING id`,
        [bal.id, info.fingerprint, info.subject, info.serial, info.issuer, info.notBefore, info.notAfter, info.pem, actor],
      );
      if (!r.rows.length) throw new MssError('CERT_ALREADY_REGISTERED', { fingerprint: info.fingerprint, address: bal.address });
      return {
        event: 'bal.cert.registered',
        details: {
          fingerprint: info.fingerprint,
          subject: info.subject,
          serial: info.serial,
          issuer: info.issuer,
          notAfter: info.notAfter.toISOString(),
          chain: checked.chain.slice(1).map((x) => oneLineDn(x.subject)),
          ...(sharedWith.length ? { sharedWith } : {}),
        },
      };
    });
  } catch (e) {
    if (isMssError(e) && e.code !== 'INTERNAL') {
      await ctx.db
        .transaction((tx) => ctx.journal.appendIn(tx, { type: 'bal.cert.refused', actor, subject: address.trim().toLowerCase(), details: { code: e.code, reason: e.message } }))
        .catch((je) => ctx.log?.error({ err: je }, 'could not journal a refused certificate registration'));
    }
    throw e;
  }
}

/** Two structure ids, normalised (a certificate may carry the bare FINESS / SIRET). */
function sameStructure(fromCertificate: string, ofBox: string): boolean {
  try {
    return normaliseStructureId(fromCertificate) === ofBox;
  } catch {
    return false;
  }
}

export async function revokeAppCertificate(ctx: BalContext, address: string, fingerprint: string, actor: string, reason?: string): Promise<Bal> {
  const fp = fingerprint.replace(/[:\s]/g, '').toLowerCase();
  return write(ctx, 'certificates', actor, address, async (tx) => {
    const bal = await lockBal(tx, address);
    expectType(bal, ['APP'], 'revoking an application certificate');
    const r = await tx.query('UPDATE bal_app_certificates SET revoked_at = now(), revoked_by = $3 WHERE bal_id = $1 AND fingerprint = $2 AND revoked_at IS NULL RETURNING subject', [bal.id, fp, actor]);
    if (!r.rows.length) throw new MssError('NOT_FOUND', { what: `active certificate ${fp} of ${bal.address}` });
    return { event: 'bal.cert.revoked', details: { fingerprint: fp, ...(reason ? { reason } : {}) } };
  });
}

const refLabel = (r: PersonRef) => ('id' in r ? `#${r.id}` : 'login' in r ? r.login : r.idnps);
