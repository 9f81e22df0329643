// What the policy needs to know about the world, and nothing more. The annuaire implements
// these interfaces and the composition root injects them: core never imports annuaire.

export type BalType = 'PER' | 'ORG' | 'APP' | 'CAB';

export interface RegisteredApplication {
  /** SHA-256 of the certificate's DER, lower-case hex without colons. */
  fingerprint: string;
  notAfter: Date;
  revokedAt: Date | null;
}

/** One of the operator's own mailboxes, as the policy sees it. */
export interface MailboxFacts {
  address: string;
  type: BalType;
  status: 'active' | 'closed';
  /** Lower-case mail domain of the address. */
  domain: string;
  /** PER / CAB: the holder's national id (IDNPS). ORG / APP: the structure's national id. */
  ownerId: string;
  /** ORG: ids of the member persons. */
  memberIds: readonly string[];
  /** APP: the certificates registered for the application, revoked ones included. */
  applications: readonly RegisteredApplication[];
}

/** One domain of the liste blanche. */
export interface TrustSpaceEntry {
  domain: string;
  /** Subject DN of the operator's server certificate, as the national list publishes it. */
  operatorDn: string | null;
}

export interface MailboxFactSource {
  /** null: no such mailbox. Throws when the store cannot answer (→ temporary failure). */
  mailbox(address: string): Promise<MailboxFacts | null>;
}

export interface TrustSpaceFactSource {
  /** null: not on the liste blanche. Throws when the store cannot answer. */
  trustSpaceEntry(domain: string): Promise<TrustSpaceEntry | null>;
}

export interface PolicyFacts extends MailboxFactSource, TrustSpaceFactSource {}
