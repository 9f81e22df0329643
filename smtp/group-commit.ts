/**
 * Group commit: items submitted while a batch is being written wait for the next one, so
 * concurrent callers share one transaction — one commit, one fsync, a handful of statements
 * — instead of paying for one each. An urgent item (someone waits on it: a client for its
 * 250) is written at once: after one setImmediate, so what arrived in the same tick joins
 * it, or with the batch after the one being written. A lazy item (nobody waits on it) may
 * wait up to `lazyMs` for company, and goes with the next urgent batch if one comes first.
 * Each caller's promise settles once the batch holding its item is committed, or failed.
 */
export class GroupCommit<I, O> {
  private queue: Array<{ item: I; urgent: boolean; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private urgent = 0;
  private running: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private draining = 0;

  constructor(
    /** Writes the items in one transaction; returns one result per item, in order. */
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly limits: {
      maxItems: number;
      maxBytes?: number;
      bytes?: (item: I) => number;
      lazyMs?: number;
      /** Whether a failed batch's items are tried again one by one (default: always). Not when the batch may have been saved. */
      retryAlone?: (e: unknown) => boolean;
    },
  ) {}

  submit(item: I, o: { lazy?: boolean } = {}): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      const urgent = !o.lazy || !this.limits.lazyMs;
      this.queue.push({ item, urgent, resolve, reject });
      if (urgent) this.urgent++;
      this.schedule();
    });
  }

  /** Resolves once everything submitted so far is written (or failed), lazy items included. */
  async drain(): Promise<void> {
    this.draining++;
    try {
      this.schedule();
      while (this.running) await this.running;
    } finally {
      this.draining--;
    }
  }

  private schedule() {
    if (this.running || !this.queue.length) return;
    if (this.urgent > 0 || this.draining) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.running = this.loop();
    } else
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.running ??= this.loop();
      }, this.limits.lazyMs);
  }

  private async loop(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.take();
      for (const p of batch) if (p.urgent) this.urgent--;
      try {
        const out = await this.write(batch.map((p) => p.item));
        batch.forEach((p, i) => p.resolve(out[i]));
      } catch (e) {
        if (batch.length === 1 || this.limits.retryAlone?.(e) === false) for (const p of batch) p.reject(e);
        else {
          // The transaction rolled back as a whole: one bad item must not fail its
          // neighbours, so each is tried again alone and gets its own answer.
          for (const p of batch) {
            try {
              p.resolve((await this.write([p.item]))[0]);
            } catch (err) {
              p.reject(err);
            }
          }
        }
      }
      // Only lazy items left: they wait for their timer, or for the next urgent one.
      if (this.urgent === 0 && !this.draining) break;
    }
    this.running = null;
    this.schedule();
  }

  private take() {
    const { maxItems, maxBytes, bytes } = this.limits;
    let n = 0;
    let size = 0;
    while (n < this.queue.length && n < maxItems) {
      const b = bytes && maxBytes ? bytes(this.queue[n].item) : 0;
      if (n > 0 && size + b > maxBytes!) break;
      size += b;
      n++;
    }
    return this.queue.splice(0, n);
  }
}
