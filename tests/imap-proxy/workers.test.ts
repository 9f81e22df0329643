// imap.workers = 2: the connections live in two worker processes (the compiled
// dist/imap-proxy/worker.js), logins are decided and traces journalled in this process.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP, PER, PW, RawImap, startStack, type Stack } from './stack.js';

/** Sockets a process holds, from /proc (Linux). */
const sockets = (pid: number) => readdirSync(`/proc/${pid}/fd`).filter((fd) => /^socket:/.test(safeLink(`/proc/${pid}/fd/${fd}`))).length;
const safeLink = (p: string) => {
  try {
    return readlinkSync(p);
  } catch {
    return '';
  }
};
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function eventually<T>(get: () => T | undefined | null | false | Promise<T | undefined | null | false>): Promise<T> {
  for (;;) {
    const v = await get();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('imap-proxy with two worker processes', () => {
  let s: Stack;
  const flow = (user: string, pass: string) =>
    new ImapFlow({ host: '127.0.0.1', port: s.proxy.ports.imaps, secure: true, tls: s.tls(), auth: { user, pass }, logger: false });
  const external = async (box: string) => {
    const leaf = s.pki.paths.leaves.application;
    const c = await RawImap.tls(s.proxy.ports.imaps, s.tls({ cert: readFileSync(leaf.cert, 'utf8') + s.pki.read('intermediate.pem'), key: readFileSync(leaf.key, 'utf8') }));
    await c.until(/\* OK .*\r\n/);
    c.send(`a AUTHENTICATE EXTERNAL ${Buffer.from(box).toString('base64')}\r\n`);
    return { c, answer: await c.until(/^a (OK|NO|BAD).*\r\n/m) };
  };

  beforeAll(async () => {
    s = await startStack({ workers: 2 });
    await s.deliver(PER, 'Par un worker', 'Résultat lu au travers d’un processus séparé.');
  });
  afterAll(async () => {
    await s?.stop();
  });

  it('runs the connections in two other processes', () => {
    const pids = s.proxy.pids();
    expect(pids).toHaveLength(2);
    expect(pids).not.toContain(process.pid);
    expect(new Set(pids).size).toBe(2);
  });

  it('logs in and reads through a worker; the login, the read and the end are journalled here', async () => {
    const c = flow(PER, PW.jeanne);
    await c.connect();
    const lock = await c.getMailboxLock('INBOX');
    const m = await c.fetchOne('1', { source: true });
    expect(m && m.source?.toString()).toContain('processus séparé');
    lock.release();
    await c.logout();
    const login = await eventually(async () => (await s.events('imap.login', PER)).at(-1));
    expect(login.details).toMatchObject({ method: 'PLAIN', tls: 'TLSv1.3' }); // imapflow's AUTHENTICATE PLAIN
    const read = await eventually(async () => (await s.events('imap.fetch', PER)).at(-1));
    expect(read.details).toMatchObject({ mailbox: 'INBOX', status: 'OK', sets: ['1'] });
    const close = await eventually(async () => (await s.events('imap.session.close', PER)).find((e) => e.details.session === login.details.session));
    expect(close.details.bytesOut).toBeGreaterThan(100);
  });

  it('deals connections to both workers in turn; sessions sit in IDLE there', async () => {
    await eventually(() => s.proxy.stats().sessions + s.proxy.stats().preAuth === 0);
    const pids = s.proxy.pids();
    const before = pids.map(sockets);
    const held = await Promise.all([0, 1, 2, 3].map(() => external(APP)));
    for (const h of held) {
      expect(h.answer).toMatch(/^a OK/m);
      h.c.send('b SELECT INBOX\r\nc IDLE\r\n');
      await h.c.until(/^\+ .*\r\n/m);
    }
    await eventually(() => s.proxy.stats().sessions >= 4);
    // Each worker holds two sessions: a client socket and a Dovecot socket for each.
    const after = pids.map(sockets);
    expect(after[0] - before[0]).toBe(4);
    expect(after[1] - before[1]).toBe(4);
    held[0].c.send('DONE\r\n');
    expect(await held[0].c.until(/^c .*\r\n/m)).toMatch(/^c OK/m);
    for (const h of held) h.c.socket.destroy();
    await eventually(() => s.proxy.stats().sessions === 0);
  });

  it('counts failed logins once (in the database, through this process), whichever worker took them', async () => {
    const before = (await s.throttle.state('source', '127.0.0.1')).failures;
    for (let i = 0; i < 4; i++) {
      const c = await RawImap.tls(s.proxy.ports.imaps, s.tls());
      await c.until(/\* OK .*\r\n/);
      c.send(`a LOGIN ${PER} "not the password"\r\n`);
      expect(await c.until(/^a (OK|NO|BAD).*\r\n/m)).toMatch(/^a NO \[AUTHENTICATIONFAILED\]/m);
      c.socket.destroy();
    }
    expect((await s.throttle.state('source', '127.0.0.1')).failures).toBe(before + 4);
  });

  it('a reconnecting client resumes its TLS session whichever worker takes the connection', async () => {
    // Connections are dealt in turn: of four reconnections, two land on each worker. Each
    // offers the ticket of the connection before it (a ticket from the other worker, half
    // the time); all resume only if the workers share their ticket keys.
    let ticket: Buffer | undefined;
    const resumed: boolean[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await RawImap.tls(s.proxy.ports.imaps, s.tls(ticket ? { session: ticket } : {}));
      const socket = c.socket as TLSSocket;
      await c.until(/\* OK .*\r\n/);
      c.send(`a LOGIN ${PER} "${PW.jeanne}"\r\n`);
      expect(await c.until(/^a (OK|NO|BAD).*\r\n/m)).toMatch(/^a OK/m);
      if (i > 0) resumed.push(socket.isSessionReused());
      // TLS 1.3 tickets come after the handshake: by the login's answer, it is here.
      ticket = socket.getSession();
      expect(ticket).toBeDefined();
      c.send('z LOGOUT\r\n');
      await c.rest();
    }
    expect(resumed).toEqual([true, true, true, true]);
  });

  it('STARTTLS on the other port works through a worker, and LOGIN before it is refused', async () => {
    const c = await RawImap.tcp(s.proxy.ports.imap);
    expect(await c.until(/\* OK .*\r\n/)).toMatch(/STARTTLS LOGINDISABLED/);
    c.send(`a LOGIN ${PER} "${PW.jeanne}"\r\n`);
    expect(await c.until(/^a .*\r\n/m)).toMatch(/^a NO \[PRIVACYREQUIRED\]/m);
    c.socket.destroy();
    const f = new ImapFlow({ host: '127.0.0.1', port: s.proxy.ports.imap, secure: false, doSTARTTLS: true, tls: s.tls(), auth: { user: PER, pass: PW.jeanne }, logger: false });
    await f.connect();
    const st = await f.status('INBOX', { messages: true });
    expect(st ? st.messages : 0).toBeGreaterThanOrEqual(1);
    await f.logout();
  });

  it('replaces a worker that dies: its clients lose their session, new logins work', async () => {
    const { c } = await external(APP);
    c.send('b SELECT INBOX\r\n');
    await c.until(/^b OK.*\r\n/m);
    const [victim, other] = s.proxy.pids();
    process.kill(victim, 'SIGKILL');
    await eventually(() => !alive(victim));
    const replaced = await eventually(() => {
      const now = s.proxy.pids();
      return now.length === 2 && !now.includes(victim) && now;
    });
    expect(replaced).toContain(other);
    // The session was on one of the two: on the dead one it is gone, else it still answers.
    if (!c.closed) {
      c.send('d NOOP\r\n');
      await c.until(/^d OK.*\r\n/m).catch(() => {});
    }
    c.socket.destroy();
    for (let i = 0; i < 2; i++) {
      const again = await external(APP);
      expect(again.answer).toMatch(/^a OK/m);
      again.c.socket.destroy();
    }
    expect(await s.proxy.health.check()).toMatchObject({ ok: true, workers: 2 });
  });

  it('a stop ends the sessions held by the workers, journals their end, and the workers exit', async () => {
    const { c, answer } = await external(APP);
    expect(answer).toMatch(/^a OK/m);
    const session = await eventually(async () => (await s.events('imap.login', APP)).at(-1)?.details.session);
    const pids = s.proxy.pids();
    await s.proxy.stop();
    await c.done;
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const close = (await s.events('imap.session.close', APP)).find((e) => e.details.session === session);
    expect(close?.details.reason).toBe('platform stopping');
  });
});
