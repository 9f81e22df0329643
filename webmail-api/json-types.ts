// The webmail API's JSON shapes that both sides name: the server (mailbox.ts, render.ts,
// deps.ts) and the browser pages (webui/webmail/types.ts). Types only, and no import: the
// browser's compiler (webui/tsconfig.json: DOM, no Node) reads this file too, and nothing
// of it reaches the browser's scripts. schemas.ts stays the reference of the wire format.

export interface Folder {
  path: string;
  name: string;
  delimiter: string;
  /** \Sent, \Trash, \Drafts, \Junk, or null. */
  specialUse: string | null;
  messages: number;
  unseen: number;
}

export interface Flags {
  seen: boolean;
  flagged: boolean;
  answered: boolean;
  draft: boolean;
  keywords: string[];
}

export interface Address {
  name: string;
  address: string;
}

export interface MessageSummary {
  uid: number;
  /** Arrival in the box (INTERNALDATE). */
  date: string | null;
  /** The Date header. */
  sentAt: string | null;
  subject: string;
  from: Address[];
  to: Address[];
  cc: Address[];
  messageId: string | null;
  size: number;
  flags: Flags;
  hasAttachments: boolean;
}

/** A box's DMP rule as the person sees it: the rule (or none), and whether they may change it (or why not). */
export interface DmpRuleAnswer {
  bal: string;
  rule: { masking: string; enabled: boolean; updatedAt: string; createdBy: string } | null;
  maySet: boolean;
  why?: string;
}
