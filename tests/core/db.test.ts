import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig, type Config } from '../../core/config/index.js';
import { migrate, openDb, openPg, openPglite } from '../../core/db/index.js';
import { createLogger } from '../../core/logger.js';
import { loadMigrations } from '../../core/db/migrate.js';
import { MssError } from '../../core/errors.js';
import { dbTargets } from '../helpers/db.js';

describe.each(dbTargets())('database on $name', (target) => {
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

      const c = config(mkdtempSync(join(tmpdir(), 'mss-db-')));
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
