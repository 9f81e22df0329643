// The IMAP corpus's context: raw connections to the proxy (RawImap from the IMAP proxy's
// own test stack), answers turned into Outcomes, and the normal session each case is
// followed by: jeanne logs in with imapflow and appends a message, kept in the ledger.
import { ImapFlow } from 'imapflow';
import type { ConnectionOptions } from 'node:tls';
import { RawImap } from '../imap-proxy/stack.js';
import type { Outcome } from './harness.js';
import { goodMessage, newMessageId, type HostileOperator, type KeyPair } from './platform.js';

export interface ImapCtx {
  h: HostileOperator;
  /** IMAPS (993), greeting read. `from`: the loopback address to connect from. */
  tls(o?: { as?: KeyPair; from?: string; extra?: ConnectionOptions }): Promise<RawImap>;
  /** The STARTTLS port (143) in clear, greeting read. */
  plain(): Promise<RawImap>;
  /** Sends `tag …` and returns the Outcome of its tagged answer (or of an untagged BAD / BYE that came instead). */
  cmd(c: RawImap, line: string): Promise<Outcome>;
  /** One command on a fresh IMAPS connection, closed after. */
  once(line: string, o?: { as?: KeyPair; from?: string }): Promise<Outcome>;
  /** Logged in as `user`/`pass` over IMAPS with a raw connection (for commands after login). */
  loggedIn(user: string, pass: string): Promise<RawImap>;
}

/** "a NO [CODE] text" / "* BYE [CODE] text" → Outcome (code = NO/BAD/BYE/OK, enhanced = the response code). */
export function imapOutcome(line: string): Outcome {
  const m = /^\S+ (OK|NO|BAD|BYE)(?: \[([^\]]+)\])? ?(.*?)\r?\n?$/.exec(line);
  if (!m) return { code: 'unparsable', text: line };
  return { code: m[1], ...(m[2] ? { enhanced: m[2].split(' ')[0] } : {}), text: m[3] };
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function imapCtx(h: HostileOperator): ImapCtx {
  const x: ImapCtx = {
    h,
    async tls(o = {}) {
      const c = await RawImap.tls(h.ports.imaps, { ...h.tls(o.as, o.extra), ...(o.from ? { localAddress: o.from } : {}) });
      await c.until(/\r\n/);
      return c;
    },
    async plain() {
      const c = await RawImap.tcp(h.ports.imap);
      await c.until(/\r\n/);
      return c;
    },
    async cmd(c, line) {
      const tag = line.split(' ')[0];
      c.send(line.endsWith('\n') ? line : `${line}\r\n`);
      const text = await c.until(new RegExp(`^(?:${escape(tag)} (?:OK|NO|BAD)|\\* (?:BAD|BYE))\\b.*\\r\\n`, 'm'));
      return imapOutcome(text.trimEnd().split('\r\n').pop()!);
    },
    async once(line, o) {
      const c = await x.tls(o);
      try {
        return await x.cmd(c, line);
      } finally {
        c.close();
      }
    },
    async loggedIn(user, pass) {
      const c = await x.tls();
      const o = await x.cmd(c, `L1 LOGIN "${user}" "${pass}"`);
      if (o.code !== 'OK') throw new Error(`login as ${user}: ${o.code} ${o.text}`);
      return c;
    },
  };
  return x;
}

/** jeanne logs in through the proxy (password) and appends a message: OK, and it is in the ledger. */
export async function imapServes(x: ImapCtx): Promise<void> {
  const { jeanne } = x.h.who;
  const c = new ImapFlow({ host: '127.0.0.1', port: x.h.ports.imaps, secure: true, tls: x.h.tls(), auth: { user: jeanne.address, pass: jeanne.password }, logger: false });
  await c.connect();
  try {
    const id = newMessageId('imap');
    const r = await c.append('INBOX', goodMessage(`labo@peer.mssante.localhost`, jeanne.address, id));
    if (!r || !r.uid) throw new Error('APPEND was not acknowledged with a UID');
    x.h.acked(jeanne.address, id);
  } finally {
    await c.logout();
  }
}
