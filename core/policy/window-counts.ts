// "Has this key reached `limit` events within the last `windowMs`?" — counted in PostgreSQL,
// so every node of the platform shares one count (issue 17): a sender spreading its
// connections over two nodes gets the limit once, not once per node. The window slides in
// twelfths: a key's count is the sum of its buckets that started within the window.
// Check-and-count is atomic across nodes (a transaction-scoped advisory lock per key).
//
// On the embedded database there is one process: the in-process counter (smtp/limits.ts)
// is exact there and costs no statement; the fronts use that one there (smtp/index.ts).

import type { Db, Queryable } from '../db/index.js';

/** What the fronts need of a counter, wherever it counts. */
export interface WindowCount {
  readonly limit: number;
  readonly windowMs: number;
  /** Has the key reached the limit within the window? */
  full(key: string): boolean | Promise<boolean>;
  /** Counts one event unless the key is full; true when this one made it reach the limit (the moment to journal). */
  add(key: string): boolean | Promise<boolean>;
}

const BUCKETS = 12;

export class SharedWindowCounter implements WindowCount {
  private readonly bucketMs: number;

  constructor(
    private readonly db: Db,
    private readonly scope: string,
    readonly limit: number,
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS));
  }

  private window(): { current: number; oldest: number } {
    const current = Math.floor(this.now() / this.bucketMs);
    return { current, oldest: current - BUCKETS + 1 };
  }

  private async count(q: Queryable, key: string, oldest: number): Promise<number> {
    const { rows } = await q.query<{ n: number }>('SELECT coalesce(sum(n), 0)::int AS n FROM policy_window_counts WHERE scope = $1 AND key = $2 AND bucket >= $3', [this.scope, key, oldest]);
    return rows[0].n;
  }

  async full(key: string): Promise<boolean> {
    return (await this.count(this.db, key, this.window().oldest)) >= this.limit;
  }

  async add(key: string): Promise<boolean> {
    return (await this.take(key)) === 'reached';
  }

  /** Counts one event if the key is below the limit: 'counted', 'reached' (this one made it full) or 'full' (not counted). */
  take(key: string): Promise<'counted' | 'reached' | 'full'> {
    const { current, oldest } = this.window();
    return this.db.transaction(
      async (tx) => {
        // One check-and-count per key at a time, whichever node asks.
        await tx.query("SELECT pg_advisory_xact_lock(hashtextextended($1 || E'\\n' || $2, 17))", [this.scope, key]);
        const n = await this.count(tx, key, oldest);
        if (n >= this.limit) return 'full';
        await tx.query(
          `INSERT INTO policy_window_counts (scope, key, bucket, n) VALUES ($1, $2, $3, 1)
           ON CONFLICT (scope, key, bucket) DO UPDATE SET n = policy_window_counts.n + 1`,
          [this.scope, key, current],
        );
        // The key's buckets that slid out of the window: its own rows only, by primary key.
        await tx.query('DELETE FROM policy_window_counts WHERE scope = $1 AND key = $2 AND bucket < $3', [this.scope, key, oldest]);
        return n + 1 === this.limit ? 'reached' : 'counted';
      },
      { retry: true },
    );
  }
}

/** Submission's messages per hour per principal (smtp fronts' allowRate), shared by every node on PostgreSQL. */
export function sharedRateLimiter(db: Db): (who: string, perHour: number) => Promise<boolean> {
  let counter: SharedWindowCounter | undefined;
  return async (who, perHour) => {
    if (counter?.limit !== perHour) counter = new SharedWindowCounter(db, 'smtp.rate-per-hour', perHour, 3_600_000);
    return (await counter.take(who)) !== 'full';
  };
}
