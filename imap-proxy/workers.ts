// imap.workers > 1: the proxy's connections live in worker processes, each under its own
// open-file limit (a proxied session holds two descriptors: 10,000 idle clients need 20,000
// of them, more than one process may have on many hosts). The platform's process keeps the
// listeners and every decision: it accepts a connection without reading from it and hands
// the socket to the next worker in turn; a worker does TLS, the IMAP dialogue, the Dovecot
// login and the pipe, and asks back here for what needs the directory and the journal —
// authorise() (credentials, throttle, policy) and journal appends — so the embedded database
// (PGlite lives in this process only) and the journal's chain stay one, whatever the number
// of workers.
//
// Per worker: imap.maxConnections and imap.maxPreAuthPerSource are divided between the
// workers (connections are dealt in turn, so each worker sees its share).
import type { Socket } from 'node:net';
import type { Journal, JournalEventInput } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { stopWorker, superviseWorker, workerFile, type WorkerSlot } from '../core/worker-process.js';
import type { TlsMaterialPems } from '../certs/tls.js';
import type { LoginContext, LoginOutcome, LoginRequest } from './auth.js';
import type { BackendTarget } from './backend.js';
import type { FrontOptions } from './front.js';

/** What a worker needs to run the front: all of it plain data (it crosses the IPC channel). */
export interface WorkerInit {
  index: number;
  imap: FrontOptions['imap'];
  hostname: string;
  tls: TlsMaterialPems;
  backend: BackendTarget;
  logLevel: string;
  /** TLS session-ticket keys shared by every worker (front.ts), base64. */
  ticketKeys: string;
  /** Offer AUTHENTICATE OAUTHBEARER / XOAUTH2 (Pro Santé Connect tokens). */
  oauth?: boolean;
}

export type ToWorker =
  | { t: 'init'; init: WorkerInit }
  | { t: 'conn'; port: 'imaps' | 'imap' }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: string }
  | { t: 'stop' };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'call'; id: number; fn: 'authorise'; args: [LoginRequest, LoginContext] }
  | { t: 'call'; id: number; fn: 'journal'; args: [JournalEventInput] }
  | { t: 'stats'; preAuth: number; sessions: number }
  | { t: 'log'; line: string }
  | { t: 'stopped' };

export interface WorkerPoolOptions {
  count: number;
  init: Omit<WorkerInit, 'index'>;
  authorise(req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome>;
  journal: Pick<Journal, 'append'>;
  log: Logger;
}

export interface WorkerPool {
  take(socket: Socket, port: 'imaps' | 'imap'): void;
  stats(): { preAuth: number; sessions: number };
  pids(): number[];
  stop(): Promise<void>;
}

interface Slot extends WorkerSlot {
  index: number;
  stats: { preAuth: number; sessions: number };
}

export async function startWorkers(o: WorkerPoolOptions): Promise<WorkerPool> {
  const log = o.log;
  const file = workerFile(import.meta.url, 'imap-proxy', 'worker.js', 'IMAP proxy worker');
  const slots: Slot[] = [];
  let stopping = false;
  let turn = 0;

  const spawn = (index: number): Promise<Slot> =>
    superviseWorker<Slot, FromWorker>({
      what: 'IMAP proxy worker',
      lost: 'its connections are lost',
      file,
      serialization: 'json',
      index,
      init: { t: 'init', init: { ...o.init, index } } satisfies ToWorker,
      log,
      slot: (child, exited) => (slots[index] = { index, child, ready: false, stats: { preAuth: 0, sessions: 0 }, exited }),
      answer: (m) => (m.fn === 'authorise' ? o.authorise(...m.args) : o.journal.append(m.args[0])),
      replyError: (e) => (e instanceof Error ? e.message : String(e)),
      onMessage: (m, slot) => {
        if (m.t === 'stats') slot.stats = { preAuth: m.preAuth, sessions: m.sessions };
      },
      onExit: (slot) => (slot.stats = { preAuth: 0, sessions: 0 }),
      replace: () => !stopping,
      respawn: () => spawn(index),
    });



  try {
    await Promise.all(Array.from({ length: o.count }, (_, i) => spawn(i)));
  } catch (e) {
    stopping = true;
    for (const s of slots) s?.child.kill();
    throw e;
  }
  log.info({ workers: o.count, pids: slots.map((s) => s.child.pid) }, 'imap proxy workers running');

  return {
    take(socket, port) {
      // Dealt in turn among the workers that are up; the socket was not read from here.
      for (let tries = 0; tries < slots.length; tries++) {
        const s = slots[turn++ % slots.length];
        if (!s.ready || !s.child.connected) continue;
        s.child.send({ t: 'conn', port } satisfies ToWorker, socket, { keepOpen: false }, (err) => {
          if (err) socket.destroy();
        });
        return;
      }
      socket.destroy();
    },
    stats: () => slots.reduce((a, s) => ({ preAuth: a.preAuth + s.stats.preAuth, sessions: a.sessions + s.stats.sessions }), { preAuth: 0, sessions: 0 }),
    pids: () => slots.filter((s) => s.child.pid && s.child.exitCode === null).map((s) => s.child.pid!),
    async stop() {
      stopping = true;
      await Promise.all(
        slots.map((s) => stopWorker(s.child, s.exited, { t: 'stop' } satisfies ToWorker)),
      );
    },
  };
}
