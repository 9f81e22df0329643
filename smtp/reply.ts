import { catalogue, MssError, type ErrorCode } from '../core/errors.js';
import type { Refusal } from '../core/policy/index.js';
import { ascii } from '../core/ascii.js';

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
