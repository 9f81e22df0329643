import { isUtf8 } from 'node:buffer';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { ErrorCode } from '../core/errors.js';
import { normaliseDomain } from '../core/policy/index.js';
import { fieldValue, headerFields, type HeaderField } from './message.js';

/** A refusal of the message: a catalogue code and the details its sentence names. */
export interface ContentProblem {
  code: ErrorCode;
  details: Record<string, unknown>;
}

export type ContentVerdict = { ok: true; from: { address: string; domain: string }; messageId?: string } | { ok: false; problem: ContentProblem };

/** RFC 5322 §3.6: fields a message has at most once. */
const SINGLETONS = ['Date', 'From', 'Sender', 'Reply-To', 'To', 'Cc', 'Bcc', 'Message-ID', 'In-Reply-To', 'References', 'Subject'];
const SINGLETON_KEYS = new Set(SINGLETONS.map((n) => n.toLowerCase()));

/** The From value as a refusal shows it: quoted, bounded. */
const shown = (v: string) => JSON.stringify(v.length > 200 ? `${v.slice(0, 200)}...` : v);

/**
 * The rules a message must meet at the end of DATA, on both fronts, before any policy: no NUL
 * byte anywhere; a header section made of fields; header bytes ASCII unless the transaction
 * announced SMTPUTF8, and then valid UTF-8; one From naming exactly one mailbox; one Date; at
 * most one of each singleton field. Pure: the front journals and answers.
 *
 * `fromCode` is the refusal for a From that is missing or not one mailbox: submission says
 * it must be a box the sender may send as (FROM_HEADER_INVALID), the MX says what RFC 5322
 * asks (MESSAGE_HEADER_MISSING / MESSAGE_FROM_INVALID).
 */
export function checkContent(message: Buffer, o: { smtpUtf8: boolean; fromCode?: 'FROM_HEADER_INVALID' }): ContentVerdict {
  const refuse = (code: ErrorCode, details: Record<string, unknown>): ContentVerdict => ({ ok: false, problem: { code, details } });
  const nul = message.indexOf(0);
  if (nul >= 0) return refuse('MESSAGE_NUL_BYTE', { offset: nul });

  // One pass, keeping only the counts and first fields of the singletons.
  const singletons = new Map<string, { count: number; first: HeaderField }>();
  for (const f of headerFields(message)) {
    if ('malformed' in f) return refuse('MESSAGE_HEADER_MALFORMED', { line: f.malformed });
    const bytes = message.subarray(f.valueStart, f.end);
    if (has8bit(bytes)) {
      if (!o.smtpUtf8) return refuse('MESSAGE_HEADER_8BIT', { header: f.name });
      if (!isUtf8(bytes)) return refuse('MESSAGE_HEADER_NOT_UTF8', { header: f.name });
    }
    const key = f.name.toLowerCase();
    if (!SINGLETON_KEYS.has(key)) continue;
    const seen = singletons.get(key);
    if (seen) seen.count++;
    else singletons.set(key, { count: 1, first: f });
  }
  const count = (name: string) => singletons.get(name.toLowerCase())?.count ?? 0;

  // From first: who the message claims to be from is what the fronts decide on next.
  const from = singletons.get('from');
  if (count('From') > 1) return refuse('MESSAGE_HEADER_REPEATED', { header: 'From', count: count('From') });
  const fromValue = from ? fieldValue(message, from.first) : '';
  const mailbox = oneMailbox(fromValue);
  if (!mailbox) {
    if (o.fromCode) return refuse(o.fromCode, { from: shown(fromValue) });
    return from ? refuse('MESSAGE_FROM_INVALID', { from: shown(fromValue) }) : refuse('MESSAGE_HEADER_MISSING', { header: 'From' });
  }
  if (!count('Date')) return refuse('MESSAGE_HEADER_MISSING', { header: 'Date' });
  for (const name of SINGLETONS) if (count(name) > 1) return refuse('MESSAGE_HEADER_REPEATED', { header: name, count: count(name) });
  const id = singletons.get('message-id');
  return { ok: true, from: mailbox, ...(id ? { messageId: fieldValue(message, id.first) } : {}) };
}

function has8bit(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return true;
  return false;
}

/**
 * The one mailbox of a From value (no group, one address with a local part and a domain), or
 * null. A value longer than any one mailbox needs is not parsed at all.
 */
export function oneMailbox(value: string): { address: string; domain: string } | null {
  if (!value || value.length > 2000) return null;
  const list = addressparser(value) as Array<{ address?: string; group?: unknown[] }>;
  if (list.length !== 1 || list[0].group || !list[0].address) return null;
  const address = list[0].address;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || address.indexOf('@') !== at) return null;
  return { address, domain: normaliseDomain(address.slice(at + 1)) };
}
