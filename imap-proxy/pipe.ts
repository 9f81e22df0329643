// After login: bytes flow both ways untouched, with back-pressure (a side that cannot
// take more pauses the other), while the tracer reads along. Plain 'data' listeners
// rather than stream.pipeline: two sockets and a few counters per session, which matters
// with ten thousand clients sitting in IDLE.
import type { Socket } from 'node:net';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
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
/**
 * Bytes queued towards the client before Dovecot is paused. A socket's own high-water mark
 * (16 KiB) is smaller than one read from Dovecot (64 KiB): obeying it would stop and restart
 * reading after every chunk of a large FETCH. Idle sessions queue nothing, so this costs
 * memory only while a transfer runs.
 */
const CLIENT_QUEUE = 256 * 1024;

export interface Pipe {
  /** Resolves once both sockets are closed and the session's traces and close event are journalled. */
  closed: Promise<void>;
  /** Ends the session now (shutdown). */
  destroy(reason: string): void;
}

export function pipeSession(client: Socket, backend: Socket, pending: { fromClient: Buffer; fromBackend: Buffer }, info: PipeInfo, journal: Pick<Journal, 'append'>, log: Logger): Pipe {
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
    client.write(chunk);
    if (client.writableLength > CLIENT_QUEUE) backend.pause();
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
  backend.on('data', fromBackend);
  client.on('drain', () => backend.resume()); // 'drain' comes once the queue is empty
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
