// IMAP connections to the platform's own IMAP proxy, one per (session, BAL), logged in as
// the person with the session token in place of the password, so the proxy's login, the
// policy and the traces apply exactly as for Thunderbird. A connection is kept for
// webmail.imapIdle after its last use (a person clicking through messages reuses it), then
// logged out. imapflow queues the commands of one connection; a mailbox lock (getMailboxLock)
// keeps a command sequence on its folder.
import { ImapFlow } from 'imapflow';
import { Gauge } from 'prom-client';
import type { Logger } from '../core/logger.js';
import { registry } from '../core/metrics.js';
import type { PersonPrincipal } from '../core/policy/index.js';
import { imapError } from './imap-errors.js';
import { nodeTlsPolicy } from '../certs/tls-policy.js';
import { tokenKeyOf } from './session-cache.js';

export interface ImapTarget {
  host: string;
  port: number;
  /** Trust anchors for the proxy's certificate. */
  ca: string[];
  /** The name its certificate carries when `host` is not in it (loopback to a production certificate). */
  servername?: string;
}

/** An API session: the bearer token (also the IMAP/SMTP secret) and the person it stands for. */
export interface WebSession {
  token: string;
  principal: PersonPrincipal;
}

const connections = new Gauge({ name: 'mss_webmail_imap_connections', help: 'IMAP connections the webmail API holds open (one per session and mailbox)', registers: [registry] });

interface Entry {
  key: string;
  tokenKey: string;
  client: Promise<ImapFlow>;
  busy: number;
  connected: boolean;
  closed: boolean;
  timer?: NodeJS.Timeout;
}

export interface Held {
  client: ImapFlow;
  /** Gives the connection back (once; later calls do nothing). */
  release(): void;
  /** Gives it back and closes it: its state is unknown (a stream abandoned half-way). */
  discard(): void;
}

export class ImapPool {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: { target: ImapTarget; idleMs: number; log: Logger; onTokenRefused?(token: string): void }) {}

  /** Runs fn on the session's connection to `bal`, opened on first use. */
  async with<T>(s: WebSession, bal: string, fn: (c: ImapFlow) => Promise<T>): Promise<T> {
    const h = await this.hold(s, bal);
    try {
      return await fn(h.client);
    } finally {
      h.release();
    }
  }

  /** The connection, held until release() (for a streamed download). */
  async hold(s: WebSession, bal: string): Promise<Held> {
    const e = this.entry(s, bal);
    e.busy++;
    clearTimeout(e.timer);
    let done = false;
    const release = () => {
      if (done) return;
      done = true;
      e.busy--;
      this.arm(e);
    };
    try {
      const client = await e.client;
      return {
        client,
        release,
        discard: () => {
          release();
          this.close(e);
        },
      };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Logout and password changes: every connection of that token goes. */
  closeToken(token: string): void {
    const k = tokenKeyOf(token);
    for (const e of [...this.entries.values()]) if (e.tokenKey === k) this.close(e);
  }

  get size(): number {
    return this.entries.size;
  }

  async stop(): Promise<void> {
    const all = [...this.entries.values()];
    await Promise.all(all.map((e) => this.close(e)));
  }

  private entry(s: WebSession, bal: string): Entry {
    const tokenKey = tokenKeyOf(s.token);
    const key = `${tokenKey} ${bal.toLowerCase()}`;
    const found = this.entries.get(key);
    if (found && !found.closed) return found;
    const e: Entry = { key, tokenKey, busy: 0, connected: false, closed: false, client: Promise.resolve(null as unknown as ImapFlow) };
    e.client = this.connect(s, bal, e);
    // Awaited by every caller; this only keeps an unobserved failure from being reported twice.
    e.client.catch(() => {});
    this.entries.set(key, e);
    return e;
  }

  private async connect(s: WebSession, bal: string, e: Entry): Promise<ImapFlow> {
    const { host, port, ca, servername } = this.o.target;
    const c = new ImapFlow({
      host,
      port,
      secure: true,
      ...(servername ? { servername } : {}),
      tls: { ca, ...nodeTlsPolicy(), ...(servername ? { servername } : {}) },
      // "<box>*<person>": open that box as that person (imap-proxy/auth.ts splitUser).
      auth: { user: `${bal}*${s.principal.login}`, pass: s.token },
      logger: false,
      disableAutoIdle: true,
      clientInfo: { name: 'mss-webmail-api' },
    });
    c.on('error', (err: Error) => this.o.log.warn({ err: err.message, bal }, 'webmail IMAP connection error'));
    c.on('close', () => {
      if (e.connected) connections.dec();
      e.connected = false;
      this.forget(e);
    });
    try {
      await c.connect();
    } catch (err) {
      this.forget(e);
      const refusal = imapError(err, `open ${bal}`);
      // The proxy no longer takes the token (closed elsewhere): it is not to be taken from a cache either.
      if (refusal.code === 'WEBMAIL_SESSION_INVALID') this.o.onTokenRefused?.(s.token);
      throw refusal;
    }
    e.connected = true;
    connections.inc();
    return c;
  }

  private forget(e: Entry): void {
    e.closed = true;
    clearTimeout(e.timer);
    if (this.entries.get(e.key) === e) this.entries.delete(e.key);
  }

  private arm(e: Entry): void {
    if (e.busy > 0 || e.closed) return;
    clearTimeout(e.timer);
    e.timer = setTimeout(() => void this.close(e), this.o.idleMs);
    e.timer.unref();
  }

  private async close(e: Entry): Promise<void> {
    this.forget(e);
    const c = await e.client.catch(() => null);
    if (!c) return;
    await c.logout().catch(() => c.close());
  }
}
