import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../core/crypt/keyring.js';
import { spoolCipher } from '../../core/crypt/index.js';
import { resealBodies } from '../../smtp/body-cipher.js';
import { enqueueOutbound } from '../../smtp/outbound.js';
import { claimDue, readSpoolBody, spoolMessages } from '../../smtp/spool.js';
import { dbTargets, pgliteTarget } from '../helpers/db.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mss-keyring-'));
const cipherOf = (ring: Keyring) => spoolCipher(ring, true)!;

describe('the keyring (core/crypt/keyring.ts), on the embedded database', () => {
  const dbs: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of dbs.splice(0)) await d();
  });
  const database = async () => {
    const { db, dispose } = await pgliteTarget.open();
    dbs.push(dispose);
    return db;
  };

  it('a first open makes a development master key and a first generation in the database, the local copy all 0600; a reopen reads the same keys', async () => {
    const db = await database();
    const dir = tmp();
    const ring = await Keyring.open(db, dir, undefined);
    expect(ring.ids).toEqual(['k1']);
    for (const f of ['master.key', 'keyring.json', 'dovecot-k1.pub.pem', 'dovecot-k1.key.pem']) expect(statSync(join(dir, 'keys', f)).mode & 0o777, f).toBe(0o600);
    const row = (await db.query<{ id: string; current: boolean; spool_key: string; dovecot_public_pem: string; dovecot_private_pem: string }>('SELECT * FROM crypt_keyring')).rows;
    expect(row.map((r) => [r.id, r.current])).toEqual([['k1', true]]);
    // The database holds nothing usable without the master key: the private key encrypted, the spool key wrapped.
    expect(row[0].dovecot_private_pem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(row[0].dovecot_public_pem).toBe(readFileSync(join(dir, 'keys', 'dovecot-k1.pub.pem'), 'utf8'));
    expect(Buffer.from(row[0].spool_key, 'base64').length).toBe(12 + 32 + 16);
    const sealed = ring.sealBody(Buffer.from('compte rendu'), 'smtp_spool:1');
    expect((await Keyring.open(db, dir, undefined)).openBody(sealed.key, sealed.data, 'smtp_spool:1').toString()).toBe('compte rendu');
    expect(Keyring.openLocal(dir, undefined).openBody(sealed.key, sealed.data, 'smtp_spool:1').toString()).toBe('compte rendu');
    // The Dovecot private key is encrypted; the derived password opens it, nothing else does.
    const [k] = ring.dovecotKeys();
    const pem = readFileSync(k.privatePemFile, 'utf8');
    expect(pem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(createPrivateKey({ key: pem, passphrase: k.password }).asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(() => createPrivateKey({ key: pem, passphrase: 'wrong' })).toThrow();
    // Nothing to open without a start: `mss crypt status` on a database and data directory without a keyring.
    await expect(Keyring.open(await database(), tmp(), undefined, { create: false })).rejects.toThrow(/there is no keyring .* yet/);
  });

  it('an operator key is used and never written; another key, or none, is refused with a clear error', async () => {
    const db = await database();
    const dir = tmp();
    const key = randomBytes(32).toString('hex');
    await Keyring.open(db, dir, key);
    expect(() => readFileSync(join(dir, 'keys', 'master.key'))).toThrow();
    await expect(Keyring.open(db, dir, randomBytes(32).toString('hex'))).rejects.toMatchObject({ code: 'CRYPT_MASTER_KEY_WRONG', message: expect.stringMatching(/the master key does not open the keyring the crypt_keyring table of the database .*same crypt.masterKey/) });
    await expect(Keyring.open(db, dir, undefined)).rejects.toThrow(/set MSS_CRYPT_MASTER_KEY/);
    // Another node, its data directory empty: the database's keyring needs the key too.
    await expect(Keyring.open(db, tmp(), undefined)).rejects.toThrow(/set MSS_CRYPT_MASTER_KEY/);
    await expect(Keyring.open(db, dir, 'short')).rejects.toThrow(/not 32 bytes/);
    expect((await Keyring.open(db, dir, Buffer.from(key, 'hex').toString('base64'))).ids).toEqual(['k1']);
    expect(() => Keyring.openLocal(dir, randomBytes(32).toString('hex'))).toThrow(/does not open the keyring/);
  });

  it('an install whose keyring was only local uploads it on its first start on the database; a local keyring the database does not hold is refused', async () => {
    const dir = tmp();
    const before = await Keyring.open(await database(), dir, undefined);
    await before.rotate();
    const sealed = before.sealBody(Buffer.from('gardé'), 'smtp_spool:3');
    const pub = readFileSync(join(dir, 'keys', 'dovecot-k2.pub.pem'), 'utf8');
    // A database without a keyring (as after the upgrade that brought migration 0730): the local one goes in, as it was.
    const db = await database();
    const up = await Keyring.open(db, dir, undefined);
    expect([up.ids, up.current]).toEqual([['k1', 'k2'], 'k2']);
    expect(up.openBody(sealed.key, sealed.data, 'smtp_spool:3').toString()).toBe('gardé');
    expect((await db.query<{ id: string; current: boolean; dovecot_public_pem: string }>('SELECT id, current, dovecot_public_pem FROM crypt_keyring ORDER BY id')).rows).toEqual([
      { id: 'k1', current: false, dovecot_public_pem: expect.stringContaining('BEGIN PUBLIC KEY') },
      { id: 'k2', current: true, dovecot_public_pem: pub },
    ]);
    // This data directory's keys are not those of a database with a keyring of its own: refused, its files kept.
    const other = await database();
    await Keyring.open(other, tmp(), readFileSync(join(dir, 'keys', 'master.key'), 'utf8'));
    await expect(Keyring.open(other, dir, undefined)).rejects.toMatchObject({ code: 'CRYPT_KEYRING_CONFLICT' });
    expect(readFileSync(join(dir, 'keys', 'dovecot-k2.pub.pem'), 'utf8')).toBe(pub);
  });

  it('sealed bodies are bound to their row and refuse any change; rotation keeps the old generation readable', async () => {
    const db = await database();
    const dir = tmp();
    const ring = await Keyring.open(db, dir, undefined);
    const a = ring.sealBody(Buffer.from('résultat'), 'smtp_spool:7');
    expect(() => ring.openBody(a.key, a.data, 'smtp_spool:8')).toThrow(/does not open with key k1/);
    const flipped = Buffer.from(a.data);
    flipped[20] ^= 1;
    expect(() => ring.openBody(a.key, flipped, 'smtp_spool:7')).toThrow(/was changed/);
    expect(await ring.rotate()).toBe('k2');
    const b = ring.sealBody(Buffer.from('suite'), 'smtp_spool:9');
    expect(b.key).toBe('k2');
    const again = await Keyring.open(db, dir, undefined);
    expect(again.current).toBe('k2');
    expect(again.openBody(a.key, a.data, 'smtp_spool:7').toString()).toBe('résultat');
    expect(again.dovecotKeys().map((k) => k.id)).toEqual(['k2', 'k1']);
    expect(() => again.openBody('k9', a.data, 'smtp_spool:7')).toThrow(/key k9 .* is not in the keyring/);
    await expect(again.openBodyFresh('k9', a.data, 'smtp_spool:7')).rejects.toThrow(/key k9 .* is not in the keyring/);
    await db.query("UPDATE crypt_keyring SET spool_key = overlay(spool_key placing (CASE WHEN substr(spool_key, 1, 1) = 'A' THEN 'B' ELSE 'A' END) from 1 for 1) WHERE id = 'k1'");
    await expect(Keyring.open(db, dir, undefined)).rejects.toThrow(/does not open the keyring/);
  });
});

describe.each(dbTargets())('sealed spool and outbound bodies on $name', (target) => {
  let dispose: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await dispose?.();
    dispose = undefined;
  });

  it('stores no body in clear, delivers it back, reads rows stored in clear before, and --reseal moves every waiting body to the new key', async () => {
    const { db, dispose: d } = await target.open();
    dispose = d;
    const ring = await Keyring.open(db, tmp(), undefined);
    const marker = `MARQUEUR-${randomBytes(8).toString('hex')}`;
    const body = Buffer.from(`Subject: x\r\n\r\n${marker}\r\n`);
    const rec = { front: 'mx' as const, envFrom: 'a@peer.fr', localRcpts: ['b@mssante.localhost'], body, peer: {} };
    const [clearId] = await spoolMessages(db, [rec]);
    const [sealedId, sealedId2] = await spoolMessages(db, [rec, rec], cipherOf(ring));
    const [outId] = await db.transaction((tx) => enqueueOutbound(tx, { spoolId: sealedId, envFrom: 'a@mssante.localhost', rcpts: ['x@peer.fr'], body }, 60_000, cipherOf(ring)));
    const stored = (await db.query<{ id: string; body: Buffer; body_key: string | null }>('SELECT id, body, body_key FROM smtp_spool ORDER BY id')).rows;
    expect(stored.map((r) => [Number(r.id), r.body_key, r.body.includes(marker)])).toEqual([
      [clearId, null, true],
      [sealedId, 'k1', false],
      [sealedId2, 'k1', false],
    ]);
    const out = (await db.query<{ body: Buffer; body_key: string }>('SELECT body, body_key FROM smtp_outbound WHERE id = $1', [outId])).rows[0];
    expect([out.body_key, out.body.includes(marker)]).toEqual(['k1', false]);
    // Delivery reads each back in clear, the old clear row too.
    const claimed = await claimDue(db, 10, 'w', cipherOf(ring));
    expect(claimed.map((r) => r.body!.toString())).toEqual([body.toString(), body.toString(), body.toString()]);
    expect((await readSpoolBody(db, sealedId, cipherOf(ring)))!.toString()).toBe(body.toString());
    // Without the keyring a sealed row cannot be read (and says why).
    await expect(readSpoolBody(db, sealedId, undefined)).rejects.toThrow(/key k1 that sealed smtp_spool:\d+ is not in the keyring/);
    // A sealed body moved onto another row does not open.
    await db.query('UPDATE smtp_spool SET body = (SELECT body FROM smtp_spool WHERE id = $1), body_key = $3 WHERE id = $2', [sealedId, sealedId2, 'k1']);
    await expect(readSpoolBody(db, sealedId2, cipherOf(ring))).rejects.toThrow(/smtp_spool:\d+ does not open with key k1/);
    await db.query('UPDATE smtp_spool SET body = NULL WHERE id = $1', [sealedId2]);

    const k2 = await ring.rotate();
    expect(await resealBodies(db, cipherOf(ring), k2)).toEqual([
      { table: 'smtp_spool', count: 2 },
      { table: 'smtp_outbound', count: 1 },
    ]);
    const after = (await db.query<{ body: Buffer; body_key: string }>('SELECT body, body_key FROM smtp_spool WHERE body IS NOT NULL ORDER BY id')).rows;
    expect(after.map((r) => [r.body_key, r.body.includes(marker)])).toEqual([
      ['k2', false],
      ['k2', false],
    ]);
    expect((await readSpoolBody(db, clearId, cipherOf(ring)))!.toString()).toBe(body.toString());
    expect(await resealBodies(db, cipherOf(ring), k2)).toEqual([
      { table: 'smtp_spool', count: 0 },
      { table: 'smtp_outbound', count: 0 },
    ]);
  });
});
