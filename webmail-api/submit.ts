// Sending through the platform's own submission server (implicit TLS), authenticated as the
// person with the session token, so its rules — send-as (core/policy), the espace de
// confiance, size, rate — decide, and its refusals come back with their own sentence.
import nodemailer from 'nodemailer';
import { MssError } from '../core/errors.js';
import { nodeTlsPolicy } from '../certs/tls-policy.js';

export interface SubmissionTarget {
  host: string;
  port: number;
  ca: string[];
  /** The name its certificate carries when `host` is not in it. */
  servername?: string;
}

export interface Submitted {
  accepted: string[];
  /** Recipients the server refused while others were accepted, with its reply. */
  rejected: Array<{ address: string; reply: string }>;
  response: string;
}

interface SmtpError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  rejected?: string[];
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

export async function submit(t: SubmissionTarget, auth: { user: string; token: string }, envelope: { from: string; to: string[] }, raw: Buffer): Promise<Submitted> {
  const transport = nodemailer.createTransport({
    host: t.host,
    port: t.port,
    secure: true,
    tls: { ca: t.ca, ...nodeTlsPolicy(), ...(t.servername ? { servername: t.servername } : {}) },
    auth: { user: auth.user, pass: auth.token },
    connectionTimeout: 15_000,
    greetingTimeout: 15_000,
    socketTimeout: 60_000,
  });
  try {
    const info = await transport.sendMail({ envelope, raw });
    const rejectedErrors = ((info as unknown as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? []) as SmtpError[];
    return {
      accepted: (info.accepted ?? []).map(String),
      rejected: (info.rejected ?? []).map((a) => {
        const address = String(a);
        const e = rejectedErrors.find((x) => x.recipient === address);
        return { address, reply: e?.response ?? 'refused' };
      }),
      response: info.response,
    };
  } catch (e) {
    throw smtpError(e as SmtpError);
  } finally {
    transport.close();
  }
}

/**
 * The server's refusal as problem+json: 5.7.x (not allowed: send-as, trust space) → 403,
 * any other 5xx → 422, 4xx → 503 (try again), a refused token → 401. When every
 * recipient was refused, the first one's reply is the sentence.
 */
export function smtpError(e: SmtpError): MssError {
  const first = e.rejectedErrors?.[0];
  const reply = (first?.response ?? e.response ?? '').replace(/[\r\n]+/g, ' ').trim();
  const code = first?.responseCode ?? e.responseCode;
  if (!code) return new MssError('WEBMAIL_SEND_DEFERRED', { reply: `no answer from the submission server (${e.code ?? e.message})` }, { cause: e });
  if (code === 535 || (code === 530 && /authentication/i.test(reply))) return new MssError('WEBMAIL_SESSION_INVALID', {}, { cause: e });
  if (code >= 400 && code < 500) return new MssError('WEBMAIL_SEND_DEFERRED', { reply }, { cause: e });
  if (/^\d{3}[ -]5\.7\.\d+/.test(reply)) return new MssError('WEBMAIL_SEND_FORBIDDEN', { reply }, { cause: e });
  return new MssError('WEBMAIL_SEND_REFUSED', { reply }, { cause: e });
}
