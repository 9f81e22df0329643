// One IMAP proxy worker process (imap.workers > 1; see workers.ts): the front (TLS, IMAP
// before login, Dovecot login, pipe, traces) on the sockets the platform's process hands
// over. Logins are decided and events journalled by the platform's process, over IPC.
import type { Socket } from 'node:net';
import pino from 'pino';
import type { JournalEventInput } from '../core/journal/index.js';
import { tlsMaterialFromPems } from '../certs/tls.js';
import type { LoginOutcome } from './auth.js';
import { createFront, type Front } from './front.js';
import { platformCalls, sendToPlatform } from '../core/worker-process.js';
import type { FromWorker, ToWorker, WorkerInit } from './workers.js';

const send = (m: FromWorker, cb?: () => void) => sendToPlatform(m, cb);
const platform = platformCalls<string>((e) => new Error(e));
const call = <T>(m: Omit<Extract<FromWorker, { t: 'call' }>, 'id'>) => platform.call<T>(m);

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
    oauth: init.oauth,
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
    case 'reply':
      return platform.settle(m);
    case 'stop':
      void stop();
      return;
  }
});
