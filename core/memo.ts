// Answers asked a moment ago, kept for a short time: what a hot path asks the database again
// and again (a session token on every webmail request, the account a login name designates
// at every login). Bounded: past maxEntries the oldest goes (a Map keeps insertion order).
// Concurrent askers of one key share one question; a null answer or a failure is not
// remembered, so the next asker asks again.
export class Memo<V> {
  private readonly entries = new Map<string, { value: Promise<V | null>; until: number }>();

  constructor(private readonly o: { ttlMs: number; maxEntries: number }) {}

  /** ask()'s answer for key, asked at most once per ttlMs (each time when ttlMs ≤ 0). */
  get(key: string, ask: () => Promise<V | null>, now = Date.now()): Promise<V | null> {
    if (this.o.ttlMs <= 0) return ask();
    const e = this.entries.get(key);
    if (e && e.until > now) return e.value;
    const value = ask();
    const entry = { value, until: now + this.o.ttlMs };
    this.entries.delete(key);
    this.entries.set(key, entry);
    if (this.entries.size > this.o.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const forget = () => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    };
    value.then((v) => v ?? forget(), forget);
    return value;
  }

  drop(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
