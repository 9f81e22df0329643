// The webmail API's answers, as the pages use them (webmail-api/schemas.ts is the reference):
// the shapes the server names too come from webmail-api/json-types.ts (types only, no import).
import type { Address, DmpRuleAnswer, Flags, Folder, MessageSummary } from '../../webmail-api/json-types.js';

export type { Address, DmpRuleAnswer, Flags, Folder };
/** A message of a list. */
export type Summary = MessageSummary;
export interface Person {
  login: string;
  idnps: string | null;
  auth: string;
}
export interface Bal {
  address: string;
  type: 'PER' | 'ORG' | 'APP' | 'CAB';
  description: string | null;
  unseen?: number | null;
}
export interface Page {
  total: number;
  page: number;
  pageSize: number;
  messages: Summary[];
}
export interface Attachment {
  index: number;
  filename: string | null;
  contentType: string;
  size: number;
  inline: boolean;
}
export interface Message {
  uid: number;
  bal: string;
  folder: string;
  date: string | null;
  sentAt: string | null;
  subject: string;
  from: Address[];
  to: Address[];
  cc: Address[];
  bcc?: Address[];
  replyTo: Address[];
  messageId: string | null;
  dispositionNotificationTo: string | null;
  flags: Flags;
  text: string | null;
  html: string | null;
  attachments: Attachment[];
  /** PGP/MIME encrypted to the box's OpenPGP key: the webmail cannot read it, `notice` says so. */
  encrypted?: { scheme: 'pgp-mime'; notice: string } | null;
  /** Clinical documents (dmp/): each attachment's `view` is what the page shows. */
  documents?: Array<{ view?: ClinicalAttachment }>;
  documentsError?: { title: string; detail: string };
  /** DMP hand-offs of this message, newest first. */
  dmp?: DmpOutcome[];
}
export type Masking = 'normal' | 'masque-ps' | 'invisible-patient' | 'invisible-representants-legaux';
export interface Coded {
  code: string;
  scheme: string;
  display?: string;
}
export interface ClinicalDocument {
  title: string | null;
  type: Coded | null;
  patient: { family: string | null; given: string | null; birthDate: string | null; ins: string | null; insKind: string | null };
  authors: Array<{ name: string | null; id: string | null; institution: string | null }>;
  date: string | null;
  confidentiality: Coded[];
  masking: Masking[];
  narrative: string | null;
  narrativeError?: string;
}
export interface ClinicalAttachment {
  filename: string;
  kind: 'xdm' | 'cda';
  error?: string;
  documents: ClinicalDocument[];
}
export interface DmpOutcome {
  status: 'success' | 'failure';
  actor: string;
  masking: Masking | null;
  submittedAt: string;
  documentIds: string[];
  errors: Array<{ code: string; context?: string }>;
}
