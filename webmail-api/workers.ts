// webmail.workers > 0: the API runs in worker processes. A webmail request parses and
// sanitises mail and speaks IMAP (through the platform's own proxy) for the person; done on
// the platform's event loop, a busy webmail delayed everything else there — the IMAP
// proxy's relaying, the MX's 250s, /health, the embedded database — and used one core of
// the machine. The platform's process keeps the listener and every decision that needs the
// database: it accepts a connection without reading from it and hands the socket to the
// next worker in turn; a worker does TLS, HTTP, IMAP and MIME, and asks back here for the
// login (throttle, password check, token issue), session checks (at most once per
// webmail.sessionCacheTtl per token), a person's boxes, the journal and the DMP hand-off —
// so PGlite (this process only) and the journal's chain stay one, whatever the number of
// workers. A logout in one worker closes that token's IMAP connections in all of them.
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { TlsMaterialPems } from '../certs/tls.js';
import type { Config } from '../core/config/index.js';
import { isMssError } from '../core/errors.js';
import { stopWorker, superviseWorker, workerFile, type WorkerSlot } from '../core/worker-process.js';
import type { ApiDeps, WebmailDeps } from './deps.js';
import { passwordLogin, pscWebLogin } from './login.js';
import { plain } from './render.js';

/** What a worker needs: all of it plain data (it crosses the IPC channel). */
export interface WorkerInit {
  index: number;
  config: Pick<Config, 'webmail' | 'operator'>;
  tls: TlsMaterialPems;
  imap: WebmailDeps['imap'];
  submission: WebmailDeps['submission'];
  ldap?: WebmailDeps['ldap'];
  /** Which optional parts the platform has (their functions run here). */
  has: { dmpHandoff: boolean; documentsOf: boolean; dmpOutcomes: boolean; packageXdm: boolean; dmpRule: boolean; psc?: boolean };
  logLevel: string;
}

/** The calls a worker makes back: the login and the ApiDeps functions that need the database. */
export type Calls = {
  login: [login: string, secret: string, remote: string];
  pscStart: [redirectUri: string];
  pscFinish: [query: string, pending: string | null, remote: string];
  verifySession: [token: string];
  closeSession: [token: string];
  balsFor: Parameters<ApiDeps['balsFor']>;
  journal: Parameters<ApiDeps['journal']['append']>;
  dmpHandoff: Parameters<NonNullable<ApiDeps['dmpHandoff']>>;
  documentsOf: Parameters<NonNullable<ApiDeps['documentsOf']>>;
  dmpOutcomes: Parameters<NonNullable<ApiDeps['dmpOutcomes']>>;
  packageXdm: Parameters<NonNullable<ApiDeps['packageXdm']>>;
  dmpRuleGet: Parameters<NonNullable<ApiDeps['dmpRule']>['get']>;
  dmpRuleSet: Parameters<NonNullable<ApiDeps['dmpRule']>['set']>;
  dmpRuleRemove: Parameters<NonNullable<ApiDeps['dmpRule']>['remove']>;
};
/** A refusal crosses as its catalogue code, details and sentence, and becomes the same MssError there. */
export type CallError = { code?: string; details?: Record<string, unknown>; message: string };

export type ToWorker =
  | { t: 'init'; init: WorkerInit }
  | { t: 'conn' }
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: CallError }
  | { t: 'closeToken'; token: string }
  | { t: 'stop' };

export type FromWorker =
  | { t: 'ready' }
  | { [F in keyof Calls]: { t: 'call'; id: number; fn: F; args: Calls[F] } }[keyof Calls]
  | { t: 'log'; line: string }
  | { t: 'stopped' };

type Slot = WorkerSlot;

/** Buffers cross the channel as Uint8Arrays (structured clone): the dmp/ readers want Buffers. */
const asBuffer = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

