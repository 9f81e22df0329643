// The shapes annuaire/bal hands out, and the context its writers run in.
import type { Db, Queryable } from '../../core/db/index.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import type { BalType } from '../../core/policy/index.js';
import type { TrustStore } from '../../certs/client-cert.js';
import type { AppCertificateOf, BalOf, MemberOf, PersonOf } from '../admin/json-types.js';

export type { BalType } from '../../core/policy/index.js';
export const BAL_TYPES: readonly BalType[] = ['PER', 'ORG', 'APP', 'CAB'];

// The JSON shapes are declared once, for the server and the console (annuaire/admin/json-types.ts).
export type Member = MemberOf<Date>;

export interface AppCertificate extends AppCertificateOf<Date> {
  id: number;
}

export interface Bal extends BalOf<Date> {
  id: number;
  rank: number | null;
  updatedAt: Date;
  version: number;
  members: Member[];
  certificates: AppCertificate[];
}

export type Person = PersonOf<Date>;

/** What changed, for whoever follows BAL changes (publication queue, LDAP feeder). */
export type BalChangeKind = 'created' | 'updated' | 'closed' | 'reopened' | 'members' | 'certificates';
export interface BalChange {
  kind: BalChangeKind;
  bal: Bal;
  actor: string;
}

/**
 * Followers of BAL changes. inTransaction runs inside the write's transaction (an outbox:
 * the publication payload commits or rolls back with the change); afterCommit runs once it
 * is committed (pushing to LDAP); its failures are logged, the write stands.
 */
export interface BalHooks {
  inTransaction?: Array<(tx: Queryable, change: BalChange) => Promise<void>>;
  afterCommit?: Array<(change: BalChange) => Promise<void> | void>;
}

export interface BalContext {
  db: Db;
  journal: Pick<Journal, 'appendIn'>;
  /** The operator's mail domains (A-labels): a BAL is created only in one of them. Empty: any. */
  domains?: readonly string[];
  hooks?: BalHooks;
  log?: Logger;
  /**
   * The trust bundle and CRLs that application certificates are checked against when they
   * are registered (read when needed, so a refreshed CRL counts at once). Absent: every
   * registration is refused — a certificate nobody checked is never bound.
   */
  trust?: () => TrustStore;
}
