// annuaire/bal's side of core/policy: the facts about one mailbox, read fresh from the
// store on each decision (a closed box or a revoked certificate takes effect at once).
import type { Queryable } from '../../core/db/index.js';
import type { MailboxFactSource, MailboxFacts } from '../../core/policy/index.js';
import type { Bal } from './model.js';

export function mailboxFacts(bal: Bal): MailboxFacts {
  return {
    address: bal.address,
    type: bal.type,
    status: bal.status,
    domain: bal.domain,
    ownerId: bal.ownerId,
    memberIds: bal.members.map((m) => m.personId),
    applications: bal.certificates.map((c) => ({ fingerprint: c.fingerprint, notAfter: c.notAfter, revokedAt: c.revokedAt })),
  };
}

/**
 * The facts in one statement (the box, its members' ids, its application certificates):
 * every login, submission and webmail request asks, and on the embedded database each
 * statement waits its turn behind whatever else the process is doing.
 */
export function balFactSource(q: Queryable): MailboxFactSource {
  return {
    async mailbox(address) {
      const { rows } = await q.query<{ address: string; type: MailboxFacts['type']; status: MailboxFacts['status']; domain: string; owner_id: string; member_ids: string[]; applications: Array<{ fingerprint: string; notAfter: string; revokedAt: string | null }> }>(
        `SELECT b.address, b.type, b.status, b.domain, b.owner_id,
                coalesce((SELECT array_agg(m.person_id::text ORDER BY m.person_id) FROM bal_members m WHERE m.bal_id = b.id), '{}') AS member_ids,
                coalesce((SELECT json_agg(json_build_object('fingerprint', c.fingerprint, 'notAfter', c.not_after, 'revokedAt', c.revoked_at) ORDER BY c.id)
                            FROM bal_app_certificates c WHERE c.bal_id = b.id), '[]'::json) AS applications
           FROM bal_mailboxes b WHERE lower(b.address) = lower($1)`,
        [address.trim()],
      );
      const r = rows[0];
      if (!r) return null;
      return {
        address: r.address,
        type: r.type,
        status: r.status,
        domain: r.domain,
        ownerId: r.owner_id,
        memberIds: r.member_ids,
        applications: r.applications.map((a) => ({ fingerprint: a.fingerprint, notAfter: new Date(a.notAfter), revokedAt: a.revokedAt === null ? null : new Date(a.revokedAt) })),
      };
    },
  };
}
