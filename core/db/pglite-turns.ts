// Whose turn it is on the embedded database. PGlite is one PostgreSQL backend: one statement
// (or one transaction) at a time, in the order asked. Left to that order, a login's five short
// statements each wait behind whatever bulk work queued first — an import's slices, the
// directory feeder's rounds, VACUUM — and an IMAP client waits seconds for a 2 ms answer.
// Turns go to interactive work first; background work goes when none waits, and at least
// once every BACKGROUND_EVERY turns while it waits, so a steady stream of logins cannot stall
// an import for ever. (PostgreSQL serves several connections at once and needs none of this.)

export type TurnClass = 'interactive' | 'background';

/** While background work waits, it gets one turn in this many. */
export const BACKGROUND_EVERY = 8;

export class Turns {
  private held = false;
  private readonly waiting: Record<TurnClass, Array<() => void>> = { interactive: [], background: [] };
  private sinceBackground = 0;

  /** Runs fn when it is cls's turn; the turn is held until fn settles. */
  async run<T>(cls: TurnClass, fn: () => Promise<T>): Promise<T> {
    if (this.held) await new Promise<void>((r) => this.waiting[cls].push(r));
    else this.held = true;
    try {
      return await fn();
    } finally {
      this.next();
    }
  }

  /** Turns asked for and not yet given, per class (metrics, tests). */
  get queued(): Record<TurnClass, number> {
    return { interactive: this.waiting.interactive.length, background: this.waiting.background.length };
  }

  private next(lookedAgain = false): void {
    const { interactive, background } = this.waiting;
    const backgroundsTurn = background.length > 0 && (interactive.length === 0 || this.sinceBackground >= BACKGROUND_EVERY - 1);
    // A login is several statements in a row: the one that just ended has not asked for
    // its next yet (that happens in its continuation, after this). Background work waits
    // until the microtasks have run, while the turn stays held.
    if (backgroundsTurn && interactive.length === 0 && !lookedAgain) {
      setImmediate(() => this.next(true));
      return;
    }
    const go = backgroundsTurn ? background.shift() : interactive.shift();
    if (!go) {
      this.held = false;
      return;
    }
    this.sinceBackground = backgroundsTurn || background.length === 0 ? 0 : this.sinceBackground + 1;
    go();
  }
}
