import { catalogue, MssError, type ErrorCode } from '../core/errors.js';
import type { Refusal } from '../core/policy/index.js';

/**
 * An error smtp-server turns into a reply: responseCode, then our enhanced status code and
 * the catalogue's sentence. smtp-server derives enhanced codes from the reply code alone
 * (every 550 would read 5.1.1), so a reply whose text starts with its own code is sent
 * without smtp-server's (smtp/wire.ts); a refusal here carries its own (5.7.1, 5.7.5, 5.6.0…).
 */
export interface SmtpReplyError extends Error {
  responseCode: number;
  code: ErrorCode;
}

/** Typographic characters the catalogue and certificate subjects use, and their ASCII forms. */
const TRANSLIT: Record<string, string> = {
  '\u2026': '...',
  '\u2018': "'", '\u2019': "'", '\u201a': "'", '\u201b': "'", '\u2032': "'",
  '\u201c': '"', '\u201d': '"', '\u201e': '"', '\u00ab': '"', '\u00bb': '"', '\u2033': '"',
  '\u2010': '-', '\u2011': '-', '\u2012': '-', '\u2013': '-', '\u2014': '-', '\u2212': '-',
  '\u00a0': ' ', '\u2009': ' ', '\u202f': ' ',
  '\u0153': 'oe', '\u0152': 'OE', '\u00e6': 'ae', '\u00c6': 'AE', '\u00df': 'ss', '\u00f8': 'o', '\u00d8': 'O', '\u0142': 'l', '\u0141': 'L', '\u0111': 'd', '\u0110': 'D',
  '\u20ac': 'EUR', '\u2022': '*', '\u00b7': '.',
};

/**
 * SMTP replies are US-ASCII (RFC 5321 §4.2): "MSSanté" goes out as "MSSante", "…" as "...",
 * « » and curly quotes as '"'; any other non-ASCII character as "?", a control character
 * as a space (it could split the reply). Every reply of both fronts passes through here
 * (smtp/wire.ts), so this is a property of the wire, not of each sentence.
 */
const TRANSLIT_RE = new RegExp(`[${Object.keys(TRANSLIT).join('')}]`, 'g');

export const ascii = (s: string) =>
  s
    .replace(TRANSLIT_RE, (c) => TRANSLIT[c])
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\x00-\x1f\x7f]/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?');

export function smtpError(code: ErrorCode, details: Record<string, unknown> = {}): SmtpReplyError {
  const e = new MssError(code, details);
  const wire = catalogue[code] as { smtp?: { code: number; enhanced: string } };
  const smtp = wire.smtp ?? { code: 451, enhanced: '4.3.0' };
  const err = new Error(ascii(`${smtp.enhanced} ${e.message}`)) as SmtpReplyError;
  err.responseCode = smtp.code;
  err.code = code;
  return err;
}

export function smtpRefusal(v: Refusal): SmtpReplyError {
  const wire = catalogue[v.code] as { smtp?: { code: number; enhanced: string } };
  const smtp = wire.smtp ?? (v.temporary ? { code: 451, enhanced: '4.3.0' } : { code: 550, enhanced: '5.7.1' });
  const err = new Error(ascii(`${smtp.enhanced} ${v.reason}`)) as SmtpReplyError;
  err.responseCode = smtp.code;
  err.code = v.code;
  return err;
}
