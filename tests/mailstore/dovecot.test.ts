import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import pino from 'pino';
import { silentLogger, type Logger } from '../../core/logger.js';
import { Supervisor } from '../../core/supervisor.js';
import { dovecotConfig } from '../../mailstore/dovecot-config.js';
import { startMailstore, type Mailstore } from '../../mailstore/dovecot.js';
import { deliverLmtp } from '../../mailstore/lmtp.js';
import { until } from '../helpers/operator.js';

const msg = (subject: string, body = 'Résultat: normal.') =>
  Buffer.from(`From: labo@peer.mssante.fr\r\nTo: dr.martin@mssante.localhost\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@peer>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`);

async function imapAs(store: Mailstore, bal: string, password = store.master.password) {
  const client = new ImapFlow({
    host: store.imap.host,
    port: store.imap.port,
    secure: false,
    auth: { user: `${bal}${store.master.separator}${store.master.user}`, pass: password },
    logger: false,
  });
  await client.connect();
  return client;
}

describe('mail store (Dovecot, unprivileged, supervised)', () => {
  let supervisor: Supervisor;
  let store: Mailstore;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-ms-'));
    const config = loadConfig({ env: {}, overrides: { dataDir } });
    supervisor = new Supervisor(silentLogger);
    store = await startMailstore(config, silentLogger, supervisor);
  });
  afterAll(async () => {
    await supervisor?.stopAll();
  });

  it('delivers over LMTP per recipient and the mail is readable over IMAP as that BAL', async () => {
    const r = await deliverLmtp(store.lmtp, { from: 'labo@peer.mssante.fr', to: ['dr.martin@mssante.localhost', 'secretariat.cardio@mssante.localhost'] }, msg('Bilan sanguin'));
    expect(r).toEqual({ accepted: ['dr.martin@mssante.localhost', 'secretariat.cardio@mssante.localhost'], failed: [] });
    const client = await imapAs(store, 'dr.martin@mssante.localhost');
    try {
      const lock = await client.getMailboxLock('INBOX');
      try {
        const m = await client.fetchOne('*', { source: true, envelope: true });
        expect(m && m.envelope?.subject).toBe('Bilan sanguin');
        expect(m && m.source?.toString()).toContain('Résultat: normal.');
      } finally {
        lock.release();
      }
      const boxes = (await client.list()).map((b) => b.path).sort();
      expect(boxes).toEqual(['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
    } finally {
      await client.logout();
    }
  });

  it('indexes delivered mail for full-text search as it arrives; SEARCH BODY finds a message by a word of its body', async () => {
    const bal = 'dr.pneumo@mssante.localhost';
    await deliverLmtp(store.lmtp, { from: 'labo@peer.mssante.fr', to: [bal] }, msg('Culture bactérienne', 'Présence de pneumocoque.'));
    await deliverLmtp(store.lmtp, { from: 'labo@peer.mssante.fr', to: [bal] }, msg('Culture de contrôle', 'Culture stérile.'));
    // The indexer writes the box's Xapian index after delivery, before anyone searches.
    const index = join(store.mailDir, 'mssante.localhost', 'dr.pneumo', 'Maildir', 'xapian-indexes');
    await until(async () => existsSync(index) && readdirSync(index).some((d) => d.startsWith('db_') && readdirSync(join(index, d)).some((f) => f.startsWith('postlist'))));
    const client = await imapAs(store, bal);
    try {
      await client.mailboxOpen('INBOX', { readOnly: true });
      expect(await client.search({ body: 'pneumocoque' })).toEqual([1]);
      expect(await client.search({ text: 'stérile' })).toEqual([2]);
      expect(await client.search({ body: 'streptocoque' })).toEqual([]);
    } finally {
      await client.logout();
    }
  });

  it('refuses logins without the master secret', async () => {
    await expect(imapAs(store, 'dr.martin@mssante.localhost', 'wrong')).rejects.toThrow();
    const direct = new ImapFlow({ host: store.imap.host, port: store.imap.port, secure: false, auth: { user: 'dr.martin@mssante.localhost', pass: store.master.password }, logger: false });
    await expect(direct.connect()).rejects.toThrow();
  });

  it('is restarted after a crash, with the mail intact', async () => {
    const pid = supervisor.status('dovecot')[0].pid!;
    process.kill(pid, 'SIGKILL');
    // Wait until the supervisor has a new, healthy Dovecot (the test's timeout bounds this).
    for (;;) {
      const s = supervisor.status('dovecot')[0];
      if (s.state === 'running' && s.pid !== pid) {
        try {
          await store.health.check();
          break;
        } catch {
          /* still starting */
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(supervisor.status('dovecot')[0].restarts).toBe(1);
    const client = await imapAs(store, 'secretariat.cardio@mssante.localhost');
    try {
      const status = await client.status('INBOX', { messages: true });
      expect(status && status.messages).toBe(1);
    } finally {
      await client.logout();
    }
  });
});

describe('mail store without the full-text search plugin', () => {
  let supervisor: Supervisor;
  let store: Mailstore;
  const warnings: string[] = [];

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-ms-'));
    // A plugin directory without fts-xapian: what a machine without the Debian package has.
    const config = loadConfig({ env: {}, overrides: { dataDir, mailstore: { pluginDir: mkdtempSync(join(tmpdir(), 'mss-noplugin-')) } } });
    const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }) as unknown as Logger;
    supervisor = new Supervisor(silentLogger);
    store = await startMailstore(config, log, supervisor);
  });
  afterAll(async () => {
    await supervisor?.stopAll();
  });

  it('warns at start, runs without the index, and still finds a message by its body (by scanning)', async () => {
    expect(warnings.join('\n')).toMatch(/full-text search plugin is not installed.*apt-get install dovecot-fts-xapian/);
    const bal = 'dr.scan@mssante.localhost';
    await deliverLmtp(store.lmtp, { from: 'labo@peer.mssante.fr', to: [bal] }, msg('Culture bactérienne', 'Présence de pneumocoque.'));
    const client = await imapAs(store, bal);
    try {
      await client.mailboxOpen('INBOX', { readOnly: true });
      expect(await client.search({ body: 'pneumocoque' })).toEqual([1]);
    } finally {
      await client.logout();
    }
    expect(existsSync(join(store.mailDir, 'mssante.localhost', 'dr.scan', 'Maildir', 'xapian-indexes'))).toBe(false);
  });
});

