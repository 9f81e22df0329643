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

  const { fields, malformed } = headerFields(message);
  if (malformed !== undefined) return refuse('MESSAGE_HEADER_MALFORMED', { line: malformed });
  for (const f of fields) {
    const bytes = message.subarray(f.valueStart, f.end);
    if (!bytes.some((b) => b > 0x7f)) continue;
    if (!o.smtpUtf8) return refuse('MESSAGE_HEADER_8BIT', { header: f.name });
    if (!isUtf8(bytes)) return refuse('MESSAGE_HEADER_NOT_UTF8', { header: f.name });
  }

  const byName = new Map<string, HeaderField[]>();
  for (const f of fields) {
    const k = f.name.toLowerCase();
    byName.set(k, [...(byName.get(k) ?? []), f]);
  }
  const count = (name: string) => byName.get(name.toLowerCase())?.length ?? 0;

  // From first: who the message claims to be from is what the fronts decide on next.
  const froms = byName.get('from') ?? [];
  if (froms.length > 1) return refuse('MESSAGE_HEADER_REPEATED', { header: 'From', count: froms.length });
  const fromValue = froms[0] ? fieldValue(message, froms[0]) : '';
  const mailbox = oneMailbox(fromValue);
  if (!mailbox) {
    if (o.fromCode) return refuse(o.fromCode, { from: shown(fromValue) });
    return froms.length ? refuse('MESSAGE_FROM_INVALID', { from: shown(fromValue) }) : refuse('MESSAGE_HEADER_MISSING', { header: 'From' });
  }
  if (!count('Date')) return refuse('MESSAGE_HEADER_MISSING', { header: 'Date' });
  for (const name of SINGLETONS) if (count(name) > 1) return refuse('MESSAGE_HEADER_REPEATED', { header: name, count: count(name) });
  const id = byName.get('message-id')?.[0];
  return { ok: true, from: mailbox, ...(id ? { messageId: fieldValue(message, id) } : {}) };
}

/** The one mailbox of a From value (no group, one address with a local part and a domain), or null. */
export function oneMailbox(value: string): { address: string; domain: string } | null {
  if (!value) return null;
  const list = addressparser(value) as Array<{ address?: string; group?: unknown[] }>;
  if (list.length !== 1 || list[0].group || !list[0].address) return null;
  const address = list[0].address;
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1 || address.indexOf('@') !== at) return null;
  return { address, domain: normaliseDomain(address.slice(at + 1)) };
}
