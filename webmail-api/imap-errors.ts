// What the IMAP proxy answered, turned into the API's problem+json. The proxy and the
// policy behind it have already decided (and journalled a refusal); here we only choose the
// HTTP status and keep the server's own sentence.
import { isMssError, MssError } from '../core/errors.js';

interface ImapFlowError extends Error {
  code?: string;
  authenticationFailed?: boolean;
  serverResponseCode?: string;
  responseStatus?: string;
  response?: string | false;
}

/** "A3 NO [AUTHORIZATIONFAILED] person x may not open …" → "person x may not open …". */
export function serverSentence(e: ImapFlowError): string {
  const text = typeof e.response === 'string' ? e.response : '';
  return text.replace(/^\S+\s+(?:NO|BAD|BYE)\s+/i, '').replace(/^\[[^\]]*\]\s*/, '').trim() || e.message;
}

/**
 * `action` names what was attempted, for the sentence ("open INBOX", "move message 4").
 * `missing` is what a NONEXISTENT / TRYCREATE answer means here (a folder, usually).
 */
export function imapError(err: unknown, action: string, missing?: string): MssError {
  if (isMssError(err)) return err;
  const e = err as ImapFlowError;
  const code = e.serverResponseCode;
  if (e.authenticationFailed) {
    // The policy said no (not a member, closed or unknown box): its sentence, as a 403.
    if (code === 'AUTHORIZATIONFAILED') return new MssError('WEBMAIL_BAL_REFUSED', { reason: serverSentence(e) }, { cause: err });
    if (code === 'UNAVAILABLE' || code === 'LIMIT') return new MssError('WEBMAIL_IMAP_UNAVAILABLE', { reason: serverSentence(e) }, { cause: err });
    // The token was not accepted (closed or expired between our check and the login).
    return new MssError('WEBMAIL_SESSION_INVALID', {}, { cause: err });
  }
  if (code === 'NONEXISTENT' || code === 'TRYCREATE') return new MssError('NOT_FOUND', { what: missing ?? 'the folder' }, { cause: err });
  if (code === 'UNAVAILABLE' || code === 'INUSE' || code === 'LIMIT') return new MssError('WEBMAIL_IMAP_UNAVAILABLE', { reason: serverSentence(e) }, { cause: err });
  if (e.responseStatus === 'NO' || e.responseStatus === 'BAD') return new MssError('WEBMAIL_IMAP_REFUSED', { action, reason: serverSentence(e) }, { cause: err });
  // No answer at all: refused connection, TLS failure, timeout, connection dropped.
  return new MssError('WEBMAIL_IMAP_UNAVAILABLE', { reason: e.code ?? e.message ?? 'no answer' }, { cause: err });
}
