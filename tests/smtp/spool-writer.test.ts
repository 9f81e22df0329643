import { afterEach, describe, expect, it } from 'vitest';
import type { Db, Queryable, TransactionOptions } from '../../core/db/index.js';
import { MssError } from '../../core/errors.js';
import { Journal } from '../../core/journal/index.js';
import { GroupCommit } from '../../smtp/group-commit.js';
import { claimDue, registerWorker, retireWorker, WORKER_STALE_SECONDS, type SpoolRecord, type SpoolRow } from '../../smtp/spool.js';
import { SpoolWriter, type Accepted } from '../../smtp/spool-writer.js';
import { dbTargets } from '../helpers/db.js';

describe('GroupCommit', () => {
  it('writes what is submitted in the same tick as one batch, in order, and the next arrivals as the next batch', async () => {
    const batches: number[][] = [];
    let release: () => void = () => {};
    const gc = new GroupCommit<number, string>(
      async (items) => {
        batches.push(items);
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
        return items.map((i) => `#${i}`);
      },
      { maxItems: 100 },
    );
    const first = [1, 2, 3].map((i) => gc.submit(i));
    await new Promise((r) => setImmediate(r));
    // The first batch is being written: these wait for the next one.
    const second = [4, 5].map((i) => gc.submit(i));
    release();
    expect(await Promise.all([...first, ...second])).toEqual(['#1', '#2', '#3', '#4', '#5']);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  it('bounds a batch by items and by bytes (one oversized item still goes, alone)', async () => {
    const batches: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        batches.push(items);
        return items;
      },
      { maxItems: 3, maxBytes: 10, bytes: (i) => i },
    );
    await Promise.all([1, 1, 1, 1, 4, 4, 4, 50, 2].map((i) => gc.submit(i)));
    expect(batches).toEqual([[1, 1, 1], [1, 4, 4], [4], [50], [2]]);
  });

  it('lazy items wait for an urgent one (and go with it) or for drain; they never hold an urgent one back', async () => {
    const batches: string[][] = [];
    const gc = new GroupCommit<string, string>(
      async (items) => {
        batches.push(items);
        return items;
      },
      { maxItems: 100, lazyMs: 3_600_000 },
    );
    let settled = 0;
    const lazy = ['l1', 'l2'].map((i) => gc.submit(i, { lazy: true }).then((v) => (settled++, v)));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([]);
    expect(settled).toBe(0);
    expect(await gc.submit('u1')).toBe('u1');
    expect(await Promise.all(lazy)).toEqual(['l1', 'l2']);
    expect(batches).toEqual([['l1', 'l2', 'u1']]);
    const late = gc.submit('l3', { lazy: true });
    await gc.drain();
    expect(await late).toBe('l3');
    expect(batches).toEqual([['l1', 'l2', 'u1'], ['l3']]);
  });

  it('when a batch fails, tries each item alone: only the bad one is rejected', async () => {
    const writes: number[][] = [];
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        if (items.includes(13)) throw new Error('thirteen');
        return items.map((i) => i * 2);
      },
      { maxItems: 10 },
    );
    const results = await Promise.allSettled([12, 13, 14].map((i) => gc.submit(i)));
    expect(results).toEqual([
      { status: 'fulfilled', value: 24 },
      { status: 'rejected', reason: new Error('thirteen') },
      { status: 'fulfilled', value: 28 },
    ]);
    expect(writes).toEqual([[12, 13, 14], [12], [13], [14]]);
  });

  it('a batch that may have been saved (its COMMIT cut) is not written again item by item: every item hears the failure', async () => {
    const writes: number[][] = [];
    const cut = new MssError('DB_COMMIT_UNKNOWN', { target: 'db' });
    const gc = new GroupCommit<number, number>(
      async (items) => {
        writes.push(items);
        throw cut;
      },
      { maxItems: 10, retryAlone: (e) => e !== cut },
    );
    const results = await Promise.allSettled([1, 2, 3].map((i) => gc.submit(i)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(writes).toEqual([[1, 2, 3]]);
  });
});

