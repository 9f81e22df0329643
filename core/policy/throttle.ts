// The one failed-login throttle, used by every front that checks a password (IMAP LOGIN /
// AUTHENTICATE PLAIN, submission AUTH PLAIN / LOGIN, the webmail and admin API logins).
//
// Two keys per attempt: the account (whatever address it comes from) and the source address
// (whatever account it names). Each has a budget of failures (auth.maxFailuresPerAccount /
// maxFailuresPerSource) within auth.failureWindow. The budget is spent by failures *and* by
// checks still running: an attempt reserves a place on both keys — atomically, in the
// database — *before* the expensive check (scrypt), and settles it after. So 30 guesses sent
// in parallel on one account are not all checked: only as many as its budget has left, the
// others wait for a place and are refused once the budget is spent. A key that reaches its
// budget is locked for auth.lockout (one `auth.locked` journal event). Honest logins are not
// refused for being many: beyond the budget they wait for a place, and a success frees it.
//
// Each failure is answered after a delay that doubles with the account's recent failures
// (Dovecot's auth_failure_delay and anvil penalty). A success starts the account's count
// again (the real person proved themselves), never the source's: an attacker with one valid
// account of their own could otherwise reset their address between guesses. Certificate
// logins do not come here: a professional's card is never locked out by someone guessing
// their password.
//
// The counters live in PostgreSQL (login_throttle, migration 0002): every process of the node
// and every node on the same database shares them. Waiting is helped along in-process (a
// settlement here wakes the next waiter at once) and otherwise polls, for settlements made
// by another process.
import type { Queryable } from '../db/index.js';
import { Memo } from '../memo.js';
import type { Logger } from '../logger.js';
import type { RefusalSink } from './index.js';
import { refuse, type Refusal } from './verdict.js';

export interface ThrottleOptions {
  failureDelay: number;
  maxFailureDelay: number;
  failureWindow: number;
  maxFailuresPerAccount: number;
  maxFailuresPerSource: number;
  lockout: number;
  attemptTimeout: number;
}

/** Whose account a user name designates: people (mail fronts, webmail) or admin accounts. */
export type AccountRealm = 'person' | 'admin';

export interface LoginAttempt {
  realm: AccountRealm;
  /** The user name as the client typed it. */
  user: string;
  /** Client address. */
  source: string;
  /** For the journal: imap, smtp-submission, webmail, admin-api. */
  front: string;
}

export type Guarded<T> = { ok: true; value: T } | { ok: false; refusal: Refusal; who: 'account' | 'source'; retryAfterMs: number };

export interface ThrottleDeps {
  db: Queryable;
  journal: RefusalSink;
  log?: Logger;
  /**
   * The account a user name designates, so one person has one count however they name
   * themselves (login, or the address of their personal box). null: no such account (the
   * name as typed is counted). Injected by the composition root: core never reads the annuaire.
   */
  accountOf?: (realm: AccountRealm, user: string) => Promise<string | null>;
  sleep?: (ms: number) => Promise<void>;
}

interface ReserveRow {
  throttle_key: string;
  verdict: 'reserved' | 'wait' | 'locked';
  failure_count: number;
  pending_count: number;
  locked_ms: number;
}

interface SettleRow {
  throttle_key: string;
  failure_count: number;
  locked_now: boolean;
  locked_ms: number;
}

/**
 * Between two looks at the database while waiting for a place. A settlement in this process
 * wakes the next waiter at once; these looks are for places another process freed.
 */
const POLL_MIN_MS = 250;
const POLL_MAX_MS = 2000;
/** Rows nobody touched for this long (beyond every window, lockout and lease) are deleted. */
const CLEAN_EVERY_MS = 60_000;
/**
 * How long the account a user name designates is remembered. Each login asked the database
 * first for it, then (the password check) for the person again: one round trip of five on
 * the login's path, behind whatever the embedded database was running (bench/mixed: a sync's
 * statement, a delivery). A rename counts on the old account for at most this long. A name
 * that designates no account is asked again each time: a box created a moment later counts
 * on its person's account at once.
 */
const ACCOUNT_MEMO_MS = 60_000;
const ACCOUNT_MEMO_MAX = 10_000;

const normalise = (s: string) => s.trim().toLowerCase();

export class LoginThrottle {
  private readonly waiters = new Waiters();
  private readonly sleep: (ms: number) => Promise<void>;
  private lastClean = 0;
  /** accountOf's answers, by realm and name. */
  private readonly accounts = new Memo<string>({ ttlMs: ACCOUNT_MEMO_MS, maxEntries: ACCOUNT_MEMO_MAX });

  constructor(
    readonly options: ThrottleOptions,
    private readonly deps: ThrottleDeps,
  ) {
    this.sleep = deps.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  }

  /** The delay every front puts before answering a failure it decides itself (a refused certificate, a policy refusal). */
  get failureDelayMs(): number {
    return this.options.failureDelay;
  }

