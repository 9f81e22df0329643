// The proxy's side of Dovecot: once the policy said yes, log in over loopback as that BAL
// with the master user ("bal*master", Dovecot's master-user mechanism) and hand back the
// connection and Dovecot's post-login capabilities. Nothing of this exchange reaches the
// client except those capabilities.
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { imapString } from './wire.js';

export interface BackendTarget {
  host: string;
  port: number;
  master: { user: string; password: string; separator: string };
  timeoutMs: number;
  /** The back ends of a shared store speak TLS only (mailstore.cluster): their certificates are checked against this CA. */
  tls?: { ca: string };
}

/** One back end of a shared store, where a box is (mailstore/placement.ts). */
export interface BackendEndpoint {
  name: string;
  host: string;
  port: number;
}

/** Who is really on the other end, for Dovecot's logs and per-address limits. */
export interface ClientOrigin {
  session: string;
  remote: string;
  remotePort: number;
  local: string;
  localPort: number;
}

export interface BackendSession {
  socket: Socket;
  capabilities: string[];
  /** Bytes Dovecot sent after its LOGIN answer: they belong to the client (a copy). */
  leftover: Buffer;
  /**
   * Where Dovecot's bytes go from now on. The socket reads into one buffer shared by every
   * session of the process (no allocation per read, nothing held by idle sessions): `chunk`
   * is valid only during the call — write it on at once, or copy it.
   */
  onBytes(read: (chunk: Buffer) => void): void;
}

export class BackendError extends Error {
  constructor(
    message: string,
    readonly kind: 'unreachable' | 'refused' | 'timeout' | 'protocol',
  ) {
    super(message);
    this.name = 'BackendError';
  }
}

const MAX_LINE = 64 * 1024;

/**
 * What every Dovecot socket of the process reads into (net `onread`): no allocation per
 * read, no garbage during a FETCH. Safe because the readers consume each chunk
 * synchronously, before the event loop can read again.
 *
 * One byte under 16 KiB: each read then becomes exactly one TLS record, written by itself.
 * From 16 KiB on, Node's TLS socket sizes its output buffer for the whole write (a 64 KiB
 * write makes an 82 KiB buffer) and keeps two of them for the rest of the session: a client
 * that once fetched a large message and then sits in IDLE held ~118 KiB instead of ~66 KiB
 * (measured with 64 KiB and 16 KiB − 1 reads, 3,000 sessions after 256 KiB each).
 */
const SHARED_READ = Buffer.allocUnsafe(16 * 1024 - 1);

/** Where a socket's bytes go: the login's parser, then the pipe. */
interface Route {
  read(chunk: Buffer): void;
}
const ignore = () => {};

// Made out here, not in openBackend: a closure keeps its whole scope alive, and these two
// live as long as the session — they must hold the route, not the login's lines and timer.
function readInto(route: Route) {
  return {
    buffer: SHARED_READ,
    callback: (n: number) => {
      route.read(SHARED_READ.subarray(0, n));
      return true;
    },
  };
}
function session(socket: Socket, capabilities: string[], leftover: Buffer, route: Route): BackendSession {
  return {
    socket,
    capabilities,
    leftover,
    onBytes: (read) => {
      route.read = read;
    },
  };
}

/**
 * Connects, waits for the greeting, then sends ID and LOGIN in one packet (one round trip
 * fewer per login). ID carries the real client address (x-originating-ip, accepted because
 * Dovecot's login_trusted_networks lists loopback) and our session id
 * (x-session-ext-id), so Dovecot's log lines and our journal name the same session.
 */
export function openBackend(t: BackendTarget, bal: string, origin: ClientOrigin, at?: BackendEndpoint): Promise<BackendSession> {
  return new Promise((resolve, reject) => {
    const route: Route = { read: (chunk) => onData(chunk) };
    const host = at?.host ?? t.host;
    const port = at?.port ?? t.port;
    // A back end of a shared store is on the network: implicit TLS, its certificate checked.
    const socket = t.tls
      ? // tls.connect takes onread too (Node ≥ 13.3), though @types/node does not declare it.
        tlsConnect({ host, port, ca: t.tls.ca, servername: isIP(host) ? undefined : host, minVersion: 'TLSv1.2', onread: readInto(route) } as ConnectionOptions)
      : connect({ host, port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 60_000, onread: readInto(route) });
    if (t.tls) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
    }
    let buf: Buffer = Buffer.alloc(0);
    let step: 'greeting' | 'login' | 'capability' = 'greeting';
    let caps: string[] | null = null;
    let settled = false;
    const timer = setTimeout(() => done(new BackendError(`Dovecot did not complete the login within ${t.timeoutMs} ms`, 'timeout')), t.timeoutMs);
    const done = (err: Error | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      route.read = ignore;
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) {
        socket.destroy();
        return reject(err);
      }
      socket.pause();
      resolve(session(socket, caps ?? [], buf, route));
    };
    const onError = (e: Error) => done(new BackendError(`cannot reach Dovecot at ${host}:${port}: ${e.message}`, 'unreachable'));
    const onClose = () => done(new BackendError('Dovecot closed the connection during the login', 'unreachable'));
    const onData = (chunk: Buffer) => {
      // chunk is a view of SHARED_READ: what is kept is copied.
      buf = buf.length ? Buffer.concat([buf, chunk]) : Buffer.from(chunk);
      for (;;) {
        const nl = buf.indexOf(10);
        if (nl < 0) {
          if (buf.length > MAX_LINE) done(new BackendError('Dovecot sent an overlong line during the login', 'protocol'));
          return;
        }
        const line = buf.toString('latin1', 0, nl).replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        if (settled) return;
        handle(line);
        if (settled) return;
      }
    };
    const handle = (line: string) => {
      if (step === 'greeting') {
        if (!line.startsWith('* OK')) return done(new BackendError(`unexpected Dovecot greeting: ${line.slice(0, 200)}`, 'protocol'));
        step = 'login';
        const id = [
          ['x-originating-ip', origin.remote],
          ['x-originating-port', String(origin.remotePort)],
          ['x-connected-ip', origin.local],
          ['x-connected-port', String(origin.localPort)],
          ['x-session-ext-id', origin.session],
        ]
          .map(([k, v]) => `${imapString(k)} ${imapString(v)}`)
          .join(' ');
        const user = `${bal}${t.master.separator}${t.master.user}`;
        socket.write(`P1 ID (${id})\r\nP2 LOGIN ${imapString(user)} ${imapString(t.master.password)}\r\n`);
        return;
      }
      if (step === 'login') {
        if (line.startsWith('P1 ') || line.startsWith('* ')) return; // the ID answer; untagged lines
        const m = /^P2 (OK|NO|BAD)\b ?(.*)$/.exec(line);
        if (!m) return done(new BackendError(`unexpected answer to the backend login: ${line.slice(0, 200)}`, 'protocol'));
        if (m[1] !== 'OK') return done(new BackendError(`Dovecot refused the login of ${bal}: ${m[2]}`, 'refused'));
        const c = /^\[CAPABILITY ([^\]]*)\]/i.exec(m[2]);
        if (c) {
          caps = c[1].split(' ').filter(Boolean);
          return done(null);
        }
        // Dovecot sends its capabilities with the login answer; ask when it did not.
        step = 'capability';
        socket.write('P3 CAPABILITY\r\n');
        return;
      }
      const c = /^\* CAPABILITY (.*)$/i.exec(line);
      if (c) caps = c[1].split(' ').filter(Boolean);
      else if (line.startsWith('P3 ')) done(caps ? null : new BackendError('Dovecot sent no capabilities', 'protocol'));
    };
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
