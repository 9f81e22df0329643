import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTsa, verifyTimestampResponse } from '../../certs/tsa.js';
import { openPg, type Db } from '../../core/db/index.js';
import { Journal, checkProof, eventHash, type Timestamper, type TokenVerifier } from '../../core/journal/index.js';
import { dbTargets } from '../helpers/db.js';
import { testPki, type TestPki } from '../helpers/pki.js';

let pki: TestPki;
let timestamper: Timestamper;
let verifier: TokenVerifier;

beforeAll(async () => {
  pki = await testPki();
  const read = (f: string) => readFileSync(f, 'utf8');
  timestamper = await createTsa({ certPem: read(pki.file('tsa.pem')), keyPem: read(pki.file('tsa.key')), chainPems: [read(pki.file('intermediate.pem'))], policyOid: '1.2.250.1.999.1.1' });
  verifier = { verify: (tsr, data) => verifyTimestampResponse(tsr, data, { caPems: [read(pki.file('ca.pem'))], untrustedPems: [read(pki.file('intermediate.pem'))] }) };
});

const events = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ type: 'test.event', actor: `user${(from + i) % 7}@mssante.localhost`, subject: `bal${from + i}`, details: { i: from + i, note: 'Hélène à l’accueil', nested: { b: 2, a: [1, 'x'] } } }));

