/**
 * Group commit: items submitted while a batch is being written wait for the next one, so
 * concurrent callers share one transaction — one commit, one fsync, a handful of statements
 * — instead of paying for one each. Nothing waits on a timer: an idle committer writes the
 * first item after one setImmediate (what arrived in the same tick joins it), and under
 * load a batch is whatever queued during the previous write. Each caller's promise settles
 * once the batch holding its item is committed, or failed.
 */
export class GroupCommit<I, O> {
  private queue: Array<{ item: I; resolve: (o: O) => void; reject: (e: unknown) => void }> = [];
  private running: Promise<void> | null = null;

  constructor(
    /** Writes the items in one transaction; returns one result per item, in order. */
    private readonly write: (items: I[]) => Promise<O[]>,
    private readonly limits: { maxItems: number; maxBytes?: number; bytes?: (item: I) => number },
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.loop();
    });
  }

  /** Resolves once everything submitted so far is written (or failed). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    while (this.queue.length) {
      const batch = this.take();
      try {
        const out = await this.write(batch.map((p) => p.item));
        batch.forEach((p, i) => p.resolve(out[i]));
      } catch (e) {
        if (batch.length === 1) {
          batch[0].reject(e);
          continue;
        }
        // The transaction rolled back as a whole: one bad item must not fail its neighbours,
        // so each is tried again alone and gets its own answer.
        for (const p of batch) {
          try {
            p.resolve((await this.write([p.item]))[0]);
          } catch (err) {
            p.reject(err);
          }
        }
      }
    }
    this.running = null;
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
