// The notarised journal against someone with the data files: events written by a CLI
// command while the platform is stopped, then edited, deleted, appended or rewritten with
// every hash recomputed. `mss journal verify` must fail and name the event.
import type { Case, Outcome } from '../harness.js';
import { rechain } from '../../helpers/forge.js';
import type { JournalCtx } from '../journal.js';

const maxSeq = async (x: JournalCtx, dir: string) => {
  let seq = 0;
  await x.forge(dir, async (db) => {
    seq = Number((await db.query<{ s: number }>('SELECT max(seq)::int AS s FROM journal_events')).rows[0].s);
  });
  return seq;
};
/** verify's outcome, marked wrong when it names another event than the forged one. */
const naming = (o: Outcome, seq: number): Outcome => (o.code !== 'exit 0' && !new RegExp(`\\bevent ${seq}\\b`).test(o.text) ? { ...o, code: `names another event than ${seq}` } : o);
const FAILS = { code: 'exit 1' } as const;

export const journalCases: Array<Case<JournalCtx>> = [
  {
    name: 'a CLI command run while the platform is stopped leaves no unsealed event',
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      x.mss(dir, ['whitelist', 'import', x.newerList()]);
      return x.verify(dir);
    },
    expect: { code: 'exit 0', text: /^journal OK: \d+ events, [1-9]\d* seals? \(timestamp tokens checked\), 0 not yet sealed$/ },
  },
  {
    name: "a CLI command's last event rewritten, its hash and the head recomputed",
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      const seq = await maxSeq(x, dir);
      await x.forge(dir, async (db) => {
        await db.query(`UPDATE journal_events SET actor = 'forger' WHERE seq = $1`, [seq]);
        await rechain(db, seq);
      });
      return naming(await x.verify(dir), seq);
    },
    expect: { ...FAILS, text: /^journal FAILED at event 4: event 4 was changed after seal 1 \(events 1–4\) sealed it: its hash is no longer the one the seal committed to$/ },
  },
  {
    name: "a CLI command's last event deleted and the head set back",
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      const seq = await maxSeq(x, dir);
      await x.forge(dir, async (db) => {
        await db.query('DELETE FROM journal_events WHERE seq = $1', [seq]);
        const last = (await db.query<{ hash: string }>('SELECT hash FROM journal_events WHERE seq = $1', [seq - 1])).rows[0];
        await db.query('UPDATE journal_head SET seq = $1, hash = $2', [seq - 1, last.hash]);
      });
      return x.verify(dir);
    },
    expect: { ...FAILS, text: /^journal FAILED at event 4: event 4, sealed by seal 1 \(events 1–4\), is gone: deleted, with the journal's head moved back to hide it$/ },
  },
  {
    name: 'an event forged at the end with a valid hash chain',
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      const seq = (await maxSeq(x, dir)) + 1;
      await x.forge(dir, async (db) => {
        const prev = (await db.query<{ hash: string }>('SELECT hash FROM journal_head')).rows[0].hash;
        await db.query(`INSERT INTO journal_events (seq, at, type, actor, subject, details, prev_hash, hash) VALUES ($1, now(), 'whitelist.domain.added', 'cli:root', 'pirate.example', '{}'::jsonb, $2, 'x')`, [seq, prev]);
        await rechain(db, seq);
        const h = (await db.query<{ hash: string }>('SELECT hash FROM journal_events WHERE seq = $1', [seq])).rows[0].hash;
        await db.query('UPDATE journal_head SET seq = $1, hash = $2', [seq, h]);
      });
      return naming(await x.verify(dir), seq);
    },
    expect: { ...FAILS, text: /^journal FAILED at event 5: 1 event from seq 5 is not sealed \(the oldest written at \S+\) and no platform is running to seal them: every command seals before it exits, so they were left by a crash or written into the database by hand; check them \("mss journal list"\) before sealing them \("mss journal seal"\)$/ },
  },
  {
    name: 'the first event rewritten and every later hash recomputed: verify names that event, not its batch',
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      // Sealed first (as a running platform would have), so the forgery is against a seal.
      x.mss(dir, ['whitelist', 'import', x.newerList()]);
      await x.forge(dir, async (db) => {
        await db.query(`UPDATE journal_events SET actor = 'forger' WHERE seq = 2`);
        await rechain(db, 2);
      });
      return naming(await x.verify(dir), 2);
    },
    expect: { ...FAILS, text: /^journal FAILED at event 2: event 2 was changed after seal 1 \(events 1–4\) sealed it: its hash is no longer the one the seal committed to$/ },
  },
  {
    name: 'an event edited without touching its hash',
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      await x.forge(dir, (db) => db.query(`UPDATE journal_events SET subject = 'pirate.example' WHERE seq = 2`).then(() => {}));
      return x.verify(dir);
    },
    expect: { ...FAILS, text: /event 2 was altered: its content no longer matches its hash/ },
  },
  {
    name: 'an event deleted in the middle of the chain',
    timeout: 300_000,
    send: async (x) => {
      const dir = x.copy();
      await x.forge(dir, (db) => db.query('DELETE FROM journal_events WHERE seq = 2').then(() => {}));
      return x.verify(dir);
    },
    expect: { ...FAILS, text: /event 2 missing: the sequence jumps from 1 to 3 \(rows deleted\)/ },
  },
];