describe.each(dbTargets())('journal on $name', (target) => {
  let db: Db;
  let dispose: () => Promise<void>;
  let url: string | undefined;
  let journal: Journal;

  const fresh = async (sealBatch = 40) => {
    ({ db, dispose, url } = await target.open());
    journal = new Journal(db, { timestamper, verifier, sealBatch });
  };
  afterEach(async () => {
    await journal?.stop();
    await dispose?.();
  });

  it('chains concurrent appends without a gap and verifies', async () => {
    await fresh();
    const out = await Promise.all(events(300).map((e) => journal.append(e)));
    expect(out.map((o) => o.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    const first = await journal.get(1);
    expect(first!.hash).toBe(eventHash('0'.repeat(64), first!));
    expect(first!.details).toMatchObject({ note: 'Hélène à l’accueil' });
    const report = await journal.verify(verifier);
    expect(report).toMatchObject({ ok: true, events: 300, seals: 0, unsealed: 300, problems: [] });
  });

  it('appendIn commits and rolls back with the caller’s transaction', async () => {
    await fresh();
    await journal.append(events(1)[0]);
    await expect(
      db.transaction(async (tx) => {
        await journal.appendIn(tx, { type: 'test.rolledback', actor: 'system' });
        throw new Error('business failure');
      }),
    ).rejects.toThrow('business failure');
    await db.transaction((tx) => journal.appendIn(tx, { type: 'test.kept', actor: 'system' }));
    const list = await journal.list();
    expect(list.map((e) => e.type)).toEqual(['test.kept', 'test.event']);
    expect((await journal.verify()).ok).toBe(true);
  });

  it('seals in Merkle batches with RFC 3161 tokens that verify', async () => {
    await fresh(40);
    for (const e of events(100)) await journal.append(e);
    expect(await journal.sealNow()).toBe(100);
    const seals = await db.query<{ first_seq: number; last_seq: number }>('SELECT first_seq, last_seq FROM journal_seals ORDER BY first_seq');
    expect(seals.rows).toEqual([
      { first_seq: 1, last_seq: 40 },
      { first_seq: 41, last_seq: 80 },
      { first_seq: 81, last_seq: 100 },
    ]);
    const report = await journal.verify(verifier);
    expect(report).toMatchObject({ ok: true, events: 100, seals: 3, unsealed: 0, tokensChecked: true });
  });

  describe('tampering is detected and the first bad event named', () => {
    const prepare = async () => {
      await fresh(40);
      for (const e of events(100)) await journal.append(e);
      await journal.sealNow();
      expect((await journal.verify(verifier)).ok).toBe(true);
    };

    it('an edited row', async () => {
      await prepare();
      await db.query(`UPDATE journal_events SET details = jsonb_set(details, '{note}', '"changed"') WHERE seq = 37`);
      const r = await journal.verify(verifier);
      expect(r.ok).toBe(false);
      expect(r.firstBad).toBe(37);
      expect(r.problems[0].message).toBe('event 37 was altered: its content no longer matches its hash');
    });

    it('a deleted row', async () => {
      await prepare();
      await db.query('DELETE FROM journal_events WHERE seq = 50');
      const r = await journal.verify(verifier);
      expect(r.firstBad).toBe(50);
      expect(r.problems[0].message).toBe('event 50 missing: the sequence jumps from 49 to 51 (rows deleted)');
    });

    it('reordered rows', async () => {
      await prepare();
      // Swap the contents of events 10 and 11 while keeping the sequence numbers.
      await db.exec(`
        UPDATE journal_events a SET at = b.at, type = b.type, actor = b.actor, subject = b.subject, details = b.details, prev_hash = b.prev_hash, hash = b.hash
        FROM (SELECT * FROM journal_events WHERE seq IN (10, 11)) b WHERE a.seq IN (10, 11) AND b.seq = 21 - a.seq`);
      const r = await journal.verify(verifier);
      expect(r.firstBad).toBe(10);
      expect(r.problems.map((p) => p.seq)).toContain(11);
    });

    it('rows deleted at the end', async () => {
      await prepare();
      await db.query('DELETE FROM journal_events WHERE seq > 95');
      const r = await journal.verify(verifier);
      expect(r.ok).toBe(false);
      expect(r.problems.some((p) => p.kind === 'tail' && /ends at event 95 but its head records event 100/.test(p.message))).toBe(true);
    });

    it('a rewritten chain (edit, then every later hash recomputed) is caught by the seal', async () => {
      await prepare();
      await db.query(`UPDATE journal_events SET actor = 'forger' WHERE seq = 5`);
      const rows = (await db.query<any>('SELECT * FROM journal_events ORDER BY seq')).rows;
      let prev = '0'.repeat(64);
      for (const r of rows) {
        const h = eventHash(prev, { seq: r.seq, at: new Date(r.at), type: r.type, actor: r.actor, subject: r.subject, details: r.details });
        await db.query('UPDATE journal_events SET prev_hash = $1, hash = $2 WHERE seq = $3', [prev, h, r.seq]);
        prev = h;
      }
      await db.query('UPDATE journal_head SET hash = $1', [prev]);
      const r = await journal.verify(verifier);
      expect(r.ok).toBe(false);
      expect(r.problems[0].message).toMatch(/^seal \d+ \(events 1–40\): the events no longer match the sealed Merkle root/);
      expect(r.firstBad).toBe(1);
    });

    it('a forged timestamp token', async () => {
      await prepare();
      const other = await timestamper.stamp(Buffer.from('something else'));
      await db.query('UPDATE journal_seals SET token = $1 WHERE first_seq = 41', [other]);
      const r = await journal.verify(verifier);
      expect(r.problems.map((p) => p.message).join('\n')).toMatch(/seal \d+ \(events 41–80\): timestamp token invalid/);
    });
  });

  it('exports a proof that openssl ts -verify accepts', async () => {
    await fresh(40);
    for (const e of events(60)) await journal.append(e);
    await journal.sealNow();
    const proof = await journal.proof(45);
    expect(checkProof(proof)).toBeNull();
    expect(checkProof({ ...proof, event: { ...proof.event, actor: 'someone else' } })).toBe('the event does not match its hash');
    const dir = mkdtempSync(join(tmpdir(), 'mss-proof-'));
    writeFileSync(join(dir, 'stamped.bin'), proof.stamped);
    writeFileSync(join(dir, 'token.tsr'), proof.token);
    writeFileSync(join(dir, 'chain.pem'), readFileSync(pki.file('tsa.pem'), 'utf8') + readFileSync(pki.file('intermediate.pem'), 'utf8'));
    const out = execFileSync('openssl', ['ts', '-verify', '-data', join(dir, 'stamped.bin'), '-in', join(dir, 'token.tsr'), '-CAfile', pki.file('ca.pem'), '-untrusted', join(dir, 'chain.pem')], { encoding: 'utf8' });
    expect(out).toContain('Verification: OK');
    writeFileSync(join(dir, 'stamped.bin'), Buffer.concat([proof.stamped, Buffer.from('x')]));
    expect(() => execFileSync('openssl', ['ts', '-verify', '-data', join(dir, 'stamped.bin'), '-in', join(dir, 'token.tsr'), '-CAfile', pki.file('ca.pem'), '-untrusted', join(dir, 'chain.pem')], { stdio: 'pipe' })).toThrow();
  });

  it.runIf(target.name === 'pg')('two processes appending to one PostgreSQL keep one unbroken chain', async () => {
    await fresh();
    const other = await openPg({ url: url! });
    try {
      const second = new Journal(other);
      await Promise.all([...events(150).map((e) => journal.append(e)), ...events(150, 150).map((e) => second.append(e))]);
      await second.flush();
      const r = await journal.verify();
      expect(r).toMatchObject({ ok: true, events: 300 });
    } finally {
      await other.close();
    }
  });
});
