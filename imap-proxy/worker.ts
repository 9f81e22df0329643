// One IMAP proxy worker process (imap.workers > 1; see workers.ts): the front (TLS, IMAP
// before login, Dovecot login, pipe, traces) on the sockets the platform's process hands
// over. Logins are decided and events journalled by the platform's process, over IPC.
import type { Socket } from 'node:net';
import pino from 'pino';
import type { JournalEventInput } from '../core/journal/index.js';
import { tlsMaterialFromPems } from '../certs/tls.js';
import type { LoginOutcome } from './auth.js';
import { createFront, type Front } from './front.js';
import type { FromWorker, ToWorker, WorkerInit } from './workers.js';

const send = (m: FromWorker, cb?: () => void) => {
  if (process.connected) process.send!(m, undefined, undefined, cb);
};

const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextCall = 0;
function call<T>(m: Omit<Extract<FromWorker, { t: 'call' }>, 'id'>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (!process.connected) return reject(new Error('the platform process is gone'));
    const id = ++nextCall;
    calls.set(id, { resolve: resolve as (v: unknown) => void, reject });
    send({ ...m, id } as FromWorker);
  });
}

let front: Front | null = null;
let stopping = false;

function start(init: WorkerInit) {
  // Log lines go to the platform's process, which logs them with its own logger.
  const log = pino({ level: init.logLevel, base: undefined }, { write: (line: string) => send({ t: 'log', line }) }).child({ mod: 'imap-proxy' });
  front = createFront({
    imap: init.imap,
    hostname: init.hostname,
    tls: tlsMaterialFromPems(init.tls),
    authorise: (req, ctx) => call<LoginOutcome>({ t: 'call', fn: 'authorise', args: [req, ctx] }),
    journal: { append: (ev: JournalEventInput) => call({ t: 'call', fn: 'journal', args: [ev] }) },
    log,
    backend: init.backend,
    ticketKeys: Buffer.from(init.ticketKeys, 'base64'),
  });
  // One timer for the whole process: the platform's stats() sees the counts within a second.
  let last = '';
  setInterval(() => {
    const s = front!.stats();
    const key = `${s.preAuth}/${s.sessions}`;
    if (key !== last) {
      last = key;
      send({ t: 'stats', ...s });
    }
  }, 500).unref();
  send({ t: 'ready' });
}

async function stop() {
  if (stopping) return;
  stopping = true;
  await front?.stop();
  send({ t: 'stopped' }, () => process.exit(0));
}

process.on('message', (m: ToWorker, handle?: Socket) => {
  switch (m.t) {
    case 'init':
      return start(m.init);
    case 'conn':
      if (!handle) return;
      if (!front || stopping) return void handle.destroy();
      return front.take(handle, m.port);
    case 'reply': {
      const c = calls.get(m.id);
      if (!c) return;
      calls.delete(m.id);
      if (m.ok) c.resolve(m.value);
      else c.reject(new Error(m.error));
      return;
    }
    case 'stop':
      void stop();
      return;
  }
});

// The platform's process is gone (crash, kill -9): nobody can authorise or journal any more.
process.on('disconnect', () => {
  for (const c of calls.values()) c.reject(new Error('the platform process is gone'));
  calls.clear();
  process.exit(1);
});
