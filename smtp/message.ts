import { Transform, type TransformCallback } from 'node:stream';
import { ascii } from '../core/ascii.js';

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

/** One field of the header section: its name as written, and where its bytes are. */
export interface HeaderField {
  name: string;
  /** 1-based line number of its first line. */
  line: number;
  /** Byte range of the value: after the colon, to the end of its last folded line (CRLF excluded). */
  valueStart: number;
  end: number;
}

/** A line of the header section that is neither a field nor a continuation (1-based). */
export interface MalformedLine {
  malformed: number;
}

/**
 * The fields of the header section (RFC 5322 §2.2), one at a time and on bytes: the content
 * rules look at raw bytes (8-bit, UTF-8) before any decoding, and keep nothing per field, so a
 * message of a million header lines costs time, not memory. Ends at the empty line, or after
 * yielding a malformed line. Lines end with CRLF here: DATA with a bare CR or LF was refused
 * before (LineEndingCheck). A field name is printable ASCII but ":" (obsolete white space
 * before the colon accepted, RFC 5322 §4.5).
 */
export function* headerFields(message: Buffer): Generator<HeaderField | MalformedLine> {
  let field: HeaderField | undefined;
  let pos = 0;
  for (let line = 1; pos < message.length; line++) {
    const lf = message.indexOf(0x0a, pos);
    const end = lf < 0 ? message.length : lf - 1; // every LF follows a CR here
    if (end === pos) break; // the empty line: the body follows
    const first = message[pos];
    if (first === 0x20 || first === 0x09) {
      if (!field) return yield { malformed: line };
      field.end = end;
    } else {
      const colon = message.indexOf(0x3a, pos);
      const name = colon < 0 || colon > end ? '' : message.subarray(pos, colon).toString('latin1').replace(/[ \t]+$/, '');
      if (field) yield field;
      field = undefined;
      if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) return yield { malformed: line };
      field = { name, line, valueStart: colon + 1, end };
    }
    pos = end + 2;
  }
  if (field) yield field;
}

/** A field's value, unfolded and trimmed, decoded as UTF-8 (headers are ASCII or, under SMTPUTF8, UTF-8). */
export function fieldValue(message: Buffer, f: HeaderField): string {
  return message.subarray(f.valueStart, f.end).toString('utf8').replace(/\r\n(?=[ \t])/g, '').trim();
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

/** A trace header is ASCII (a peer would refuse 8-bit headers without SMTPUTF8) and cannot be closed early. */
const sanitize = (s: string) => ascii(s).replace(/["()\\]/g, ' ').slice(0, 300);