  /** The delay before answering the n-th recent failure of an account: doubling, capped. */
  delayFor(failures: number): number {
    const o = this.options;
    return Math.min(o.maxFailureDelay, o.failureDelay * 2 ** Math.max(0, Math.min(30, failures - 1)));
  }

  /** The keys an attempt counts on, in the order they are locked (sorted: no deadlock). */
  async keys(a: Pick<LoginAttempt, 'realm' | 'user' | 'source'>): Promise<{ account: string; source: string }> {
    const named = normalise(a.user);
    const accountOf = this.deps.accountOf;
    const account = (named && accountOf && (await this.accounts.get(`${a.realm}:${named}`, () => accountOf(a.realm, named)))) || named;
    return { account: `account:${a.realm}:${normalise(account)}`, source: `source:${normalise(a.source)}` };
  }

  /**
   * Runs `check` (the password check) if both keys have budget left, waiting for a place if
   * every failure still allowed is already being checked; `failed` tells a failed result.
   * A failure resolves only after its delay. A refusal (locked, or no place within
   * attemptTimeout) is returned unchecked; the front answers it and journals its attempt.
   * A check that throws frees its place without counting, and the error goes on.
   */
  async guard<T>(a: LoginAttempt, check: () => Promise<T>, failed: (v: T) => boolean): Promise<Guarded<T>> {
    const k = await this.keys(a);
    const keys = [k.account, k.source];
    const budgets = [this.options.maxFailuresPerAccount, this.options.maxFailuresPerSource];
    const deadline = Date.now() + this.options.attemptTimeout;
    for (let poll = POLL_MIN_MS; ; poll = Math.min(POLL_MAX_MS, Math.round(poll * 1.5))) {
      const rows = await this.reserve(keys, budgets);
      const verdict = rows[0]?.verdict;
      const full = rows.filter((r) => r.failure_count + r.pending_count >= budgets[keys.indexOf(r.throttle_key)]).map((r) => r.throttle_key);
      // A key with room left is offered to the next login waiting on it here: a place this
      // one was woken for but cannot use (its other key is full) is not left idle.
      if (verdict !== 'locked') for (const key of keys) if (!full.includes(key)) this.waiters.wakeOne(key);
      if (verdict === 'reserved') break;
      if (verdict === 'locked') {
        const locked = [...rows].sort((x, y) => y.locked_ms - x.locked_ms)[0];
        const who = locked.throttle_key === k.account ? 'account' : 'source';
        return { ok: false, who, retryAfterMs: locked.locked_ms, refusal: refuse('LOGIN_THROTTLED', { who: whoText(who), when: inTime(locked.locked_ms) }) };
      }
      // Every failure still allowed on some key is being checked: wait for one of those keys.
      const left = deadline - Date.now();
      if (left <= 0) {
        const who = full[0] === k.source ? 'source' : 'account';
        return { ok: false, who, retryAfterMs: 0, refusal: refuse('LOGIN_BUSY', { who: whoText(who) }) };
      }
      await this.waiters.wait(full.length ? full : keys, poll, deadline);
    }

    let value: T;
    try {
      value = await check();
    } catch (e) {
      await this.settle(keys, budgets, null, a).catch((err) => this.deps.log?.error({ err }, 'could not free a login throttle place'));
      throw e;
    }
    const bad = failed(value);
    const settled = await this.settle(keys, budgets, bad, a);
    if (bad) await this.sleep(this.delayFor(settled.find((r) => r.throttle_key === k.account)?.failure_count ?? 1));
    return { ok: true, value };
  }

  private async reserve(keys: string[], budgets: number[]): Promise<ReserveRow[]> {
    const { rows } = await this.deps.db.query<ReserveRow>('SELECT * FROM login_throttle_reserve($1::text[], $2::int[], $3::int8, $4::int8)', [
      keys,
      budgets,
      this.options.failureWindow,
      this.options.attemptTimeout,
    ]);
    return rows.map((r) => ({ ...r, locked_ms: Number(r.locked_ms), failure_count: Number(r.failure_count), pending_count: Number(r.pending_count) }));
  }

  /** failed: true / false, or null when the check could not be made (nothing counts). */
  private async settle(keys: string[], budgets: number[], failed: boolean | null, a: LoginAttempt): Promise<SettleRow[]> {
    // A success starts the account's count again, not the source's.
    const clear = keys.map((key) => key.startsWith('account:'));
    const { rows } = await this.deps.db.query<SettleRow>('SELECT * FROM login_throttle_settle($1::text[], $2::int[], $3::bool[], $4::bool, $5::int8)', [
      keys,
      budgets,
      clear,
      failed,
      this.options.lockout,
    ]);
    for (const r of rows) {
      if (r.locked_now) {
        this.waiters.wakeAll(r.throttle_key);
        await this.journalLockout(r, a);
      } else if (failed !== true) this.waiters.wakeOne(r.throttle_key); // a place was freed
    }
    void this.clean();
    return rows.map((r) => ({ ...r, failure_count: Number(r.failure_count), locked_ms: Number(r.locked_ms) }));
  }

