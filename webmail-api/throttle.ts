// Failed API logins, counted like the IMAP proxy counts its own (imap-proxy/throttle.ts):
// per client address and per account over a sliding window, with the same settings
// (imap.failureWindow, maxFailuresPerSource, maxFailuresPerAccount). The API checks the
// password itself at login, so the proxy's throttle never sees these attempts.

export interface LoginThrottleOptions {
  windowMs: number;
  maxPerSource: number;
  maxPerAccount: number;
  now?: () => number;
}

const MAX_KEYS = 100_000;

export class LoginThrottle {
  private readonly sources = new Map<string, number[]>();
  private readonly accounts = new Map<string, number[]>();
  private readonly now: () => number;

  constructor(private readonly o: LoginThrottleOptions) {
    this.now = o.now ?? Date.now;
  }

  /** null when a login may be checked, else who is throttled and for how long. */
  check(source: string, account: string): { who: 'source' | 'account'; retryAfterMs: number } | null {
    const t = this.now();
    const s = this.recent(this.sources, source, t);
    if (s.length >= this.o.maxPerSource) return { who: 'source', retryAfterMs: s[0] + this.o.windowMs - t };
    const a = this.recent(this.accounts, account.toLowerCase(), t);
    if (a.length >= this.o.maxPerAccount) return { who: 'account', retryAfterMs: a[0] + this.o.windowMs - t };
    return null;
  }

  failed(source: string, account: string): void {
    const t = this.now();
    this.add(this.sources, source, t, this.o.maxPerSource);
    this.add(this.accounts, account.toLowerCase(), t, this.o.maxPerAccount);
  }

  /** The real person proved themselves: their account's count starts again (not the source's). */
  succeeded(account: string): void {
    this.accounts.delete(account.toLowerCase());
  }

  private recent(m: Map<string, number[]>, key: string, t: number): number[] {
    const list = m.get(key);
    if (!list) return [];
    while (list.length && list[0] <= t - this.o.windowMs) list.shift();
    if (!list.length) m.delete(key);
    return list;
  }

  private add(m: Map<string, number[]>, key: string, t: number, max: number): void {
    const list = this.recent(m, key, t);
    list.push(t);
    if (list.length > max) list.shift();
    m.delete(key);
    m.set(key, list);
    // Oldest keys go first (insertion order): memory stays bounded under a spray of names.
    if (m.size > MAX_KEYS) m.delete(m.keys().next().value!);
  }
}
