// The admin API's JSON shapes that both sides name: the server (annuaire/bal/model.ts,
// accounts.ts, dashboard.ts) and the operator console (webui/console/types.ts). Types only,
// and no import: the browser's compiler (webui/tsconfig.json: DOM, no Node) reads this file
// too, and nothing of it reaches the browser's scripts. Each shape takes the type of its
// times: Date on the server, the ISO string it becomes on the wire (`Of<string>`).
// schemas.ts stays the reference of the wire format.

export type BalType = 'PER' | 'ORG' | 'APP' | 'CAB';

export interface MemberOf<T> {
  personId: string;
  login: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  addedAt: T;
  addedBy: string;
}

export interface AppCertificateOf<T> {
  fingerprint: string;
  subject: string;
  serial: string;
  issuer: string;
  notBefore: T;
  notAfter: T;
  registeredAt: T;
  registeredBy: string;
  revokedAt: T | null;
  revokedBy: string | null;
}

export interface BalOf<T> {
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
  status: 'active' | 'closed';
  createdAt: T;
  closedAt: T | null;
  reopenedAt: T | null;
}

export interface PersonOf<T> {
  id: string;
  login: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  active: boolean;
  hasPassword: boolean;
  hasTotp: boolean;
  createdAt: T;
}

export interface AdminAccountOf<T> {
  id: string;
  login: string;
  role: 'national' | 'regional';
  domains: string[];
  structures: string[];
  active: boolean;
  createdAt: T;
  createdBy: string;
  lastLoginAt: T | null;
  /** A second factor (TOTP) is enrolled: logins need its code. */
  totp: boolean;
  /** This session (`/me` only) was opened with Pro Santé Connect (CPS or e-CPS: two factors already). */
  pscSession?: boolean;
}

/** A journal event as the API lists it (core/journal's event without its chaining fields). */
export interface JournalEventOf<T> {
  seq: number;
  at: T;
  type: string;
  actor: string;
  subject: string | null;
  details: Record<string, unknown>;
  hash: string;
}

export interface DashboardOf<T> {
  since: T;
  scope: 'national' | 'regional';
  boxes: Array<{ type: BalType; active: number; closed: number }>;
  traffic: { received: number; sent: number; queued: number; oldest: T | null; deferred: number; oldestDeferred: T | null } | null;
  imports: Array<{ kind: 'activity' | 'mssante'; file: string; extractionDate: T; importedAt: T; lines: number; rejected: number; counts: Record<string, unknown>; actor: string; journalSeq: number | null }>;
  alerts: {
    certificates: Array<{ address: string; subject: string; notAfter: T }>;
    serverCertificate: { subject: string; notAfter: T } | null;
    deferred: { count: number; oldest: T | null } | null;
    dmp: { count: number; since: T; latest: { bal: string; at: T; error: string | null } | null } | null;
  };
}
