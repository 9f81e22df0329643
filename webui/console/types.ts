// The admin API's answers, as the console uses them (annuaire/admin/schemas.ts is the reference).
export interface AdminAccount {
  login: string;
  role: 'national' | 'regional';
  domains: string[];
  structures: string[];
  lastLoginAt: string | null;
}
export type BalType = 'PER' | 'ORG' | 'APP' | 'CAB';
export interface Member {
  personId: string;
  login: string;
  idnps: string | null;
  nom: string | null;
  prenom: string | null;
  addedAt: string;
  addedBy: string;
}
export interface Certificate {
  fingerprint: string;
  subject: string;
  serial: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  registeredAt: string;
  registeredBy: string;
  revokedAt: string | null;
  revokedBy: string | null;
}
export interface Bal {
  address: string;
  domain: string;
  type: BalType;
  ownerId: string;
  structureId: string | null;
  displayName: string | null;
  description: string | null;
  service: string | null;
  responsible: string | null;
  listeRouge: boolean;
  status: 'active' | 'closed';
  createdAt: string;
  closedAt: string | null;
  reopenedAt: string | null;
  members?: Member[];
  certificates?: Certificate[];
}
export interface JournalEvent {
  seq: number;
  at: string;
  type: string;
  actor: string;
  subject: string | null;
  details: Record<string, unknown>;
  hash: string;
}
