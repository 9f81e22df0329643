import { afterAll, beforeAll, expect, it } from 'vitest';
import { openPglite, type Db } from '../../core/db/index.js';

// core/db/pglite runs queries as named prepared statements (core/db/pglite-statements.ts):
// the results, errors and transactions must be those of PGlite's own query path.

let db: Db;
beforeAll(async () => {
  db = await openPglite();
});
afterAll(async () => {
  await db.close();
});

it('serialises values by the type the server inferred, and reads them back the same way', async () => {
  await db.exec('CREATE TABLE v (id int PRIMARY KEY, t text, a text[], j jsonb, b bytea, ts timestamptz, n int8, ok boolean)');
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const at = new Date('2026-02-03T04:05:06.789Z');
  await db.query('INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [1, 'é"\\', ['x', 'y,z', '"q"'], { k: [1, 'two'] }, bytes, at, 9007199254740991, true]);
  await db.query('INSERT INTO v VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [2, null, [], null, Buffer.alloc(0), null, null, false]);
  const { rows, rowCount } = await db.query('SELECT * FROM v ORDER BY id');
  expect(rowCount).toBe(2);
  expect(rows[0]).toEqual({ id: 1, t: 'é"\\', a: ['x', 'y,z', '"q"'], j: { k: [1, 'two'] }, b: bytes, ts: at, n: 9007199254740991, ok: true });
  expect(Buffer.isBuffer(rows[0].b)).toBe(true);
  expect(rows[1]).toEqual({ id: 2, t: null, a: [], j: null, b: Buffer.alloc(0), ts: null, n: null, ok: false });
  expect((await db.query('UPDATE v SET ok = NOT ok WHERE id > $1', [0])).rowCount).toBe(2);
  expect((await db.query('DELETE FROM v WHERE id = $1', [42])).rowCount).toBe(0);
});

it("reports the server's errors and keeps working after them", async () => {
  await db.exec('CREATE TABLE u (k text PRIMARY KEY)');
  await db.query('INSERT INTO u VALUES ($1)', ['a']);
  await expect(db.query('INSERT INTO u VALUES ($1)', ['a'])).rejects.toMatchObject({ code: '23505' });
  await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
  await expect(db.query('SELECT $1::int', ['nope'])).rejects.toMatchObject({ code: '22P02' });
  await db.query('INSERT INTO u VALUES ($1)', ['b']);
  expect((await db.query('SELECT k FROM u ORDER BY k')).rows).toEqual([{ k: 'a' }, { k: 'b' }]);
});

it('keeps transactions whole: a rolled-back transaction leaves nothing, statements prepared in it still work after', async () => {
  await db.exec('CREATE TABLE t (n int)');
  await expect(
    db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES ($1)', [1]);
      await tx.query('SELECT n * 2 AS d FROM t WHERE n = $1', [1]);
      throw new Error('abort');
    }),
  ).rejects.toThrow('abort');
  expect((await db.query('SELECT count(*)::int AS c FROM t')).rows).toEqual([{ c: 0 }]);
  await db.query('INSERT INTO t VALUES ($1)', [3]);
  expect((await db.query('SELECT n * 2 AS d FROM t WHERE n = $1', [3])).rows).toEqual([{ d: 6 }]);
  // A query outside waits for the transaction in progress instead of landing inside it.
  let release!: () => void;
  const inside = db.transaction(async (tx) => {
    await tx.query('INSERT INTO t VALUES ($1)', [4]);
    await new Promise<void>((r) => (release = r));
    throw new Error('roll back');
  });
  const outside = db.query('INSERT INTO t VALUES ($1)', [5]);
  await new Promise((r) => setTimeout(r, 20));
  release();
  await expect(inside).rejects.toThrow('roll back');
  await outside;
  expect((await db.query('SELECT n FROM t ORDER BY n')).rows).toEqual([{ n: 3 }, { n: 5 }]);
});

it('follows DDL: a statement whose table changed shape is prepared again', async () => {
  await db.exec('CREATE TABLE s (a int)');
  await db.query('INSERT INTO s VALUES ($1)', [1]);
  expect((await db.query('SELECT * FROM s')).rows).toEqual([{ a: 1 }]);
  await db.exec('ALTER TABLE s ADD COLUMN b text');
  expect((await db.query('SELECT * FROM s')).rows).toEqual([{ a: 1, b: null }]);
  // DDL through query() too (no invalidation hint): the server's "cached plan must not change result type" is handled.
  await db.query('ALTER TABLE s ADD COLUMN c int DEFAULT 7');
  expect((await db.query('SELECT * FROM s')).rows).toEqual([{ a: 1, b: null, c: 7 }]);
  // DDL the statement text does not show (inside a function): the server's error is the hint.
  await db.exec(`CREATE FUNCTION widen_s() RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE 'ALTER TABLE s ADD COLUMN d int DEFAULT 8'; END $$`);
  await db.query('SELECT widen_s()');
  expect((await db.query('SELECT * FROM s')).rows).toEqual([{ a: 1, b: null, c: 7, d: 8 }]);
  await db.query('DROP TABLE s');
  await db.query('CREATE TABLE s (z text)');
  await db.query('INSERT INTO s VALUES ($1)', ['again']);
  expect((await db.query('SELECT * FROM s')).rows).toEqual([{ z: 'again' }]);
});

it('stays right past the number of statements it keeps prepared', async () => {
  await db.exec('CREATE TABLE m (i int)');
  for (let i = 0; i < 1000; i++) await db.query(`INSERT INTO m SELECT $1::int + ${i}`, [i]);
  const { rows } = await db.query('SELECT count(*)::int AS c, sum(i)::int8 AS s FROM m');
  expect(rows).toEqual([{ c: 1000, s: 999000 }]);
  // The first ones were closed to make room; they are prepared again on demand.
  await db.query('INSERT INTO m SELECT $1::int + 0', [5]);
  expect((await db.query('SELECT max(i)::int AS x FROM m')).rows).toEqual([{ x: 1998 }]);
});
