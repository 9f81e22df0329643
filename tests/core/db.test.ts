import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../../core/config/index.js';
import { migrate, openDb, openPg, openPglite, openPgliteThread, type Db } from '../../core/db/index.js';
import { createLogger } from '../../core/logger.js';
import { loadMigrations } from '../../core/db/migrate.js';
import { MssError } from '../../core/errors.js';
import { dbTargets, type DbTarget } from '../helpers/db.js';
import { fromRoot } from '../../core/paths.js';

// PGlite on its own thread (the platform's default) answers to the same contract.
const pgliteThread: DbTarget & { label: string } = {
  name: 'pglite',
  label: 'pglite on its thread',
  async open(opts = {}) {
    const db = await openPgliteThread(undefined);
    if (opts.migrate !== false) await migrate(db);
    return { db, dispose: () => db.close() };
  },
};

describe.each([...dbTargets().map((t) => ({ ...t, label: t.name })), pgliteThread])('database on $label', (target) => {
  it('applies the migrations once and records them', async () => {
    const { db, dispose } = await target.open({ migrate: false });
    try {
      const first = await migrate(db);
      expect(first).toEqual(loadMigrations().map((m) => m.name));
      expect(await migrate(db)).toEqual([]);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM mss_migrations');
      expect(rows[0].n).toBe(first.length);
    } finally {
      await dispose();
    }
  });

  it('refuses a migration that changed after it was applied', async () => {
    const { db, dispose } = await target.open();
    try {
      const changed = loadMigrations().map((m, i) => (i === 0 ? { ...m, checksum: 'different' } : m));
      await expect(migrate(db, changed)).rejects.toThrow(/was changed after it was applied/);
    } finally {
      await dispose();
    }
  });

  it('commits a transaction and rolls it back on error', async () => {
    const { db, dispose } = await target.open();
    try {
      await db.exec('CREATE TABLE t (id int PRIMARY KEY, b bytea, n int8)');
      await db.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES ($1, $2, $3)', [1, Buffer.from('abc'), 9007199254740991]);
      });
      await expect(
        db.transaction(async (tx) => {
          await tx.query('INSERT INTO t VALUES ($1, $2, $3)', [2, null, 0]);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const { rows, rowCount } = await db.query<{ id: number; b: Buffer; n: number }>('SELECT * FROM t');
      expect(rowCount).toBe(1);
      expect(Buffer.isBuffer(rows[0].b) && rows[0].b.toString()).toBe('abc');
      expect(rows[0].n).toBe(9007199254740991);
    } finally {
      await dispose();
    }
  });
});

describe.runIf(dbTargets().some((t) => t.name === 'pg'))('migrations racing on PostgreSQL', () => {
  it('two migrators starting at once apply each migration exactly once', async () => {
    const target = dbTargets().find((t) => t.name === 'pg')!;
    const { url, dispose } = await target.open({ migrate: false });
    const a = await openPg({ url: url! });
    const b = await openPg({ url: url! });
    try {
      const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
      expect([...ra, ...rb].sort()).toEqual(loadMigrations().map((m) => m.name).sort());
    } finally {
      await a.close();
      await b.close();
      await dispose();
    }
  });
});

describe('the embedded database on its own thread', () => {
  const withDb = async (fn: (db: Db) => Promise<void>) => {
    const db = await openPgliteThread(undefined);
    try {
      await fn(db);
    } finally {
      await db.close();
    }
  };

  it("PostgreSQL's errors come back with their fields, the catalogue's as themselves", async () => {
    await withDb(async (db) => {
      await db.exec('CREATE TABLE u (id int CONSTRAINT u_pk PRIMARY KEY)');
      await db.query('INSERT INTO u VALUES (1)');
      const dup = await db.query('INSERT INTO u VALUES (1)').catch((e) => e);
      expect(dup).toBeInstanceOf(Error);
      expect([dup.code, dup.constraint]).toEqual(['23505', 'u_pk']);
      expect(dup.message).toMatch(/duplicate key/);
    });
    const bad = await openPgliteThread(undefined, { settings: ['work_mem'] }).catch((e) => e);
    expect(bad).toBeInstanceOf(MssError);
    expect(bad.code).toBe('DB_SETTING_INVALID');
  });

  it('transactions commit, roll back on a throw and on a failed statement; COPY loads; bytea stays a Buffer', async () => {
    await withDb(async (db) => {
      await db.exec('CREATE TABLE t (id int PRIMARY KEY, b bytea)');
      await db.transaction(async (tx) => void (await tx.query('INSERT INTO t VALUES (1, $1)', [Buffer.from('one')])));
      await expect(db.transaction(async (tx) => void (await tx.query('INSERT INTO t VALUES (2, NULL), (1, NULL)')))).rejects.toMatchObject({ code: '23505' });
      await expect(
        db.background().transaction(async (tx) => {
          await tx.query('INSERT INTO t VALUES (3, NULL)');
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      async function* lines() {
        for (let i = 10; i < 20; i++) yield `${i}\t\\\\x${Buffer.from(`r${i}`).toString('hex')}\n`;
      }
      expect(await db.copyFrom!('COPY t (id, b) FROM STDIN', lines())).toBe(10);
      const { rows } = await db.query<{ id: number; b: Buffer | null }>('SELECT id, b FROM t ORDER BY id');
      expect(rows.map((r) => r.id)).toEqual([1, ...Array.from({ length: 10 }, (_, i) => 10 + i)]);
      expect(Buffer.isBuffer(rows[0].b) && rows[0].b.toString()).toBe('one');
      expect(rows[1].b?.toString()).toBe('r10');
    });
  });

  it('a process waits for its answers, and the open database alone does not keep it alive', async () => {
    // A CLI command awaiting a query must not exit half-way; one that forgot to close must not hang.
    const script = `import { openPgliteThread } from ${JSON.stringify(fromRoot('dist', 'core', 'db', 'pglite-thread.js'))};
      const db = await openPgliteThread(undefined);
      const { rows } = await db.query('SELECT pg_sleep(0.5), 42 AS n');
      console.log('answer', rows[0].n);`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect([r.status, r.signal, r.stdout.trim()]).toEqual([0, null, 'answer 42']);
  });

  it("a long statement does not hold the platform's event loop", async () => {
    await withDb(async (db) => {
      // In this thread PGlite's statement would run to its end before any timer could fire.
      let ticks = 0;
      const ticking = setInterval(() => ticks++, 5);
      try {
        const during = await db.query<{ s: string }>('SELECT pg_sleep(1.5)::text AS s').then(() => ticks);
        expect(during).toBeGreaterThan(0);
      } finally {
        clearInterval(ticking);
      }
      // The same on this thread, for contrast: no tick while the statement ran.
      const inThread = await openPglite();
      try {
        ticks = 0;
        const t = setInterval(() => ticks++, 5);
        const before = ticks;
        const p = inThread.query('SELECT pg_sleep(0.3)');
        await p;
        const after = ticks;
        clearInterval(t);
        expect(after - before).toBe(0);
      } finally {
        await inThread.close();
      }
    });
  });
});

describe('database errors', () => {
  it('an unreachable PostgreSQL gives one clear sentence', async () => {
    const err = await openPg({ url: 'postgres://mss:secret@127.0.0.1:1/mss', connectTimeoutMs: 2000 }).catch((e) => e);
    expect(err).toBeInstanceOf(MssError);
    expect(err.message).toBe('cannot reach the database postgres://mss:***@127.0.0.1:1/mss: connection refused (is PostgreSQL running and listening there?)');
  });

  it('the embedded database is vacuumed on its own: a delivered body does not stay on disk for ever', async () => {
    // PGlite has no autovacuum worker. Rows written then emptied, as the spool does with a
    // message's body once delivered: without the platform's VACUUM their space never returns.
    const dir = join(mkdtempSync(join(tmpdir(), 'mss-db-')), 'db');
    const db = await openPglite(dir, { vacuumIntervalMs: 100 });
    try {
      await db.exec('CREATE TABLE spool (id int PRIMARY KEY, body bytea); ALTER TABLE spool ALTER COLUMN body SET STORAGE EXTERNAL');
      await db.query('INSERT INTO spool SELECT i, $1 FROM generate_series(1, 500) i', [Buffer.alloc(10_240, 0x61)]);
      await db.query('UPDATE spool SET body = NULL');
      const toast = async () => (await db.query<{ n: number }>("SELECT pg_relation_size(reltoastrelid)::int8 AS n FROM pg_class WHERE relname = 'spool'")).rows[0].n;
      expect(await toast()).toBeGreaterThan(5_000_000);
      let vacuums = 0;
      while (vacuums === 0) {
        await new Promise((r) => setTimeout(r, 100));
        vacuums = (await db.query<{ n: number }>("SELECT vacuum_count::int8 AS n FROM pg_stat_user_tables WHERE relname = 'spool'")).rows[0].n;
      }
      expect(await toast()).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('the embedded database refuses a second process-level opener', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'mss-db-')), 'db');
    const first = await openPglite(dir);
    try {
      // Same process: simulate another live owner by writing our parent's pid in the lock.
      const { writeFileSync } = await import('node:fs');
      writeFileSync(join(dir, 'mss.lock'), String(process.ppid));
      const err = await openPglite(dir).catch((e) => e);
      expect(err.message).toBe(`the embedded database ${dir} is in use by process ${process.ppid}; stop it first, or set MSS_DATABASE_URL to use PostgreSQL`);
    } finally {
      await first.close();
    }
    // A stale lock (dead pid) does not block.
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'mss.lock'), '999999');
    const again = await openPglite(dir);
    await again.close();
  });
});

describe('the embedded database: its settings, and its creation in a child process', () => {
  const config = (dataDir: string, database: Partial<Config['database']> = {}) => {
    const c = loadConfig({ env: {}, overrides: { dataDir } });
    return { ...c, database: { ...c.database, ...database } };
  };
  const capture = () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ log: { level: 'info', format: 'json' } }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    return { log, lines };
  };

  it('a new data directory is created and migrated by a child process; the platform process never runs initdb', async () => {
    // PGlite runs initdb through PGlite.create on a second instance: spying on it tells an
    // open that creates the database (two calls) from one that only opens it (one).
    const create = vi.spyOn(PGlite, 'create');
    try {
      // Control: in this process, a fresh directory takes initdb's second instance.
      const control = await openPglite(join(mkdtempSync(join(tmpdir(), 'mss-db-')), 'db'));
      await control.close();
      expect(create).toHaveBeenCalledTimes(2);
      create.mockClear();

      // In this thread (database.pgliteThread off), so that the spy sees the open.
      const c = config(mkdtempSync(join(tmpdir(), 'mss-db-')), { pgliteThread: false });
      const { log, lines } = capture();
      const db = await openDb(c, { log });
      try {
        expect(create).toHaveBeenCalledTimes(1);
        const created = lines.find((l) => l.msg === 'embedded database created and migrated by a child process');
        expect(created).toMatchObject({ dir: join(c.dataDir, 'db'), applied: loadMigrations().length });
        expect(created!.pid).not.toBe(process.pid);
        // Migrated before this process opened it.
        expect(await migrate(db)).toEqual([]);
        expect((await db.query<{ s: string }>("SELECT current_setting('shared_buffers') AS s")).rows[0].s).toBe('16MB');
      } finally {
        await db.close();
      }
      // Opened again: nothing to create.
      lines.length = 0;
      const again = await openDb(c, { log });
      await again.close();
      expect(lines.some((l) => String(l.msg).includes('child process'))).toBe(false);
    } finally {
      create.mockRestore();
    }
  });

  it("the child's refusal comes back as the same clear error", async () => {
    const c = config(mkdtempSync(join(tmpdir(), 'mss-db-')));
    const dir = join(c.dataDir, 'db');
    mkdirSync(dir);
    // Another live process owns the directory (our parent's pid in the lock).
    writeFileSync(join(dir, 'mss.lock'), String(process.ppid));
    const err = await openDb(c).catch((e) => e);
    expect(err).toBeInstanceOf(MssError);
    expect(err.message).toBe(`the embedded database ${dir} is in use by process ${process.ppid}; stop it first, or set MSS_DATABASE_URL to use PostgreSQL`);
  });

  it('database.pgliteSharedBuffers and database.pgliteSettings reach PostgreSQL; a bad one is named', async () => {
    const env = { MSS_DATABASE_PGLITE_SHARED_BUFFERS: '8MiB', MSS_DATABASE_PGLITE_SETTINGS: 'work_mem=2MB, temp_buffers=2MB' };
    const c = loadConfig({ env, overrides: { dataDir: mkdtempSync(join(tmpdir(), 'mss-db-')) } });
    const db = await openDb(c);
    try {
      const { rows } = await db.query<{ sb: string; wm: string; tb: string }>("SELECT current_setting('shared_buffers') AS sb, current_setting('work_mem') AS wm, current_setting('temp_buffers') AS tb");
      expect(rows[0]).toEqual({ sb: '8MB', wm: '2MB', tb: '2MB' });
    } finally {
      await db.close();
    }
    expect(() => loadConfig({ env: { MSS_DATABASE_PGLITE_SHARED_BUFFERS: '64k' } })).toThrow(/database.pgliteSharedBuffers|MSS_DATABASE_PGLITE_SHARED_BUFFERS/);
    const notNameValue = await openPglite(undefined, { settings: ['work_mem'] }).catch((e) => e);
    expect(notNameValue.message).toBe('the embedded database setting "work_mem" is not name=value (database.pgliteSettings)');
    const badValue = await openPglite(undefined, { settings: ['work_mem=lots'] }).catch((e) => e);
    expect(badValue).toBeInstanceOf(MssError);
    expect(badValue.message).toMatch(/^cannot reach the database memory: .*invalid value for parameter "work_mem": "lots"/);
  });
});
