import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTsa, verifyTimestampResponse } from '../../certs/tsa.js';
import { openPg, type Db } from '../../core/db/index.js';
import { Journal, checkProof, eventHash, type Timestamper, type TokenVerifier } from '../../core/journal/index.js';
import { dbTargets } from '../helpers/db.js';
import { rechain } from '../helpers/forge.js';
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

  it('an unsealed tail fails verify once it is older than the grace a running platform needs', async () => {
    await fresh(40);
    for (const e of events(50)) await journal.append(e);
    await journal.sealNow();
    for (const e of events(3, 50)) await journal.append(e);
    const grace = 60_000;
    // Just written: what a running platform holds between two seals.
    expect(await journal.verify(verifier, { unsealedGraceMs: grace })).toMatchObject({ ok: true, unsealed: 3 });
    // The same journal seen later (verify is told the time rather than waiting for it).
    const later = await journal.verify(verifier, { unsealedGraceMs: grace, now: new Date(Date.now() + 2 * grace) });
    expect(later).toMatchObject({ ok: false, firstBad: 51, unsealed: 3 });
    expect(later.problems[0].message).toMatch(/^3 events from seq 51 are not sealed; the oldest was written at .*, longer ago than a running platform takes to seal \(60 s\): run "mss journal seal", or start the platform/);
    // Dated in the future to look fresh: refused too.
    await db.query(`UPDATE journal_events SET at = now() + interval '1 day' WHERE seq = 53`);
    const future = await journal.verify(undefined, { unsealedGraceMs: grace });
    expect(future.problems.map((p) => p.message)).toContainEqual(expect.stringMatching(/^3 events from seq 51 are not sealed and dated in the future/));
    await db.query(`UPDATE journal_events SET at = now() WHERE seq = 53`);
    await journal.sealNow();
    expect((await journal.verify(undefined, { unsealedGraceMs: grace, now: new Date(Date.now() + 2 * grace) })).problems.filter((p) => p.kind === 'unsealed')).toEqual([]);
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


    it('a rewritten chain (edit, then every later hash recomputed) is caught by the seal, at the forged event', async () => {
      await prepare();
      await db.query(`UPDATE journal_events SET actor = 'forger' WHERE seq = 5`);
      await rechain(db);
      const r = await journal.verify(verifier);
      expect(r.ok).toBe(false);
      expect(r.firstBad).toBe(5);
      expect(r.problems[0]).toMatchObject({ seq: 5, kind: 'forged' });
      expect(r.problems[0].message).toMatch(/^event 5 was changed after seal \d+ \(events 1–40\) sealed it: its hash is no longer the one the seal committed to$/);
      // The later events, re-hashed to hide it, are reported as ranges, not as forgeries.
      expect(r.problems.filter((p) => p.kind === 'forged').map((p) => p.seq)).toEqual([5]);
      expect(r.problems.filter((p) => p.kind === 'rehashed').map((p) => p.message)).toEqual([
        expect.stringMatching(/^events 6–40 no longer carry the hashes seal \d+ \(events 1–40\) committed to/),
        expect.stringMatching(/^events 41–80 /),
        expect.stringMatching(/^events 81–100 /),
      ]);
    });

    it('a forgery in a later batch is named too (the link across seals is checked)', async () => {
      await prepare();
      await db.query(`UPDATE journal_events SET details = '{"i": 0}' WHERE seq = 63`);
      await rechain(db);
      const r = await journal.verify(verifier);
      expect(r.firstBad).toBe(63);
      expect(r.problems[0].message).toMatch(/^event 63 was changed after seal \d+ \(events 41–80\) sealed it/);
    });

    it('the last sealed event deleted and the head moved back', async () => {
      await prepare();
      await db.query('DELETE FROM journal_events WHERE seq = 100');
      await rechain(db);
      const r = await journal.verify(verifier);
      expect(r.ok).toBe(false);
      expect(r.firstBad).toBe(100);
      expect(r.problems[0].message).toMatch(/^event 100, sealed by seal \d+ \(events 81–100\), is gone: deleted, with the journal's head moved back to hide it$/);
    });

    it('seals made before the leaves were kept still verify, and a forgery under them is caught by the root', async () => {
      await prepare();
      await db.query('UPDATE journal_seals SET leaves = NULL');
      expect(await journal.verify(verifier)).toMatchObject({ ok: true, problems: [] });
      await db.query(`UPDATE journal_events SET actor = 'forger' WHERE seq = 5`);
      await rechain(db);
      const r = await journal.verify(verifier);
      expect(r.problems[0].message).toMatch(/^seal \d+ \(events 1–40\): the events no longer match the sealed Merkle root/);
    });

    it("a seal's list of hashes rewritten to match a forgery", async () => {
      await prepare();
      await db.query(`UPDATE journal_events SET actor = 'forger' WHERE seq = 5`);
      await rechain(db);
      const hashes = (await db.query<{ hash: string }>('SELECT hash FROM journal_events WHERE seq BETWEEN 1 AND 40 ORDER BY seq')).rows;
      await db.query('UPDATE journal_seals SET leaves = $1 WHERE first_seq = 1', [Buffer.concat(hashes.map((h) => Buffer.from(h.hash, 'hex')))]);
      const r = await journal.verify(verifier);
      expect(r.ok).toBe(false);
      expect(r.problems.map((p) => p.message)).toContainEqual(expect.stringMatching(/^seal \d+ \(events 1–40\): its list of event hashes does not give the timestamped Merkle root/));
    });

    it('the newest events deleted together with their seal: caught by the anchor outside the database', async () => {
      const anchorFile = join(mkdtempSync(join(tmpdir(), 'mss-anchor-')), 'anchor.json');
      await fresh(40);
      journal = new Journal(db, { timestamper, verifier, sealBatch: 40, anchorFile });
      for (const e of events(100)) await journal.append(e);
      await journal.sealNow();
      expect(JSON.parse(readFileSync(anchorFile, 'utf8'))).toMatchObject({ lastSeq: 100 });
      expect((await journal.verify(verifier, { anchorFile })).ok).toBe(true);
      await db.query('DELETE FROM journal_events WHERE seq > 80');
      await db.query('DELETE FROM journal_seals WHERE first_seq > 80');
      await rechain(db);
      // Without the anchor the shorter journal is consistent; with it, the cut is named.
      expect((await journal.verify(verifier)).ok).toBe(true);
      const r = await journal.verify(verifier, { anchorFile });
      expect(r).toMatchObject({ ok: false, firstBad: 81 });
      expect(r.problems[0].message).toMatch(/^events 81–100 were sealed \(as recorded in .*anchor\.json\) but they and their seal are gone/);
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
