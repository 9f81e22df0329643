import { catalogue, MssError, type ErrorCode } from '../errors.js';

/** The codes a policy decision may refuse with; each is in the one catalogue (core/errors.ts). */
export type RefusalCode = Extract<
  ErrorCode,
  'AUTH_FAILED' | 'LOGIN_THROTTLED' | 'LOGIN_BUSY' | 'DIRECTORY_UNAVAILABLE' | 'BAL_UNKNOWN' | 'BAL_CLOSED' | 'BAL_NOT_MEMBER' | 'SEND_AS_FORBIDDEN' | 'DOMAIN_NOT_WHITELISTED' | 'PEER_CERT_MISMATCH' | 'ADMIN_OUT_OF_SCOPE' | 'ADMIN_TOTP_ENROLMENT_REQUIRED' | 'FROM_NOT_PEER_DOMAIN' | 'DMP_RULE_FORBIDDEN' | 'DIRECTORY_READ_FORBIDDEN'
>;

/**
 * What every decision returns: accept, or refuse with a catalogue code and a sentence a
 * person understands. `temporary` means "could not decide, try later" (4xx / NO
 * [UNAVAILABLE] / 503) — never an accept, never a bounce.
 */
export type Verdict = { ok: true } | { ok: false; code: RefusalCode; temporary?: boolean; reason: string };

export type Refusal = Extract<Verdict, { ok: false }>;

/** Refusals that mean "not now": the same request may succeed later. */
const TEMPORARY = new Set<RefusalCode>(['DIRECTORY_UNAVAILABLE', 'LOGIN_THROTTLED', 'LOGIN_BUSY']);

export const ALLOW: Verdict = Object.freeze({ ok: true });

/** A refusal whose sentence is the catalogue's, filled with details. */
export function refuse(code: RefusalCode, details: Record<string, unknown> = {}): Refusal {
  const reason = new MssError(code, details).message;
  return TEMPORARY.has(code) ? { ok: false, code, temporary: true, reason } : { ok: false, code, reason };
}

/** The wire forms of a refusal, for the fronts: SMTP reply, IMAP response code, HTTP status. */
export function wireForms(v: Refusal): { smtp?: { code: number; enhanced: string }; imap?: { kind: 'NO' | 'BAD' | 'BYE'; code?: string }; http: number } {
  const e = catalogue[v.code];
  return { smtp: 'smtp' in e ? e.smtp : undefined, imap: 'imap' in e ? e.imap : undefined, http: e.http };
}

/**
 * A refusal as an MssError carrying the verdict's own sentence (HTTP fronts throw it and the
 * problem+json handler answers with the code's status).
 */
export function verdictError(v: Refusal): MssError {
  const e = new MssError(v.code, {});
  Object.defineProperty(e, 'message', { value: v.reason });
  return e;
}
