// The webmail API's answers, as the pages use them (webmail-api/schemas.ts is the reference).
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
export interface Folder {
  path: string;
  name: string;
  delimiter: string;
  specialUse: string | null;
  messages: number;
  unseen: number;
}
export interface Address {
  name?: string;
  address?: string;
}
export interface Flags {
  seen: boolean;
  flagged: boolean;
  answered: boolean;
  draft: boolean;
  keywords: string[];
}
export interface Summary {
  uid: number;
  date: string | null;
  sentAt: string | null;
  subject: string;
  from: Address[];
  to: Address[];
  size: number;
  flags: Flags;
  hasAttachments: boolean;
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
}
