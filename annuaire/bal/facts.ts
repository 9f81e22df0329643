// annuaire/bal's side of core/policy: the facts about one mailbox, read fresh from the
// store on each decision (a closed box or a revoked certificate takes effect at once).
import type { Queryable } from '../../core/db/index.js';
import type { MailboxFactSource, MailboxFacts } from '../../core/policy/index.js';
import { findBal } from './lookups.js';
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

export function balFactSource(q: Queryable): MailboxFactSource {
  return {
    async mailbox(address) {
      const bal = await findBal(q, address);
      return bal && mailboxFacts(bal);
    },
  };
}
