// The one login throttle (core/policy/throttle.ts) over a real database: PGlite always, and
// PostgreSQL too when MSS_DATABASE_URL names one (two pools on it: two "nodes").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPg, type Db } from '../../core/db/index.js';
import { Journal } from '../../core/journal/index.js';
import { LoginThrottle, type LoginAttempt, type ThrottleOptions } from '../../core/policy/index.js';
import { dbTargets } from '../helpers/db.js';

const OPTIONS: ThrottleOptions = { failureDelay: 1, maxFailureDelay: 8, failureWindow: 15 * 60_000, maxFailuresPerAccount: 5, maxFailuresPerSource: 50, lockout: 15 * 60_000, attemptTimeout: 60_000 };
const attempt = (user: string, source = '192.0.2.1'): LoginAttempt => ({ realm: 'person', user, source, front: 'test' });
const noSleep = async () => {};

/** A password check that counts its calls and how many run at once, answering after a turn of the event loop. */
function counter(answer: (user: string) => boolean) {
  const c = {
    calls: 0,
    running: 0,
    maxRunning: 0,
    check: (user: string) => async () => {
      c.calls++;
      c.running++;
      c.maxRunning = Math.max(c.maxRunning, c.running);
      await new Promise((r) => setImmediate(r));
      c.running--;
      return answer(user);
    },
  };
  return c;
}

