// The IMAP proxy's listeners: 993 (implicit TLS) and 143 (STARTTLS). Their connections are
// handled in this process (imap.workers = 1, front.ts) or dealt to worker processes
// (imap.workers > 1, workers.ts); logins are decided here either way.
import { randomBytes } from 'node:crypto';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Config } from '../core/config/index.js';
import type { HealthCheck } from '../core/http.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { ApplicationPrincipal, LoginThrottle, PersonPrincipal, Policy } from '../core/policy/index.js';
import type { TlsMaterial } from '../certs/tls.js';
import { authorise, type AuthDeps, type CredentialResult, type LoginContext, type LoginOutcome, type LoginRequest } from './auth.js';
import type { BackendEndpoint } from './backend.js';
import { BoxMovingError } from '../mailstore/placement.js';
import { refusal } from './wire.js';
import { createFront } from './front.js';
import { startWorkers } from './workers.js';

export interface ImapProxyDeps {
  tls: TlsMaterial;
  policy: Pick<Policy, 'mayOpenBal'>;
  journal: Pick<Journal, 'append'>;
  log: Logger;
  /** Dovecot's IMAP on loopback and the master user (mailstore/dovecot.ts). */
  backend: { host: string; port: number; master: { user: string; password: string; separator: string }; tls?: { ca: string } };
  /** A shared store (mailstore.cluster): the back ends holding a box, in the order to try them (mailstore/placement.ts). */
  route?: (bal: string) => Promise<BackendEndpoint[]>;
  /** The annuaire's credential check (annuaire/bal checkCredentials), injected by the composition root. */
  checkPassword(user: string, secret: string): Promise<CredentialResult>;
  /** The annuaire's certificate → principal mapping (annuaire/bal principalForCertificate). */
  certificatePrincipal(pem: string): Promise<PersonPrincipal | ApplicationPrincipal | null>;
  /** core/policy's login throttle, shared with every other front (its counters are in the database). */
  throttle: LoginThrottle;
  /** Pro Santé Connect access tokens (AUTHENTICATE OAUTHBEARER / XOAUTH2); absent: not offered. */
  psc?: AuthDeps['psc'];
}

export interface ImapProxy {
  ports: { imaps: number; imap: number };
  endpoints: Array<{ name: string; url: string }>;
  health: HealthCheck;
  /** Connections waiting to log in, and logged-in sessions being relayed (with workers: as they last reported, within a second). */
  stats(): { preAuth: number; sessions: number };
  /** The processes holding the connections: this one, or the workers. */
  pids(): number[];
  stop(): Promise<void>;
}

export async function startImapProxy(config: Pick<Config, 'imap' | 'operator'>, deps: ImapProxyDeps): Promise<ImapProxy> {
  const o = config.imap;
  const log = deps.log.child({ mod: 'imap-proxy' });
  const auth: AuthDeps = { policy: deps.policy, journal: deps.journal, checkPassword: deps.checkPassword, certificatePrincipal: deps.certificatePrincipal, throttle: deps.throttle, log, ...(deps.psc ? { psc: deps.psc } : {}) };
  const route = deps.route;
  const decide = !route
    ? (req: LoginRequest, ctx: LoginContext) => authorise(auth, req, ctx)
    : async (req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome> => {
        const out = await authorise(auth, req, ctx);
        if (!out.ok) return out;
        try {
          return { ...out, backends: await route(out.bal) };
        } catch (e) {
          // Fail closed: no map, no session (the database or every back end is away). A box
          // frozen by a move between pairs (a few seconds, planned) is not an error.
          if (e instanceof BoxMovingError) log.info({ bal: out.bal }, 'imap: login held while the box moves to another back end');
          else log.error({ err: e, bal: out.bal }, 'imap: cannot tell which back end holds the box');
          return { ok: false, answer: refusal(ctx.tag, 'IMAP_BACKEND_UNAVAILABLE', { address: out.bal }) };
        }
      };
  const backend = { ...deps.backend, timeoutMs: o.backendTimeout };

  const workers = o.workers;
  // One set of session-ticket keys for every process holding connections (front.ts); they
  // live as long as the proxy, like the ones Node makes for each server on its own.
  const ticketKeys = randomBytes(48);
  const carrier =
    workers <= 1
      ? (() => {
          const front = createFront({ imap: o, hostname: config.operator.hostname, tls: deps.tls, authorise: decide, journal: deps.journal, log, backend, ticketKeys, oauth: !!deps.psc });
          return { ...front, pids: () => [process.pid] };
        })()
      : await startWorkers({
          count: workers,
          init: {
            imap: {
              preAuthTimeout: o.preAuthTimeout,
              maxLineLength: o.maxLineLength,
              maxLiteralSize: o.maxLiteralSize,
              requestClientCertificate: o.requestClientCertificate,
              traceFlushInterval: o.traceFlushInterval,
              // Connections are dealt in turn: each worker holds its share of the limits.
              maxConnections: Math.ceil(o.maxConnections / workers),
              maxPreAuthPerSource: Math.ceil(o.maxPreAuthPerSource / workers),
            },
            hostname: config.operator.hostname,
            tls: { certChainPem: deps.tls.certChainPem, keyPem: deps.tls.keyPem, caPem: deps.tls.caPem, crlPems: deps.tls.crlPems },
            backend,
            logLevel: deps.log.level,
            ticketKeys: ticketKeys.toString('base64'),
            oauth: !!deps.psc,
          },
          authorise: decide,
          journal: deps.journal,
          log,
        });

  // Accepted here, never read here: with workers the socket goes to another process as is.
  const listener = (port: 'imaps' | 'imap') => createTcpServer({ pauseOnConnect: workers > 1 }, (socket: Socket) => carrier.take(socket, port));
  const imaps = listener('imaps');
  const imap = listener('imap');
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: o.host, port }, () => {
        server.off('error', reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const closeServers = () => Promise.all([imaps, imap].map((srv) => new Promise<void>((r) => (srv.listening ? srv.close(() => r()) : r()))));

  let ports: ImapProxy['ports'];
  try {
    ports = { imaps: await listen(imaps, o.port), imap: await listen(imap, o.starttlsPort) };
  } catch (e) {
    await closeServers();
    await carrier.stop();
    throw e;
  }
  const h = o.host.includes(':') ? `[${o.host}]` : o.host;
  log.info({ host: o.host, ...ports, workers, backend: `${deps.backend.host}:${deps.backend.port}` }, 'imap proxy listening');

  return {
    ports,
    endpoints: [{ name: 'IMAP', url: `imaps://${h}:${ports.imaps}, imap://${h}:${ports.imap} (STARTTLS)${workers > 1 ? `, ${workers} worker processes` : ''}` }],
    stats: () => carrier.stats(),
    pids: () => carrier.pids(),
    health: {
      name: 'imap',
      async check() {
        if (!imaps.listening || !imap.listening) throw new Error('the IMAP listeners are closed');
        if (carrier.pids().length < Math.max(1, workers)) throw new Error(`only ${carrier.pids().length} of ${workers} IMAP proxy workers are running`);
        return { ok: true, ...ports, ...carrier.stats(), ...(workers > 1 ? { workers } : {}) };
      },
    },
    async stop() {
      const closing = closeServers();
      await carrier.stop();
      await closing;
      log.info('imap proxy stopped');
    },
  };
}
