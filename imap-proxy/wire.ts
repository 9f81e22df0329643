// IMAP wire forms of the proxy's own answers. Every refusal comes from the one catalogue
// (core/errors.ts): its IMAP kind (NO / BAD / BYE), its response code and its sentence.
import { ascii } from '../core/ascii.js';
import { catalogue, MssError, type ErrorCode } from '../core/errors.js';
import { wireForms, type Refusal } from '../core/policy/index.js';

/** A response text is one line of ASCII: no CR, LF or NUL may reach the client from a detail. */
const oneLine = (s: string) => ascii(s.replace(/[\r\n\0]+/g, ' '));

/** `tag NO [CODE] sentence` (or BAD / BYE, untagged for BYE or when no tag could be read). */
export function refusal(tag: string | null, code: ErrorCode, details: Record<string, unknown> = {}): string {
  const entry = catalogue[code] as { imap?: { kind: 'NO' | 'BAD' | 'BYE'; code?: string } };
  const imap = entry.imap ?? { kind: 'NO' as const, code: 'SERVERBUG' };
  return line(imap.kind === 'BYE' ? '*' : (tag ?? '*'), imap.kind, imap.code, new MssError(code, details).message);
}

/** A policy verdict's refusal, with the verdict's own sentence. */
export function verdictRefusal(tag: string, v: Refusal): string {
  const w = wireForms(v).imap ?? { kind: 'NO' as const, code: 'AUTHORIZATIONFAILED' };
  return line(tag, w.kind, w.code, v.reason);
}

export function line(tag: string, kind: 'OK' | 'NO' | 'BAD' | 'BYE', code: string | undefined, text: string): string {
  return `${tag} ${kind} ${code ? `[${code}] ` : ''}${oneLine(text)}\r\n`;
}

/**
 * An IMAP string: quoted when it can be (RFC 3501 quoted-specials escaped), a literal
 * otherwise (CR, LF, 8-bit). Used for the ID answer and the backend LOGIN.
 */
export function imapString(s: string): string {
  if (/^[\x01-\x09\x0b\x0c\x0e-\x7f]*$/.test(s)) return `"${s.replace(/(["\\])/g, '\\$1')}"`;
  const b = Buffer.from(s, 'utf8');
  return `{${b.length}}\r\n${s}`;
}
