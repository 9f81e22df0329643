import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';

export interface LmtpTarget {
  host: string;
  port: number;
  /** A back end of a shared store, reached over TLS (implicit) checked against this CA. */
  tls?: { ca: string };
}

/**
 * Where the recipients' boxes are, in a shared store: the recipients grouped by back end,
 * each group with the back ends to try in order (the box's own, then its pair's replica).
 */
export type LmtpRoute = (rcpts: string[]) => Promise<Array<{ rcpts: string[]; targets: LmtpTarget[] }>>;

export interface Envelope {
  /** Envelope sender; '' for a bounce (null reverse-path). */
  from: string;
  to: string[];
}

export interface RecipientFailure {
  rcpt: string;
  /** The LMTP reply code: 4xx temporary (retry), 5xx permanent. */
  code: number;
  response: string;
  temporary: boolean;
}

export interface DeliveryResult {
  accepted: string[];
  failed: RecipientFailure[];
}

/**
 * Hands one message to Dovecot over LMTP, which answers once per recipient after DATA:
 * each recipient is delivered or not on its own. A connection or protocol failure
 * rejects the promise (nothing was delivered for sure: the caller retries everything).
 */
export function deliverLmtp(target: LmtpTarget, envelope: Envelope, message: Buffer | Readable, opts: { name?: string; timeoutMs?: number } = {}): Promise<DeliveryResult> {
  return new Promise((resolve, reject) => {
    const conn = new SMTPConnection({
      host: target.host,
      port: target.port,
      lmtp: true,
      name: opts.name ?? 'localhost',
      ignoreTLS: true,
      connectionTimeout: opts.timeoutMs ?? 30_000,
      greetingTimeout: opts.timeoutMs ?? 30_000,
      socketTimeout: opts.timeoutMs ?? 120_000,
    });
    let settled = false;
    const finish = (err: Error | null, res?: DeliveryResult) => {
      if (settled) return;
      settled = true;
      conn.quit();
      if (err) reject(err);
      else resolve(res!);
    };
    conn.once('error', (e: Error) => finish(e));
    conn.connect(() => {
      conn.send({ from: envelope.from, to: envelope.to }, message, (err, info) => {
        // With LMTP, a recipient refused at RCPT or after DATA lands in rejectedErrors.
        const errInfo = err as (Error & { rejected?: string[]; rejectedErrors?: any[] }) | null;
        const rejectedErrors: any[] = (info as any)?.rejectedErrors ?? errInfo?.rejectedErrors ?? [];
        const failed: RecipientFailure[] = rejectedErrors.map((e) => {
          const code = Number(e.responseCode) || 451;
          return { rcpt: e.recipient, code, response: String(e.response ?? e.message), temporary: code < 500 };
        });
        if (err && !rejectedErrors.length) return finish(err);
        const refused = new Set(failed.map((f) => f.rcpt));
        finish(null, { accepted: envelope.to.filter((r) => !refused.has(r)), failed });
      });
    });
  });
}
