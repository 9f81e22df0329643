import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { DeliveryResult, Envelope, LmtpTarget, RecipientFailure } from '../mailstore/lmtp.js';

export interface LmtpPoolOptions {
  /** Our name in LHLO. */
  name: string;
  /** Sessions open at most (the delivery worker's concurrency). */
  size: number;
  /** Connect, and each reply (default 120 s: a 25 MB message is stored before its replies). */
  timeoutMs?: number;
  /** An idle session is closed (QUIT) after this long. */
  idleMs?: number;
  /** Use BDAT when the server offers CHUNKING (default true; false forces DATA). */
  chunking?: boolean;
}

interface Reply {
  code: number;
  text: string;
}

/** A connection failure: nothing is known to be delivered, the caller retries every recipient. */
export class LmtpConnectionError extends Error {
  constructor(
    message: string,
    /** Failed before any reply to this transaction, on a session that had served before: a stale connection. */
    readonly stale = false,
  ) {
    super(message);
  }
}

const CRLF = Buffer.from('\r\n');
const DOT = Buffer.from('.');
const END = Buffer.from('.\r\n');

/**
 * One LMTP connection kept open for many messages (RFC 2033). With PIPELINING and CHUNKING
 * (Dovecot offers both) a message is one write — envelope, BDAT LAST and the bytes — and
 * one round trip; otherwise the envelope goes out in one write, the body in one more
 * (dot-stuffed by native searches), and one reply per accepted recipient comes back after
 * the final dot.
 */
class LmtpSession {
  private buf = '';
  private waiter: (() => void) | null = null;
  private failure: Error | null = null;
  private pipelining = false;
  private chunking = false;
  private smtputf8 = false;
  served = 0;
  idleSince = Date.now();

