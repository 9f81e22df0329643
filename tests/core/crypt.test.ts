import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../core/crypt/keyring.js';
import { spoolCipher } from '../../core/crypt/index.js';
import { resealBodies } from '../../smtp/body-cipher.js';
import { enqueueOutbound } from '../../smtp/outbound.js';
import { claimDue, readSpoolBody, spoolMessages } from '../../smtp/spool.js';
import { dbTargets } from '../helpers/db.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'mss-keyring-'));
const cipherOf = (ring: Keyring) => spoolCipher(ring, true)!;

describe('the keyring (core/crypt/keyring.ts)', () => {
  it('a first open makes a development master key and a first generation, all 0600; a reopen reads the same keys', () => {
    const dir = tmp();
    const ring = Keyring.open(dir, undefined);
    expect(ring.ids).toEqual(['k1']);
    for (const f of ['master.key', 'keyring.json', 'dovecot-k1.pub.pem', 'dovecot-k1.key.pem']) expect(statSync(join(dir, 'keys', f)).mode & 0o777, f).toBe(0o600);
    const sealed = ring.sealBody(Buffer.from('compte rendu'), 'smtp_spool:1');
    expect(Keyring.open(dir, undefined).openBody(sealed.key, sealed.data, 'smtp_spool:1').toString()).toBe('compte rendu');
    // The Dovecot private key is encrypted; the derived password opens it, nothing else does.
    const [k] = ring.dovecotKeys();
    const pem = readFileSync(k.privatePemFile, 'utf8');
    expect(pem).toContain('BEGIN ENCRYPTED PRIVATE KEY');
    expect(createPrivateKey({ key: pem, passphrase: k.password }).asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(() => createPrivateKey({ key: pem, passphrase: 'wrong' })).toThrow();
  });

  it('an operator key is used and never written; another key, or none, is refused with a clear error', () => {
    const dir = tmp();
    const key = randomBytes(32).toString('hex');
    Keyring.open(dir, key);
    expect(() => readFileSync(join(dir, 'keys', 'master.key'))).toThrow();
    expect(() => Keyring.open(dir, randomBytes(32).toString('hex'))).toThrow(/the master key does not open the keyring/);
    expect(() => Keyring.open(dir, undefined)).toThrow(/set MSS_CRYPT_MASTER_KEY/);
    expect(() => Keyring.open(dir, 'short')).toThrow(/not 32 bytes/);
    expect(Keyring.open(dir, Buffer.from(key, 'hex').toString('base64')).ids).toEqual(['k1']);
  });

  it('sealed bodies are bound to their row and refuse any change; rotation keeps the old generation readable', () => {
    const dir = tmp();
    const ring = Keyring.open(dir, undefined);
    const a = ring.sealBody(Buffer.from('résultat'), 'smtp_spool:7');
    expect(() => ring.openBody(a.key, a.data, 'smtp_spool:8')).toThrow(/does not open with key k1/);
    const flipped = Buffer.from(a.data);
    flipped[20] ^= 1;
    expect(() => ring.openBody(a.key, flipped, 'smtp_spool:7')).toThrow(/was changed/);
    expect(ring.rotate()).toBe('k2');
    const b = ring.sealBody(Buffer.from('suite'), 'smtp_spool:9');
    expect(b.key).toBe('k2');
    const again = Keyring.open(dir, undefined);
    expect(again.current).toBe('k2');
    expect(again.openBody(a.key, a.data, 'smtp_spool:7').toString()).toBe('résultat');
    expect(again.dovecotKeys().map((k) => k.id)).toEqual(['k2', 'k1']);
    expect(() => again.openBody('k9', a.data, 'smtp_spool:7')).toThrow(/key k9 .* is not in the keyring/);
    writeFileSync(join(dir, 'keys', 'keyring.json'), readFileSync(join(dir, 'keys', 'keyring.json'), 'utf8').replace(/"spool": "(.)/, (_, c) => `"spool": "${c === 'A' ? 'B' : 'A'}`));
    expect(() => Keyring.open(dir, undefined)).toThrow(/does not open the keyring/);
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
    const ring = Keyring.open(tmp(), undefined);
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

    const k2 = ring.rotate();
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
