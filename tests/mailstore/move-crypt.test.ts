// Moving a box to another pair with encryption at rest on (crypt.mailStore, issues 16 and 17):
// the four back ends' Dovecots run mail_crypt with the database's keyring, each node opening
// it with the master key they share. The doveadm servers decrypt what they read and encrypt
// what they save: the mail must reach the new pair whole — read back byte for byte — and
// encrypted, with nothing left on the old pair.
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openPg, type Db } from '../../core/db/index.js';
import type { Supervisor } from '../../core/supervisor.js';
import type { Mailstore } from '../../mailstore/dovecot.js';
import { moveAcrossPairs } from '../../mailstore/move.js';
import { boxPlacement } from '../../mailstore/placement.js';
import { poll } from '../helpers/nodes.js';
import { testPostgres } from '../helpers/pg-cluster.js';
import { testPki } from '../helpers/pki.js';
import { deliverThroughMap, inboxSources, messageFiles, sharedSecretFile, startTwoPairs, type StoreName } from '../helpers/store-nodes.js';

const SECRET = 'a-secret-every-node-of-the-store-shares';
const BAL = 'dr.chiffre@mssante.localhost';
const marker = (n: number) => `MARQUEUR${n}${randomBytes(12).toString('hex')}`;

/** Every regular file under dir (Dovecot's FIFOs and sockets left out; a file gone meanwhile too). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f, { throwIfNoEntry: false })?.isFile());
}
const read = (f: string) => (existsSync(f) ? readFileSync(f) : Buffer.alloc(0));
/** Files under dir that hold `needle`, as bytes (binary files included). */
const filesHolding = (dir: string, needle: string) => filesUnder(dir).filter((f) => read(f).includes(needle));
const mailFiles = (store: Mailstore) => messageFiles(store, BAL);

describe('moving a box to another pair with encryption at rest on', () => {
  let db: Db;
  let dispose: () => Promise<void>;
  const sups: Supervisor[] = [];
  let stores: Record<StoreName, Mailstore>;
  let front: Mailstore;
  let doveadm: string;
  let caFile: string;

  beforeAll(async () => {
    const pki = await testPki();
    const pg = await testPostgres();
    db = await openPg({ url: pg.url, poolSize: 4 });
    await migrate(db);
    dispose = async () => {
      await db.close();
      await pg.drop();
    };
    const started = await startTwoPairs(pki, sharedSecretFile(SECRET), db, sups, { masterKey: randomBytes(32).toString('hex') });
    ({ stores, front } = started);
    doveadm = started.config.mailstore.doveadm;
    caFile = started.config.tls.caFile;
  });
  afterAll(async () => {
    for (const s of sups) await s.stopAll();
    await dispose?.();
  });

  it('the mail reaches the new pair whole, each message once and byte for byte, stored encrypted there; none is left on the old pair', async () => {
    await db.query("INSERT INTO mailstore_placement (address, backend) VALUES ($1, 'store-a')", [BAL]);
    const [m1, m2, m3] = [marker(1), marker(2), marker(3)];
    // A scanned report attached: its base64 lines are text the disk must not show either.
    const attachment = randomBytes(6000).toString('base64').replace(/.{76}/g, '$&\r\n');
    const attachmentLine = attachment.slice(0, 76);
    const head = (n: number, extra = '') => `From: labo@peer.mssante.fr\r\nTo: ${BAL}\r\nSubject: Compte rendu ${n}\r\nMessage-ID: <crypt${n}@peer>\r\n${extra}`;
    const delivered = [
      Buffer.from(`${head(1)}\r\nRésultat : ${m1}\r\n`),
      Buffer.from(
        `${head(2, 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="sep"\r\n')}\r\n--sep\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCi-joint le scanner : ${m2}\r\n` +
          `--sep\r\nContent-Type: application/pdf; name="scanner.pdf"\r\nContent-Disposition: attachment; filename="scanner.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--sep--\r\n`,
      ),
      Buffer.from(`${head(3)}\r\nContrôle dans un mois : ${m3}\r\n`),
    ];
    const secrets = [m1, m2, m3, attachmentLine];
    for (const [i, m] of delivered.entries()) expect(await deliverThroughMap(front, BAL, `Compte rendu ${i + 1}`, m)).toBe(stores.a.lmtp.port);
    // The replicator's copy on store-b settled first: the move's cleanup is not to race it.
    await poll('the replica of the three messages on store-b', async () => mailFiles(stores.b).length === 3, { tries: 3000, everyMs: 100 });
    // Encrypted from the start: what the test looks for on the new pair holds on the old one.
    for (const s of [stores.a, stores.b]) for (const f of mailFiles(s)) expect(read(f).subarray(0, 8).toString('latin1')).toMatch(/^CRYPTED/);
    const onA = await inboxSources(front, BAL, stores.a.imap);
    // Each as delivered, after the trace lines Dovecot's LMTP puts first.
    expect(delivered.map((d) => onA.filter((s) => s.endsWith(d.toString('latin1'))).length)).toEqual([1, 1, 1]);

    const r = await moveAcrossPairs(db, BAL, 'store-c', { doveadm, sharedSecret: SECRET, caFile });
    expect(r).toEqual({ from: 'store-a', to: 'store-c', messages: 3, removedFrom: ['store-a', 'store-b'] });
    expect((await boxPlacement(db, BAL))!.backend).toBe('store-c');

    // The new pair: the target and its replica (the move synced it) read every message once, byte for byte.
    for (const s of [stores.c, stores.d]) expect(await inboxSources(front, BAL, s.imap)).toEqual(onA);
    for (const s of [stores.c, stores.d]) {
      const files = mailFiles(s);
      expect(files).toHaveLength(3);
      // mail_crypt's header on every message file; the check below does read them (it finds the header).
      for (const f of files) expect(read(f).subarray(0, 8).toString('latin1')).toMatch(/^CRYPTED/);
      const dataDir = dirname(s.mailDir);
      expect(filesHolding(dataDir, 'CRYPTED')).toEqual(expect.arrayContaining(files));
      // No message text in clear anywhere in the node's data directory (mail, indexes, Dovecot's state).
      for (const x of secrets) expect(filesHolding(dataDir, x), x).toEqual([]);
    }
    // The old pair: nothing over IMAP, no message file left.
    for (const s of [stores.a, stores.b]) {
      expect(await inboxSources(front, BAL, s.imap)).toEqual([]);
      expect(mailFiles(s)).toEqual([]);
    }
  });
});
