import { cpSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openPglite, type Db } from '../../core/db/index.js';
import { fromRoot } from '../../core/paths.js';
import { eventHash } from '../../core/journal/index.js';
import { rechain } from '../helpers/forge.js';
import { runMss } from '../helpers/mss.js';
import { testPki, tsaEnv, type TestPki } from '../helpers/pki.js';

// The journal as `mss` commands leave it with the platform stopped (embedded database),
// and as an outside tester forges it afterwards with write access to the database.

describe('journal events written by mss commands (platform stopped)', { timeout: 900_000 }, () => {
  let pki: TestPki;
  let env: Record<string, string>;
  let dataDir: string;
  const mss = (dir: string, args: string[], extra: Record<string, string> = {}) => runMss([...args, '--data-dir', dir], { ...env, ...extra });

  const withDb = async <T>(dir: string, fn: (db: Db) => Promise<T>): Promise<T> => {
    const db = await openPglite(join(dir, 'db'));
    try {
      return await fn(db);
    } finally {
      await db.close();
    }
  };
  const state = (dir: string) =>
    withDb(dir, async (db) => (await db.query<{ head: number; sealed: number }>('SELECT (SELECT seq FROM journal_head)::int AS head, coalesce((SELECT max(last_seq) FROM journal_seals), 0)::int AS sealed')).rows[0]);
  /** A copy of the data directory to forge in, so that each forgery starts from the honest journal. */
  const copy = (from = dataDir) => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-forged-'));
    cpSync(from, dir, { recursive: true });
    return dir;
  };
  const verify = (dir: string, extra: Record<string, string> = {}) => mss(dir, ['journal', 'verify'], extra);
  /** verify's sentence for one event left unsealed on the embedded database (a regular-expression source). */
  const UNSEALED = (seq: number) =>
    `1 event from seq ${seq} is not sealed \\(the oldest written at \\S+\\) and no platform is running to seal them: every command seals before it exits, so they were left by a crash or written into the database by hand; check them \\("mss journal list"\\) before sealing them \\("mss journal seal"\\)`;

  beforeAll(async () => {
    pki = await testPki();
    // The TSA of a test PKI; nothing else of a PKI is needed by these commands.
    env = { MSS_PKI_AUTO_INIT: 'false', ...tsaEnv(pki) };
    dataDir = mkdtempSync(join(tmpdir(), 'mss-journal-cli-'));
  });

  it('a command seals its events before it exits, when it succeeds and when it fails after journalling', async () => {
    expect(mss(dataDir, ['bal', 'create', 'jeanne.martin@mssante.localhost', '-t', 'PER', '-o', '99999999901'])).toMatchObject({ code: 0, stderr: '' });
    const after1 = await state(dataDir);
    expect(after1.head).toBeGreaterThan(0);
    expect(after1.sealed).toBe(after1.head);
    // Creates the box (journalled), then refuses the option: an error exit.
    const failed = mss(dataDir, ['bal', 'create', 'secretariat@mssante.localhost', '-t', 'ORG', '-o', '750000001', '--person-login', 'x']);
    expect(failed).toMatchObject({ code: 2, stderr: 'mss: --person-login applies to PER and CAB mailboxes only\n' });
    const after2 = await state(dataDir);
    expect(after2.head).toBeGreaterThan(after1.head);
    expect(after2.sealed).toBe(after2.head);
    expect(mss(dataDir, ['bal', 'create', 'labo@mssante.localhost', '-t', 'APP', '-o', '12345678901234']).code).toBe(0);
    const v = verify(dataDir);
    expect(v.stderr).toBe('');
    expect(v.stdout).toMatch(/^journal OK: \d+ events, \d+ seals \(timestamp tokens checked\), 0 not yet sealed\n$/);
    expect(v.code).toBe(0);
  });

  it('an event rewritten and every hash and the head recomputed: verify names it', async () => {
    const dir = copy();
    await withDb(dir, async (db) => {
      await db.query(`UPDATE journal_events SET actor = 'cli:someone-else' WHERE seq = 2`);
      await rechain(db);
    });
    const v = verify(dir);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^journal FAILED at event 2: event 2 was changed after seal \d+ \(events \d+–\d+\) sealed it: its hash is no longer the one the seal committed to\n/);
  });

  it('the last event deleted and the head moved back: verify names it', async () => {
    const dir = copy();
    const { head } = await state(dir);
    await withDb(dir, async (db) => {
      await db.query('DELETE FROM journal_events WHERE seq = $1', [head]);
      await rechain(db);
    });
    const v = verify(dir);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(new RegExp(`^journal FAILED at event ${head}: event ${head}, sealed by seal \\d+ \\(events \\d+–${head}\\), is gone: deleted, with the journal's head moved back to hide it\\n`));
  });

  it('the last events deleted with their seal and the head moved back: the anchor outside the database names them', async () => {
    const dir = copy();
    const { head } = await state(dir);
    const first = await withDb(dir, async (db) => {
      const { rows } = await db.query<{ first_seq: number }>('SELECT first_seq::int FROM journal_seals WHERE last_seq = $1', [head]);
      await db.query('DELETE FROM journal_seals WHERE last_seq = $1', [head]);
      await db.query('DELETE FROM journal_events WHERE seq >= $1', [rows[0].first_seq]);
      await rechain(db);
      return rows[0].first_seq;
    });
    const v = verify(dir);
    expect(v.code).toBe(1);
    const what = first === head ? `event ${head} was sealed \\(as recorded in .*anchor\\.json\\) but it and its` : `events ${first}–${head} were sealed \\(as recorded in .*anchor\\.json\\) but they and their`;
    expect(v.stdout).toMatch(new RegExp(`^journal FAILED at event ${first}: ${what} seal are gone: the journal was cut back at the end \\(if this data directory was moved to another database on purpose, remove that file\\)\\n`));
  });

  it('an unsealed event (a crash, an old version) rewritten with the chain recomputed: verify fails at it; mss journal seal repairs a genuine one', async () => {
    const dir = copy();
    const { head } = await state(dir);
    // What a command of an older version left: an event with no seal, written an hour ago.
    await withDb(dir, async (db) => {
      const prev = (await db.query<{ hash: string }>('SELECT hash FROM journal_head')).rows[0].hash;
      const ev = { seq: head + 1, at: new Date(Date.now() - 3600_000), type: 'bal.created', actor: 'cli:old', subject: 'old@mssante.localhost', details: {} };
      const hash = eventHash(prev, ev);
      await db.query('INSERT INTO journal_events (seq, at, type, actor, subject, details, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [ev.seq, ev.at, ev.type, ev.actor, ev.subject, '{}', prev, hash]);
      await db.query('UPDATE journal_head SET seq = $1, hash = $2', [ev.seq, hash]);
    });
    const forged = copy(dir);
    await withDb(forged, async (db) => {
      await db.query(`UPDATE journal_events SET subject = 'forged@mssante.localhost' WHERE seq = $1`, [head + 1]);
      await rechain(db);
    });
    const v = verify(forged);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(new RegExp(`^journal FAILED at event ${head + 1}: ${UNSEALED(head + 1)}\\n`));
    // The genuine one: sealed by hand, then the journal verifies.
    expect(verify(dir).code).toBe(1);
    expect(mss(dir, ['journal', 'seal'])).toMatchObject({ code: 0, stdout: 'sealed 1 event(s)\n' });
    expect(verify(dir)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^journal OK: .*, 0 not yet sealed\n$/) });
  });

  it('a command refuses to act when it could not seal, and says so when the seal itself fails', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mss-journal-cli-tsa-'));
    const noTsa = mss(dir, ['bal', 'create', 'a@mssante.localhost', '-t', 'PER', '-o', '99999999901'], { MSS_TSA_CERT_FILE: join(dir, 'none.pem') });
    expect(noTsa.code).toBe(1);
    expect(noTsa.stderr).toMatch(/^mss: this command records what it does in the journal and seals it before it exits, but the timestamping authority cannot be used: .*none\.pem.*; nothing was done/);
    expect(mss(dir, ['bal', 'list']).stdout).toBe('no mailbox\n');
    // An external TSA out of reach: the box is created (its event stored), the command says the seal failed.
    const unreachable = mss(dir, ['bal', 'create', 'a@mssante.localhost', '-t', 'PER', '-o', '99999999901'], { MSS_TSA_URL: 'http://127.0.0.1:1/tsa' });
    expect(unreachable.stdout).toBe('created PER mailbox a@mssante.localhost\n');
    expect(unreachable.stderr).toMatch(/^mss: 1 journal event\(s\) written by this command could not be sealed: .+; they stay unsealed \(and `mss journal verify` fails\) until `mss journal seal` or the next start of the platform seals them\n$/);
    expect(unreachable.code).toBe(1);
    // Fresh, but on the embedded database no platform can be running to seal it: a failure
    // (the grace of journal.unsealedGrace is for PostgreSQL, tests/core/journal.test.ts).
    expect(verify(dir)).toMatchObject({ code: 1, stdout: expect.stringMatching(new RegExp(`^journal FAILED at event 1: ${UNSEALED(1)}\\n`)) });
    expect(mss(dir, ['journal', 'seal']).stdout).toBe('sealed 1 event(s)\n');
    expect(verify(dir).code).toBe(0);
  });

  it('no command builds a journal of its own (they all get the sealing one from bin/cli.ts)', () => {
    const dir = fromRoot('bin', 'commands');
    const offenders = readdirSync(dir).filter((f) => f.endsWith('.ts') && /new Journal\(/.test(readFileSync(join(dir, f), 'utf8')));
    expect(offenders).toEqual([]);
  });
});
