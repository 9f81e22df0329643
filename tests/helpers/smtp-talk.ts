import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';

/** The first complete reply in buf ("250 ok" or "250-a\r\n250 b") and what follows it; null until one has arrived. */
export function nextReply(buf: string): { reply: string; rest: string } | null {
  const m = /^(?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?\r\n/.exec(buf);
  return m ? { reply: m[0].trimEnd(), rest: buf.slice(m[0].length) } : null;
}

/**
 * A line-level SMTP client for tests that must see the exact replies, or send bytes a real
 * client would clean up (a bare LF). Replies are read whole (multi-line included).
 */
export class SmtpTalk {
  private buf = '';
  private waiters: Array<() => void> = [];
  private constructor(private sock: Socket | TLSSocket) {
    this.attach(sock);
  }

  /** localAddress: the loopback address to connect from (127.0.0.2…), to be another client for per-address limits. */
  static async open(port: number, host = '127.0.0.1', tls?: ConnectionOptions, localAddress?: string): Promise<SmtpTalk> {
    const sock = await new Promise<Socket | TLSSocket>((resolve, reject) => {
      const s = tls ? tlsConnect({ host, port, ...tls, ...(localAddress ? { localAddress } : {}) } as ConnectionOptions, () => resolve(s)) : netConnect({ host, port, ...(localAddress ? { localAddress } : {}) }, () => resolve(s));
      s.once('error', reject);
    });
    const t = new SmtpTalk(sock);
    await t.reply(); // greeting
    return t;
  }

  private attach(s: Socket | TLSSocket) {
    s.on('data', (d) => {
      this.buf += d.toString('latin1');
      for (const w of this.waiters.splice(0)) w();
    });
    s.on('error', () => {});
    s.on('close', () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** The next complete reply: "250 ok" or "250-a\r\n250 b". */
  async reply(): Promise<string> {
    for (;;) {
      const r = nextReply(this.buf);
      if (r) {
        this.buf = r.rest;
        return r.reply;
      }
      if (this.sock.destroyed) return `(connection closed)${this.buf ? ' ' + this.buf : ''}`;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async cmd(line: string): Promise<string> {
    this.sock.write(line + '\r\n');
    return this.reply();
  }

  /** STARTTLS then a new EHLO; resolves with the EHLO reply. `command`: what to send instead, e.g. STARTTLS with a command injected behind it. */
  async starttls(opts: ConnectionOptions, ehlo = 'client.test', command = 'STARTTLS'): Promise<string> {
    const r = await this.cmd(command);
    if (!r.startsWith('220')) throw new Error(`STARTTLS refused: ${r}`);
    const plain = this.sock;
    plain.removeAllListeners('data');
    this.sock = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ...opts }, () => resolve(s));
      s.once('error', reject);
    });
    this.attach(this.sock);
    return this.cmd(`EHLO ${ehlo}`);
  }

  /** DATA with these exact bytes (the caller ends them with \r\n.\r\n). */
  async data(raw: Buffer | string): Promise<string> {
    const go = await this.cmd('DATA');
    if (!go.startsWith('354')) return go;
    this.sock.write(raw);
    return this.reply();
  }

  close() {
    this.sock.end();
    this.sock.destroy();
  }
}
