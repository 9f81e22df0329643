// Client-side helpers the benches share (they run in the load generators' processes, as
// clients on other machines would): SMTP replies read whole, IMAP lines, TLS upgrades,
// percentiles, and an open-loop scheduler — requests started at a fixed rate whatever the
// server's answers, latency counted from when each was due (no coordinated omission).
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { nextReply } from '../tests/helpers/smtp-talk.js';

/** The p-th percentile (nearest rank) of xs; NaN when empty. */
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

/** Replies read whole (multi-line included) from a socket that STARTTLS may replace. */
export class Wire {
  private buf = '';
  private waiter: (() => void) | null = null;
  private closed = false;
  private error: Error | null = null;
  constructor(public sock: Socket) {
    this.attach(sock);
  }

  attach(s: Socket) {
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake();
    });
    s.on('error', (e) => {
      this.error = e;
      this.wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  private wake() {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async reply(): Promise<string> {
    for (;;) {
      const r = nextReply(this.buf);
      if (r) {
        this.buf = r.rest;
        return r.reply;
      }
      if (this.error) throw this.error;
      if (this.closed) throw new Error(`connection closed${this.buf ? `: ${this.buf.slice(0, 200)}` : ''}`);
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  async cmd(line: string | Buffer, expect: string): Promise<string> {
    this.sock.write(line);
    const r = await this.reply();
    if (!r.startsWith(expect)) throw new Refusal(`${typeof line === 'string' ? line.trim().split(' ')[0] : 'DATA'} → ${r}`);
    return r;
  }

  detachPlain(): Socket {
    this.sock.removeAllListeners('data');
    this.sock.removeAllListeners('close');
    this.sock.removeAllListeners('error');
    return this.sock;
  }
}

/** The server said no (the session goes on); anything else is a connection failure. */
export class Refusal extends Error {}

export function connectTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

export function startTls(plain: Socket, opts: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ ...opts, socket: plain }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** One IMAP exchange on a socket: resolves at the first line matching `re`. */
export function lineWaiter(sock: Socket) {
  let buf = '';
  let waiter: { re: RegExp; resolve: (s: string) => void; reject: (e: Error) => void } | null = null;
  const check = () => {
    if (waiter && waiter.re.test(buf)) {
      const w = waiter;
      waiter = null;
      const b = buf;
      buf = '';
      w.resolve(b);
    }
  };
  sock.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    if (buf.length > 65536) buf = buf.slice(-4096);
    check();
  });
  sock.on('close', () => waiter?.reject(new Error(`closed; got ${buf.slice(-200)}`)));
  sock.on('error', (e) => waiter?.reject(e));
  return (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      waiter = { re, resolve, reject };
      check();
    });
}

/** A connection to 127.0.0.1:port, over TLS when `tls` is given. */
export function open(port: number, tls?: ConnectionOptions): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = tls ? tlsConnect({ host: '127.0.0.1', port, ...tls }, () => resolve(s)) : tcpConnect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

export interface OpenLoopResult {
  /** Latency of each success, ms, from when it was started. */
  lat: number[];
  /** How late each request was started, ms (this process's own scheduling on a busy machine). */
  late: number[];
  /** Started (offered) and failed. */
  offered: number;
  errors: number;
  firstError?: string;
  /** The window requests were started in, s. */
  seconds: number;
}

/**
 * Starts `fn` every 1/rate s for durationMs, without waiting for earlier ones (open loop:
 * a server that falls behind is seen as slow, not as offered less), then waits for the last
 * to end. `fn` resolves on success, rejects on failure; its latency counts from when it
 * started — on one shared machine the generator itself may start late, which is the
 * machine's doing, not the server's: that lateness is kept apart (`late`). `fn` may return
 * its own figure (ms) to count instead (e.g. 250 after the data).
 */
export async function openLoop(rate: number, durationMs: number, fn: (i: number) => Promise<number | void>): Promise<OpenLoopResult> {
  const out: OpenLoopResult = { lat: [], late: [], offered: 0, errors: 0, seconds: durationMs / 1000 };
  const period = 1000 / rate;
  const t0 = performance.now();
  const running: Promise<void>[] = [];
  for (let i = 0; ; i++) {
    const due = t0 + i * period;
    if (due - t0 >= durationMs) break;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    out.offered++;
    const started = performance.now();
    out.late.push(started - due);
    running.push(
      fn(i).then(
        (own) => void out.lat.push(typeof own === 'number' ? own : performance.now() - started),
        (e: unknown) => {
          out.errors++;
          out.firstError ??= e instanceof Error ? e.message : String(e);
        },
      ),
    );
  }
  await Promise.all(running);
  return out;
}
