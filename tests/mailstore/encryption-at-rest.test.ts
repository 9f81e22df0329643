import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { openDb } from '../../core/db/index.js';
import { runMss, runMssAsync, startMss, type Started } from '../helpers/mss.js';
import { until } from '../helpers/operator.js';
import { call } from '../webmail/stack.js';

// Issue 16 §3: what the platform keeps on disk — Dovecot's mail files and the embedded
// database's files — holds no message body in clear, yet IMAP and the webmail read it; a
// key rotation leaves the mail of before and after readable. Every listener on a free port.
const ANY_PORT = { MSS_SMTP_MX_PORT: '0', MSS_SMTP_SUBMISSION_PORT: '0', MSS_SMTP_SUBMISSIONS_PORT: '0', MSS_LDAP_PORT: '0', MSS_LDAP_LDAPS_PORT: '0', MSS_ADMIN_PORT: '0', MSS_IMAP_PORT: '0', MSS_IMAP_STARTTLS_PORT: '0', MSS_WEBMAIL_PORT: '0', MSS_FHIR_PORT: '0', MSS_PKI_KEY_BITS: '2048' };
const DOMAIN = 'mssante.localhost';
const JEANNE = `jeanne.martin@${DOMAIN}`;
const PAUL = `paul.bernard@${DOMAIN}`;

/**
 * Files under dir that hold `needle` (grep -r, binary files included; Dovecot's FIFOs and
 * sockets skipped, and slapd's database: an 8 GB sparse LMDB file that holds no mail).
 */
