// The admin API's answers, as the console uses them: the shapes come from
// annuaire/admin/json-types.ts (types only, no import), declared once for the server and the
// browser, with times as the ISO strings they are on the wire. annuaire/admin/schemas.ts
// stays the reference of the wire format.
import type { AdminAccountOf, AppCertificateOf, BalOf, BalType, DashboardOf, JournalEventOf, MemberOf, PersonOf } from '../../annuaire/admin/json-types.js';

export type { BalType };
export type AdminAccount = AdminAccountOf<string>;
export type Member = MemberOf<string>;
export type Certificate = AppCertificateOf<string>;
/** A mailbox; its members and certificates come with the one-box answer only. */
export interface Bal extends BalOf<string> {
  members?: Member[];
  certificates?: Certificate[];
}
export type Person = PersonOf<string>;
export type JournalEvent = JournalEventOf<string>;
export type Dashboard = DashboardOf<string>;

/** A box's OpenPGP key (GET/PUT /api/v1/bals/{address}/openpgp-key). */
export interface OpenPgpKey {
  address: string;
  fingerprint: string;
  algorithm: string;
  userIds: string[];
  createdAt: string;
  expiresAt: string | null;
  registeredAt: string;
  registeredBy: string;
}