export async function startWebmailWorkers(config: Pick<Config, 'webmail' | 'operator'>, deps: WebmailDeps): Promise<{ port: number; pids(): number[]; stop(): Promise<void> }> {
  const log = deps.log.child({ mod: 'webmail-api' });
  const count = config.webmail.workers;
  const file = workerFile(import.meta.url, 'webmail-api', 'worker.js', 'webmail API worker');
  const slots: Slot[] = [];
  let stopping = false;
  let turn = 0;
  const init: Omit<WorkerInit, 'index'> = {
    config: { webmail: config.webmail, operator: config.operator },
    tls: { certChainPem: deps.tls.certChainPem, keyPem: deps.tls.keyPem, caPem: deps.tls.caPem, crlPems: deps.tls.crlPems },
    imap: deps.imap,
    submission: deps.submission,
    ...(deps.ldap ? { ldap: deps.ldap } : {}),
    has: { dmpHandoff: !!deps.dmpHandoff, documentsOf: !!deps.documentsOf, dmpOutcomes: !!deps.dmpOutcomes, packageXdm: !!deps.packageXdm, dmpRule: !!deps.dmpRule, psc: !!deps.psc },
    logLevel: deps.log.level,
  };
  const psc = deps.psc ? pscWebLogin({ ...deps, psc: deps.psc }) : undefined;
  const broadcast = (m: ToWorker) => {
    for (const s of slots) if (s?.ready && s.child.connected) s.child.send(m);
  };

  const answer = (m: Extract<FromWorker, { t: 'call' }>): Promise<unknown> => {
    switch (m.fn) {
      case 'login':
        return passwordLogin(deps, ...m.args);
      case 'pscStart':
        return psc!.start(...m.args);
      case 'pscFinish':
        return psc!.finish(...m.args);
      case 'verifySession':
        return deps.verifySession(...m.args);
      case 'closeSession':
        // Every worker drops the token from its cache and closes its IMAP connections.
        return deps.closeSession(...m.args).then(() => broadcast({ t: 'closeToken', token: m.args[0] }));
      case 'balsFor':
        return deps.balsFor(...m.args);
      case 'journal':
        return deps.journal.append(...m.args);
      case 'dmpHandoff':
        return deps.dmpHandoff!({ ...m.args[0], raw: asBuffer(m.args[0].raw) }).then(plain);
      case 'documentsOf':
        return deps.documentsOf!(asBuffer(m.args[0])).then(plain);
      case 'dmpOutcomes':
        return deps.dmpOutcomes!(...m.args).then(plain);
      case 'packageXdm': {
        const [req] = m.args;
        return deps.packageXdm!({ ...req, cdas: req.cdas.map((c) => ({ ...c, content: asBuffer(c.content) })) });
      }
      case 'dmpRuleGet':
        return deps.dmpRule!.get(...m.args);
      case 'dmpRuleSet':
        return deps.dmpRule!.set(...m.args);
      case 'dmpRuleRemove':
        return deps.dmpRule!.remove(...m.args);
    }
  };

  const spawn = (index: number): Promise<Slot> =>
    superviseWorker<Slot, FromWorker>({
      what: 'webmail worker',
      lost: 'its requests in progress are lost',
      file,
      // 'advanced': messages (Buffers) go to the DMP hand-off as bytes, not as JSON arrays.
      serialization: 'advanced',
      index,
      init: { t: 'init', init: { ...init, index } } satisfies ToWorker,
      log,
      nice: config.webmail.nice,
      slot: (child, exited) => (slots[index] = { child, ready: false, exited }),
      answer: (m) =>
        answer(m).catch((e: unknown) => {
          if (!isMssError(e)) log.error({ err: e, call: m.fn, worker: index }, "a webmail worker's call failed");
          throw e;
        }),
      replyError: (e): CallError => (isMssError(e) ? { code: e.code, details: e.details, message: e.message } : { message: e instanceof Error ? e.message : String(e) }),
      // One that fails its start is not replaced: startWorkers() reports it, and the next connection tries again.
      replace: () => !stopping && up,
      respawn: () => spawn(index),
    });



  const stopWorkers = () => Promise.all(slots.map((s) => s && stopWorker(s.child, s.exited, { t: 'stop' } satisfies ToWorker)));


  // Started with the first connection, not with the platform: a worker holds ~120 MiB
  // (mailparser, imapflow, sanitize-html, fastify, TLS), which an operator whose people all
  // use Thunderbird never needs, and which would put an idle embedded platform above its
  // memory budget. The first request waits for the start (~1 s); the others do not.
  let started: Promise<void> | undefined;
  let up = false;
  const startWorkers = () =>
    (started ??= Promise.all(Array.from({ length: count }, (_, i) => spawn(i))).then(
      () => {
        up = true;
        log.info({ workers: count, pids: slots.map((s) => s.child.pid) }, 'webmail workers started');
      },
      (e: unknown) => {
        // The next connection tries again (a worker that could not start is not left half-up).
        for (const s of slots) s?.child.kill();
        slots.length = 0;
        started = undefined;
        throw e;
      },
    ));

  // Accepted here, never read here: the socket goes to a worker as is.
  const hand = (socket: Socket) => {
    for (let tries = 0; tries < slots.length; tries++) {
      const s = slots[turn++ % slots.length];
      if (!s.ready || !s.child.connected) continue;
      s.child.send({ t: 'conn' } satisfies ToWorker, socket, { keepOpen: false }, (err) => {
        if (err) socket.destroy();
      });
      return;
    }
    socket.destroy();
  };
  const server = createServer({ pauseOnConnect: true }, (socket: Socket) => {
    if (up) return hand(socket);
    startWorkers().then(
      () => hand(socket),
      (e: unknown) => {
        log.error({ err: e }, 'the webmail workers could not be started: connection closed');
        socket.destroy();
      },
    );
  });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.webmail.host, port: config.webmail.port }, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  } catch (e) {
    stopping = true;
    await stopWorkers();
    throw e;
  }
  log.info({ host: config.webmail.host, port, workers: count }, 'webmail API listening (its workers start with the first connection)');
  return {
    port,
    pids: () => slots.filter((s) => s.child.pid && s.child.exitCode === null).map((s) => s.child.pid!),
    async stop() {
      stopping = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      await started?.catch(() => {});
      await stopWorkers();
      await closed;
    },
  };
}
