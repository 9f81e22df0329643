// A node's Dovecot follows the database's keyring (issues 16 and 17): after `mss crypt
// rotate` on another node, it restarts with the new key pair within crypt.keyringPoll — new
// mail is encrypted to the new public key, mail of before stays readable — with nothing
// copied between the nodes' data directories and no restart of the platform.
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { expect, it } from 'vitest';
import { loadConfig } from '../../core/config/index.js';
import { Keyring } from '../../core/crypt/index.js';
import { migrate, openPg } from '../../core/db/index.js';
import { silentLogger } from '../../core/logger.js';
import { Supervisor } from '../../core/supervisor.js';
import { startMailstore } from '../../mailstore/dovecot.js';
import { followKeyring } from '../../mailstore/keyring.js';
import { deliverLmtp } from '../../mailstore/lmtp.js';
import { poll } from '../helpers/nodes.js';
import { testPostgres } from '../helpers/pg-cluster.js';

const BAL = 'dr.rotation@mssante.localhost';
const msg = (marker: string) => Buffer.from(`From: labo@peer.mssante.fr\r\nTo: ${BAL}\r\nSubject: ${marker}\r\nMessage-ID: <${marker}@peer>\r\n\r\n${marker}\r\n`);
/** The id mail_crypt writes into each file it encrypts: SHA-256 of the public key (SubjectPublicKeyInfo, DER). */
const keyId = (pem: string) => createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest();

it("a rotation on another node restarts this node's Dovecot with the new key pair: new mail is encrypted to it, older mail stays readable", async () => {
  const server = await testPostgres();
  const dbA = await openPg({ url: server.url, poolSize: 2 });
  await migrate(dbA);
  const dbB = await openPg({ url: server.url, poolSize: 2 });
  const supervisor = new Supervisor(silentLogger);
  let unfollow: (() => void) | undefined;
  try {
    const masterKey = randomBytes(32).toString('hex');
    const a = await Keyring.open(dbA, mkdtempSync(join(tmpdir(), 'mss-rot-a-')), masterKey);
    const dataDir = mkdtempSync(join(tmpdir(), 'mss-rot-b-'));
    chmodSync(dataDir, 0o711);
    const b = await Keyring.open(dbB, dataDir, masterKey);
    const config = loadConfig({ env: {}, overrides: { dataDir, crypt: { mailStore: true } } });
    const store = await startMailstore(config, silentLogger, supervisor, { keyring: b });
    unfollow = followKeyring(b, dbB, 100, store, silentLogger);

    const [m1, m2] = [`AVANT${randomBytes(8).toString('hex')}`, `APRES${randomBytes(8).toString('hex')}`];
    expect(await deliverLmtp(store.lmtp, { from: 'labo@peer.mssante.fr', to: [BAL] }, msg(m1))).toEqual({ accepted: [BAL], failed: [] });
    const pid = supervisor.status('dovecot')[0].pid;
    await a.rotate();
    const conf = join(dataDir, 'dovecot', 'dovecot.conf');
    await poll('node B to restart its Dovecot with generation k2', async () => readFileSync(conf, 'utf8').includes('dovecot-k2.pub.pem') && supervisor.status('dovecot')[0].state === 'running' && supervisor.status('dovecot')[0].pid !== pid, {
      tries: 600,
      everyMs: 100,
      detail: async () => ({ ids: b.ids, status: supervisor.status('dovecot') }),
    });
    expect(await deliverLmtp(store.lmtp, { from: 'labo@peer.mssante.fr', to: [BAL] }, msg(m2))).toEqual({ accepted: [BAL], failed: [] });

    // Each file names the key it was encrypted to; neither holds its message in clear.
    const maildir = join(store.mailDir, 'mssante.localhost', 'dr.rotation', 'Maildir');
    const files = ['cur', 'new'].flatMap((d) => (existsSync(join(maildir, d)) ? readdirSync(join(maildir, d)).map((f) => readFileSync(join(maildir, d, f))) : []));
    expect(files.length).toBe(2);
    const [k1, k2] = ['k1', 'k2'].map((id) => keyId(readFileSync(join(dataDir, 'keys', `dovecot-${id}.pub.pem`), 'utf8')));
    expect(files.map((f) => [f.includes(m1) || f.includes(m2), f.includes(k1), f.includes(k2)]).sort()).toEqual([
      [false, false, true],
      [false, true, false],
    ]);
    // Both read back over IMAP: the restarted Dovecot holds every private key.
    const client = new ImapFlow({ host: store.imap.host, port: store.imap.port, secure: false, auth: { user: `${BAL}${store.master.separator}${store.master.user}`, pass: store.master.password }, logger: false });
    await client.connect();
    try {
      await client.mailboxOpen('INBOX', { readOnly: true });
      const sources: string[] = [];
      for await (const m of client.fetch('1:*', { source: true })) sources.push(m.source!.toString());
      expect(sources.map((s) => [s.includes(m1), s.includes(m2)])).toEqual([
        [true, false],
        [false, true],
      ]);
    } finally {
      await client.logout();
    }
  } finally {
    unfollow?.();
    await supervisor.stopAll();
    await dbA.close();
    await dbB.close();
    await server.drop();
  }
});