const body = (i: number) => Buffer.from(`Received: test\r\nMessage-ID: <m${i}@peer.mssante.localhost>\r\nSubject: ${i}\r\n\r\n${'x'.repeat(i * 37)} \u00e9\r\n.\r\n`, 'latin1');
const record = (i: number): SpoolRecord => ({ front: 'mx', messageId: `<m${i}@peer.mssante.localhost>`, envFrom: `labo${i}@peer.mssante.localhost`, localRcpts: [`bal${i}@mssante.localhost`], body: body(i), peer: { n: i } });
const accepted = (i: number, r = record(i)): Accepted => ({
  record: r,
  remote: [],
  event: { type: 'smtp.received', actor: 'peer CN=peer.mssante.localhost', subject: r.messageId, details: { n: i } },
});

/** Counts the transactions the writer opens. */
function countingTransactions(db: Db) {
  const counter = { n: 0 };
  const transaction = db.transaction.bind(db);
  db.transaction = <T>(fn: (tx: Queryable) => Promise<T>, opts?: TransactionOptions) => {
    counter.n++;
    return transaction(fn, opts);
  };
  return counter;
}

describe.each(dbTargets())('SpoolWriter on $name', (target) => {
  let dispose: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await dispose?.();
    dispose = undefined;
  });
  /** A fresh database with its journal and a spool writer; disposed after the test. */
  const open = async () => {
    const opened = await target.open();
    dispose = opened.dispose;
    const { db } = opened;
    const journal = new Journal(db);
    return { db, journal, writer: new SpoolWriter(db, journal) };
  };

  it('stores messages arriving together in one transaction, each row with its own body and its own received event', async () => {
    const { db, journal, writer } = await open();
    const tx = countingTransactions(db);
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => writer.accept(accepted(i))));
    expect(tx.n).toBe(1);
    expect(new Set(ids).size).toBe(12);
    const { rows } = await db.query<{ id: number; env_from: string; body: Buffer; local_rcpts: string[]; state: string; peer: { n: number } }>('SELECT id, env_from, body, local_rcpts, state, peer FROM smtp_spool ORDER BY id');
    expect(rows).toHaveLength(12);
    for (let i = 0; i < 12; i++) {
      const row = rows.find((r) => r.id === ids[i])!;
      expect(row.env_from).toBe(`labo${i}@peer.mssante.localhost`);
      expect(row.peer.n).toBe(i);
      expect(row.state).toBe('queued');
      expect(row.local_rcpts).toEqual([`bal${i}@mssante.localhost`]);
      expect(Buffer.compare(row.body, body(i))).toBe(0);
    }
    const events = await journal.list({ type: 'smtp.received', limit: 100 });
    expect(events.map((e) => [e.subject, e.details.spool]).sort()).toEqual(ids.map((id, i) => [`<m${i}@peer.mssante.localhost>`, id]).sort());
    expect((await journal.verify()).ok).toBe(true);
  });

  it('a message the database refuses fails alone; the others arriving with it are stored', async () => {
    const { db, journal, writer } = await open();
    // front is NOT NULL: this row makes the batch's INSERT fail.
    const bad = accepted(2, { ...record(2), front: null as unknown as 'mx' });
    const results = await Promise.allSettled([accepted(1), bad, accepted(3)].map((a) => writer.accept(a)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const { rows } = await db.query<{ env_from: string }>('SELECT env_from FROM smtp_spool ORDER BY id');
    expect(rows.map((r) => r.env_from)).toEqual(['labo1@peer.mssante.localhost', 'labo3@peer.mssante.localhost']);
    expect((await journal.list({ type: 'smtp.received' })).map((e) => e.details.n).sort()).toEqual([1, 3]);
    expect((await journal.verify()).ok).toBe(true);
  });

  it('records outcomes finishing together in one statement: done rows drop their body, a deferred one keeps it and waits', async () => {
    const { db, journal, writer } = await open();
    const ids = await Promise.all([1, 2, 3].map((i) => writer.accept(accepted(i, { ...record(i), localRcpts: [`a${i}@mssante.localhost`, `b${i}@mssante.localhost`] }))));
    await registerWorker(db, 'w1', false);
    const claimed = await claimDue(db, 10, 'w1');
    expect(claimed.map((r) => r.id)).toEqual(ids);
    const row = (id: number) => claimed.find((r) => r.id === id) as SpoolRow;
    const tx = countingTransactions(db);
    await Promise.all([
      writer.record({ id: ids[0], row: row(ids[0]), state: 'done', backoffSeconds: 60, outcome: { delivered: ['a1@mssante.localhost', 'b1@mssante.localhost'], failed: [], retry: [] }, events: [{ type: 'smtp.delivered', actor: 'system', subject: 'one' }] }),
      writer.record({ id: ids[1], row: row(ids[1]), state: 'queued', backoffSeconds: 600, outcome: { delivered: ['a2@mssante.localhost'], failed: [], retry: ['b2@mssante.localhost'], error: '451 4.2.0 later' }, events: [{ type: 'smtp.delivery.deferred', actor: 'system', subject: 'two' }] }),
      writer.record({ id: ids[2], row: row(ids[2]), state: 'done', backoffSeconds: 60, outcome: { delivered: [], failed: [{ rcpt: 'a3@mssante.localhost', code: 550, response: '550 5.1.1 no' }], retry: [] }, events: [] }),
    ]);
    expect(tx.n).toBe(1);
    const { rows } = await db.query<{ id: number; state: string; local_rcpts: string[]; delivered_rcpts: string[]; failed_rcpts: unknown[]; has_body: boolean; waits: boolean; last_error: string | null }>(
      "SELECT id, state, local_rcpts, delivered_rcpts, failed_rcpts, body IS NOT NULL AS has_body, next_attempt_at > now() + interval '500 seconds' AS waits, last_error FROM smtp_spool ORDER BY id",
    );
    expect(rows).toEqual([
      { id: ids[0], state: 'done', local_rcpts: [], delivered_rcpts: ['a1@mssante.localhost', 'b1@mssante.localhost'], failed_rcpts: [], has_body: false, waits: false, last_error: null },
      { id: ids[1], state: 'queued', local_rcpts: ['b2@mssante.localhost'], delivered_rcpts: ['a2@mssante.localhost'], failed_rcpts: [], has_body: true, waits: true, last_error: '451 4.2.0 later' },
      { id: ids[2], state: 'done', local_rcpts: [], delivered_rcpts: [], failed_rcpts: [{ rcpt: 'a3@mssante.localhost', code: 550, response: '550 5.1.1 no' }], has_body: false, waits: false, last_error: null },
    ]);
    expect((await journal.list({ typePrefix: 'smtp.deliver' })).map((e) => e.subject).sort()).toEqual(['one', 'two']);
    // The deferred row is not due again before its back-off.
    expect(await claimDue(db, 10, 'w1')).toEqual([]);
  });

  it('a lease holds while its worker is alive, lapses when its heartbeat is stale, and is void at once when the database is exclusive', async () => {
    const { db, writer } = await open();
    const ids = await Promise.all([1, 2, 3].map((i) => writer.accept(accepted(i))));
    await registerWorker(db, 'a', false);
    await registerWorker(db, 'b', false);
    expect((await claimDue(db, 2, 'a')).map((r) => r.id)).toEqual(ids.slice(0, 2));
    // b sees only what a does not hold; a does not take its own rows twice.
    expect((await claimDue(db, 10, 'b')).map((r) => r.id)).toEqual([ids[2]]);
    expect(await claimDue(db, 10, 'a')).toEqual([]);
    // a stops refreshing (crashed): once its heartbeat is older than the limit, b takes over.
    await db.query(`UPDATE smtp_workers SET seen_at = now() - make_interval(secs => $2) WHERE id = $1`, ['a', WORKER_STALE_SECONDS + 1]);
    const taken = await claimDue(db, 10, 'b');
    expect(taken.map((r) => [r.id, r.attempts])).toEqual([
      [ids[0], 2],
      [ids[1], 2],
    ]);
    // A worker stopping cleanly frees what it held at once.
    await retireWorker(db, 'b');
    await registerWorker(db, 'c', false);
    expect((await claimDue(db, 10, 'c')).map((r) => r.id)).toEqual(ids);
    // On an exclusive database (PGlite), a new worker voids its predecessors' leases at once.
    await registerWorker(db, 'd', true);
    expect((await claimDue(db, 10, 'd')).map((r) => r.id)).toEqual(ids);
    expect((await db.query<{ id: string }>('SELECT id FROM smtp_workers')).rows).toEqual([{ id: 'd' }]);
  });
});
