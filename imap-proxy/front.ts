// The IMAP proxy's connection handling, wherever it runs (the platform's process, or each
// worker process with imap.workers > 1): TLS handshakes of the implicit-TLS port, the
// pre-authentication sessions, connection limits, and the bookkeeping of sessions before
// and after login, so a stop ends every one. It listens on nothing itself: the caller
// hands it accepted sockets (server.ts from its listeners, worker.ts from the primary).
import type { Socket } from 'node:net';
import { createSecureContext, createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Config } from '../core/config/index.js';
import type { Journal } from '../core/journal/index.js';
import type { Logger } from '../core/logger.js';
import { serverTlsOptions, type TlsMaterial } from '../certs/tls.js';
import type { LoginContext, LoginOutcome, LoginRequest } from './auth.js';
import type { BackendTarget } from './backend.js';
import type { Pipe } from './pipe.js';
import { PreAuthSession, type SessionContext } from './session.js';
import { refusal } from './wire.js';

export interface FrontOptions {
  imap: Pick<
    Config['imap'],
    'preAuthTimeout' | 'maxLineLength' | 'maxLiteralSize' | 'requestClientCertificate' | 'maxConnections' | 'maxPreAuthPerSource' | 'traceFlushInterval'
  >;
  hostname: string;
  tls: TlsMaterial;
  /** Who is logging in, and may they open that box (auth.ts authorise, here or in the primary). */
  authorise(req: LoginRequest, ctx: LoginContext): Promise<LoginOutcome>;
  journal: Pick<Journal, 'append'>;
  log: Logger;
  backend: BackendTarget;
  /**
   * TLS session-ticket keys (48 bytes), the same in every process holding IMAP connections:
   * a client reconnecting with its ticket resumes its session on whichever worker it lands
   * (no certificate signature, no chain to check again) instead of a full handshake.
   */
  ticketKeys?: Buffer;
  /** Offer AUTHENTICATE OAUTHBEARER / XOAUTH2 (a Pro Santé Connect access token). */
  oauth?: boolean;
}

export interface Front {
  /** Takes an accepted connection of the implicit-TLS port (993) or of the STARTTLS port (143). */
  take(socket: Socket, port: 'imaps' | 'imap'): void;
  /** The TLS server doing the handshakes of the implicit-TLS port: it may also listen itself. */
  tlsServer: TlsServer;
  stats(): { preAuth: number; sessions: number };
  /** BYE to connections waiting to log in, ends the sessions, waits for their last traces. */
  stop(): Promise<void>;
}

/** Invalid commands tolerated before login, like Dovecot's imap-login. */
const MAX_BAD_COMMANDS = 10;

export function createFront(o: FrontOptions): Front {
  const { imap, log } = o;
  const tlsOptions = { ...serverTlsOptions(o.tls, { requestCert: imap.requestClientCertificate, rejectUnauthorized: false }), ...(o.ticketKeys ? { ticketKeys: o.ticketKeys } : {}) };
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
    hostname: o.hostname,
    preAuthTimeoutMs: imap.preAuthTimeout,
    maxLine: imap.maxLineLength,
    maxLiteral: imap.maxLiteralSize,
    maxBadCommands: MAX_BAD_COMMANDS,
    secureContext: createSecureContext(tlsOptions),
    requestCert: imap.requestClientCertificate,
    tls: o.tls,
    authorise: o.authorise,
    oauth: !!o.oauth,
    backend: o.backend,
    journal: o.journal,
    traceFlushMs: imap.traceFlushInterval,
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
    socket.on('error', () => {}); // errors before the session attaches are not ours to report
    if (preAuth.size + pipes.size >= imap.maxConnections) {
      socket.end(refusal(null, 'IMAP_TOO_MANY_CONNECTIONS', { who: 'on this server' }));
      return;
    }
    const s = new PreAuthSession(ctx, socket, secure);
    const waiting = (waitingBySource.get(s.remote) ?? 0) + 1;
    if (waiting > imap.maxPreAuthPerSource) {
      socket.end(refusal(null, 'IMAP_TOO_MANY_CONNECTIONS', { who: 'waiting to log in from your address' }));
      return;
    }
    waitingBySource.set(s.remote, waiting);
    preAuth.add(s);
    s.start();
  };

  // The TLS handshake itself is bounded: a client that never finishes it is cut off.
  const tlsServer = createTlsServer({ ...tlsOptions, handshakeTimeout: imap.preAuthTimeout }, (socket: TLSSocket) => accept(socket, true));
  // With a listener here Node no longer destroys the socket itself (a handshake timeout
  // would leave it open): do it.
  tlsServer.on('tlsClientError', (err, socket) => {
    log.debug({ err: err.message }, 'imaps handshake failed');
    socket.destroy();
  });
  // Every raw connection, so a stop ends even those still in their TLS handshake.
  const raw = new Set<Socket>();
  const track = (socket: Socket) => {
    raw.add(socket);
    socket.once('close', () => raw.delete(socket));
  };
  tlsServer.on('connection', track);

  return {
    tlsServer,
    take(socket, port) {
      if (port === 'imaps') {
        // The TLS server's own 'connection' listener starts the handshake (and track() runs).
        tlsServer.emit('connection', socket);
        return;
      }
      track(socket);
      accept(socket, false);
    },
    stats: () => ({ preAuth: preAuth.size, sessions: pipes.size }),
    async stop() {
      for (const s of [...preAuth]) s.bye(refusal(null, 'IMAP_SHUTTING_DOWN'), 'shutdown');
      const ended = [...pipes].map((p) => {
        p.destroy('platform stopping');
        return p.closed;
      });
      await Promise.all(ended);
      for (const socket of raw) socket.destroy();
    },
  };
}