  private constructor(
    private readonly sock: Socket,
    private readonly timeoutMs: number,
  ) {
    sock.setNoDelay(true);
    sock.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake();
    });
    sock.on('error', (e) => this.fail(e));
    sock.on('close', () => this.fail(new Error('the LMTP server closed the connection')));
  }

  static open(target: LmtpTarget, name: string, timeoutMs: number, chunking: boolean): Promise<LmtpSession> {
    return new Promise((resolve, reject) => {
      // A back end of a shared store is on the network: TLS, its certificate checked.
      const sock = target.tls
        ? tlsConnect({ host: target.host, port: target.port, ca: target.tls.ca, servername: isIP(target.host) ? undefined : target.host, minVersion: 'TLSv1.2' })
        : connect({ host: target.host, port: target.port });
      const timer = setTimeout(() => sock.destroy(new Error(`LMTP connect to ${target.host}:${target.port} timed out`)), timeoutMs);
      sock.once('error', (e) => {
        clearTimeout(timer);
        reject(new LmtpConnectionError(e.message));
      });
      sock.once(target.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        const s = new LmtpSession(sock, timeoutMs);
        s.greet(name, chunking).then(
          () => resolve(s),
          (e) => {
            s.destroy();
            reject(e);
          },
        );
      });
    });
  }

  get usable() {
    return !this.failure && !this.sock.destroyed;
  }

  private async greet(name: string, chunking: boolean) {
    const banner = await this.reply();
    if (banner.code !== 220) throw new LmtpConnectionError(`LMTP greeting: ${banner.code} ${banner.text}`);
    this.sock.write(`LHLO ${name}\r\n`);
    const lhlo = await this.reply();
    if (lhlo.code !== 250) throw new LmtpConnectionError(`LHLO: ${lhlo.code} ${lhlo.text}`);
    const caps = new Set(lhlo.text.split('\n').map((l) => l.trim().split(' ')[0].toUpperCase()));
    this.pipelining = caps.has('PIPELINING');
    this.chunking = chunking && caps.has('CHUNKING');
    this.smtputf8 = caps.has('SMTPUTF8');
  }

  private fail(e: Error) {
    this.failure ??= e;
    this.wake();
  }

  private wake() {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  /** The next whole reply (multi-line replies joined with \n). */
  private async reply(): Promise<Reply> {
    for (;;) {
      const m = /^(?:(\d{3})-[^\r\n]*\r\n)*(\d{3})(?:[ \t][^\r\n]*)?\r\n/.exec(this.buf);
      if (m) {
        this.buf = this.buf.slice(m[0].length);
        const lines = m[0].trimEnd().split('\r\n');
        return { code: Number(m[2]), text: lines.map((l) => l.slice(4)).join('\n') };
      }
      if (this.failure) throw new LmtpConnectionError(this.failure.message);
      if (this.buf.length > 64 * 1024) throw new LmtpConnectionError('LMTP reply too long');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.fail(new Error(`no LMTP reply within ${this.timeoutMs} ms`));
          this.sock.destroy();
        }, this.timeoutMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** One message; a recipient refused (at RCPT or after the data) is reported, not thrown. */
  async deliver(envelope: Envelope, body: Buffer): Promise<DeliveryResult> {
    const reused = this.served > 0;
    this.served++;
    let replies = 0;
    const next = async () => {
      try {
        return await this.reply();
      } catch (e) {
        throw replies === 0 && reused ? new LmtpConnectionError((e as Error).message, true) : e;
      } finally {
        replies++;
      }
    };
    const utf8 = this.smtputf8 && /[^\x20-\x7e]/.test(envelope.from + envelope.to.join(''));
    const commands = [`MAIL FROM:<${envelope.from}>${utf8 ? ' SMTPUTF8' : ''}\r\n`, ...envelope.to.map((r) => `RCPT TO:<${r}>\r\n`), 'DATA\r\n'];
    const failed: RecipientFailure[] = [];
    const refuse = (rcpt: string, r: Reply) => failed.push({ rcpt, code: r.code, response: `${r.code} ${r.text}`, temporary: r.code < 500 });
    if (this.pipelining && this.chunking) {
      // RFC 3030 BDAT: the envelope, the size and the bytes in one write, one round trip,
      // no dot-stuffing. LMTP answers BDAT LAST once per accepted recipient, or once in all
      // when none was accepted (the server reads and drops the bytes).
      const crlf = body.length >= 2 && body[body.length - 2] === 0x0d && body[body.length - 1] === 0x0a;
      this.sock.cork();
      this.sock.write(commands.slice(0, -1).join('') + `BDAT ${body.length + (crlf ? 0 : 2)} LAST\r\n`);
      this.sock.write(body);
      if (!crlf) this.sock.write(CRLF);
      this.sock.uncork();
      const mail = await next();
      const accepted: string[] = [];
      for (const rcpt of envelope.to) {
        const r = await next();
        if (mail.code === 250 && r.code === 250) accepted.push(rcpt);
        else refuse(rcpt, mail.code === 250 ? r : mail);
      }
      if (!accepted.length) {
        await next();
        this.sock.write('RSET\r\n');
        if ((await next()).code !== 250) this.destroy();
        return { accepted: [], failed };
      }
      const delivered: string[] = [];
      for (const rcpt of accepted) {
        const r = await next();
        if (r.code === 250) delivered.push(rcpt);
        else refuse(rcpt, r);
      }
      return { accepted: delivered, failed };
    }
    let mail: Reply;
    const rcptReplies: Reply[] = [];
    let data: Reply | undefined;
    if (this.pipelining) {
      this.sock.write(commands.join(''));
      mail = await next();
      for (let i = 0; i < envelope.to.length; i++) rcptReplies.push(await next());
      data = await next();
    } else {
      this.sock.write(commands[0]);
      mail = await next();
      if (mail.code === 250) {
        for (let i = 0; i < envelope.to.length; i++) {
          this.sock.write(commands[i + 1]);
          rcptReplies.push(await next());
        }
        if (rcptReplies.some((r) => r.code === 250)) {
          this.sock.write('DATA\r\n');
          data = await next();
        }
      }
    }
    const accepted: string[] = [];
    if (mail.code !== 250) {
      for (const rcpt of envelope.to) refuse(rcpt, mail);
    } else {
      envelope.to.forEach((rcpt, i) => (rcptReplies[i].code === 250 ? accepted.push(rcpt) : refuse(rcpt, rcptReplies[i])));
    }
    if (data?.code === 354) {
      this.sock.cork();
      for (const part of dotStuffed(body)) this.sock.write(part);
      this.sock.uncork();
      const delivered: string[] = [];
      for (const rcpt of accepted) {
        const r = await next();
        if (r.code === 250) delivered.push(rcpt);
        else refuse(rcpt, r);
      }
      // A server that took DATA with no recipient (RFC 2033 says it must not) is out of step.
      if (!accepted.length) this.destroy();
      return { accepted: delivered, failed };
    }
    // No data went out: what RCPT accepted is refused by DATA's answer; the session is reset.
    for (const rcpt of accepted) refuse(rcpt, data ?? { code: 451, text: '4.3.0 DATA was not accepted' });
    if (data?.code === 421 || mail.code === 421) this.destroy();
    else {
      this.sock.write('RSET\r\n');
      const r = await next();
      if (r.code !== 250) this.destroy();
    }
    return { accepted: [], failed };
  }

  quit() {
    if (!this.usable) return;
    this.sock.end('QUIT\r\n');
    this.sock.destroySoon();
  }

  destroy() {
    this.failure ??= new Error('closed');
    this.sock.destroy();
  }
}

/** The body as LMTP DATA: lines starting with a dot get one more, then CRLF . CRLF. */
export function dotStuffed(body: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  if (body[0] === 0x2e) parts.push(DOT);
  let start = 0;
  for (let i = body.indexOf('\r\n.'); i >= 0; i = body.indexOf('\r\n.', start)) {
    parts.push(body.subarray(start, i + 2), DOT);
    start = i + 2;
  }
  parts.push(body.subarray(start));
  if (body.length && !(body[body.length - 2] === 0x0d && body[body.length - 1] === 0x0a)) parts.push(CRLF);
  parts.push(END);
  return parts;
}

/**
 * Delivery sessions to Dovecot, reused from one message to the next: no connect, greeting
 * and LHLO per message, and no Dovecot process handshake either. A session that went stale
 * while idle (closed by the server) is replaced and the message tried once more on a fresh
 * one; any other connection failure rejects (nothing is known delivered: retry everything).
 */
export class LmtpPool {
  private idle: LmtpSession[] = [];
  private opened = 0;
  private waiting: Array<() => void> = [];
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly target: LmtpTarget,
    private readonly o: LmtpPoolOptions,
  ) {
    const idleMs = o.idleMs ?? 10_000;
    this.sweeper = setInterval(() => {
      const old = Date.now() - idleMs;
      this.idle = this.idle.filter((s) => {
        if (s.usable && s.idleSince > old) return true;
        s.quit();
        this.opened--;
        return false;
      });
      this.wakeOne();
    }, Math.max(1000, idleMs / 2));
    this.sweeper.unref();
  }

  async deliver(envelope: Envelope, body: Buffer): Promise<DeliveryResult> {
    for (let attempt = 0; ; attempt++) {
      const s = await this.acquire();
      try {
        const r = await s.deliver(envelope, body);
        this.release(s);
        return r;
      } catch (e) {
        s.destroy();
        this.release(s);
        if (e instanceof LmtpConnectionError && e.stale && attempt === 0) continue;
        throw e;
      }
    }
  }

  private async acquire(): Promise<LmtpSession> {
    for (;;) {
      if (this.closed) throw new LmtpConnectionError('the LMTP pool is closed');
      const s = this.idle.pop();
      if (s) {
        if (s.usable) return s;
        this.opened--;
        continue;
      }
      if (this.opened < this.o.size) {
        this.opened++;
        try {
          return await LmtpSession.open(this.target, this.o.name, this.o.timeoutMs ?? 120_000, this.o.chunking ?? true);
        } catch (e) {
          this.opened--;
          this.wakeOne();
          throw e;
        }
      }
      await new Promise<void>((r) => this.waiting.push(r));
    }
  }

  private release(s: LmtpSession) {
    if (s.usable && !this.closed) {
      s.idleSince = Date.now();
      this.idle.push(s);
    } else this.opened--;
    this.wakeOne();
  }

  private wakeOne() {
    this.waiting.shift()?.();
  }

  /** Sessions open now (idle or busy). */
  get size() {
    return this.opened;
  }

  close() {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const s of this.idle) s.quit();
    this.opened -= this.idle.length;
    this.idle = [];
    for (const w of this.waiting.splice(0)) w();
  }
}
