import { Transform, type TransformCallback } from 'node:stream';

/**
 * Watches the DATA bytes for a bare LF or a bare CR: a line must end with CRLF. Accepting
 * both makes "SMTP smuggling" possible (a peer that reads \n.\n as the end of data sees a
 * second message where we saw one). Reports the first offence; passes bytes through.
 */
export class LineEndingCheck extends Transform {
  offence: { what: 'LF' | 'CR'; offset: number } | null = null;
  private offset = 0;
  private lastWasCr = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    if (!this.offence) {
      for (let i = 0; i < chunk.length; i++) {
        const c = chunk[i];
        if (this.lastWasCr && c !== 0x0a) {
          this.offence = { what: 'CR', offset: this.offset + i - 1 };
          break;
        }
        if (c === 0x0a && !this.lastWasCr) {
          this.offence = { what: 'LF', offset: this.offset + i };
          break;
        }
        this.lastWasCr = c === 0x0d;
      }
      this.offset += chunk.length;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback) {
    if (!this.offence && this.lastWasCr) this.offence = { what: 'CR', offset: this.offset - 1 };
    cb();
  }
}

/** The header section of a message (up to the first empty line), as latin1 text. */
export function headerSection(message: Buffer): string {
  const end = message.indexOf('\r\n\r\n');
  return message.subarray(0, end < 0 ? Math.min(message.length, 64 * 1024) : end + 2).toString('latin1');
}

/** One header's unfolded value, or undefined (first occurrence). */
export function headerValue(headers: string, name: string): string | undefined {
  const re = new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r\\n[ \\t].*)*)`, 'im');
  const m = re.exec(headers);
  return m ? m[1].replace(/\r\n[ \t]+/g, ' ').trim() : undefined;
}

export interface ReceivedInfo {
  helo: string;
  remoteAddress: string;
  hostname: string;
  protocol: 'ESMTPS' | 'ESMTPSA' | 'ESMTP';
  queueId: string;
  tls?: { version: string; cipher: string };
  peerCertificate?: { subject: string; issuer: string; serial: string };
  authenticatedAs?: string;
  recipient?: string;
  date?: Date;
}

/** RFC 5321 §4.4 trace header, with the TLS and certificate details MSSanté audits want. */
export function receivedHeader(r: ReceivedInfo): string {
  const parts = [`from ${sanitize(r.helo) || 'unknown'} ([${r.remoteAddress}])`, `by ${r.hostname}`, `with ${r.protocol}`, `id ${r.queueId}`];
  const comments: string[] = [];
  if (r.tls) comments.push(`version=${r.tls.version} cipher=${r.tls.cipher}`);
  if (r.peerCertificate) comments.push(`client certificate "${sanitize(r.peerCertificate.subject)}" issued by "${sanitize(r.peerCertificate.issuer)}" serial ${r.peerCertificate.serial}`);
  if (r.authenticatedAs) comments.push(`authenticated as ${sanitize(r.authenticatedAs)}`);
  const lines = [`Received: ${parts.join(' ')}`, ...comments.map((c) => `\t(${c})`)];
  if (r.recipient) lines.push(`\tfor <${sanitize(r.recipient)}>`);
  lines[lines.length - 1] += `; ${(r.date ?? new Date()).toUTCString().replace('GMT', '+0000')}`;
  return lines.join('\r\n') + '\r\n';
}

const sanitize = (s: string) => s.replace(/[\r\n\t"()\\]/g, ' ').slice(0, 300);