describe('generated Dovecot configuration', () => {
  const params = {
    baseDir: '/run/x',
    stateDir: '/s',
    mailDir: '/m',
    user: 'mssante',
    group: 'mssante',
    imapPort: 1143,
    lmtpPort: 1024,
    masterUsersFile: '/c/master-users',
    unusablePassword: 'abc',
    hibernateTimeoutSec: 30,
    maxSessions: 12000,
    maxUserIpConnections: 200,
    postmaster: 'postmaster@d',
    hostname: 'h',
    maxMailSize: 25_000_000,
    fts: true,
  };
  it('listens on loopback only, with the master user and hibernation', () => {
    const c = dovecotConfig(params);
    expect(c).toMatch(/^listen = 127\.0\.0\.1$/m);
    expect(c).toMatch(/master = yes/);
    expect(c).toMatch(/^imap_hibernate_timeout = 30s$/m);
    expect(c.match(/chroot =\n/g)).toHaveLength(2);
    // A message is bounded however it arrives (IMAP APPEND too), not only over SMTP.
    expect(c).toMatch(/^  quota_max_mail_size = 25000000$/m);
  });
  it('loads the full-text index (fts-xapian, indexing on save) only when asked', () => {
    const c = dovecotConfig(params);
    expect(c).toMatch(/^mail_plugins = \$mail_plugins quota fts fts_xapian$/m);
    expect(c).toMatch(/^  fts = xapian$/m);
    expect(c).toMatch(/^  fts_autoindex = yes$/m);
    const off = dovecotConfig({ ...params, fts: false });
    expect(off).toMatch(/^mail_plugins = \$mail_plugins quota$/m);
    expect(off).not.toMatch(/\bfts/);
  });
  it('encrypts with mail_crypt’s global keys: the current public key, every private key, passwords only from the environment', () => {
    const key = (id: string) => ({ publicPemFile: `/k/dovecot-${id}.pub.pem`, privatePemFile: `/k/dovecot-${id}.key.pem`, passwordEnv: `MSS_MAIL_CRYPT_PASSWORD_${id.toUpperCase()}` });
    const c = dovecotConfig({ ...params, fts: false, mailCrypt: { keys: [key('k2'), key('k1')], encrypt: true } });
    expect(c).toMatch(/^mail_plugins = \$mail_plugins quota mail_crypt$/m);
    expect(c).toMatch(/^  mail_crypt_save_version = 2$/m);
    expect(c).toMatch(/^  mail_crypt_global_public_key = <\/k\/dovecot-k2\.pub\.pem$/m);
    // The private keys only where mail is read: LMTP saves with the public key alone.
    const privateKeys =
      '  plugin {\n    mail_crypt_global_private_key = </k/dovecot-k2.key.pem\n    mail_crypt_global_private_key_password = %{env:MSS_MAIL_CRYPT_PASSWORD_K2}\n' +
      '    mail_crypt_global_private_key2 = </k/dovecot-k1.key.pem\n    mail_crypt_global_private_key2_password = %{env:MSS_MAIL_CRYPT_PASSWORD_K1}\n  }\n';
    for (const p of ['imap', 'doveadm', 'indexer-worker']) expect(c).toContain(`\nprotocol ${p} {\n${privateKeys}}\n`);
    expect(c.match(/private_key/g)).toHaveLength(12);
    expect(/^protocol lmtp \{\n[^}]*\}/m.exec(c)![0]).not.toContain('mail_crypt');
    expect(c).toMatch(/^import_environment = TZ CORE_OUTOFMEM CORE_ERROR LISTEN_PID LISTEN_FDS MSS_MAIL_CRYPT_PASSWORD_K2 MSS_MAIL_CRYPT_PASSWORD_K1$/m);
    // Turned off: new mail in clear (save_version 0), what was encrypted still read.
    expect(dovecotConfig({ ...params, fts: false, mailCrypt: { keys: [key('k1')], encrypt: false } })).toMatch(/^  mail_crypt_save_version = 0$/m);
    expect(dovecotConfig(params)).not.toMatch(/mail_crypt|import_environment/);
  });
  it('refuses values that would change the configuration’s meaning', () => {
    expect(() => dovecotConfig({ ...params, mailDir: '/m }\npassdb {' })).toThrow(/unsafe value/);
  });
});
