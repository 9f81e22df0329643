import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { silentLogger } from '../../core/logger.js';
import { Supervisor } from '../../core/supervisor.js';
import { startMailstore, type Mailstore } from '../../mailstore/dovecot.js';
import { dotStuffed, LmtpPool } from '../../smtp/lmtp-sessions.js';

const FROM = 'labo@peer.mssante.fr';
const message = (subject: string, text: string) => Buffer.from(`From: ${FROM}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@peer.mssante.fr>\r\n\r\n${text}`, 'latin1');

describe('dotStuffed', () => {
  it('doubles a dot that starts a line (the first one included) and ends with CRLF . CRLF', () => {
    const out = (s: string) => Buffer.concat(dotStuffed(Buffer.from(s))).toString();
    expect(out('a\r\n.b\r\n..c\r\n.\r\nd\r\n')).toBe('a\r\n..b\r\n...c\r\n..\r\nd\r\n.\r\n');
    expect(out('.x\r\n')).toBe('..x\r\n.\r\n');
    expect(out('no final line break')).toBe('no final line break\r\n.\r\n');
    expect(out('a.\r\nb.c\r\n')).toBe('a.\r\nb.c\r\n.\r\n');
  });
});

/** Each delivery path: BDAT when Dovecot offers CHUNKING, DATA when it is turned off. */
const MODES = [
  ['BDAT', true],
  ['DATA', false],
] as const;

describe('LmtpPool against Dovecot', () => {
  let supervisor: Supervisor;
  let store: Mailstore;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-lmtp-'));
    supervisor = new Supervisor(silentLogger);
    store = await startMailstore(loadConfig({ env: {}, overrides: { dataDir } }), silentLogger, supervisor);
  });
  afterAll(async () => {
    await supervisor?.stopAll();
  });

  /** A pool to the test's Dovecot, closed after fn whatever happens. */
  async function withPool(o: { size: number; chunking?: boolean }, fn: (pool: LmtpPool) => Promise<void>) {
    const pool = new LmtpPool(store.lmtp, { name: 'mx.mssante.localhost', ...o });
    try {
      await fn(pool);
    } finally {
      pool.close();
    }
  }

  async function sources(box: string): Promise<string[]> {
    const c = new ImapFlow({ host: store.imap.host, port: store.imap.port, secure: false, auth: { user: `${box}${store.master.separator}${store.master.user}`, pass: store.master.password }, logger: false });
    await c.connect();
    try {
      const lock = await c.getMailboxLock('INBOX');
      try {
        const out: string[] = [];
        if ((c.mailbox as { exists: number }).exists === 0) return out;
        for await (const m of c.fetch('1:*', { source: true })) out.push(m.source!.toString('latin1'));
        return out;
      } finally {
        lock.release();
      }
    } finally {
      await c.logout();
    }
  }

  it.each(MODES)('delivers many messages over one session with %s, bytes intact (dotted lines, 8-bit, no final CRLF)', async (mode, chunking) => {
    await withPool({ size: 1, chunking }, async (pool) => {
      const box = `dr.session.${mode.toLowerCase()}@mssante.localhost`;
      const texts = Array.from({ length: 5 }, (_, i) => `ligne ${i}\r\n.\r\n..deux points\r\n.final \xe9\xe8${i % 2 ? '\r\n' : ''}`);
      for (let i = 0; i < texts.length; i++) {
        expect(await pool.deliver({ from: FROM, to: [box] }, message(`m${i}`, texts[i]))).toEqual({ accepted: [box], failed: [] });
        expect(pool.size).toBe(1);
      }
      const got = await sources(box);
      expect(got).toHaveLength(5);
      for (let i = 0; i < texts.length; i++) {
        const src = got.find((s) => s.includes(`Subject: m${i}\r\n`))!;
        // Dovecot adds its own trace headers; the message itself follows unchanged.
        expect(src.endsWith(message(`m${i}`, texts[i]).toString('latin1') + (i % 2 ? '' : '\r\n'))).toBe(true);
      }
    });
  });

  it.each(MODES)('with %s, reports recipients refused at RCPT on their own, delivers to the others, and the session goes on', async (mode, chunking) => {
    await withPool({ size: 1, chunking }, async (pool) => {
      const good = `secretariat.mixed.${mode.toLowerCase()}@mssante.localhost`;
      const bad = 'a/b@mssante.localhost';
      const r = await pool.deliver({ from: FROM, to: [bad, good] }, message('mixed', 'x\r\n'));
      expect(r.accepted).toEqual([good]);
      expect(r.failed).toEqual([{ rcpt: bad, code: 550, response: expect.stringMatching(/^550 5\.1\.1 /), temporary: false }]);
      // Nobody accepted: no data is sent, the transaction is reset, the session still serves.
      const none = await pool.deliver({ from: FROM, to: [bad] }, message('none', 'x\r\n'));
      expect(none).toEqual({ accepted: [], failed: [{ rcpt: bad, code: 550, response: expect.stringMatching(/^550 /), temporary: false }] });
      expect(await pool.deliver({ from: FROM, to: [good] }, message('after', 'y\r\n'))).toEqual({ accepted: [good], failed: [] });
      expect(pool.size).toBe(1);
      expect((await sources(good)).map((s) => /Subject: (\w+)/.exec(s)![1])).toEqual(['mixed', 'after']);
    });
  });

  it('never opens more sessions than its size; callers beyond it wait their turn', async () => {
    await withPool({ size: 3 }, async (pool) => {
      const boxes = ['p1@mssante.localhost', 'p2@mssante.localhost'];
      let most = 0;
      const all = Array.from({ length: 12 }, (_, i) =>
        pool.deliver({ from: FROM, to: boxes }, message(`c${i}`, `${i}\r\n`)).then((r) => {
          most = Math.max(most, pool.size);
          return r;
        }),
      );
      const results = await Promise.all(all);
      expect(results.every((r) => r.accepted.length === 2 && r.failed.length === 0)).toBe(true);
      expect(most).toBeLessThanOrEqual(3);
      expect((await sources('p1@mssante.localhost')).length).toBe(12);
    });
  });

  it('a connection failure rejects (nothing is known delivered) and a closed pool refuses work', async () => {
    const pool = new LmtpPool({ host: '127.0.0.1', port: 1 }, { name: 'mx.mssante.localhost', size: 1 });
    await expect(pool.deliver({ from: FROM, to: ['x@mssante.localhost'] }, message('refused', 'x\r\n'))).rejects.toThrow(/ECONNREFUSED/);
    expect(pool.size).toBe(0);
    pool.close();
    await expect(pool.deliver({ from: FROM, to: ['x@mssante.localhost'] }, message('closed', 'x\r\n'))).rejects.toThrow(/closed/);
  });
});
