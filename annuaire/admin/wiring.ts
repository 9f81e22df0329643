// How writes to the operator's mailboxes are followed, for every writer (admin API, CLI):
// in the change's own transaction, the publication payload is queued (annuaire/publication)
// and the directory is told which entries to refresh (annuaire/ldap's queue, drained by
// the platform's feeder every ldap.syncInterval — visible in LDAP within a second).
import type { Config } from '../../core/config/index.js';
import { loadTrustStore } from '../../certs/client-cert.js';
import type { Db, Queryable } from '../../core/db/index.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import type { BalChange, BalContext } from '../bal/index.js';
import { queueLdapChanges } from '../ldap/index.js';
import { enqueuePublication } from '../publication/index.js';
import { domainForms } from '../whitelist/parse.js';

/** The one call that makes a BAL change reach the LDAP directory. */
export async function queueBalForDirectory(tx: Queryable, change: BalChange): Promise<void> {
  const { bal } = change;
  await queueLdapChanges(tx, {
    addresses: [bal.address],
    persons: bal.type === 'PER' || bal.type === 'CAB' ? [bal.ownerId] : [],
    structures: bal.structureId ? [bal.structureId] : [],
  });
}

async function publish(tx: Queryable, change: BalChange): Promise<void> {
  await enqueuePublication(tx, change);
}

/** The operator's mail domains, A-label form: where BALs may be created. */
export function operatorDomains(config: Pick<Config, 'operator'>): string[] {
  return [config.operator.domain, ...config.operator.domains].map((d) => domainForms(d)?.ascii ?? d.toLowerCase());
}

/** Application certificates are checked against the configured trust bundle and CRLs (tls.caFile, tls.crlFile). */
export function operatorBalContext(config: Pick<Config, 'operator' | 'tls'>, db: Db, journal: Pick<Journal, 'appendIn'>, log?: Logger): BalContext {
  return { db, journal, domains: operatorDomains(config), log, hooks: { inTransaction: [publish, queueBalForDirectory] }, trust: () => loadTrustStore(config.tls) };
}
