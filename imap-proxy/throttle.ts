// Failed-login throttling, in the proxy because Dovecot sees every client as 127.0.0.1.
// Pure (the clock is injected) and bounded in memory.
//
// Two counters over a sliding window:
//   - per source address: many failures from one address (a password sprayer) → that
//     address's password logins are refused without checking, until the window slides.
//     A success does not clear it: an attacker with one valid account of their own could
//     otherwise reset their counter between guesses.
//   - per account (the person's login, whatever the address): guesses spread over many
//     addresses → that account's password logins are refused until the window slides.
//     This lets an attacker lock a person out for one window; the alternative is letting
//     a botnet guess without limit. Certificate logins (EXTERNAL) are not throttled per
//     account, so a professional with a CPS card is never locked out, and a success clears
//     the account's counter (the real person proved themselves).

export interface ThrottleOptions {
  windowMs: number;
  maxPerSource: number;
  maxPerAccount: number;
  /** Keys remembered at most, per kind; beyond, the stalest are forgotten. */
  maxKeys?: number;
  now?: () => number;
}

export type ThrottleVerdict = { ok: true } | { ok: false; who: 'source' | 'account'; retryAfterMs: number };

export class FailureThrottle {
  private readonly sources = new Map<string, number[]>();
  private readonly accounts = new Map<string, number[]>();
  private readonly now: () => number;
  private readonly maxKeys: number;

  constructor(private readonly o: ThrottleOptions) {
    this.now = o.now ?? Date.now;
    this.maxKeys = o.maxKeys ?? 100_000;
  }

  /** May a password login from `source` for `account` be checked now? */
  check(source: string, account: string | null): ThrottleVerdict {
    const t = this.now();
    const s = this.recent(this.sources, source, t);
    if (s.length >= this.o.maxPerSource) return { ok: false, who: 'source', retryAfterMs: s[0] + this.o.windowMs - t };
    if (account) {
      const a = this.recent(this.accounts, normalise(account), t);
      if (a.length >= this.o.maxPerAccount) return { ok: false, who: 'account', retryAfterMs: a[0] + this.o.windowMs - t };
    }
    return { ok: true };
  }

  failed(source: string, account: string | null): void {
    const t = this.now();
    this.add(this.sources, source, t, this.o.maxPerSource);
    if (account) this.add(this.accounts, normalise(account), t, this.o.maxPerAccount);
  }

  succeeded(account: string): void {
    this.accounts.delete(normalise(account));
  }

  /** Failures counted now, for tests and metrics. */
  count(kind: 'source' | 'account', key: string): number {
    return this.recent(kind === 'source' ? this.sources : this.accounts, kind === 'account' ? normalise(key) : key, this.now()).length;
  }

  private recent(map: Map<string, number[]>, key: string, t: number): number[] {
    const list = map.get(key);
    if (!list) return [];
    while (list.length && list[0] <= t - this.o.windowMs) list.shift();
    if (!list.length) map.delete(key);
    return list;
  }

  private add(map: Map<string, number[]>, key: string, t: number, max: number) {
    const list = this.recent(map, key, t);
    list.push(t);
    // Only the newest `max` failures matter for the decision: the list never grows beyond.
    if (list.length > max) list.splice(0, list.length - max);
    map.delete(key);
    map.set(key, list); // Map keeps insertion order: re-inserting makes it the freshest.
    if (map.size > this.maxKeys) map.delete(map.keys().next().value!);
  }
}

const normalise = (account: string) => account.trim().toLowerCase();