function filesHolding(dir: string, needle: string): string[] {
  try {
    return execFileSync('grep', ['-r', '-a', '-l', '-F', '--devices=skip', '--exclude-dir=ldap', needle, dir], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch (e) {
    if ((e as { status?: number }).status === 1) return [];
    throw e;
  }
}

const marker = (n: number) => `MARQUEUR${n}${randomBytes(12).toString('hex')}`;

describe('encryption at rest: mail_crypt and the sealed spool', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'mss-crypt-'));
  /** The platform on `dir` (the test's data directory, or one restored from it). */
  async function platform(env: Record<string, string> = {}, dir = dataDir) {
    const ca = () => readFileSync(join(dir, 'pki', 'ca.pem'), 'utf8');
    const logins = () => Object.fromEntries([...readFileSync(join(dir, 'demo-logins.txt'), 'utf8').matchAll(/^\s*(\S+)\s+([A-Za-z0-9]{16})\s/gm)].map((m) => [m[1], m[2]]));
    const p = await startMss(['--data-dir', dir, '--http-port', '0'], { ...ANY_PORT, MSS_CRYPT_MAIL_STORE: 'true', ...env });
    const out = p.stdout();
    const webmail = /webmail API\s+(https:\/\/\S+)\/api\/v1/.exec(out)![1];
    const imaps = Number(/IMAP\s+imaps:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const api = (method: string, path: string, o: Parameters<typeof call>[4] = {}) => call(webmail, ca(), method, path, o);
    const token = (await api('POST', '/api/v1/login', { json: { login: 'jeanne.martin', password: logins()['jeanne.martin'] } })).json().token as string;
    const send = async (to: string, text: string) => {
      const r = await api('POST', `/api/v1/bals/${encodeURIComponent(JEANNE)}/send`, { token, json: { to: [to], subject: 'Compte rendu', text: `Résultat : ${text}\n` } });
      expect(r.status, r.body.toString()).toBe(200);
    };
    /** The webmail's reading of the INBOX message holding `text`, once it arrived. */
    const webmailRead = async (text: string) => {
      for (;;) {
        const list = (await api('GET', `/api/v1/bals/${encodeURIComponent(JEANNE)}/folders/INBOX/messages`, { token })).json().messages as Array<{ uid: number }>;
        for (const m of list) {
          const read = (await api('GET', `/api/v1/bals/${encodeURIComponent(JEANNE)}/messages/INBOX/${m.uid}`, { token })).json();
          if (String(read.text).includes(text)) return read.text as string;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    /** Every INBOX message's source, read through the IMAP proxy with imapflow (a personal box: its owner's login). */
    const imapSources = async (box: string, login: string) => {
      const imap = new ImapFlow({ host: '127.0.0.1', port: imaps, secure: true, tls: { ca: ca(), servername: 'localhost' }, auth: { user: box, pass: logins()[login] }, logger: false });
      await imap.connect();
      try {
        await imap.mailboxOpen('INBOX');
        const out: string[] = [];
        for await (const m of imap.fetch('1:*', { source: true })) out.push(m.source!.toString());
        return out.join('\n');
      } finally {
        await imap.logout();
      }
    };
    return { p, send, webmailRead, imapSources };
  }

  const paulTmp = join(dataDir, 'mail', DOMAIN, 'paul.bernard', 'Maildir', 'tmp');
  /** Paul's directories made here belong to whoever Dovecot runs as (the mail root's owner: another user when the tests run as root). */
  const ownedByDovecot = () => {
    const { uid, gid } = statSync(join(dataDir, 'mail'));
    for (const d of [join(dataDir, 'mail', DOMAIN, 'paul.bernard'), join(dataDir, 'mail', DOMAIN, 'paul.bernard', 'Maildir'), paulTmp]) chownSync(d, uid, gid);
  };

  async function stop(p: Started) {
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
  }

  /** The spool rows still waiting, read from the stopped platform's database. */
  async function waitingRows() {
    const db = await openDb(loadConfig({ env: { MSS_DATA_DIR: dataDir } }));
    try {
      return (await db.query<{ id: number; local_rcpts: string[]; body: Buffer; body_key: string | null }>("SELECT id, local_rcpts, body, body_key FROM smtp_spool WHERE state = 'queued'")).rows;
    } finally {
      await db.close();
    }
  }

  /** The stopped platform's waiting spool rows made due at once. */
  async function retryNow() {
    const db = await openDb(loadConfig({ env: { MSS_DATA_DIR: dataDir } }));
    try {
      const r = await db.query("UPDATE smtp_spool SET next_attempt_at = now() WHERE state = 'queued'");
      expect(r.rowCount).toBe(1);
    } finally {
      await db.close();
    }
  }

  const m1 = marker(1);
  const m2 = marker(2);
  const m3 = marker(3);
  const m4 = marker(4);

  it('a delivered message and one deferred in the spool are nowhere in clear on disk, yet IMAP and the webmail read the delivered one', async () => {
    const s = await platform();
    // Paul's box cannot take mail for now (its Maildir's tmp/ is read-only): Dovecot answers
    // 4xx and the message stays in the spool, deferred.
    mkdirSync(paulTmp, { recursive: true });
    ownedByDovecot();
    chmodSync(paulTmp, 0o500);
    try {
      await s.send(JEANNE, m1);
      await s.send(PAUL, m2);
      expect(await s.webmailRead(m1)).toContain(m1);
      expect(await s.imapSources(JEANNE, 'jeanne.martin')).toContain(m1);
      // The platform logs as JSON lines on stdout.
      await until(async () => s.p.stdout().split('\n').some((l) => l.includes('local delivery deferred') && l.includes(PAUL)));
    } finally {
      await stop(s.p);
    }
    // Stopped: PGlite has written everything to its files (a checkpoint at close).
    const deferred = (await waitingRows()).filter((r) => r.local_rcpts.includes(PAUL));
    expect(deferred).toHaveLength(1);
    expect(deferred[0].body_key).toBe('k1');
    for (const m of [m1, m2]) expect(filesHolding(dataDir, m), m).toEqual([]);
    // The grep does read the database's files: the deferred row's recipient is there in clear.
    expect(filesHolding(join(dataDir, 'db'), PAUL).length).toBeGreaterThan(0);
    // Nor is the body in the keys' directory in any other form: the mail file is mail_crypt's.
    const mailFiles = execFileSync('find', [join(dataDir, 'mail', DOMAIN, 'jeanne.martin', 'Maildir'), '-path', '*/cur/*', '-o', '-path', '*/new/*'], { encoding: 'utf8' }).split('\n').filter((f) => f && existsSync(f) && !f.endsWith('/cur') && !f.endsWith('/new'));
    expect(mailFiles.length).toBeGreaterThan(0);
    for (const f of mailFiles) expect(readFileSync(f).subarray(0, 8).toString('latin1')).toMatch(/^CRYPTED/);
  });

  it('mss crypt rotate: new mail uses the new key, mail and spool rows of before stay readable, --reseal re-encrypts what waits', async () => {
    expect(runMss(['crypt', 'rotate', '--help']).stdout).toContain('--reseal');
    const r = runMss(['crypt', 'rotate', '--reseal', '--data-dir', dataDir]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('new key generation k2 (was k1)');
    expect(r.stdout).toContain('smtp_spool: 1 waiting bodies re-encrypted with k2');
    expect((await waitingRows()).map((w) => w.body_key)).toEqual(['k2']);
    expect(runMss(['crypt', 'status', '--data-dir', dataDir]).stdout).toContain('2 generation(s) k1, k2; current k2');

    // Paul's box takes mail again: the deferred message, sealed with k2, is delivered. Its
    // retry is made due now rather than waited for (a minute's back-off): the test is about
    // the resealed body, not the back-off.
    chmodSync(paulTmp, 0o700);
    await retryNow();
    const s = await platform();
    try {
      await s.send(JEANNE, m3);
      expect(await s.webmailRead(m3)).toContain(m3);
      expect(await s.webmailRead(m1)).toContain(m1);
      const imap = await s.imapSources(JEANNE, 'jeanne.martin');
      expect(imap).toContain(m1);
      expect(imap).toContain(m3);
      // Paul's own login reads the deferred message once the retry (1 min back-off) delivered it.
      await until(async () => (await s.imapSources(PAUL, 'paul.bernard').catch(() => '')).includes(m2), 1000);
    } finally {
      await stop(s.p);
    }
    for (const m of [m1, m2, m3]) expect(filesHolding(dataDir, m), m).toEqual([]);
    expect(await waitingRows()).toEqual([]);
  });

  it('with encryption turned off, new mail is stored in clear (the grep finds it) and the encrypted mail stays readable', async () => {
    const s = await platform({ MSS_CRYPT_MAIL_STORE: 'false', MSS_CRYPT_SPOOL: 'false' });
    try {
      await s.send(JEANNE, m4);
      expect(await s.webmailRead(m4)).toContain(m4);
      const imap = await s.imapSources(JEANNE, 'jeanne.martin');
      for (const m of [m1, m3, m4]) expect(imap).toContain(m);
    } finally {
      await stop(s.p);
    }
    expect(filesHolding(join(dataDir, 'mail'), m4).length).toBeGreaterThan(0);
    for (const m of [m1, m2, m3]) expect(filesHolding(dataDir, m), m).toEqual([]);
  });

  // The store here holds mail from while encryption was on and from after it was turned
  // off (the test before): doveadm copies with mail_crypt loaded (an encrypted file copied
  // without it fails dsync's size check): what was encrypted stays so in the set and in the
  // restored store, and reads there with the restored keys.
  it('a backup of the encrypted store restores into a new data directory: the mail files travel encrypted and read there with the restored keys', async () => {
    // Dovecot (another user when the tests run as root) writes into the set and the new store: their parents must be traversable.
    const parent = (prefix: string) => {
      const d = mkdtempSync(join(tmpdir(), prefix));
      chmodSync(d, 0o711);
      return d;
    };
    const set = join(parent('mss-crypt-set-'), 'set');
    const b = await runMssAsync(['backup', '--data-dir', dataDir, set]);
    expect(b.code, b.stderr).toBe(0);
    const restored = join(parent('mss-crypt-restored-'), 'data');
    // Restored with encryption off in this configuration: what was encrypted stays so all the same.
    const r = await runMssAsync(['restore', '--data-dir', restored, set]);
    expect(r.code, r.stderr).toBe(0);
    // Neither the set nor the new store holds in clear any of the messages stored encrypted.
    for (const m of [m1, m2, m3]) {
      expect(filesHolding(set, m), m).toEqual([]);
      expect(filesHolding(restored, m), m).toEqual([]);
    }
    const s = await platform({}, restored);
    try {
      const imap = await s.imapSources(JEANNE, 'jeanne.martin');
      for (const m of [m1, m3, m4]) expect(imap).toContain(m);
      expect(await s.imapSources(PAUL, 'paul.bernard')).toContain(m2);
      expect(await s.webmailRead(m1)).toContain(m1);
    } finally {
      await stop(s.p);
    }
  });
});
