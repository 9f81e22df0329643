// One webmail API worker process (webmail.workers > 0; see workers.ts): the fastify app on
// the HTTPS connections the platform's process hands over, its own IMAP connections and
// token cache. What needs the database is asked of the platform's process, over IPC.
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { tlsMaterialFromPems } from '../certs/tls.js';
import { MssError, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ApiDeps, XdmPackage } from './deps.js';
import type { ImapPool } from './imap-pool.js';
import { createWebmailServer } from './index.js';
import type { LoginResult } from './login.js';
import type { SessionCache } from './session-cache.js';
import { platformCalls, sendToPlatform } from '../core/worker-process.js';
import type { CallError, Calls, FromWorker, ToWorker, WorkerInit } from './workers.js';

const send = (m: FromWorker, cb?: () => void) => sendToPlatform(m, cb);
const platform = platformCalls<CallError>(errorOf);
const call = <F extends keyof Calls, T>(fn: F, ...args: Calls[F]) => platform.call<T>({ t: 'call', fn, args });

/** The platform's refusal, as the same catalogue error (its own sentence kept). */
function errorOf(e: CallError): Error {
  if (!e.code) return new Error(e.message);
  const err = new MssError(e.code as ErrorCode, e.details ?? {});
  if (err.message !== e.message) Object.defineProperty(err, 'message', { value: e.message });
  return err;
}

/** The package's bytes cross the channel as a Uint8Array: a Buffer again here. */
const asBuffers = (p: XdmPackage): XdmPackage => ({ ...p, attachment: { ...p.attachment, content: Buffer.from(p.attachment.content.buffer, p.attachment.content.byteOffset, p.attachment.content.byteLength) } });

let app: FastifyInstance | null = null;
let pool: ImapPool | null = null;
let sessions: SessionCache | null = null;
let stopping = false;
const early: Socket[] = [];

async function start(init: WorkerInit) {
  // Log lines go to the platform's process, which logs them with its own logger.
  const log = pino({ level: init.logLevel, base: undefined }, { write: (line: string) => send({ t: 'log', line }) }) as unknown as Logger;
  const deps: ApiDeps = {
    log,
    journal: { append: (ev) => call('journal', ev) },
    tls: tlsMaterialFromPems(init.tls),
    verifySession: (token) => call('verifySession', token),
    closeSession: (token) => call('closeSession', token),
    balsFor: (p) => call('balsFor', p),
    imap: init.imap,
    submission: init.submission,
    ...(init.ldap ? { ldap: init.ldap } : {}),
    ...(init.has.dmpHandoff ? { dmpHandoff: (req) => call('dmpHandoff', req) } : {}),
    ...(init.has.documentsOf ? { documentsOf: (raw) => call('documentsOf', raw) } : {}),
    ...(init.has.dmpOutcomes ? { dmpOutcomes: (bal, id) => call('dmpOutcomes', bal, id) } : {}),
    ...(init.has.packageXdm ? { packageXdm: async (req) => asBuffers(await call<'packageXdm', XdmPackage>('packageXdm', req)) } : {}),
    ...(init.has.dmpRule ? { dmpRule: { get: (p, bal) => call('dmpRuleGet', p, bal), set: (p, bal, r) => call('dmpRuleSet', p, bal, r), remove: (p, bal) => call('dmpRuleRemove', p, bal) } } : {}),
  };
  const psc = init.has.psc
    ? { start: (uri: string) => call<'pscStart', { url: string; pending: string }>('pscStart', uri), finish: (query: string, pending: string | null, remote: string) => call<'pscFinish', LoginResult>('pscFinish', query, pending, remote) }
    : undefined;
  const s = await createWebmailServer(init.config, deps, (login, secret, remote) => call<'login', LoginResult>('login', login, secret, remote), psc);
  await s.app.ready();
  ({ app, pool, sessions } = s);
  for (const socket of early.splice(0)) take(socket);
  send({ t: 'ready' });
}

/** An accepted TCP connection, handed over unread: TLS and HTTP from here. */
function take(socket: Socket) {
  if (!app || stopping) return void socket.destroy();
  app.server.emit('connection', socket);
}

async function stop() {
  if (stopping) return;
  stopping = true;
  await app?.close();
  send({ t: 'stopped' }, () => process.exit(0));
}

process.on('message', (m: ToWorker, handle?: Socket) => {
  switch (m.t) {
    case 'init':
      start(m.init).catch((e: unknown) => {
        process.stderr.write(`webmail worker: ${(e as Error).stack ?? String(e)}\n`);
        process.exit(1);
      });
      return;
    case 'conn':
      if (!handle) return;
      if (!app) return void early.push(handle);
      return take(handle);
    case 'reply':
      return platform.settle(m);
    case 'closeToken':
      sessions?.drop(m.token);
      pool?.closeToken(m.token);
      return;
    case 'stop':
      void stop();
      return;
  }
});
