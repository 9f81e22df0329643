/**
 * Events per key within a sliding window: "has this key reached `limit` within the last
 * `windowMs`?". A key keeps at most `limit` timestamps and the counter at most `maxKeys` keys
 * (the least recently counted go first), so memory stays bounded whatever clients send.
 *
 * Counted in this process: the SMTP fronts of one node share one counter (MX and both
 * submission ports). Used on the embedded database (one process); on PostgreSQL the fronts
 * count in the database instead, shared by every node (core/policy/window-counts.ts).
 */
export class WindowCounter {
  private readonly keys = new Map<string, number[]>();

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The key's timestamps still inside the window (the older ones dropped). */
  private recent(key: string): number[] {
    const times = this.keys.get(key);
    if (!times) return [];
    const cut = this.now() - this.windowMs;
    let old = 0;
    while (old < times.length && times[old] <= cut) old++;
    if (old) times.splice(0, old);
    if (!times.length) this.keys.delete(key);
    return times;
  }

  /** Has the key reached the limit within the window? */
  full(key: string): boolean {
    return this.recent(key).length >= this.limit;
  }

  /** Counts one event; true when this one made the key reach the limit (the moment to journal). */
  add(key: string): boolean {
    const times = this.recent(key);
    if (times.length >= this.limit) return false;
    times.push(this.now());
    this.keys.delete(key);
    this.keys.set(key, times);
    if (this.keys.size > this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
    return times.length === this.limit;
  }
}

/** "1 h", "10 min", "45 s": a window as a sentence says it. */
export function windowLabel(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${Math.round(ms / 1000)} s`;
}