  private async journalLockout(r: SettleRow, a: LoginAttempt): Promise<void> {
    const [kind, ...rest] = r.throttle_key.split(':');
    const name = kind === 'account' ? rest.slice(1).join(':') : rest.join(':');
    this.deps.log?.warn({ key: r.throttle_key, failures: r.failure_count, front: a.front, remote: a.source }, 'login throttle: locked');
    try {
      await this.deps.journal.append({
        type: 'auth.locked',
        actor: 'system',
        subject: name,
        details: {
          key: kind,
          ...(kind === 'account' ? { realm: rest[0] } : {}),
          failures: Number(r.failure_count),
          lockoutMs: this.options.lockout,
          until: new Date(Date.now() + Number(r.locked_ms)).toISOString(),
          front: a.front,
          remote: a.source,
          user: a.user.slice(0, 256),
        },
      });
    } catch (err) {
      this.deps.log?.error({ err, key: r.throttle_key }, 'could not journal a login lockout');
    }
  }

  /** Forgets keys with nothing left to remember; at most once a minute, from any settlement. */
  private async clean(): Promise<void> {
    const now = Date.now();
    if (now - this.lastClean < CLEAN_EVERY_MS) return;
    this.lastClean = now;
    const o = this.options;
    const idle = Math.max(o.failureWindow, o.lockout, o.attemptTimeout);
    await this.deps.db
      .query(`DELETE FROM login_throttle WHERE touched_at < now() - $1::int8 * interval '1 millisecond'`, [idle])
      .catch((err) => this.deps.log?.warn({ err }, 'could not clean the login throttle'));
  }

  /** A key's counters as the database holds them now (tests, operators). */
  async state(kind: 'account' | 'source', name: string, realm: AccountRealm = 'person'): Promise<{ failures: number; pending: number; lockedMs: number }> {
    const key = kind === 'source' ? `source:${normalise(name)}` : `account:${realm}:${normalise(name)}`;
    const { rows } = await this.deps.db.query<{ failures: number; pending: number; locked_ms: number | null }>(
      `SELECT failures, pending, ceil(extract(epoch FROM locked_until - now()) * 1000)::int8 AS locked_ms FROM login_throttle WHERE key = $1`,
      [key],
    );
    const r = rows[0];
    return { failures: Number(r?.failures ?? 0), pending: Number(r?.pending ?? 0), lockedMs: Math.max(0, Number(r?.locked_ms ?? 0)) };
  }
}

const whoText = (who: 'account' | 'source') => (who === 'source' ? 'from your address' : 'for this account');

/** "in 15 min", "in 40 s": when a locked client may try again. */
function inTime(ms: number): string {
  const s = Math.max(1, Math.ceil(ms / 1000));
  return s < 60 ? `in ${s} s` : `in ${Math.ceil(s / 60)} min`;
}

/**
 * Logins of this process waiting for a place, in a queue per key, first come first woken.
 * Only the head of a queue looks at the database now and then (for places another process
 * freed); the others sleep until woken here, or until their deadline: a crowd of waiters
 * costs the database one look per key, not one each.
 */
class Waiters {
  private readonly queues = new Map<string, Waiter[]>();

  /** Resolves when woken, at the next look if this one is at the head of a queue, or at `until`. */
  wait(keys: string[], pollMs: number, until: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const w: Waiter = { keys, pollMs, until, wake: () => (this.leave(w), resolve()) };
      for (const k of keys) {
        let q = this.queues.get(k);
        if (!q) this.queues.set(k, (q = []));
        q.push(w);
      }
      this.arm(w);
    });
  }

  wakeOne(key: string): void {
    this.queues.get(key)?.[0]?.wake();
  }

  wakeAll(key: string): void {
    for (const w of [...(this.queues.get(key) ?? [])]) w.wake();
  }

  private arm(w: Waiter): void {
    clearTimeout(w.timer);
    const head = w.keys.some((k) => this.queues.get(k)?.[0] === w);
    const left = w.until - Date.now();
    w.timer = setTimeout(w.wake, Math.max(0, head ? Math.min(w.pollMs, left) : left));
  }

  private leave(w: Waiter): void {
    clearTimeout(w.timer);
    for (const k of w.keys) {
      const q = this.queues.get(k);
      const i = q?.indexOf(w) ?? -1;
      if (!q || i < 0) continue;
      q.splice(i, 1);
      if (!q.length) this.queues.delete(k);
      else if (i === 0) this.arm(q[0]); // the next one looks from now on
    }
  }
}

interface Waiter {
  keys: string[];
  pollMs: number;
  until: number;
  wake: () => void;
  timer?: NodeJS.Timeout;
}
