import type { Socket } from 'node:net';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { ascii } from '../core/ascii.js';
import type { SmtpReplyError } from './reply.js';

/**
 * What a front decides about replies as they leave, whoever wrote them — its own hooks or
 * smtp-server itself (syntax errors, sequence errors, its SIZE= check at MAIL).
 */
export interface ReplyHooks {
  /** One of smtp-server's own replies to send as a catalogue refusal instead (e.g. its SIZE= refusal). */
  replace?(session: SMTPServerSession, code: number, text: string, context: string | false | undefined): SmtpReplyError | undefined;
  /** After a 4xx/5xx reply went out: the refusal that ends the session (a 421), or nothing. */
  afterError?(session: SMTPServerSession, code: number, text: string): SmtpReplyError | undefined;
}

/** The parts of smtp-server 3.21 used here (public in its own typings, absent from @types/smtp-server). */
interface Connection {
  session: SMTPServerSession;
  send(code: number, data?: string | string[] | null, context?: string | false): void;
}
interface ServerInternals {
  connections: Set<Connection>;
  connect(socket: Socket, socketOptions?: unknown): void;
}

/** A reply that already starts with an enhanced status code (ours, from the catalogue). */
const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

/**
 * The one place every reply of a front passes through: SMTPConnection.send, wrapped as each
 * connection is made. There:
 * - every line becomes ASCII (RFC 5321 §4.2), banner and smtp-server's texts included;
 * - a reply carrying our enhanced code is not given smtp-server's as well (which derives it
 *   from the reply code alone); smtp-server's own replies keep its code (ENHANCEDSTATUSCODES
 *   is advertised, so every 2xx/4xx/5xx carries one, RFC 2034);
 * - `replace` swaps one of smtp-server's replies for a catalogue refusal;
 * - `afterError` sees every refusal, whoever made it (the per-connection error limit).
 */
export function guardReplies(server: SMTPServer, hooks: ReplyHooks): void {
  const s = server as unknown as ServerInternals;
  const wrapped = new WeakSet<Connection>();
  const connect = s.connect.bind(s);
  s.connect = (socket, socketOptions) => {
    connect(socket, socketOptions);
    // The connection made just now is the last one added (unless it was refused at once,
    // "too many connected clients", and already removed: then the last one is older).
    let newest: Connection | undefined;
    for (const c of s.connections) newest = c;
    if (newest && !wrapped.has(newest)) {
      wrapped.add(newest);
      wrap(newest, hooks);
    }
  };
}

function wrap(conn: Connection, hooks: ReplyHooks) {
  const send = conn.send.bind(conn);
  conn.send = (code, data, context) => {
    let lines = (Array.isArray(data) ? data : [data ?? '']).map((l) => ascii(String(l)));
    const swap = hooks.replace?.(conn.session, code, lines.join(' '), context);
    if (swap) {
      code = swap.responseCode;
      lines = [ascii(swap.message)];
    }
    if (lines.length === 1 && ENHANCED.test(lines[0])) context = false;
    send(code, Array.isArray(data) ? lines : lines[0] || null, context);
    if (code >= 400 && code !== 421) {
      const end = hooks.afterError?.(conn.session, code, lines[lines.length - 1]);
      // smtp-server closes the connection after any 421.
      if (end) send(end.responseCode, ascii(end.message), false);
    }
  };
}
