// The IMAP proxy's listeners: 993 (implicit TLS) and 143 (STARTTLS), connection limits,
// and the bookkeeping of sessions before and after login, so a stop ends every one.
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Config } from '../core/config/index.js';
import type { HealthCheck } from '../core/http.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import type { ApplicationPrincipal, PersonPrincipal, Policy } from '../core/policy/index.js';
import { serverTlsOptions, type TlsMaterial } from '../certs/tls.js';
import type { CredentialResult } from './auth.js';
import type { Pipe } from './pipe.js';
import { PreAuthSession, type SessionContext } from './session.js';
import { FailureThrottle } from './throttle.js';
import { refusal } from './wire.js';

export interface ImapProxyDeps {
  tls: TlsMaterial;
  policy: Pick<Policy, 'mayOpenBal'>;
  journal: Pick<Journal, 'append'>;
  log: Logger;
  /** Dovecot's IMAP on loopback and the master user (mailstore/dovecot.ts). */
  backend: { host: string; port: number; master: { user: string; password: string; separator: string } };
  /** The annuaire's credential check (annuaire/bal checkCredentials), injected by the composition root. */
  checkPassword(user: string, secret: string): Promise<CredentialResult>;
  /** The annuaire's certificate → principal mapping (annuaire/bal principalForCertificate). */
  certificatePrincipal(pem: string): Promise<PersonPrincipal | ApplicationPrincipal | null>;
}

export interface ImapProxy {
  ports: { imaps: number; imap: number };
  endpoints: Array<{ name: string; url: string }>;
  health: HealthCheck;
  /** Connections waiting to log in, and logged-in sessions being relayed. */
  stats(): { preAuth: number; sessions: number };
  throttle: FailureThrottle;
  stop(): Promise<void>;
}

/** Invalid commands tolerated before login, like Dovecot's imap-login. */
const MAX_BAD_COMMANDS = 10;

export async function startImapProxy(config: Pick<Config, 'imap' | 'operator'>, deps: ImapProxyDeps): Promise<ImapProxy> {
  const o = config.imap;
  const log = deps.log.child({ mod: 'imap-proxy' });
  const tlsOptions = serverTlsOptions(deps.tls, { requestCert: o.requestClientCertificate, rejectUnauthorized: false });
  const throttle = new FailureThrottle({ windowMs: o.failureWindow, maxPerSource: o.maxFailuresPerSource, maxPerAccount: o.maxFailuresPerAccount });
  const preAuth = new Set<PreAuthSession>();
  const pipes = new Set<Pipe>();
  const waitingBySource = new Map<string, number>();
  const release = (s: PreAuthSession) => {
    if (!preAuth.delete(s)) return;
    const n = (waitingBySource.get(s.remote) ?? 1) - 1;
    if (n > 0) waitingBySource.set(s.remote, n);
    else waitingBySource.delete(s.remote);
  };

  const ctx: SessionContext = {
    hostname: config.operator.hostname,
    preAuthTimeoutMs: o.preAuthTimeout,
    maxLine: o.maxLineLength,
    maxLiteral: o.maxLiteralSize,
    maxBadCommands: MAX_BAD_COMMANDS,
    secureContext: createSecureContext(tlsOptions),
    requestCert: o.requestClientCertificate,
    tls: deps.tls,
    auth: { policy: deps.policy, journal: deps.journal, checkPassword: deps.checkPassword, certificatePrincipal: deps.certificatePrincipal, throttle, failureDelayMs: o.failureDelay, log },
    backend: { ...deps.backend, timeoutMs: o.backendTimeout },
    journal: deps.journal,
    traceFlushMs: o.traceFlushInterval,
    log,
    onAuthenticated(s, pipe) {
      release(s);
      pipes.add(pipe);
      void pipe.closed.then(() => pipes.delete(pipe));
    },
    onClosed: release,
  };

  const accept = (socket: Socket, secure: boolean) => {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const s = new PreAuthSession(ctx, socket, secure);
    socket.on('error', () => {}); // errors before the session attaches are not ours to report
    if (preAuth.size + pipes.size >= o.maxConnections) {
      socket.end(refusal(null, 'IMAP_TOO_MANY_CONNECTIONS', { who: 'on this server' }));
      return;
    }
    const waiting = (waitingBySource.get(s.remote) ?? 0) + 1;
    if (waiting > o.maxPreAuthPerSource) {
      socket.end(refusal(null, 'IMAP_TOO_MANY_CONNECTIONS', { who: 'waiting to log in from your address' }));
      return;
    }
    waitingBySource.set(s.remote, waiting);
    preAuth.add(s);
    s.start();
  };

  // The TLS handshake itself is bounded: a client that never finishes it is cut off.
  const imaps = createTlsServer({ ...tlsOptions, handshakeTimeout: o.preAuthTimeout }, (socket: TLSSocket) => accept(socket, true));
  // With a listener here Node no longer destroys the socket itself (a handshake timeout
  // would leave it open): do it.
  imaps.on('tlsClientError', (err, socket) => {
    log.debug({ err: err.message }, 'imaps handshake failed');
    socket.destroy();
  });
  const imap = createTcpServer((socket) => accept(socket, false));
  // Every raw connection, so a stop ends even those still in their TLS handshake.
  const raw = new Set<Socket>();
  for (const srv of [imaps, imap]) {
    srv.on('connection', (socket: Socket) => {
      raw.add(socket);
      socket.once('close', () => raw.delete(socket));
    });
  }
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
    throw e;
  }
  const h = o.host.includes(':') ? `[${o.host}]` : o.host;
  log.info({ host: o.host, ...ports, backend: `${deps.backend.host}:${deps.backend.port}` }, 'imap proxy listening');

  return {
    ports,
    throttle,
    endpoints: [{ name: 'IMAP', url: `imaps://${h}:${ports.imaps}, imap://${h}:${ports.imap} (STARTTLS)` }],
    stats: () => ({ preAuth: preAuth.size, sessions: pipes.size }),
    health: {
      name: 'imap',
      async check() {
        if (!imaps.listening || !imap.listening) throw new Error('the IMAP listeners are closed');
        return { ok: true, ...ports, preAuth: preAuth.size, sessions: pipes.size };
      },
    },
    async stop() {
      const closing = closeServers();
      for (const s of [...preAuth]) s.bye(refusal(null, 'IMAP_SHUTTING_DOWN'), 'shutdown');
      const ended = [...pipes].map((p) => {
        p.destroy('platform stopping');
        return p.closed;
      });
      await Promise.all(ended);
      for (const socket of raw) socket.destroy();
      await closing;
      log.info('imap proxy stopped');
    },
  };
}
