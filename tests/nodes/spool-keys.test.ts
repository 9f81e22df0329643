// A node that claims a spooled message whose body it cannot open (sealed under spool keys
// it does not hold: a keyring of another database, e.g. a spool row copied from elsewhere —
// nodes of one database share its keyring, tests/nodes/keyring.test.ts) must
// let go of it with the reason, not keep it leased. tests/nodes/nodes.test.ts hung on
// this: after kill -9 of front A, front B claimed A's row, could not open it and held the
// lease for as long as B lived, so no node ever delivered it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Keyring } from '../../core/crypt/keyring.js';
import type { Queryable } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { silentLogger } from '../../core/logger.js';
import { spoolCipher } from '../../core/crypt/index.js';
import { DeliveryWorker } from '../../smtp/delivery.js';
import { spoolMessages } from '../../smtp/spool.js';
import { dbTargets, pgliteTarget } from '../helpers/db.js';
import { poll } from '../helpers/nodes.js';

const cipherOf = (ring: Keyring) => spoolCipher(ring, true)!;
const ring = (db: Queryable) => Keyring.open(db, mkdtempSync(join(tmpdir(), 'mss-spool-keys-')), undefined);

describe.each(dbTargets())('a spooled body this node cannot open, on $name', (target) => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  it('is deferred with the reason and its lease let go, for a node holding the key to take', async () => {
    const { db, dispose } = await target.open();
    // The keyring of another database: its k1 is not this database's k1.
    const elsewhere = await pgliteTarget.open();
    const foreign = await ring(elsewhere.db);
    await elsewhere.dispose();
    const body = Buffer.from('Subject: scellé ailleurs\r\n\r\nrésultat\r\n');
    const [id] = await spoolMessages(db, [{ front: 'mx', envFrom: 'labo@peer.fr', localRcpts: ['dr.x@mssante.localhost'], body, peer: {} }], cipherOf(foreign));
    // Another keyring: the body does not open here. No LMTP is reached (nothing listens on port 1).
    const worker = new DeliveryWorker(db, new Journal(db), silentLogger, { lmtp: { host: '127.0.0.1', port: 1 }, hostname: 'test', cipher: cipherOf(await ring(db)), pollMs: 100 });
    cleanup = async () => {
      await worker.stop();
      await dispose();
    };
    worker.start();
    const row = async () => (await db.query<{ state: string; leased_by: string | null; attempts: number; last_error: string | null; later: boolean }>('SELECT state, leased_by, attempts, last_error, next_attempt_at > now() AS later FROM smtp_spool WHERE id = $1', [id])).rows[0];
    await poll(`the worker to record its attempt at spool row ${id}`, async () => (await row()).last_error !== null, { tries: 300, everyMs: 100, detail: row });
    const r = await row();
    expect(r).toMatchObject({ state: 'queued', leased_by: null, attempts: 1, later: true });
    expect(r.last_error).toMatch(/not attempted: smtp_spool:\d+ does not open with key k1/);
    const events = await db.query<{ type: string }>("SELECT type FROM journal_events WHERE details->>'spool' = $1", [String(id)]);
    expect(events.rows.map((e) => e.type)).toEqual(['smtp.delivery.deferred']);
  });
});
