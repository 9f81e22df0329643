// After login: bytes flow both ways untouched, with back-pressure, while the tracer reads
// along. Plain listeners rather than stream.pipeline: two sockets and a few counters per
// session, which matters with ten thousand clients sitting in IDLE.
//
// Dovecot → client carries the volume (FETCH), so it is the cheap way: Dovecot's socket
// reads into a buffer shared by the whole process (backend.ts), the response scanner skips
// literals by count, and the TLS socket encrypts the chunk at once (SSL_write copies it
// into its own output buffer). No allocation per chunk, hence almost no garbage collection.
// The one rule that makes the shared buffer safe: a chunk is handed to the TLS socket only
// while nothing is queued in it (else Node would queue the chunk by reference, and the next
// read would overwrite it). So Dovecot is paused as soon as the client socket has anything
// in flight, and resumed once it is flushed: the kernel's socket buffers on both sides keep
// the transfer going meanwhile. One chunk at a time also means Node never gathers queued
// chunks into one large write, which would size the session's TLS output buffers for it
// for the rest of the session (see SHARED_READ in backend.ts).
import type { Socket } from 'node:net';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { BackendSession } from './backend.js';
import { CommandParser } from './parser.js';
import { ResponseScanner } from './responses.js';
import { SessionTracer } from './trace.js';
import { TraceJournal } from './trace-journal.js';
import { refusal } from './wire.js';

export interface PipeInfo {
  session: string;
  actor: string;
  bal: string;
  remote: string;
  method: string;
  startedAt: number;
  flushIntervalMs: number;
}

/** Dovecot's own limit is 64 KiB per line (imap_max_line_length): the tracer reads a bit more. */
const TRACE_MAX_LINE = 128 * 1024;
/** Literals up to this size are kept (mailbox names); bigger ones (messages) are skipped by count. */
const TRACE_KEEP_LITERAL = 1024;
/** Client bytes the tracer may hold while a synchronising literal waits for Dovecot's answer. */
const TRACE_HOLD = 1024 * 1024;

export interface Pipe {
  /** Resolves once both sockets are closed and the session's traces and close event are journalled. */
  closed: Promise<void>;
  /** Ends the session now (shutdown). */
  destroy(reason: string): void;
}

export function pipeSession(client: Socket, dovecot: BackendSession, pending: { fromClient: Buffer; fromBackend: Buffer }, info: PipeInfo, journal: Pick<Journal, 'append'>, log: Logger): Pipe {
  const backend = dovecot.socket;
  const traces = new TraceJournal(journal, { actor: info.actor, bal: info.bal, session: info.session }, info.flushIntervalMs, log);
  const tracer = new SessionTracer((a) => traces.add(a));
  const parser = new CommandParser({ mode: 'trace', maxLine: TRACE_MAX_LINE, maxLiteral: TRACE_KEEP_LITERAL });
  const scanner = new ResponseScanner();
  let bytesIn = 0;
  let bytesOut = 0;
  let reason = '';
  let clientHeld = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  const readClient = () => {
    for (let ev = parser.next(); ev; ev = parser.next()) tracer.onClient(ev);
    // Held bytes drained: read from the client again.
    if (clientHeld && parser.buffered < TRACE_HOLD) {
      clientHeld = false;
      if (!backendFull) client.resume();
    }
  };

  let backendFull = false;
  const fromClient = (chunk: Buffer) => {
    bytesIn += chunk.length;
    parser.push(chunk);
    readClient();
    if (!backend.write(chunk)) {
      backendFull = true;
      client.pause();
    }
    if (parser.buffered >= TRACE_HOLD) {
      clientHeld = true;
      client.pause();
    }
  };
  const fromBackend = (chunk: Buffer) => {
    for (const ev of scanner.push(chunk)) {
      tracer.onServer(ev);
      const waiting = parser.awaitingContinuation;
      if (waiting) {
        if (ev.type === 'continuation') parser.continuation(true);
        else if (ev.type === 'tagged' && ev.tag === waiting.tag) parser.continuation(false);
        if (!parser.awaitingContinuation) readClient();
      }
    }
    if (tracer.compressed) {
      // Defence in depth: Dovecot is configured without COMPRESS and the client was never
      // offered it. Should it ever be on, the stream can no longer be traced: stop here.
      client.end(refusal(null, 'IMAP_COMPRESS_REFUSED'));
      finish('compress');
      return;
    }
    bytesOut += chunk.length;
    // Nothing should be queued here (Dovecot is paused while something is): copy if it is.
    client.write(client.writableLength ? Buffer.from(chunk) : chunk, flushed);
    if (client.writableLength && !backendPaused) {
      backendPaused = true;
      backend.pause();
    }
  };
  let backendPaused = false;
  // Called once each write to the client has left for the kernel.
  const flushed = () => {
    if (backendPaused && !client.writableLength && !finished) {
      backendPaused = false;
      backend.resume();
    }
  };

  let finished = false;
  const finish = (why: string) => {
    reason ||= why;
    if (finished) return;
    finished = true;
    backend.destroy();
    if (!client.destroyed) client.end();
    setImmediate(() => client.destroy());
  };

  client.on('data', fromClient);
  dovecot.onBytes(fromBackend);
  backend.on('drain', () => {
    backendFull = false;
    if (!clientHeld) client.resume();
  });
  client.on('end', () => finish('client logout or disconnect'));
  backend.on('end', () => finish('mail store ended the session'));
  client.on('error', (e) => finish(`client error: ${e.message}`));
  backend.on('error', (e) => finish(`mail store error: ${e.message}`));
  let closes = 0;
  const onClose = () => {
    if (++closes < 2) {
      finish('connection closed');
      return;
    }
    void (async () => {
      await traces.close();
      await journal
        .append({
          type: 'imap.session.close',
          actor: info.actor,
          subject: info.bal,
          details: { session: info.session, remote: info.remote, method: info.method, bytesIn, bytesOut, durationMs: Date.now() - info.startedAt, reason },
        })
        .catch((e) => log.error({ err: e, session: info.session }, 'could not journal the end of an IMAP session'));
      resolveClosed();
    })();
  };
  client.on('close', onClose);
  backend.on('close', onClose);

  // Bytes that arrived with the login (a pipelining client) or right after Dovecot's answer.
  if (pending.fromBackend.length) fromBackend(pending.fromBackend);
  if (pending.fromClient.length) fromClient(pending.fromClient);
  client.resume();
  backend.resume();

  return {
    closed,
    destroy(why: string) {
      finish(why);
    },
  };
}
