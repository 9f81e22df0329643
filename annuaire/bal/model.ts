// The shapes annuaire/bal hands out, and the context its writers run in.
import type { Db, Queryable } from '../../core/db/index.js';
import type { Journal } from '../../core/journal/index.js';
import type { Logger } from '../../core/logger.js';
import type { BalType } from '../../core/policy/index.js';
import type { TrustStore } from '../../certs/client-cert.js';

export type { BalType } from '../../core/policy/index.js';
export const BAL_TYPES: readonly BalType[] = ['PER', 'ORG', 'APP', 'CAB'];

export interface Member {
  personId: string;
  login: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  addedAt: Date;
  addedBy: string;
}

export interface AppCertificate {
  id: number;
  fingerprint: string;
  subject: string;
  serial: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  registeredAt: Date;
  registeredBy: string;
  revokedAt: Date | null;
  revokedBy: string | null;
}

export interface Bal {
  id: number;
  address: string;
  domain: string;
  type: BalType;
  /** PER/CAB: holder's IDNPS; ORG/APP: structure national id. */
  ownerId: string;
  structureId: string | null;
  displayName: string | null;
  description: string | null;
  service: string | null;
  responsible: string | null;
  listeRouge: boolean;
  rank: number | null;
  status: 'active' | 'closed';
  createdAt: Date;
  closedAt: Date | null;
  reopenedAt: Date | null;
  updatedAt: Date;
  version: number;
  members: Member[];
  certificates: AppCertificate[];
}

export interface Person {
  id: string;
  login: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  active: boolean;
  hasPassword: boolean;
  hasTotp: boolean;
  createdAt: Date;
}

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