for (const target of dbTargets()) {
  describe(`login throttle on ${target.name}`, () => {
    let db: Db;
    let url: string | undefined;
    let dispose: () => Promise<void>;
    let journal: Journal;
    beforeAll(async () => {
      ({ db, url, dispose } = await target.open());
      journal = new Journal(db);
    });
    afterAll(async () => {
      await journal?.flush();
      await dispose?.();
    });

    const throttle = (o: Partial<ThrottleOptions> = {}, extra: { sleep?: (ms: number) => Promise<void>; on?: Db } = {}) =>
      new LoginThrottle({ ...OPTIONS, ...o }, { db: extra.on ?? db, journal, sleep: extra.sleep ?? noSleep });
    const locks = async (subject: string) => {
      await journal.flush();
      return journal.list({ type: 'auth.locked', subject });
    };

    it('30 parallel wrong guesses on one account: only its budget is checked, the rest refused, one lockout event', async () => {
      const t = throttle();
      const c = counter(() => false);
      const out = await Promise.all(Array.from({ length: 30 }, (_, i) => t.guard(attempt('jeanne', `198.51.100.${i}`), c.check('jeanne'), (ok) => !ok)));
      expect(c.calls).toBe(5);
      expect(out.filter((o) => o.ok)).toHaveLength(5);
      const refused = out.filter((o) => !o.ok);
      expect(refused).toHaveLength(25);
      for (const r of refused) expect(r).toMatchObject({ ok: false, who: 'account', refusal: { code: 'LOGIN_THROTTLED', temporary: true, reason: 'too many failed logins for this account; try again in 15 min' } });
      expect(await t.state('account', 'jeanne')).toMatchObject({ failures: 5, pending: 0 });
      expect((await t.state('account', 'jeanne')).lockedMs).toBeGreaterThan(0);
      const ev = await locks('jeanne');
      expect(ev).toHaveLength(1);
      expect(ev[0]).toMatchObject({ actor: 'system', details: { key: 'account', realm: 'person', failures: 5, front: 'test' } });
      // Still locked for the right password, on any address: refused unchecked.
      const c2 = counter(() => true);
      expect(await t.guard(attempt('Jeanne ', '203.0.113.9'), c2.check('jeanne'), (ok) => !ok)).toMatchObject({ ok: false, who: 'account' });
      expect(c2.calls).toBe(0);
      expect(await locks('jeanne')).toHaveLength(1); // refused attempts do not journal a new lockout
    });

    it('200 simultaneous correct logins from one address all succeed; checks beyond the budget wait their turn', async () => {
      const t = throttle({ maxFailuresPerSource: 20 });
      const c = counter(() => true);
      const users = Array.from({ length: 200 }, (_, i) => `user${i % 4}`);
      const out = await Promise.all(users.map((u) => t.guard(attempt(u, '192.0.2.200'), c.check(u), (ok) => !ok)));
      expect(out.every((o) => o.ok && o.value === true)).toBe(true);
      expect(c.calls).toBe(200);
      expect(c.maxRunning).toBeLessThanOrEqual(OPTIONS.maxFailuresPerAccount * 4);
      expect(await t.state('source', '192.0.2.200')).toMatchObject({ failures: 0, pending: 0, lockedMs: 0 });
    });

    it('an address is locked after its failures across accounts; a success does not clear it', async () => {
      const t = throttle({ maxFailuresPerSource: 4 });
      const c = counter((u) => u === 'good');
      for (const u of ['a', 'b', 'good', 'c']) await t.guard(attempt(u, '192.0.2.44'), c.check(u), (ok) => !ok);
      const r = await t.guard(attempt('d', '192.0.2.44'), c.check('d'), (ok) => !ok);
      expect(r.ok).toBe(true); // 3 failures so far: the 4th may still be checked
      const locked = await t.guard(attempt('good', '192.0.2.44'), c.check('good'), (ok) => !ok);
      expect(locked).toMatchObject({ ok: false, who: 'source', refusal: { reason: 'too many failed logins from your address; try again in 15 min' } });
      expect(await locks('192.0.2.44')).toHaveLength(1);
      // Another address is not concerned.
      expect(await t.guard(attempt('good', '192.0.2.45'), c.check('good'), (ok) => !ok)).toMatchObject({ ok: true, value: true });
    });

    it('a success starts the account count again', async () => {
      const t = throttle();
      const c = counter(() => false);
      for (let i = 0; i < 4; i++) await t.guard(attempt('paul'), c.check('paul'), (ok) => !ok);
      expect((await t.state('account', 'paul')).failures).toBe(4);
      await t.guard(attempt('paul'), async () => true, (ok) => !ok);
      expect((await t.state('account', 'paul')).failures).toBe(0);
    });

    it('failures are answered after a delay that doubles, up to the maximum', async () => {
      const delays: number[] = [];
      const t = throttle({ failureDelay: 1, maxFailureDelay: 8, maxFailuresPerAccount: 10 }, { sleep: async (ms) => void delays.push(ms) });
      for (let i = 0; i < 6; i++) await t.guard(attempt('delayed'), async () => false, (ok) => !ok);
      await t.guard(attempt('delayed'), async () => true, (ok) => !ok);
      expect(delays).toEqual([1, 2, 4, 8, 8, 8]);
    });

    it('a check that throws frees its place and counts nothing', async () => {
      const t = throttle({ maxFailuresPerAccount: 1 });
      await expect(t.guard(attempt('broken'), async () => Promise.reject(new Error('database down')), () => true)).rejects.toThrow('database down');
      expect(await t.state('account', 'broken')).toMatchObject({ failures: 0, pending: 0 });
      expect(await t.guard(attempt('broken'), async () => true, (ok) => !ok)).toMatchObject({ ok: true });
    });

    it('a lockout ends after auth.lockout; the right password then works', async () => {
      const t = throttle({ maxFailuresPerAccount: 2, lockout: 300 });
      for (let i = 0; i < 2; i++) await t.guard(attempt('brief'), async () => false, (ok) => !ok);
      expect(await t.guard(attempt('brief'), async () => true, (ok) => !ok)).toMatchObject({ ok: false, who: 'account', refusal: { reason: expect.stringMatching(/try again in 1 s$/) } });
      // Wait for the condition (the lock's end), not for a duration.
      let r;
      do {
        await new Promise((res) => setTimeout(res, 50));
        r = await t.guard(attempt('brief'), async () => true, (ok) => !ok);
      } while (!r.ok);
      expect(r).toMatchObject({ ok: true, value: true });
      expect(await t.state('account', 'brief')).toMatchObject({ failures: 0, lockedMs: 0 });
    });

    it('a place held by a check that never ends is given back after attemptTimeout', async () => {
      const t = throttle({ maxFailuresPerAccount: 1, attemptTimeout: 300 });
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      void t.guard(attempt('stuck'), () => (started(), new Promise<boolean>(() => {})), (ok) => !ok);
      await running;
      expect(await t.state('account', 'stuck')).toMatchObject({ pending: 1 });
      expect(await t.guard(attempt('stuck'), async () => true, (ok) => !ok)).toMatchObject({ ok: true, value: true });
    });

    it('two throttles on the same database (two processes, two nodes) share their counts', async () => {
      // On PostgreSQL the second one has its own pool: another node on the same database.
      const other = url ? await openPg({ url, poolSize: 3 }) : db;
      try {
        const a = throttle({ maxFailuresPerAccount: 3 });
        const b = throttle({ maxFailuresPerAccount: 3 }, { on: other });
        await a.guard(attempt('shared', '192.0.2.10'), async () => false, (ok) => !ok);
        await b.guard(attempt('shared', '192.0.2.11'), async () => false, (ok) => !ok);
        expect(await a.state('account', 'shared')).toMatchObject({ failures: 2 });
        // Parallel guesses split between the two: only the one failure left is checked.
        const c = counter(() => false);
        const out = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).guard(attempt('shared', `192.0.2.${20 + i}`), c.check('shared'), (ok) => !ok)));
        expect(c.calls).toBe(1);
        expect(out.filter((o) => !o.ok)).toHaveLength(9);
        expect(await b.guard(attempt('shared'), async () => true, (ok) => !ok)).toMatchObject({ ok: false, who: 'account' });
        expect(await locks('shared')).toHaveLength(1);
      } finally {
        if (other !== db) await other.close();
      }
    });

    it('one person, one count: the name is resolved to the account before counting', async () => {
      const t = new LoginThrottle({ ...OPTIONS, maxFailuresPerAccount: 2 }, { db, journal, sleep: noSleep, accountOf: async (_realm, user) => (user.toLowerCase().startsWith('marie') ? 'marie' : null) });
      await t.guard(attempt('marie'), async () => false, (ok) => !ok);
      await t.guard(attempt('Marie.Durand@mssante.localhost'), async () => false, (ok) => !ok);
      expect(await t.state('account', 'marie')).toMatchObject({ failures: 2 });
      expect(await t.guard(attempt('marie'), async () => true, (ok) => !ok)).toMatchObject({ ok: false, who: 'account' });
      // Admin accounts are another realm: an admin called "marie" is not locked.
      expect(await t.guard({ ...attempt('marie'), realm: 'admin' }, async () => true, (ok) => !ok)).toMatchObject({ ok: true });
    });

    it('asks for the account a name designates once a minute, not at every login (one round trip less on the login path)', async () => {
      const asked: string[] = [];
      const t = new LoginThrottle(OPTIONS, { db, journal, sleep: noSleep, accountOf: async (_realm, user) => (asked.push(user), user.startsWith('paul') ? 'paul' : null) });
      for (const name of ['paul.martin@mssante.localhost', ' Paul.Martin@MSSante.localhost', 'paul.martin@mssante.localhost']) await t.guard(attempt(name), async () => false, (ok) => !ok);
      // The same name however typed: asked once, and each failure counted on the account.
      expect(asked).toEqual(['paul.martin@mssante.localhost']);
      expect(await t.state('account', 'paul')).toMatchObject({ failures: 3 });
      // A name that designates no account (yet) is asked again each time.
      for (let i = 0; i < 2; i++) await t.guard(attempt('someone.else'), async () => true, (ok) => !ok);
      expect(asked).toEqual(['paul.martin@mssante.localhost', 'someone.else', 'someone.else']);
    });
  });
}
